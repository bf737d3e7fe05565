//! The library's version.

use std::ffi::c_char;

/// The library's version as text, such as `"0.2.0"`. Static: do not free it.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_version() -> *const c_char {
    ffi_guard!({ concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast() })
}

/// The library's version as `major * 1000000 + minor * 1000 + patch`, the packing of
/// `SESSYNC_VERSION_NUMBER`. Compare the two to detect a header that does not match the
/// library linked.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_version_number() -> u32 {
    ffi_guard!({ crate::VERSION_NUMBER })
}
