//! Concurrent requests of one visitor never lose each other's writes.

use std::{
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use sessync::{
    Error, FlowOptions, ManualClock, SessionData, SessionId, Sessions, Store, WriteOpts,
};

fn one_session(f: &Sessions, json: &str) -> (SessionId, String) {
    let id = SessionId::generate();
    f.store()
        .write(
            &id,
            SessionData::from_json(json).unwrap(),
            WriteOpts::default(),
        )
        .unwrap();
    (id, format!("sync_sess={id}"))
}

/// Spins (yielding) until the store has seen `n` lock waits: the test's way to know that
/// the waiters are queued, in the order it started them. Decides no result by time.
fn until_lock_waits(store: &Store, n: u64) {
    while store.stats().lock_waits < n {
        thread::yield_now();
    }
}

#[test]
fn eight_threads_times_ten_thousand_locked_read_modify_writes_count_exactly() {
    let f = Sessions::new(Store::open("mem://").unwrap(), FlowOptions::default()).unwrap();
    let (id, header) = one_session(&f, r#"{"n":0}"#);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (f, header) = (f.clone(), header.clone());
            thread::spawn(move || {
                for _ in 0..10_000 {
                    let mut s = f.begin(Some(&header), true).unwrap();
                    // A read-modify-write: only the lock makes it safe.
                    let n: i64 = s.get_as("n").unwrap().unwrap();
                    s.set("n", &(n + 1)).unwrap();
                    s.commit().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rec = f.store().fetch(&id).unwrap().unwrap();
    assert_eq!(rec.data.get("n").unwrap().as_i64(), Some(80_000));
    assert_eq!(rec.version, 80_001);
}

#[test]
fn unlocked_requests_changing_different_keys_keep_every_key() {
    let f = Sessions::new(Store::open("mem://").unwrap(), FlowOptions::default()).unwrap();
    let (id, header) = one_session(&f, "{}");
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (f, header) = (f.clone(), header.clone());
            thread::spawn(move || {
                for i in 0..2_000 {
                    let mut s = f.begin(Some(&header), false).unwrap();
                    s.set(&format!("key{t}"), &i).unwrap();
                    s.incr("hits", 1).unwrap();
                    s.commit().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let rec = f.store().fetch(&id).unwrap().unwrap();
    for t in 0..8 {
        assert_eq!(
            rec.data.get(&format!("key{t}")).unwrap().as_i64(),
            Some(1_999)
        );
    }
    assert_eq!(rec.data.get("hits").unwrap().as_i64(), Some(16_000));
}

#[test]
fn an_abandoned_lock_is_recovered_after_its_lease_and_its_holder_is_refused() {
    let clock = ManualClock::new(1_000_000);
    let store = Store::open_with_clock("mem://", clock.clone()).unwrap();
    let f = Sessions::new(
        store.clone(),
        FlowOptions {
            lock_lease: Duration::from_secs(5),
            lock_wait: Duration::from_secs(60),
            ..Default::default()
        },
    )
    .unwrap();
    let (id, header) = one_session(&f, r#"{"owner":"nobody"}"#);

    // The holder takes the lock and then never releases it (a stuck or dead worker).
    let mut abandoned = f.begin(Some(&header), true).unwrap();
    abandoned.set("owner", &"abandoned").unwrap();

    let (f2, h2) = (f.clone(), header.clone());
    let next = thread::spawn(move || {
        let mut s = f2.begin(Some(&h2), true).unwrap();
        s.set("owner", &"next").unwrap();
        s.commit().unwrap();
    });
    until_lock_waits(&store, 1);
    // Nothing moves until the lease has run out on the store's clock.
    clock.advance(Duration::from_secs(6));
    next.join().unwrap();

    assert_eq!(abandoned.commit().unwrap_err(), Error::StaleToken);
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!(rec.data.get("owner").unwrap().as_str(), "\"next\"");
}

#[test]
fn a_lock_wait_times_out_on_the_store_clock() {
    let clock = ManualClock::new(1_000_000);
    let store = Store::open_with_clock("mem://", clock.clone()).unwrap();
    let f = Sessions::new(
        store.clone(),
        FlowOptions {
            lock_lease: Duration::from_secs(30),
            lock_wait: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .unwrap();
    let (_, header) = one_session(&f, "{}");
    let holder = f.begin(Some(&header), true).unwrap();
    let (f2, h2) = (f.clone(), header.clone());
    let waiter = thread::spawn(move || f2.begin(Some(&h2), true).map(|_| ()));
    until_lock_waits(&store, 1);
    clock.advance(Duration::from_secs(3));
    assert_eq!(waiter.join().unwrap().unwrap_err(), Error::LockTimeout);
    assert_eq!(store.stats().lock_timeouts, 1);
    holder.commit().unwrap();
}

#[test]
fn lock_waiters_are_served_in_arrival_order() {
    let store = Store::open("mem://").unwrap();
    let f = Sessions::new(store.clone(), FlowOptions::default()).unwrap();
    let (_, header) = one_session(&f, "{}");
    let holder = f.begin(Some(&header), true).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for i in 0..6u64 {
        let (f, header, order) = (f.clone(), header.clone(), order.clone());
        threads.push(thread::spawn(move || {
            let s = f.begin(Some(&header), true).unwrap();
            order.lock().unwrap().push(i);
            s.commit().unwrap();
        }));
        // Start the next one only once this one is queued.
        until_lock_waits(&store, i + 1);
    }
    holder.commit().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn tokenless_commits_wait_for_the_lock_holder_instead_of_failing() {
    let store = Store::open("mem://").unwrap();
    let f = Sessions::new(store.clone(), FlowOptions::default()).unwrap();
    let (id, header) = one_session(&f, r#"{"n":0}"#);
    let mut holder = f.begin(Some(&header), true).unwrap();
    let n: i64 = holder.get_as("n").unwrap().unwrap();
    let (f2, h2) = (f.clone(), header.clone());
    let unlocked = thread::spawn(move || {
        let mut s = f2.begin(Some(&h2), false).unwrap();
        s.incr("n", 10).unwrap();
        s.commit().unwrap();
    });
    until_lock_waits(&store, 1);
    holder.set("n", &(n + 1)).unwrap();
    holder.commit().unwrap();
    unlocked.join().unwrap();
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!(rec.data.get("n").unwrap().as_i64(), Some(11));
}
