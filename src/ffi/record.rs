//! `sessync_record`: a fetched session, without a copy.

use std::ffi::c_char;

use super::{
    error::sessync_error,
    guard::{put, try_id, try_mut, try_ref},
    status::sessync_status,
    store::{sessync_store, with_store},
};
use crate::session::Record;

/// A snapshot of one session as fetched: its data, version, times and owner.
///
/// Zero-copy: the record shares the store's immutable snapshot of the data, so getting
/// one costs no copy of the session however large it is, and reading it costs nothing
/// until you look. It never changes; later writes make new snapshots.
/// Thread note: may be moved to and read from any thread.
/// Life cycle: `sessync_store_get` → `sessync_record_json` / `_version` / … →
/// `sessync_record_free`.
#[derive(Debug)]
pub struct sessync_record {
    inner: Record,
}

/// Gets a session's record without copying its data (see `sessync_record`).
///
/// On `SESSYNC_STATUS_OK`, writes `*record_out`, which the caller frees with
/// `sessync_record_free`; otherwise leaves it unchanged. An absent or expired session is
/// `SESSYNC_STATUS_NOT_FOUND`, and so is an id rotated away: its successor is never
/// answered for it (that would give a login's session to whoever knew the old id).
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_get(
    store: *const sessync_store,
    id: *const c_char,
    record_out: *mut *mut sessync_record,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let out = try_mut(record_out, "record_out")?;
            let rec = h.fetch(&id)?;
            *out = Box::into_raw(Box::new(sessync_record { inner: rec }));
            Ok(())
        })
    })
}

/// The session's data as a JSON object, NUL-terminated; its length (without the NUL) is
/// written to `*len_out` if that is not NULL. Borrowed from the record: valid until
/// `sessync_record_free`. NULL if `record` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_record_json(
    record: *const sessync_record,
    len_out: *mut usize,
) -> *const c_char {
    ffi_guard!({
        match try_ref(record, "record") {
            Ok(r) => {
                put(len_out, r.inner.data.byte_len());
                r.inner.data.as_c_ptr()
            }
            Err(_) => std::ptr::null(),
        }
    })
}

/// The session's id (after a rotation, the new one), NUL-terminated. Borrowed from the
/// record: valid until `sessync_record_free`. NULL if `record` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_record_id(record: *const sessync_record) -> *const c_char {
    ffi_guard!({
        match try_ref(record, "record") {
            Ok(r) => r.inner.id.as_c_ptr(),
            Err(_) => std::ptr::null(),
        }
    })
}

/// The session's version (1 at creation, +1 on every change of data or owner). 0 if
/// `record` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_record_version(record: *const sessync_record) -> u64 {
    ffi_guard!({ try_ref(record, "record").map_or(0, |r| r.inner.version) })
}

/// When the session expires unless touched, in ms since the Unix epoch (the idle TTL,
/// capped by the absolute one). 0 if `record` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_record_expires_at(record: *const sessync_record) -> u64 {
    ffi_guard!({ try_ref(record, "record").map_or(0, |r| r.inner.expires_at) })
}

/// When the session was created, in ms since the Unix epoch. 0 if `record` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_record_created(record: *const sessync_record) -> u64 {
    ffi_guard!({ try_ref(record, "record").map_or(0, |r| r.inner.created) })
}

/// The session's own idle TTL in ms, or 0 when it follows the store's `ttl` (or if
/// `record` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn sessync_record_ttl(record: *const sessync_record) -> u64 {
    ffi_guard!({ try_ref(record, "record").map_or(0, |r| r.inner.ttl_ms.unwrap_or(0)) })
}

/// Frees a record. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_record_free(record: *mut sessync_record) {
    ffi_guard!({
        if !record.is_null() {
            // SAFETY: not NULL; it came from `sessync_store_get` (Box::into_raw) and the
            // contract forbids freeing it twice.
            drop(unsafe { Box::from_raw(record) });
        }
    })
}
