//! Lock queues on a real redis-server: waiters from different clients are served in
//! arrival order, woken through Redis (no polling with sleeps), and a waiter that died
//! is skipped.

#![cfg(feature = "redis")]

mod redis;
mod worker;

use std::{
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use sessync::{SessionData, SessionId, Store, WriteOpts};

fn queued(port: u16, id: &SessionId) -> usize {
    redis::command(port, &["LLEN", &format!("sessync:{{{id}}}:q")])
        .and_then(|r| r.trim_start_matches(':').parse().ok())
        .unwrap_or(0)
}

#[test]
fn lock_waiters_on_redis_are_served_in_arrival_order() {
    let server = redis::Server::start(&[]);
    let store = Store::open(&server.url("")).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    let (first, _) = store
        .lock(&id, Duration::from_secs(30), Duration::ZERO)
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..4 {
        // Each waiter its own Store: its own connections, as another process would have.
        let s = Store::open(&server.url("")).unwrap();
        let order = order.clone();
        waiters.push(thread::spawn(move || {
            let (t, _) = s
                .lock(&id, Duration::from_secs(30), Duration::from_secs(60))
                .unwrap();
            order.lock().unwrap().push(i);
            s.unlock(&id, t).unwrap();
            t
        }));
        redis::wait_until("the waiter to queue", || queued(server.port, &id) == i + 1);
    }
    store.unlock(&id, first).unwrap();
    let tokens: Vec<u64> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    assert!(tokens[0] > first);
    assert_eq!(queued(server.port, &id), 0, "the queue is empty again");
}

#[test]
fn a_waiter_that_died_in_the_queue_is_skipped() {
    // Built first: a build after the lock below could outlast its lease.
    let exe = worker::remote_counter();
    let server = redis::Server::start(&[]);
    let url = server.url("");
    let store = Store::open(&url).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    let (first, _) = store
        .lock(&id, Duration::from_secs(30), Duration::ZERO)
        .unwrap();
    // A worker process queues for the lock, then dies with SIGKILL while it waits.
    let mut dead = Command::new(exe)
        .args([url.as_str(), id.as_str(), "hold"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    redis::wait_until("the worker to queue", || queued(server.port, &id) == 1);
    dead.kill().unwrap();
    dead.wait().unwrap();
    let s = store.clone();
    let next = thread::spawn(move || s.lock(&id, Duration::from_secs(30), Duration::from_secs(60)));
    redis::wait_until("the second waiter to queue", || {
        queued(server.port, &id) == 2
    });
    store.unlock(&id, first).unwrap();
    // The dead waiter's place lapses (it no longer checks in) and the live one is served.
    let (token, _) = next.join().unwrap().unwrap();
    assert!(token > first);
    store.unlock(&id, token).unwrap();
}
