//! Session ids for bindings whose frameworks issue ids themselves: generate and check.

use std::ffi::c_char;

use super::{
    error::sessync_error,
    guard::{Fail, fail, put, status, try_id},
    status::sessync_status,
};
use crate::session::{GENERATED_ID_BYTES, SessionId};

/// Length of a generated id: 32 characters.
const GENERATED_LEN: usize = GENERATED_ID_BYTES.div_ceil(3) * 4;

/// Writes `id` NUL-terminated into `id_out` (`id_out_len` bytes) and its length into
/// `*id_len_out`, or fails with `INSUFFICIENT_SIZE` and the length needed.
pub(crate) fn copy_id(
    id: &SessionId,
    id_out: *mut c_char,
    id_out_len: usize,
    id_len_out: *mut usize,
) -> Result<(), Fail> {
    let b = id.as_bytes();
    if id_out.is_null() || id_out_len <= b.len() {
        put(id_len_out, b.len());
        return Err(fail(
            sessync_status::InsufficientSize,
            &format!("id_out needs {} bytes", b.len() + 1),
        ));
    }
    // SAFETY: `id_out` is not NULL and has `id_out_len > b.len()` writable bytes (checked
    // above; the header requires the length to be true).
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr(), id_out.cast::<u8>(), b.len());
        *id_out.add(b.len()) = 0;
    }
    put(id_len_out, b.len());
    Ok(())
}

/// Fails with `INSUFFICIENT_SIZE` (and the length needed in `*id_len_out`) unless
/// `id_out` has room for a generated id: checked before a rotation, so that a short buffer
/// changes nothing.
pub(crate) fn check_room(
    id_out: *mut c_char,
    id_out_len: usize,
    id_len_out: *mut usize,
) -> Result<(), Fail> {
    if id_out.is_null() || id_out_len <= GENERATED_LEN {
        put(id_len_out, GENERATED_LEN);
        return Err(fail(
            sessync_status::InsufficientSize,
            &format!("id_out needs {} bytes", GENERATED_LEN + 1),
        ));
    }
    Ok(())
}

/// Makes a fresh session id: 192 bits from the operating system's CSPRNG, as 32
/// base64url characters (`A-Z a-z 0-9 - _`), the kind `sessync_session_begin` issues. For
/// frameworks that ask their store for new ids (PHP's `create_sid`, Django's
/// `_get_new_session_key`).
///
/// The id is written NUL-terminated into `id_out` (`id_out_len` bytes;
/// `SESSYNC_ID_MAX_LEN + 1` always suffice) and its length into `*id_len_out` if that is
/// not NULL. If `id_out` is NULL or too small, returns `SESSYNC_STATUS_INSUFFICIENT_SIZE`
/// with the needed length (without the NUL) in `*id_len_out` (if not NULL).
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_id_generate(
    id_out: *mut c_char,
    id_out_len: usize,
    id_len_out: *mut usize,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status((|| {
            check_room(id_out, id_out_len, id_len_out)?;
            copy_id(&SessionId::generate(), id_out, id_out_len, id_len_out)
        })())
    })
}

/// Checks that `id` is a well-formed session id (16 to `SESSYNC_ID_MAX_LEN` characters of
/// `A-Z a-z 0-9 - _`): `SESSYNC_STATUS_OK`, or `SESSYNC_STATUS_INVALID_ARGUMENT` with the
/// reason. Says nothing of whether a session exists.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_id_check(id: *const c_char, error: *mut sessync_error) -> sessync_status {
    ffi_guard!(error, { status(try_id(id, "id").map(|_| ())) })
}
