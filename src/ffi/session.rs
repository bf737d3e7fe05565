//! `sessync_session`: one request's view of its visitor's session.

use std::{
    ffi::{CString, c_char},
    time::Duration,
};

use super::{
    buf::sessync_buf,
    error::sessync_error,
    guard::{
        Fail, fail, opt_str, put, status, try_bytes, try_id, try_mut, try_ref, try_str, try_utf8,
    },
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
/// `wait_ms` is how long to wait for the lock (0: fail at once if it is taken); a negative
/// value means the `lock_wait` set with `sessync_options_set` (default 10 s). On
/// `SESSYNC_STATUS_OK`, writes `*session_out`, which the caller must end with
/// `sessync_session_commit`, `sessync_session_abort` or `sessync_session_free`; otherwise
/// leaves it unchanged. With the lock, blocks while earlier requests hold it, up to the
/// wait, then fails with `SESSYNC_STATUS_LOCK_TIMEOUT`. In a server with one thread per
/// connection, keep the wait short: a visitor's burst of requests waits in worker threads;
/// event-loop servers use `sessync_session_begin_async`.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_begin(
    store: *const sessync_store,
    cookie: *const u8,
    cookie_len: usize,
    flags: u32,
    wait_ms: i64,
    session_out: *mut *mut sessync_session,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let out = try_mut(session_out, "session_out")?;
            let lock = begin_flags(flags, SESSYNC_BEGIN_LOCK)?;
            let wait = wait_of(h, wait_ms)?;
            let raw = try_bytes(cookie, cookie_len, "cookie")?;
            let header = String::from_utf8_lossy(raw);
            let s = h.sessions.begin_with(Some(&header), lock, wait)?;
            *out = wrap(s);
            Ok(())
        })
    })
}

/// Starts a request on a session the caller names, for frameworks that issue and check
/// their own session cookies (express-session's store, Django's engine, PHP's save
/// handler): no cookie is read, and `sessync_session_commit` never returns one.
///
/// The caller vouches for `id` (see the id rules at the top): when it names no live
/// session, the request begins a new session under that very id, which commit stores if
/// anything was set (`sessync_session_is_new` tells). `flags` and `wait_ms` as for
/// `sessync_session_begin`; a new session has no lock to take. On `SESSYNC_STATUS_OK`,
/// writes `*session_out`; otherwise leaves it unchanged. A malformed id is
/// `SESSYNC_STATUS_INVALID_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_begin_id(
    store: *const sessync_store,
    id: *const c_char,
    flags: u32,
    wait_ms: i64,
    session_out: *mut *mut sessync_session,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let out = try_mut(session_out, "session_out")?;
            let lock = begin_flags(flags, SESSYNC_BEGIN_LOCK)?;
            let wait = wait_of(h, wait_ms)?;
            let id = try_id(id, "id")?;
            let s = h.sessions.begin_id(id, lock, wait)?;
            *out = wrap(s);
            Ok(())
        })
    })
}

/// Whether `flags` asks for the lock; unknown bits are `INVALID_ARGUMENT`.
pub(crate) fn begin_flags(flags: u32, allowed: u32) -> Result<bool, Fail> {
    if flags & !allowed != 0 {
        return Err(fail(
            sessync_status::InvalidArgument,
            &format!("unknown flags {:#x}", flags & !allowed),
        ));
    }
    Ok(flags & SESSYNC_BEGIN_LOCK != 0)
}

/// A call's lock wait: `wait_ms`, or the flow's `lock_wait` when negative.
pub(crate) fn wait_of(h: &sessync_store, wait_ms: i64) -> Result<Duration, Fail> {
    let wait = match u64::try_from(wait_ms) {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => h.sessions.options().lock_wait,
    };
    if wait > crate::store::MAX_WAIT {
        return Err(fail(
            sessync_status::InvalidArgument,
            &format!(
                "lock wait of {wait_ms} ms is over the limit of {} s",
                crate::store::MAX_WAIT.as_secs()
            ),
        ));
    }
    Ok(wait)
}

/// A session handle for the caller to own.
pub(crate) fn wrap(s: Session) -> *mut sessync_session {
    let id = id_cstring(&s);
    Box::into_raw(Box::new(sessync_session {
        inner: s,
        id,
        poisoned: false,
    }))
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

/// The session's version as `begin` found it (0 for a new session). Commit does not
/// change it: the version after the write is the record's. 0 if `session` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_version(session: *const sessync_session) -> u64 {
    ffi_guard!({
        try_ref(session, "session")
            .ok()
            .and_then(|s| s.inner.record())
            .map_or(0, |r| r.version)
    })
}

/// When the session expires unless touched, as `begin` found it, in ms since the Unix
/// epoch (0 for a new session, or if `session` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_expires_at(session: *const sessync_session) -> u64 {
    ffi_guard!({
        try_ref(session, "session")
            .ok()
            .and_then(|s| s.inner.record())
            .map_or(0, |r| r.expires_at)
    })
}

/// The fencing token of the lock the session holds (begun with `SESSYNC_BEGIN_LOCK`), or
/// 0 without one (or if `session` is NULL).
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_token(session: *const sessync_session) -> u64 {
    ffi_guard!({
        try_ref(session, "session")
            .ok()
            .and_then(|s| s.inner.token())
            .unwrap_or(0)
    })
}

/// True when the request changed something commit would write (a key, the owner) or
/// destroy. False if `session` is NULL.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_changed(session: *const sessync_session) -> bool {
    ffi_guard!({ try_ref(session, "session").is_ok_and(|s| s.inner.is_changed()) })
}

/// Gives the session its own idle TTL of `ttl_ms` (1 ms to one year), from commit on:
/// express-session's `cookie.maxAge`, Django's `set_expiry`. Commit applies it in the same
/// atomic step as the request's changes (or, without changes, touches the session with
/// it); later writes and touches keep it until another TTL is set. A new session with
/// nothing set is still not stored. A TTL out of range is
/// `SESSYNC_STATUS_INVALID_ARGUMENT` and changes nothing.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_set_ttl(
    session: *mut sessync_session,
    ttl_ms: u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_session(session, |s| {
            s.inner.set_ttl(Duration::from_millis(ttl_ms))?;
            Ok(())
        })
    })
}

/// Sets `key` to opaque bytes (`len` bytes at `bytes`; NULL only with 0): a PHP session's
/// serialized string, a Go gob. Kept as a JSON string when the bytes are UTF-8, otherwise
/// as `{"$base64": "..."}`, so the session stays JSON; `sessync_session_get_bytes` reads
/// either back. Kept in the session until commit. Over `max_session_bytes` is
/// `SESSYNC_STATUS_TOO_LARGE` and changes nothing.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_set_bytes(
    session: *mut sessync_session,
    key: *const c_char,
    bytes: *const u8,
    len: usize,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_session(session, |s| {
            let key = try_str(key, "key")?;
            let b = try_bytes(bytes, len, "bytes")?;
            s.inner.set_bytes(key, b)?;
            Ok(())
        })
    })
}

/// The bytes at `key` as `sessync_session_set_bytes` stored them (a JSON string gives its
/// UTF-8 bytes). On `SESSYNC_STATUS_OK`, writes `*bytes_out` (free it with
/// `sessync_buf_free`; empty bytes are an empty buffer); an absent key is
/// `SESSYNC_STATUS_NOT_FOUND`, any other JSON value `SESSYNC_STATUS_INVALID_JSON`, and
/// both leave it unchanged.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_get_bytes(
    session: *mut sessync_session,
    key: *const c_char,
    bytes_out: *mut sessync_buf,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_session(session, |s| {
            let key = try_str(key, "key")?;
            let out = try_mut(bytes_out, "bytes_out")?;
            let b = s
                .inner
                .get_bytes(key)?
                .ok_or_else(|| fail(sessync_status::NotFound, &format!("no key {key:?}")))?;
            *out = sessync_buf::from_bytes(&b);
            Ok(())
        })
    })
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
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
pub extern "C" fn sessync_session_rotate(
    session: *mut sessync_session,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
pub extern "C" fn sessync_session_destroy(
    session: *mut sessync_session,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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

/// Takes ownership of a session to end it: NULL and a poisoned handle are refused (the
/// handle is freed either way).
pub(crate) fn take_checked(session: *mut sessync_session) -> Result<Session, Fail> {
    let s = take(session)
        .ok_or_else(|| fail(sessync_status::NullArgument, "argument `session` is NULL"))?;
    if s.poisoned {
        return Err(fail(
            sessync_status::Panic,
            "the session handle was poisoned",
        ));
    }
    Ok(s.inner)
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
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status((|| {
            let done = take_checked(session)?.commit()?;
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
pub extern "C" fn sessync_session_abort(
    session: *mut sessync_session,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
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
