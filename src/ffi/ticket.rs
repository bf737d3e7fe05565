//! Calls that complete later, through a callback from a library thread: the lock, `begin`
//! and `commit` for event loops (Node, asyncio) that must never block a thread of theirs.
//!
//! Each call returns at once with a ticket. Its work runs on the library's own runtime:
//! a lock wait on the in-process store parks no thread at all (it is a task woken when the
//! lock is handed over); with other backends it blocks one thread of the library's pool,
//! never the caller's. The callback is called exactly once per ticket, from a thread of
//! the library's pool (never the caller's, never the runtime's one worker, so a slow
//! callback holds up no lock hand-over); it may come before the call that made the ticket
//! has returned, so the ticket is written out before the work starts. `sessync_ticket_cancel`
//! decides once and for all between "the callback gets `SESSYNC_STATUS_CANCELLED`" and
//! "it gets the result": a lock or session won after a cancel is given back.
//!
//! The runtime is tokio's (`ticket/rt.rs`), in builds with the `rt` feature (the default).
//! Without it every call here that completes later fails at once with
//! `SESSYNC_STATUS_INVALID_ARGUMENT` naming the feature (its callback never comes), no
//! ticket is ever pending, and `sessync_async_drain` finds nothing to wait for.

#[cfg(feature = "rt")]
mod rt;

use std::{
    ffi::{c_char, c_void},
    future::Future,
    pin::Pin,
    time::Duration,
};

use parking_lot::{Condvar, Mutex};

use self::rt::{abort_later, end_async, start, unlock_later};
use super::{
    buf::sessync_buf,
    error::sessync_error,
    guard::{Fail, fail, put, status, try_bytes, try_id},
    session::{SESSYNC_BEGIN_LOCK, begin_flags, sessync_session, wait_of, wrap},
    status::sessync_status,
    store::{sessync_store, with_store},
};
use crate::{error::Error, flow::Session};

/// Called once when `sessync_store_lock_async` completes: `status` is
/// `SESSYNC_STATUS_OK` with the fencing `token`, or the failure (`token` 0) with `error`
/// (NULL on success; borrowed for the call). Runs on a library thread: it must not block
/// for long, and must not unwind (no C++ exception, no `longjmp`) out of the callback.
pub type sessync_lock_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        status: sessync_status,
        token: u64,
        error: *const sessync_error,
    ),
>;

/// Called once when `sessync_session_begin_async` completes: on `SESSYNC_STATUS_OK`,
/// `session` is the caller's to end (commit, abort or free) exactly as one from
/// `sessync_session_begin`; otherwise it is NULL and `error` says why. Runs on a library
/// thread; the same rules as `sessync_lock_callback`.
pub type sessync_session_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        status: sessync_status,
        session: *mut sessync_session,
        error: *const sessync_error,
    ),
>;

/// Called once when `sessync_session_commit_async` completes: on `SESSYNC_STATUS_OK`,
/// `set_cookie` is the `Set-Cookie` value to send (empty when none), borrowed for the
/// call: copy what you need, do not free it. Otherwise it is NULL and `error` says why.
/// Runs on a library thread; the same rules as `sessync_lock_callback`.
pub type sessync_commit_callback = Option<
    extern "C" fn(
        userdata: *mut c_void,
        status: sessync_status,
        set_cookie: *const sessync_buf,
        error: *const sessync_error,
    ),
>;

/// The caller's `userdata`, carried to the callback's thread untouched.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: the library never dereferences `userdata`; it only hands it back to the
// caller's callback, which the header says may run on any library thread.
unsafe impl Send for UserData {}

/// Calls whose callback has not returned yet, and the condition `sessync_async_drain`
/// waits on.
static IN_FLIGHT: Mutex<usize> = Mutex::new(0);
static IDLE: Condvar = Condvar::new();

/// One call in flight, from its start until its callback has returned.
struct Flight;

#[cfg_attr(not(feature = "rt"), allow(dead_code))]
impl Flight {
    fn new() -> Flight {
        *IN_FLIGHT.lock() += 1;
        Flight
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut n = IN_FLIGHT.lock();
        *n = n.saturating_sub(1);
        if *n == 0 {
            IDLE.notify_all();
        }
    }
}

/// How the result of a call is given back when its ticket was cancelled.
type GiveBack<T> = Box<dyn FnOnce(T) + Send>;

/// A failure as the callback sees it.
struct Failure {
    status: sessync_status,
    message: String,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure {
            status: sessync_status::from(&e),
            message: e.to_string(),
        }
    }
}

/// An error for a callback, filled from a failure.
fn error_of(f: &Failure) -> sessync_error {
    let mut e = sessync_error {
        status: f.status,
        len: 0,
        message: [0 as c_char; 504],
    };
    e.fill(f.status, &f.message);
    e
}

/// Takes a session's lock like `sessync_store_lock`, without blocking the calling thread:
/// returns at once, and `callback(userdata, ...)` is called once, from a library thread,
/// with the fencing token or the failure (`SESSYNC_STATUS_LOCK_TIMEOUT` after `wait_ms`,
/// `SESSYNC_STATUS_CANCELLED` after `sessync_ticket_cancel`).
///
/// Waiters are served in the order of their calls, with those of `sessync_store_lock`. On
/// the in-process store a waiting call holds no thread; with a daemon or Redis it blocks
/// one thread of the library's pool (at most 512 calls block at once; more wait for a
/// thread). On `SESSYNC_STATUS_OK`, writes a ticket for `sessync_ticket_cancel` to
/// `*ticket_out` (if not NULL; written before the work starts, as the callback may come
/// before this call returns) and the callback will come; otherwise (bad arguments) the
/// callback is never called.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_lock_async(
    store: *const sessync_store,
    id: *const c_char,
    lease_ms: u64,
    wait_ms: u64,
    callback: sessync_lock_callback,
    userdata: *mut c_void,
    ticket_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let cb = required(callback)?;
            let store = h.sessions.store().clone();
            let lease = Duration::from_millis(lease_ms);
            let wait = Duration::from_millis(wait_ms);
            // Arguments are checked now, so a bad one fails the call, not the callback.
            crate::store::check_lock_args(lease, wait)?;
            let native = store.waits_without_thread();
            let s2 = store.clone();
            let work = Box::pin(async move { s2.lock_async(&id, lease, wait).await.map(|r| r.0) });
            let ud = UserData(userdata);
            start(
                native,
                work,
                unlock_later(store, id),
                ticket_out,
                move |r| {
                    let ud = ud;
                    match r {
                        Ok(token) => cb(ud.0, sessync_status::Ok, token, std::ptr::null()),
                        Err(f) => {
                            let e = error_of(&f);
                            cb(ud.0, f.status, 0, &e);
                        }
                    }
                },
            )
        })
    })
}

/// `sessync_session_begin` without blocking the calling thread: returns at once, and
/// `callback(userdata, ...)` is called once, from a library thread, with the session (the
/// callback's to end) or the failure (`SESSYNC_STATUS_CANCELLED` after
/// `sessync_ticket_cancel`).
///
/// `cookie`, `cookie_len`, `flags` and `wait_ms` as for `sessync_session_begin`; the bytes
/// are copied before it returns. A lock wait on the in-process store holds no thread; other
/// backends run the whole begin on a thread of the library's pool. On
/// `SESSYNC_STATUS_OK`, writes the ticket to `*ticket_out` (if not NULL; before the work
/// starts, as the callback may come before this call returns) and the callback will come;
/// otherwise it never is.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_begin_async(
    store: *const sessync_store,
    cookie: *const u8,
    cookie_len: usize,
    flags: u32,
    wait_ms: i64,
    callback: sessync_session_callback,
    userdata: *mut c_void,
    ticket_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let lock = begin_flags(flags, SESSYNC_BEGIN_LOCK)?;
            let wait = wait_of(h, wait_ms)?;
            let header =
                String::from_utf8_lossy(try_bytes(cookie, cookie_len, "cookie")?).into_owned();
            begin_ticket(h, callback, userdata, ticket_out, move |sessions| {
                Box::pin(async move { sessions.begin_async(Some(&header), lock, wait).await })
            })
        })
    })
}

/// `sessync_session_begin_id` without blocking the calling thread, completing as
/// `sessync_session_begin_async` does.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_begin_id_async(
    store: *const sessync_store,
    id: *const c_char,
    flags: u32,
    wait_ms: i64,
    callback: sessync_session_callback,
    userdata: *mut c_void,
    ticket_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let lock = begin_flags(flags, SESSYNC_BEGIN_LOCK)?;
            let wait = wait_of(h, wait_ms)?;
            let id = try_id(id, "id")?;
            begin_ticket(h, callback, userdata, ticket_out, move |sessions| {
                Box::pin(async move { sessions.begin_id_async(id, lock, wait).await })
            })
        })
    })
}

/// The work of a begin: a future over the store's request flow.
type BeginWork = Pin<Box<dyn Future<Output = Result<Session, Error>> + Send>>;

/// Starts a begin made by `work` and writes its ticket.
fn begin_ticket(
    h: &sessync_store,
    callback: sessync_session_callback,
    userdata: *mut c_void,
    ticket_out: *mut u64,
    work: impl FnOnce(crate::flow::Sessions) -> BeginWork,
) -> Result<(), Fail> {
    let cb = required(callback)?;
    let sessions = h.sessions.clone();
    let native = sessions.store().waits_without_thread();
    start(
        native,
        work(sessions),
        abort_later(),
        ticket_out,
        deliver_session(cb, userdata),
    )
}

/// A callback argument, or `NULL_ARGUMENT`.
fn required<F>(callback: Option<F>) -> Result<F, Fail> {
    callback.ok_or_else(|| fail(sessync_status::NullArgument, "argument `callback` is NULL"))
}

fn deliver_session(
    cb: extern "C" fn(*mut c_void, sessync_status, *mut sessync_session, *const sessync_error),
    userdata: *mut c_void,
) -> impl FnOnce(Result<Session, Failure>) + Send + 'static {
    let ud = UserData(userdata);
    move |r| {
        let ud = ud;
        match r {
            Ok(s) => cb(ud.0, sessync_status::Ok, wrap(s), std::ptr::null()),
            Err(f) => {
                let e = error_of(&f);
                cb(ud.0, f.status, std::ptr::null_mut(), &e);
            }
        }
    }
}

/// `sessync_session_commit` without blocking the calling thread: returns at once, and
/// `callback(userdata, ...)` is called once, from a library thread, with the `Set-Cookie`
/// value or the failure. The commit runs on a thread of the library's pool (it may wait
/// for the session's lock, or talk to a daemon or Redis).
///
/// Consumes `session`, even if an error is returned: do not use or free it afterwards. On
/// `SESSYNC_STATUS_OK` the callback will come; otherwise (a NULL argument, a poisoned
/// session) it never is.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_commit_async(
    session: *mut sessync_session,
    callback: sessync_commit_callback,
    userdata: *mut c_void,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status(end_async(session, callback, userdata, |s| {
            s.commit().map(|done| done.set_cookie)
        }))
    })
}

/// `sessync_session_abort` without blocking the calling thread (with a daemon or Redis,
/// releasing the lock is a round trip): returns at once, and `callback(userdata, ...)` is
/// called once, from a library thread, with `SESSYNC_STATUS_OK` and an empty `set_cookie`,
/// or the failure. Consumes `session`, even if an error is returned. On
/// `SESSYNC_STATUS_OK` the callback will come; otherwise (a NULL argument) it never is,
/// and the session was aborted at once.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_session_abort_async(
    session: *mut sessync_session,
    callback: sessync_commit_callback,
    userdata: *mut c_void,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status(end_async(session, callback, userdata, |s| {
            s.abort().map(|()| None)
        }))
    })
}

/// Cancels the pending call of `ticket` (from `sessync_store_lock_async`,
/// `sessync_session_begin_async` or `sessync_session_begin_id_async`).
///
/// `*cancelled_out` (if not NULL) is true when the call was still pending: its callback
/// then comes with `SESSYNC_STATUS_CANCELLED` (a lock or session it won meanwhile is given
/// back); false when it had already completed (its callback came or is coming with the
/// result) or the ticket is unknown. Never blocks; the callback is not called from here.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_ticket_cancel(
    ticket: u64,
    cancelled_out: *mut bool,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        put(cancelled_out, rt::cancel(ticket));
        sessync_status::Ok
    })
}

/// Waits until no call that completes through a callback is pending or running, for a
/// program about to exit (or a runtime about to stop the threads that callbacks enter:
/// Python's interpreter ends a foreign thread that calls into it while it shuts down).
///
/// With `cancel`, first cancels every pending ticket (their callbacks come with
/// `SESSYNC_STATUS_CANCELLED`; commits in progress are not cancelled). Then waits up to
/// `wait_ms` for the callbacks of every call made so far to return, and writes how many
/// are still pending or running to `*pending_out` (if not NULL): 0 means none is running
/// and none will come until new calls are made. Blocks the calling thread; do not call it
/// from a callback (it would wait for itself until `wait_ms` runs out).
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_async_drain(
    cancel: bool,
    wait_ms: u64,
    pending_out: *mut usize,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        if cancel {
            rt::cancel_all();
        }
        let deadline = std::time::Instant::now() + Duration::from_millis(wait_ms);
        let mut n = IN_FLIGHT.lock();
        while *n > 0 {
            if IDLE.wait_until(&mut n, deadline).timed_out() {
                break;
            }
        }
        put(pending_out, *n);
        sessync_status::Ok
    })
}

/// Without the `rt` feature there is no runtime: the calls that complete later fail at
/// once, naming the feature, and no ticket is ever pending.
#[cfg(not(feature = "rt"))]
mod rt {
    use std::{ffi::c_void, future::Future, pin::Pin};

    use super::{Failure, GiveBack, required, sessync_commit_callback};
    use crate::{
        error::Error,
        ffi::{
            guard::{Fail, fail},
            session::sessync_session,
            status::sessync_status,
        },
        flow::Session,
        session::SessionId,
        store::Store,
    };

    fn missing() -> Fail {
        fail(
            sessync_status::InvalidArgument,
            "the calls that complete through a callback (*_async) need sessync's `rt` \
             feature, and this build of the library was compiled without it",
        )
    }

    pub(super) fn start<T>(
        _native: bool,
        _work: Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>,
        _give_back: GiveBack<T>,
        _ticket_out: *mut u64,
        _deliver: impl FnOnce(Result<T, Failure>),
    ) -> Result<(), Fail> {
        Err(missing())
    }

    pub(super) fn unlock_later(_store: Store, _id: SessionId) -> GiveBack<u64> {
        Box::new(|_| {})
    }

    pub(super) fn abort_later() -> GiveBack<Session> {
        Box::new(|_| {})
    }

    /// Consumes the session as the runtime's version does (an unfinished session gives
    /// its lock back when dropped), then fails.
    pub(super) fn end_async(
        session: *mut sessync_session,
        callback: sessync_commit_callback,
        _userdata: *mut c_void,
        _end: impl FnOnce(Session) -> Result<Option<String>, Error>,
    ) -> Result<(), Fail> {
        let s = crate::ffi::session::take_checked(session)?;
        drop(s);
        required(callback)?;
        Err(missing())
    }

    pub(super) fn cancel(_ticket: u64) -> bool {
        false
    }

    pub(super) fn cancel_all() {}
}
