//! The tokio runtime behind the tickets (the `rt` feature): one worker thread for tasks
//! (a lock wait on the in-process store is a task, not a thread) and a pool for calls that
//! block and for running callbacks.

use std::{
    collections::HashMap,
    ffi::c_void,
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::atomic::{AtomicU64, Ordering},
    task::{Context, Poll, Waker},
    time::Duration,
};

use once_cell::sync::Lazy;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::{
    super::guard::{Fail, fail, put},
    super::{buf::sessync_buf, session::sessync_session, status::sessync_status},
    Failure, Flight, GiveBack, IN_FLIGHT, UserData, error_of, required, sessync_commit_callback,
};
use crate::{error::Error, flow::Session, store::Store};

/// The library's runtime for calls that complete later: one worker thread for tasks (a
/// lock wait on the in-process store is a task, not a thread) and a pool for calls that
/// block (other backends' locks, commits) and for running callbacks. One per process: a
/// forked child, which has none of the parent's threads, makes its own on first use.
static RUNTIME: Mutex<Option<(u32, &'static tokio::runtime::Runtime)>> = Mutex::new(None);

pub(super) fn runtime() -> Result<&'static tokio::runtime::Runtime, Fail> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock();
    if let Some((owner, rt)) = *slot {
        if owner == pid {
            return Ok(rt);
        }
        // Forked: the parent's runtime has no threads here, and its pending calls are
        // the parent's. Both are left as they are (never used, never dropped).
        std::mem::forget(std::mem::take(&mut *PENDING.lock()));
        *IN_FLIGHT.lock() = 0;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(512)
        .thread_name("sessync-async")
        .thread_keep_alive(Duration::from_secs(10))
        .enable_time()
        .build()
        .map_err(|e| {
            fail(
                sessync_status::Io,
                &format!("could not start the library's runtime thread: {e}"),
            )
        })?;
    let rt: &'static tokio::runtime::Runtime = Box::leak(Box::new(rt));
    *slot = Some((pid, rt));
    Ok(rt)
}

/// Pending tickets: a cancel removes its entry and signals the task.
static PENDING: Lazy<Mutex<HashMap<u64, oneshot::Sender<()>>>> =
    Lazy::new(|| Mutex::new(HashMap::new()));
static NEXT_TICKET: AtomicU64 = AtomicU64::new(1);

/// Starts `work` on the library's runtime and returns its ticket. `native`: the future
/// waits without blocking a thread, so it runs as a task (first polled here, so that
/// waiters queue in call order); otherwise it runs on the blocking pool. `deliver` is
/// called exactly once, on a library thread.
pub(super) fn start<T: Send + 'static>(
    native: bool,
    work: Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>,
    give_back: GiveBack<T>,
    ticket_out: *mut u64,
    deliver: impl FnOnce(Result<T, Failure>) + Send + 'static,
) -> Result<(), Fail> {
    let rt = runtime()?;
    // Counted before the ticket exists, so that a drain never misses it.
    let flight = Flight::new();
    let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = oneshot::channel::<()>();
    PENDING.lock().insert(ticket, tx);
    // Written before the work starts: the callback may come before this call returns.
    put(ticket_out, ticket);
    // The callback runs on the blocking pool, never on the runtime's one worker thread,
    // so a slow callback cannot hold up other calls' lock hand-overs and timeouts.
    let deliver = move |r: Result<T, Failure>| {
        rt.spawn_blocking(move || {
            // A panic must not unwind out of the task: the callback then hears of it.
            let _ = catch_unwind(AssertUnwindSafe(|| deliver(r)));
            drop(flight);
        });
    };
    let mut work = work;
    if native {
        // The first poll, on the caller's thread: the waiter joins the queue now.
        let _enter = rt.enter();
        let mut cx = Context::from_waker(Waker::noop());
        let first = catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(&mut cx)));
        let first = match first {
            Ok(p) => p,
            Err(_) => Poll::Ready(Err(Error::Backend("internal error (panic)".into()))),
        };
        if let Poll::Ready(r) = first {
            finish(ticket, r, give_back, deliver);
            return Ok(());
        }
        rt.spawn(async move {
            tokio::select! {
                biased;
                _ = rx => {
                    // Cancelled: dropping the future leaves the queue (and gives back
                    // a lock handed over meanwhile).
                    drop(work);
                    deliver(Err(cancelled()));
                }
                r = &mut work => finish(ticket, r, give_back, deliver),
            }
        });
    } else {
        let handle = rt.spawn_blocking(move || {
            let rt = tokio::runtime::Handle::current();
            rt.block_on(work)
        });
        rt.spawn(async move {
            let mut handle = handle;
            tokio::select! {
                biased;
                _ = rx => {
                    // The blocked call cannot be stopped: give back what it wins, and
                    // count it in flight until then, so that a drain waits for it.
                    let giving = Flight::new();
                    deliver(Err(cancelled()));
                    if let Ok(Ok(v)) = handle.await {
                        give_back(v);
                    }
                    drop(giving);
                }
                r = &mut handle => {
                    let r = r.unwrap_or_else(|_| Err(Error::Backend("internal error (panic)".into())));
                    finish(ticket, r, give_back, deliver)
                }
            }
        });
    }
    Ok(())
}

/// Delivers a result, unless a cancel took the ticket first (then it is given back).
pub(super) fn finish<T>(
    ticket: u64,
    r: Result<T, Error>,
    give_back: GiveBack<T>,
    deliver: impl FnOnce(Result<T, Failure>),
) {
    if PENDING.lock().remove(&ticket).is_none() {
        if let Ok(v) = r {
            give_back(v);
        }
        deliver(Err(cancelled()));
        return;
    }
    deliver(r.map_err(Failure::from));
}

fn cancelled() -> Failure {
    Failure {
        status: sessync_status::Cancelled,
        message: "the call was cancelled (sessync_ticket_cancel)".into(),
    }
}

/// Gives a lock back on the library's blocking pool (the unlock may be network I/O).
pub(super) fn unlock_later(store: Store, id: crate::session::SessionId) -> GiveBack<u64> {
    Box::new(move |token| {
        let Ok(rt) = runtime() else { return };
        rt.spawn_blocking(move || {
            let _ = store.unlock(&id, token);
        });
    })
}

/// Aborts a session on the library's blocking pool.
pub(super) fn abort_later() -> GiveBack<Session> {
    Box::new(|s: Session| {
        let Ok(rt) = runtime() else { return };
        rt.spawn_blocking(move || {
            let _ = s.abort();
        });
    })
}

/// Ends `session` with `end` on the library's pool and reports to `callback`.
pub(super) fn end_async(
    session: *mut sessync_session,
    callback: sessync_commit_callback,
    userdata: *mut c_void,
    end: impl FnOnce(Session) -> Result<Option<String>, Error> + Send + 'static,
) -> Result<(), Fail> {
    let s = super::super::session::take_checked(session)?;
    let cb = required(callback)?;
    let rt = runtime()?;
    let ud = UserData(userdata);
    let flight = Flight::new();
    rt.spawn_blocking(move || {
        let ud = ud;
        let _flight = flight;
        let r = catch_unwind(AssertUnwindSafe(|| end(s)))
            .unwrap_or_else(|_| Err(Error::Backend("internal error (panic)".into())));
        let _ = catch_unwind(AssertUnwindSafe(|| match r {
            Ok(cookie) => {
                let mut b = cookie
                    .map(|c| sessync_buf::from_bytes(c.as_bytes()))
                    .unwrap_or_else(sessync_buf::empty);
                cb(ud.0, sessync_status::Ok, &b, std::ptr::null());
                super::super::buf::sessync_buf_free(&mut b);
            }
            Err(e) => {
                let f = Failure::from(e);
                let err = error_of(&f);
                cb(ud.0, f.status, std::ptr::null(), &err);
            }
        }));
    });
    Ok(())
}

/// Cancels the pending call of `ticket`: true when it was still pending.
pub(super) fn cancel(ticket: u64) -> bool {
    let tx = PENDING.lock().remove(&ticket);
    let found = tx.is_some();
    if let Some(tx) = tx {
        let _ = tx.send(());
    }
    found
}

/// Cancels every pending call.
pub(super) fn cancel_all() {
    let all: Vec<_> = PENDING.lock().drain().collect();
    for (_, tx) in all {
        let _ = tx.send(());
    }
}
