//! Increments and fetches on a real redis-server: the Redis backend has a path of its own
//! for the common increment (see `fast_incr` in `store.lua`) and for the fetch of a live
//! record (one `HGETALL`, no script: see `fetch_live`), and falls back to the general
//! code for everything else. Here: what each costs (one call, one command), and the
//! edges, against the in-process store where they must agree (the size limit, the
//! absolute end) and on their own where Redis differs by design (±2^53). The seeded
//! sequences of every operation on every store are `tests/differential.rs`.

#![cfg(feature = "redis")]

mod redis;

use std::time::Duration;

use sessync::{Error, ManualClock, PatchOp, SessionData, SessionId, Store, WriteOpts};

const OPTIONS: &str = "ttl=60s&absolute_ttl=5m&max_session_bytes=120";

/// The data as JSON with its keys in order (Redis keeps a hash's fields in its own order).
fn canon(d: &SessionData) -> String {
    let v: serde_json::Value = serde_json::from_str(d.to_json()).unwrap();
    v.to_string()
}

/// The error's kind, or the value: what must agree.
fn outcome<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("error {}", e.kind()),
    }
}

/// A store on `server` (ttl=30m) on a manual clock, holding one session with `data`.
fn one_session(
    server: &redis::Server,
    data: &SessionData,
) -> (Store, std::sync::Arc<ManualClock>, SessionId) {
    let clock = ManualClock::new(1_700_000_000_000);
    let store = Store::open_with_clock(&server.url("ttl=30m"), clock.clone()).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, data.clone(), WriteOpts::default())
        .unwrap();
    (store, clock, id)
}

#[test]
fn an_increment_of_a_live_session_is_one_call() {
    let server = redis::Server::start(&[]);
    let data = SessionData::from_json(r#"{"views":0,"flash":"hello"}"#).unwrap();
    let (store, clock, id) = one_session(&server, &data);
    for n in 1..=20 {
        let before = store.stats().operations;
        assert_eq!(
            store.incr(&id, "views", 1, WriteOpts::default()).unwrap(),
            n
        );
        assert_eq!(store.stats().operations - before, 1, "increment {n}");
        clock.advance(Duration::from_secs(61));
    }
    // Redis's own expiry follows the session: idle TTL plus the slack the code keeps.
    let key = format!("sessync:{{{id}}}");
    let pttl: u64 = redis::command(server.port, &["PTTL", &key])
        .unwrap()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!(pttl > 30 * 60_000, "PTTL {pttl}");
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!(
        rec.data.to_json().to_string(),
        r#"{"flash":"hello","views":20}"#
    );
    assert_eq!(rec.version, 21);
}

/// How many calls of `command` the server has counted since its last `CONFIG RESETSTAT`.
fn calls(port: u16, command: &str) -> u64 {
    let stats = redis::command(port, &["INFO", "commandstats"]).unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
}

#[test]
fn a_fetch_of_a_live_session_is_one_command_and_runs_no_script() {
    let server = redis::Server::start(&[]);
    let data = SessionData::from_json(r#"{"views":3,"user":{"id":7}}"#).unwrap();
    let (store, clock, id) = one_session(&server, &data);
    redis::command(server.port, &["CONFIG", "RESETSTAT"]).unwrap();
    for _ in 0..10 {
        let rec = store.fetch(&id).unwrap().unwrap();
        assert_eq!(*rec.data, data);
        assert_eq!(rec.version, 1);
        // Not yet due for a touch: the same single command.
        let (rec, touched) = store.fetch_touch(&id).unwrap();
        assert!(rec.is_some() && !touched);
    }
    assert_eq!(calls(server.port, "hgetall"), 20);
    assert_eq!(calls(server.port, "fcall"), 0);
    // Due for a touch: the store's code records it.
    clock.advance(Duration::from_secs(20 * 60));
    let (rec, touched) = store.fetch_touch(&id).unwrap();
    assert!(touched);
    assert_eq!(rec.unwrap().last_access, 1_700_000_000_000 + 20 * 60_000);
    assert_eq!(calls(server.port, "fcall"), 1);
    // Gone: the store's code says so (an alias or a tombstone would be found there).
    clock.advance(Duration::from_secs(31 * 60));
    assert!(store.fetch(&id).unwrap().is_none());
    assert_eq!(calls(server.port, "fcall"), 2);
}

/// Both stores, on clocks that move together.
fn pair(
    redis_url: &str,
) -> (
    Store,
    Store,
    std::sync::Arc<ManualClock>,
    std::sync::Arc<ManualClock>,
) {
    let start = 1_700_000_000_000;
    let (mc, rc) = (ManualClock::new(start), ManualClock::new(start));
    let mem = Store::open_with_clock(&format!("mem://?{OPTIONS}"), mc.clone()).unwrap();
    let red = Store::open_with_clock(redis_url, rc.clone()).unwrap();
    (mem, red, mc, rc)
}

#[test]
fn the_size_limit_counts_what_increments_added() {
    let server = redis::Server::start(&[]);
    let (mem, red, _, _) = pair(&server.url(OPTIONS));
    let id = SessionId::generate();
    let data = SessionData::from_json(r#"{"a":"xxxxxxxxxx"}"#).unwrap();
    mem.write(&id, data.clone(), WriteOpts::default()).unwrap();
    red.write(&id, data, WriteOpts::default()).unwrap();
    // New keys, and values that gain digits (9 → 10 → 109 …), until the limit refuses.
    let mut refused = false;
    for i in 0..200 {
        let key = format!("k{}", i % 12);
        let by = [9, 1, 90, 900, -20, 7][i % 6];
        let (a, b) = (
            outcome(mem.incr(&id, &key, by, WriteOpts::default())),
            outcome(red.incr(&id, &key, by, WriteOpts::default())),
        );
        assert_eq!(a, b, "increment {i} of {key} by {by}");
        refused |= a.contains("too_large");
    }
    assert!(refused, "the sequence reached the size limit");
    let f = |s: &Store| s.fetch(&id).unwrap().map(|r| (canon(&r.data), r.version));
    assert_eq!(f(&mem), f(&red));
}

#[test]
fn increments_keep_the_absolute_end() {
    let server = redis::Server::start(&[]);
    let (mem, red, mc, rc) = pair(&server.url(OPTIONS));
    let id = SessionId::generate();
    for s in [&mem, &red] {
        s.write(
            &id,
            SessionData::from_json("{}").unwrap(),
            WriteOpts::default(),
        )
        .unwrap();
    }
    // Every 50 s, inside the idle TTL of 60 s, up to and past the absolute TTL of 5 min.
    for i in 1..=8 {
        mc.advance(Duration::from_secs(50));
        rc.advance(Duration::from_secs(50));
        let (a, b) = (
            outcome(mem.incr(&id, "n", 1, WriteOpts::default())),
            outcome(red.incr(&id, "n", 1, WriteOpts::default())),
        );
        assert_eq!(a, b, "increment {i}, at {} s", i * 50);
    }
    assert!(mem.fetch(&id).unwrap().is_none());
    assert!(red.fetch(&id).unwrap().is_none());
}

#[test]
fn increments_beyond_the_exact_range_are_refused_and_change_nothing() {
    let server = redis::Server::start(&[]);
    let store = Store::open(&server.url("ttl=30m")).unwrap();
    let id = SessionId::generate();
    // 2^53 + 1 and a 16-digit value under 2^53: Lua numbers would round the first.
    let json = r#"{"big":9007199254740993,"edge":9007199254740990,"ok":999999999999999}"#;
    store
        .write(
            &id,
            SessionData::from_json(json).unwrap(),
            WriteOpts::default(),
        )
        .unwrap();
    let err = store.incr(&id, "big", 2, WriteOpts::default()).unwrap_err();
    assert_eq!(err.kind(), "not_a_number", "{err}");
    let err = store
        .incr(&id, "edge", 10, WriteOpts::default())
        .unwrap_err();
    assert_eq!(err.kind(), "not_a_number", "{err}");
    // 2^53 + 1 reads as 2^53 in a script: one down would be 2^53 - 1, which is wrong.
    let err = store
        .incr(&id, "big", -1, WriteOpts::default())
        .unwrap_err();
    assert_eq!(err.kind(), "not_a_number", "{err}");
    // -1 - 2^53 rounds to -2^53, inside the range: the sum itself must be exact.
    let err = store
        .apply(
            &id,
            vec![
                PatchOp::Incr("neg".into(), -1),
                PatchOp::Incr("neg".into(), -(1 << 53)),
            ],
            WriteOpts::default(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), "not_a_number", "{err}");
    assert_eq!(
        store.incr(&id, "edge", 2, WriteOpts::default()).unwrap(),
        9_007_199_254_740_992
    );
    assert_eq!(
        store.incr(&id, "ok", 1, WriteOpts::default()).unwrap(),
        1_000_000_000_000_000
    );
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!(
        canon(&rec.data),
        r#"{"big":9007199254740993,"edge":9007199254740992,"ok":1000000000000000}"#
    );
    assert_eq!(rec.version, 3);
}

#[test]
fn a_record_missing_a_field_is_left_to_the_general_path() {
    let server = redis::Server::start(&[]);
    let store = Store::open(&server.url("ttl=30m")).unwrap();
    let id = SessionId::generate();
    let data = SessionData::from_json(r#"{"n":1}"#).unwrap();
    store.write(&id, data, WriteOpts::default()).unwrap();
    // Written by some other version of the code, say: Redis's expiry not recorded.
    let key = format!("sessync:{{{id}}}");
    redis::command(server.port, &["HDEL", &key, "px"]).unwrap();
    assert_eq!(store.incr(&id, "n", 1, WriteOpts::default()).unwrap(), 2);
    assert_eq!(store.incr(&id, "n", 1, WriteOpts::default()).unwrap(), 3);
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!(canon(&rec.data), r#"{"n":3}"#);
    assert_eq!(rec.version, 3);
}
