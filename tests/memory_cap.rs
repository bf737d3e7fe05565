//! `max_memory`: the in-process store's cap on what its sessions take, with `evict=none`
//! (a new or growing session is refused, changing nothing) and `evict=lru` (the least
//! recently used session makes room; the one being written never evicts itself).

use sessync::{Error, SessionData, SessionId, Store, WriteOpts};

/// A session of about `n` bytes of JSON.
fn data(n: usize) -> SessionData {
    SessionData::from_json(&format!(r#"{{"pad":"{}"}}"#, "x".repeat(n))).unwrap()
}

#[test]
fn at_the_cap_a_new_or_growing_session_is_refused_and_nothing_changes() {
    let s = Store::open("mem://?max_memory=64kb&max_sessions=0").unwrap();
    let mut ids = Vec::new();
    let refused = loop {
        let id = SessionId::generate();
        match s.write(&id, data(1000), WriteOpts::create()) {
            Ok(_) => ids.push(id),
            Err(e) => break (id, e),
        }
        assert!(ids.len() < 1000, "the cap never refused");
    };
    assert_eq!(refused.1, Error::Full);
    assert_eq!(s.fetch(&refused.0).unwrap(), None);
    let st = s.stats();
    assert!(st.memory <= 64 * 1024, "{} > cap", st.memory);
    // 1,000 bytes of text plus the overhead each: about 50 fit in 64 KiB.
    assert!((40..=60).contains(&ids.len()), "{} sessions fit", ids.len());

    // Growing one past the cap is refused; the session keeps its data and version.
    let before = s.fetch(&ids[0]).unwrap().unwrap();
    assert_eq!(
        s.write(&ids[0], data(20_000), WriteOpts::default()),
        Err(Error::Full)
    );
    let after = s.fetch(&ids[0]).unwrap().unwrap();
    assert_eq!((after.version, after.data), (before.version, before.data));

    // Shrinking always goes through, and destroying gives the room back.
    s.write(&ids[0], data(10), WriteOpts::default()).unwrap();
    assert!(s.stats().memory < st.memory);
    s.clear().unwrap();
    assert_eq!(s.stats().memory, 0);
}

#[test]
fn with_lru_the_oldest_sessions_make_room() {
    let s = Store::open("mem://?max_memory=64kb&max_sessions=0&evict=lru").unwrap();
    let ids: Vec<SessionId> = (0..500).map(|_| SessionId::generate()).collect();
    for id in &ids {
        s.write(id, data(1000), WriteOpts::create()).unwrap();
        assert!(s.stats().memory <= 64 * 1024);
    }
    let st = s.stats();
    assert!(st.evictions >= 440, "{} evictions", st.evictions);
    // The newest are there, the oldest gone.
    assert!(s.fetch(&ids[499]).unwrap().is_some());
    assert!(s.fetch(&ids[0]).unwrap().is_none());
    // A session growing to most of the cap evicts others, never itself.
    let last = ids[499];
    s.write(&last, data(50_000), WriteOpts::default()).unwrap();
    assert_eq!(s.fetch(&last).unwrap().unwrap().version, 2);
    assert!(s.stats().memory <= 64 * 1024);
}

#[test]
fn a_bad_size_is_an_error_that_names_the_option() {
    for bad in ["12xb", "-1", "gb", "99999999999999999999gb"] {
        let e = Store::open(&format!("mem://?max_memory={bad}")).unwrap_err();
        assert!(e.to_string().contains("max_memory"), "{bad}: {e}");
    }
    for good in ["0", "1024", "512kb", "64MiB", "2g"] {
        Store::open(&format!("mem://?max_memory={good}")).unwrap();
    }
    // LRU eviction needs a cap of either kind.
    assert!(Store::open("mem://?max_sessions=0&evict=lru").is_err());
    Store::open("mem://?max_sessions=0&max_memory=1mb&evict=lru").unwrap();
}

#[test]
fn timers_of_sessions_that_are_gone_do_not_pile_up() {
    // 20,000 sessions through a store that holds 100 (the rest evicted): each evicted
    // session leaves its expiry timer, due in 30 minutes. They are dropped as they pile
    // up, not kept until then.
    let s = Store::open("mem://?shards=1&max_sessions=100&evict=lru&ttl=30m").unwrap();
    for _ in 0..20_000 {
        s.write(&SessionId::generate(), data(10), WriteOpts::create())
            .unwrap();
    }
    let st = s.stats();
    assert_eq!(st.sessions, 100);
    assert!(st.timers <= 2 * 1024 + 200, "{} timers queued", st.timers);
}

#[test]
fn a_session_that_could_never_fit_is_refused_without_evicting_anything() {
    let s =
        Store::open("mem://?max_memory=64kb&max_sessions=0&evict=lru&max_session_bytes=1048576")
            .unwrap();
    let ids: Vec<SessionId> = (0..20).map(|_| SessionId::generate()).collect();
    for id in &ids {
        s.write(id, data(1000), WriteOpts::create()).unwrap();
    }
    let e = s
        .write(&SessionId::generate(), data(100_000), WriteOpts::create())
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
    let e = s
        .write(&ids[0], data(100_000), WriteOpts::default())
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
    assert_eq!(s.stats().sessions, 20);
    assert_eq!(s.stats().evictions, 0);
}
