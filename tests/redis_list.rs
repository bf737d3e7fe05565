//! Listing and clearing on a real redis-server and a real 3-node Cluster, with more
//! sessions than the conformance cases hold (so that SCAN takes many steps and, on the
//! Cluster, every primary), and the fast paths with sessions that have a TTL of their own.

#![cfg(feature = "redis")]

mod redis;

use std::{collections::HashSet, time::Duration};

use sessync::{Error, ManualClock, SessionData, SessionId, Store, WriteOpts};

/// Every page of the list: the ids (as a set) and how many pages it took.
fn listed(store: &Store, count: usize) -> (HashSet<SessionId>, usize) {
    let (mut all, mut cursor, mut pages) = (HashSet::new(), 0, 0);
    loop {
        let (ids, next) = store.list(cursor, count).unwrap();
        pages += 1;
        all.extend(ids);
        if next == 0 {
            return (all, pages);
        }
        assert!(pages < 100_000, "the list does not end");
        cursor = next;
    }
}

fn write_many(store: &Store, n: usize) -> Vec<SessionId> {
    (0..n)
        .map(|i| {
            let id = SessionId::generate();
            store
                .write(&id, SessionData::new(), WriteOpts::default())
                .unwrap();
            if i % 10 == 0 {
                // An owner index key: `<prefix>{o:…}` matches the pattern but is no session.
                store
                    .set_owner(&id, Some("u1"), WriteOpts::default())
                    .unwrap();
            }
            id
        })
        .collect()
}

fn lists_and_clears(url: impl Fn(&str) -> String) {
    let a = Store::open(&url("prefix=a:&max_sessions=100000")).unwrap();
    let b = Store::open(&url("prefix=b:")).unwrap();
    let mut ids_a = write_many(&a, 300);
    let ids_b = write_many(&b, 10);
    // A lock leaves a queue key and a destroy a tombstone; neither is listed.
    a.lock(&ids_a[1], Duration::from_secs(30), Duration::ZERO)
        .unwrap();
    let (got, pages) = listed(&a, 7);
    assert_eq!(got, ids_a.iter().copied().collect::<HashSet<_>>());
    assert!(pages > 1, "one page for 300 sessions at count 7");
    for id in ids_a.drain(..10) {
        assert!(a.destroy(&id).unwrap());
    }
    for id in ids_a.iter_mut().take(5) {
        *id = a.rotate(id, None).unwrap();
    }
    let (got, _) = listed(&a, 50);
    assert_eq!(got, ids_a.iter().copied().collect::<HashSet<_>>());
    assert_eq!(a.clear().unwrap(), 290);
    assert_eq!(listed(&a, 50).0, HashSet::new());
    assert_eq!(
        a.write(&ids_a[0], SessionData::new(), WriteOpts::default()),
        Err(Error::Destroyed)
    );
    assert_eq!(a.sessions_of("u1").unwrap(), Vec::<SessionId>::new());
    // The other prefix is another store.
    assert_eq!(
        listed(&b, 3).0,
        ids_b.iter().copied().collect::<HashSet<_>>()
    );
    assert_eq!(b.clear().unwrap(), 10);
    assert_eq!(a.clear().unwrap(), 0);
}

#[test]
fn standalone_redis_lists_and_clears_many_sessions() {
    let server = redis::Server::start(&[]);
    lists_and_clears(|q| server.url(q));
    lists_and_clears(|q| server.url(&format!("shared=0&script=eval&{q}")));
}

#[test]
fn a_cluster_lists_every_primary_and_refuses_a_cursor_it_never_gave() {
    let cluster = redis::Cluster::start();
    lists_and_clears(|q| cluster.url(q));
    let store = Store::open(&cluster.url("")).unwrap();
    assert!(matches!(
        store.list(16_384 << 48, 10),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn connect_redis_sessions_written_by_express_are_listed_and_cleared() {
    let server = redis::Server::start(&[]);
    let store = Store::open(&server.url("layout=connect-redis&ttl=1h")).unwrap();
    let ours = SessionId::generate();
    store
        .write_with_ttl(
            &ours,
            SessionData::from_json(r#"{"n":1}"#).unwrap(),
            WriteOpts::default(),
            Duration::from_secs(90),
        )
        .unwrap();
    // express-session reads the session's own TTL as the cookie's maxAge.
    let raw = redis::command(server.port, &["GET", &format!("sess:{ours}")]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["cookie"]["originalMaxAge"], 90_000);
    let ttl: i64 = redis::command(server.port, &["TTL", &format!("sess:{ours}")])
        .unwrap()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!((85..=90).contains(&ttl), "TTL {ttl}");
    let theirs = SessionId::generate();
    let json = r#"{"cookie":{"originalMaxAge":600000,"path":"/"},"visits":7}"#;
    assert_eq!(
        redis::command(
            server.port,
            &["SET", &format!("sess:{theirs}"), json, "EX", "600"]
        )
        .as_deref(),
        Some("+OK")
    );
    assert_eq!(listed(&store, 1).0, HashSet::from([ours, theirs]));
    assert_eq!(store.clear().unwrap(), 2);
    assert_eq!(store.fetch(&theirs).unwrap(), None);
    assert_eq!(
        redis::command(server.port, &["EXISTS", &format!("sess:{theirs}")]).as_deref(),
        Some(":0")
    );
}

#[test]
fn the_fast_paths_leave_a_session_with_its_own_ttl_to_the_code() {
    let server = redis::Server::start(&[]);
    let clock = ManualClock::new(1_700_000_000_000);
    let t0 = 1_700_000_000_000;
    let store = Store::open_with_clock(
        &server.url("ttl=60s&absolute_ttl=1h&touch_fraction=0.5"),
        clock.clone(),
    )
    .unwrap();
    let id = SessionId::generate();
    store
        .write_with_ttl(
            &id,
            SessionData::from_json(r#"{"n":1}"#).unwrap(),
            WriteOpts::default(),
            Duration::from_secs(10),
        )
        .unwrap();
    // Half the session's TTL passed (not half the store's): the fetch touches it.
    clock.advance(Duration::from_secs(6));
    let (rec, touched) = store.fetch_touch(&id).unwrap();
    let rec = rec.unwrap();
    assert!(touched);
    assert_eq!(rec.ttl_ms, Some(10_000));
    assert_eq!(rec.expires_at, t0 + 16_000);
    // The increment's path would extend by the store's 60 s.
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.incr(&id, "n", 1, WriteOpts::default()).unwrap(), 2);
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!(rec.expires_at, t0 + 17_000);
    assert_eq!(rec.last_access, t0 + 7_000);
    // Without a touch, the live fetch still reads the record (and its TTL).
    let (rec, touched) = store.fetch_touch(&id).unwrap();
    assert!(!touched);
    assert_eq!(rec.unwrap().ttl_ms, Some(10_000));
    clock.advance(Duration::from_millis(10_001));
    assert_eq!(store.fetch(&id).unwrap(), None);
}
