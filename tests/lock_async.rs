//! Lock waits for async servers: woken in order without a blocked thread, and a waiter
//! whose future is dropped (its client went away) leaves the queue.

use std::time::Duration;

use sessync::{Error, SessionData, SessionId, Store, WriteOpts};

fn store_with_session() -> (Store, SessionId) {
    let store = Store::open("mem://").unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    (store, id)
}

async fn until_lock_waits(store: &Store, n: u64) {
    while store.stats().lock_waits < n {
        tokio::task::yield_now().await;
    }
}

const LEASE: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_async_waiter_gets_the_lock_when_it_is_released() {
    let (store, id) = store_with_session();
    let (t1, _) = store.lock(&id, LEASE, Duration::ZERO).unwrap();
    let s2 = store.clone();
    let waiter = tokio::spawn(async move { s2.lock_async(&id, LEASE, WAIT).await });
    until_lock_waits(&store, 1).await;
    store.unlock(&id, t1).unwrap();
    let (t2, rec) = waiter.await.unwrap().unwrap();
    assert!(t2 > t1);
    assert_eq!(rec.id, id);
    store.unlock(&id, t2).unwrap();
}

#[tokio::test]
async fn a_dropped_waiter_leaves_the_queue() {
    let (store, id) = store_with_session();
    let (t1, _) = store.lock(&id, LEASE, Duration::ZERO).unwrap();
    let s2 = store.clone();
    let gone = tokio::spawn(async move { s2.lock_async(&id, LEASE, WAIT).await });
    until_lock_waits(&store, 1).await;
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    store.unlock(&id, t1).unwrap();
    // Nobody is queued: the lock is free at once.
    let (t2, _) = store.lock(&id, LEASE, Duration::ZERO).unwrap();
    store.unlock(&id, t2).unwrap();
}

#[tokio::test]
async fn a_lock_granted_to_a_waiter_that_went_away_is_given_back() {
    let (store, id) = store_with_session();
    let (t1, _) = store.lock(&id, LEASE, Duration::ZERO).unwrap();
    let s2 = store.clone();
    let gone = tokio::spawn(async move { s2.lock_async(&id, LEASE, WAIT).await });
    until_lock_waits(&store, 1).await;
    // On this single-threaded runtime the waiter cannot run between these two lines: the
    // unlock grants it the lock, then it is cancelled before it sees the grant.
    store.unlock(&id, t1).unwrap();
    gone.abort();
    assert!(gone.await.unwrap_err().is_cancelled());
    let (t3, _) = store.lock(&id, LEASE, Duration::ZERO).unwrap();
    assert!(
        t3 > t1 + 1,
        "the waiter's token was issued, then given back"
    );
    store.unlock(&id, t3).unwrap();
}

#[tokio::test]
async fn an_async_wait_ends_with_a_timeout_when_nobody_unlocks() {
    let (store, id) = store_with_session();
    let (_t1, _) = store.lock(&id, LEASE, Duration::ZERO).unwrap();
    let r = store
        .lock_async(&id, LEASE, Duration::from_millis(50))
        .await;
    assert_eq!(r.unwrap_err(), Error::LockTimeout);
    assert_eq!(store.stats().lock_timeouts, 1);
}
