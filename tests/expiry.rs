//! Background expiry: the actor removes what expires, with no access needed.

use std::{thread, time::Duration};

use sessync::{ManualClock, SessionData, SessionId, Store, WriteOpts};

fn wait_for(store: &Store, pred: impl Fn(&sessync::Stats) -> bool) -> sessync::Stats {
    loop {
        let st = store.stats();
        if pred(&st) {
            return st;
        }
        thread::yield_now();
    }
}

#[test]
fn expired_sessions_tombstones_and_aliases_are_swept_in_the_background() {
    let clock = ManualClock::new(1_000_000);
    let store = Store::open_with_clock(
        "mem://?ttl=60s&tombstone_ttl=30s&rotate_grace=5s",
        clock.clone(),
    )
    .unwrap();
    let mut ids = Vec::new();
    for i in 0..100 {
        let id = SessionId::generate();
        store
            .write(&id, SessionData::new(), WriteOpts::default())
            .unwrap();
        if i % 10 == 0 {
            store
                .set_owner(&id, Some("u"), WriteOpts::default())
                .unwrap();
        }
        ids.push(id);
    }
    store.destroy(&ids[1]).unwrap();
    let rotated = store.rotate(&ids[2], None).unwrap();
    let st = store.stats();
    assert_eq!((st.sessions, st.tombstones, st.aliases), (99, 2, 1));

    // Half-way, keep one session alive.
    clock.advance(Duration::from_secs(40));
    store.touch(&ids[3]).unwrap();
    clock.advance(Duration::from_secs(22));
    let st = wait_for(&store, |s| s.sessions == 1);
    assert_eq!(st.expirations, 98);
    assert_eq!(st.tombstones, 0, "tombstones outlived by 62 s are gone");
    assert_eq!(st.aliases, 0);
    assert!(store.fetch(&ids[3]).unwrap().is_some());
    assert!(store.fetch(&rotated).unwrap().is_none());
    // The owner index lost the expired sessions with them.
    assert_eq!(store.sessions_of("u").unwrap(), Vec::<SessionId>::new());

    clock.advance(Duration::from_secs(61));
    let st = wait_for(&store, |s| s.sessions == 0);
    assert_eq!(st.expirations, 99);
}

#[test]
fn a_lease_ends_in_the_background_and_hands_the_lock_to_the_waiter() {
    let clock = ManualClock::new(1_000_000);
    let store = Store::open_with_clock("mem://", clock.clone()).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    let (t1, _) = store
        .lock(&id, Duration::from_secs(5), Duration::ZERO)
        .unwrap();
    let s2 = store.clone();
    let waiter =
        thread::spawn(move || s2.lock(&id, Duration::from_secs(5), Duration::from_secs(60)));
    wait_for(&store, |s| s.lock_waits == 1);
    clock.advance(Duration::from_secs(5));
    let (t2, _) = waiter.join().unwrap().unwrap();
    assert!(t2 > t1);
    assert_eq!(store.unlock(&id, t1), Err(sessync::Error::StaleToken));
    store.unlock(&id, t2).unwrap();
}

#[test]
fn a_busy_session_keeps_at_most_one_expiry_and_one_lease_timer() {
    // Work per sweep follows what is due, not what happened: extending a session or
    // re-taking its lock does not queue another timer.
    let clock = ManualClock::new(1_000_000);
    let store = Store::open_with_clock("mem://?ttl=60s&touch_fraction=0", clock.clone()).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    for i in 0..10_000u64 {
        if i % 100 == 0 {
            clock.advance(Duration::from_millis(10));
        }
        let (t, _) = store
            .lock(&id, Duration::from_secs(30), Duration::ZERO)
            .unwrap();
        store.incr(&id, "n", 1, WriteOpts::token(t)).unwrap();
        store.touch(&id).unwrap();
        store.unlock(&id, t).unwrap();
    }
    let st = store.stats();
    assert_eq!(st.sessions, 1);
    assert!(
        st.timers <= 2,
        "{} timers queued for one session",
        st.timers
    );
}
