//! `sessync_session`: one request's view of its visitor's session.

use std::ffi::{CString, c_char};

use super::{
    buf::sessync_buf,
    guard::{Fail, fail, opt_str, put, status, try_bytes, try_mut, try_ref, try_str, try_utf8},
    status::sessync_status,
    store::{sessync_store, with_store},
};
use crate::flow::Session;

/// Flag of `sessync_session_begin`: take the session's lock for the request.
pub const SESSYNC_BEGIN_LOCK: u32 = 1;

/// One request's view of its visitor's session.
///
/// May be moved to any thread, but must not be used by two threads at once.
/// Life cycle: `sessync_session_begin` → `sessync_session_get` / `_set` / `_remove` /
/// `_incr` / `_rotate` / `_destroy` / `_set_owner` … → `sessync_session_commit` or
/// `sessync_session_abort` (each consumes the handle). `sessync_session_free` on a handle
/// that was neither committed nor aborted aborts it.
#[derive(Debug)]
pub struct sessync_session {
    inner: Session,
    /// The id as a C string, for `sessync_session_id`.
    id: CString,
    /// Set when a call on this handle panicked: later calls refuse with `PANIC`.
    poisoned: bool,
}

fn id_cstring(s: &Session) -> CString {
    CString::new(s.id().as_str()).unwrap_or_default()
}

/// Runs `f` on the session, poisoning the handle if `f` panics.
fn with_session(
    session: *mut sessync_session,
    f: impl FnOnce(&mut sessync_session) -> Result<(), Fail>,
) -> sessync_status {
    status((|| {
        let s = try_mut(session, "session")?;
        if s.poisoned {
            return Err(fail(
                sessync_status::Panic,
                "the session handle was poisoned by an earlier internal error; only sessync_session_free works",
            ));
        }
        s.poisoned = true;
        let r = f(s);
        s.poisoned = false;
        r
    })())
}

/// Starts a request: resolves the visitor's session from the raw `Cookie` header bytes
/// (`cookie` may be NULL when `cookie_len` is 0; bytes that are not valid cookies are
/// ignored, never adopted), takes the session's lock if `flags` has `SESSYNC_BEGIN_LOCK`,
/// and fetches the session. A visitor without a valid cookie naming a live session gets a
/// fresh id; nothing is stored until `sessync_session_commit` has something to save.
///
/// On `SESSYNC_STATUS_OK`, writes `*session_out`, which the caller must end with
/// `sessync_session_commit`, `sessync_session_abort` or `sessync_session_free`; otherwise
/// leaves it unchanged. With the lock, blocks while earlier requests hold it, up to the
/// `lock_wait` set with `sessync_options_set` (default 10 s), then fails with
/// `SESSYNC_STATUS_LOCK_TIMEOUT`. In a server with one thread per connection, keep
/// `lock_wait` short: a visitor's burst of requests waits in worker threads.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_begin(
    store: *const sessync_store,
    cookie: *const u8,
    cookie_len: usize,
    flags: u32,
    session_out: *mut *mut sessync_session,
) -> sessync_status {
    ffi_guard!({
        with_store(store, |h| {
            let out = try_mut(session_out, "session_out")?;
            if flags & !SESSYNC_BEGIN_LOCK != 0 {
                return Err(fail(
                    sessync_status::InvalidArgument,
                    &format!("unknown flags {:#x}", flags & !SESSYNC_BEGIN_LOCK),
                ));
            }
            let raw = try_bytes(cookie, cookie_len, "cookie")?;
            let header = String::from_utf8_lossy(raw);
            let s = h
                .sessions
                .begin(Some(&header), flags & SESSYNC_BEGIN_LOCK != 0)?;
            let id = id_cstring(&s);
            *out = Box::into_raw(Box::new(sessync_session {
                inner: s,
                id,
                poisoned: false,
            }));
            Ok(())
        })
    })
}

/// The session's id, NUL-terminated. Borrowed from the session: valid until the session
/// is rotated, committed, aborted or freed. NULL if `session` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_id(session: *const sessync_session) -> *const c_char {
    ffi_guard!({
        match try_ref(session, "session") {
            Ok(s) => s.id.as_ptr(),
            Err(_) => std::ptr::null(),
        }
    })
}

/// True when `sessync_session_begin` found no stored session (a fresh id). False if
/// `session` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_is_new(session: *const sessync_session) -> bool {
    ffi_guard!({ try_ref(session, "session").is_ok_and(|s| s.inner.is_new()) })
}

/// The value at `key`, as JSON, with this request's changes applied.
///
/// On `SESSYNC_STATUS_OK`, writes `*json_out` (free it with `sessync_buf_free`); an absent
/// key is `SESSYNC_STATUS_NOT_FOUND` and leaves it unchanged.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_get(
    session: *mut sessync_session,
    key: *const c_char,
    json_out: *mut sessync_buf,
) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            let key = try_str(key, "key")?;
            let out = try_mut(json_out, "json_out")?;
            let v = s
                .inner
                .get(key)
                .ok_or_else(|| fail(sessync_status::NotFound, &format!("no key {key:?}")))?;
            *out = sessync_buf::from_bytes(v.as_str().as_bytes());
            Ok(())
        })
    })
}

/// The integer at `key`, with this request's changes applied.
///
/// On `SESSYNC_STATUS_OK`, writes `*value_out`; an absent key is
/// `SESSYNC_STATUS_NOT_FOUND`, a value that is not an integer fitting in 64 bits is
/// `SESSYNC_STATUS_NOT_A_NUMBER`, and both leave it unchanged.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_get_i64(
    session: *mut sessync_session,
    key: *const c_char,
    value_out: *mut i64,
) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            let key = try_str(key, "key")?;
            let out = try_mut(value_out, "value_out")?;
            let v = s
                .inner
                .get(key)
                .ok_or_else(|| fail(sessync_status::NotFound, &format!("no key {key:?}")))?;
            *out = v.as_i64().ok_or_else(|| {
                fail(
                    sessync_status::NotANumber,
                    &format!("key {key:?} does not hold a 64-bit integer"),
                )
            })?;
            Ok(())
        })
    })
}

/// All of the session's data, as a JSON object, with this request's changes applied.
/// On `SESSYNC_STATUS_OK`, writes `*json_out` (free it with `sessync_buf_free`).
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_data(
    session: *mut sessync_session,
    json_out: *mut sessync_buf,
) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            let out = try_mut(json_out, "json_out")?;
            *out = sessync_buf::from_bytes(s.inner.to_json().as_bytes());
            Ok(())
        })
    })
}

/// Sets `key` to the JSON value `json` (`json_len` bytes), replacing what was there. Kept
/// in the session until commit. Invalid UTF-8, invalid JSON and a value over the store's
/// `max_session_bytes` each get their own status and change nothing.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_set(
    session: *mut sessync_session,
    key: *const c_char,
    json: *const u8,
    json_len: usize,
) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            let key = try_str(key, "key")?;
            let text = try_utf8(json, json_len, "json")?;
            s.inner.set_json(key, text)?;
            Ok(())
        })
    })
}

/// Removes `key` (absent is fine). Kept in the session until commit.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_remove(
    session: *mut sessync_session,
    key: *const c_char,
) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            let key = try_str(key, "key")?;
            s.inner.remove(key)?;
            Ok(())
        })
    })
}

/// Adds `by` to the integer at `key` (absent counts as 0). Commit applies it as an atomic
/// increment, so concurrent requests' increments all count. On `SESSYNC_STATUS_OK`,
/// writes the value as this request sees it (exact under the lock) to `*value_out` if not
/// NULL.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_incr(
    session: *mut sessync_session,
    key: *const c_char,
    by: i64,
    value_out: *mut i64,
) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            let key = try_str(key, "key")?;
            let v = s.inner.incr(key, by)?;
            put(value_out, v);
            Ok(())
        })
    })
}

/// Sets (`owner` not NULL) or clears (NULL) the session's owner, e.g. the user id at
/// login. Kept in the session until commit.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_set_owner(
    session: *mut sessync_session,
    owner: *const c_char,
) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            let owner = opt_str(owner, "owner")?;
            s.inner.set_owner(owner)?;
            Ok(())
        })
    })
}

/// Gives the session a fresh id now (e.g. at login, against session fixation). Data,
/// owner and lock move with it; commit sends the new cookie. A string returned earlier
/// by `sessync_session_id` is invalid afterwards.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_rotate(session: *mut sessync_session) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            s.inner.rotate()?;
            s.id = id_cstring(&s.inner);
            Ok(())
        })
    })
}

/// Marks the session for destruction at commit (logout); commit then returns a removal
/// cookie, and later writes for this id, even from requests in flight, are refused.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_destroy(session: *mut sessync_session) -> sessync_status {
    ffi_guard!({
        with_session(session, |s| {
            s.inner.destroy();
            Ok(())
        })
    })
}

/// Takes ownership of a session handle (NULL stays NULL).
fn take(session: *mut sessync_session) -> Option<Box<sessync_session>> {
    if session.is_null() {
        None
    } else {
        // SAFETY: not NULL; it came from `sessync_session_begin` (Box::into_raw) and the
        // contract says the handle is consumed here, so nobody uses it afterwards.
        Some(unsafe { Box::from_raw(session) })
    }
}

/// Ends the request: writes what changed as one atomic patch (or destroys), releases the
/// lock, and says which `Set-Cookie` header value to send.
///
/// Consumes `session`: do not use or free it afterwards, even if an error is returned.
/// On `SESSYNC_STATUS_OK`, writes `*set_cookie_out` if not NULL: the header value, or an
/// empty buffer (`data == NULL`) when no cookie needs sending; free it with
/// `sessync_buf_free`. Errors: `SESSYNC_STATUS_STALE_TOKEN` (the lock's lease ran out and
/// another request took it: nothing was written), `SESSYNC_STATUS_DESTROYED` (the session
/// was destroyed meanwhile), `SESSYNC_STATUS_NOT_FOUND` (it expired meanwhile).
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_commit(
    session: *mut sessync_session,
    set_cookie_out: *mut sessync_buf,
) -> sessync_status {
    ffi_guard!({
        status((|| {
            let s = take(session)
                .ok_or_else(|| fail(sessync_status::NullArgument, "argument `session` is NULL"))?;
            if s.poisoned {
                return Err(fail(
                    sessync_status::Panic,
                    "the session handle was poisoned",
                ));
            }
            let done = s.inner.commit()?;
            // Allocate the buffer only for a caller that takes it: `sessync_buf` has no
            // destructor, so one built for a NULL `set_cookie_out` would leak.
            if !set_cookie_out.is_null() {
                let cookie = done
                    .set_cookie
                    .map(|c| sessync_buf::from_bytes(c.as_bytes()))
                    .unwrap_or_else(sessync_buf::empty);
                put(set_cookie_out, cookie);
            }
            Ok(())
        })())
    })
}

/// Ends the request without writing and releases the lock.
/// Consumes `session`: do not use or free it afterwards, even if an error is returned.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_abort(session: *mut sessync_session) -> sessync_status {
    ffi_guard!({
        status((|| {
            let s = take(session)
                .ok_or_else(|| fail(sessync_status::NullArgument, "argument `session` is NULL"))?;
            s.inner.abort()?;
            Ok(())
        })())
    })
}

/// Frees a session handle that was neither committed nor aborted, aborting it (the lock
/// is released, nothing is written). NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_free(session: *mut sessync_session) {
    ffi_guard!({
        drop(take(session));
    })
}
