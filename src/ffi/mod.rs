//! The C ABI: `include/sessync.h` is generated from this module by cbindgen.
//!
//! One file per C type. Every exported function is written out as
//! `#[unsafe(no_mangle)] pub extern "C" fn` with its whole body inside `ffi_guard!`, so a
//! panic never crosses the boundary: it becomes `SESSYNC_STATUS_PANIC` (or NULL/0/false
//! from a getter) with the panic's message as the thread's last error.
//!
//! Conventions (restated in the header's top comment):
//! - every fallible function returns a `sessync_status`, 0 on success;
//! - outputs (`*_out`) are written only on success; nothing is half-done on failure;
//! - inputs are borrowed for the call only; `sessync_buf` outputs are owned by the caller
//!   and freed with `sessync_buf_free`; `_free(NULL)` is a no-op;
//! - `sessync_store` is thread-safe; a `sessync_session` may move between threads but is
//!   used by one at a time.
#![allow(non_camel_case_types)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![allow(
    clippy::not_unsafe_ptr_arg_deref,
    reason = "the callers are C: every pointer is checked for NULL, and the header states \
              what else a pointer must satisfy; an `unsafe fn` would add nothing for them"
)]

#[macro_use]
mod guard;
pub mod buf;
pub mod error;
pub mod id;
pub mod last_error;
pub mod options;
pub mod record;
pub mod session;
pub mod status;
pub mod store;
pub mod ticket;
pub mod version;

#[cfg(test)]
mod tests;

pub use buf::sessync_buf;
pub use error::sessync_error;
pub use options::{sessync_cookie_format, sessync_options};
pub use record::sessync_record;
pub use session::sessync_session;
pub use status::sessync_status;
pub use store::{sessync_stats, sessync_store};
