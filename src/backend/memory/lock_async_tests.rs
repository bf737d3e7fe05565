//! `lock_async` of the in-process store without any async runtime: the future is driven
//! by a bare `block_on` whose waker unparks the thread, so every wake-up comes from the
//! store itself (a release, or the actor thread at the wait's deadline).

use std::{
    future::Future,
    pin::pin,
    sync::{Arc, mpsc},
    task::{Context, Poll, Wake, Waker},
    thread::{self, Thread},
    time::{Duration, Instant},
};

use crate::{Error, ManualClock, SessionData, SessionId, Store, StoreOptions, WriteOpts};

struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `f` on this thread until it is ready, parked in between.
fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

const LEASE: Duration = Duration::from_secs(30);

fn locked_session(clock: Arc<ManualClock>) -> (Store, SessionId, u64) {
    let store = Store::memory(StoreOptions::default(), clock).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    let (token, _) = store.lock(&id, LEASE, Duration::ZERO).unwrap();
    (store, id, token)
}

/// Starts an async wait on another thread; returns once it is queued.
fn wait_on_thread(
    store: &Store,
    id: SessionId,
    wait: Duration,
) -> mpsc::Receiver<crate::Result<(u64, crate::Record)>> {
    let waits = store.stats().lock_waits + 1;
    let (tx, rx) = mpsc::channel();
    let s = store.clone();
    thread::spawn(move || {
        let _ = tx.send(block_on(s.lock_async(&id, LEASE, wait)));
    });
    let until = Instant::now() + Duration::from_secs(10);
    while store.stats().lock_waits < waits {
        assert!(Instant::now() < until, "the waiter never queued");
        thread::sleep(Duration::from_millis(1));
    }
    rx
}

#[test]
fn a_release_wakes_the_waiting_future() {
    let (store, id, t1) = locked_session(ManualClock::new(1_000_000));
    let rx = wait_on_thread(&store, id, Duration::from_secs(60));
    store.unlock(&id, t1).unwrap();
    let (t2, rec) = rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert!(t2 > t1);
    assert_eq!(rec.id, id);
}

#[test]
fn the_store_ends_the_wait_at_its_deadline_on_its_clock() {
    let clock = ManualClock::new(1_000_000);
    let (store, id, t1) = locked_session(clock.clone());
    let rx = wait_on_thread(&store, id, Duration::from_secs(5));
    // The clock has not moved: no timeout, however long the real wait.
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    clock.advance(Duration::from_secs(5));
    let r = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(r.unwrap_err(), Error::LockTimeout);
    assert_eq!(store.stats().lock_timeouts, 1);
    // The timed-out waiter left the queue: the holder's release frees the lock.
    store.unlock(&id, t1).unwrap();
    let (t2, _) = store.lock(&id, LEASE, Duration::ZERO).unwrap();
    assert!(t2 > t1);
}
