//! `Store::list` on `mem://` while other threads create and destroy sessions: every
//! session alive for the whole scan is listed, and exactly once (the in-process store's
//! order does not depend on its maps' layout, which changes as they grow).

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use sessync::{SessionData, SessionId, Store, WriteOpts};

fn scan_under_churn(url: &str) {
    let store = Store::open(url).unwrap();
    let stable: Vec<SessionId> = (0..2_000)
        .map(|_| {
            let id = SessionId::generate();
            store
                .write(&id, SessionData::new(), WriteOpts::default())
                .unwrap();
            id
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut made = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    let id = SessionId::generate();
                    store
                        .write(&id, SessionData::new(), WriteOpts::default())
                        .unwrap();
                    made.push(id);
                }
                // At most 500 of them live at once: churn, not growth.
                if made.len() > 500 {
                    for id in made.drain(..50) {
                        store.destroy(&id).unwrap();
                    }
                }
            }
        })
    };
    let mut seen = HashSet::new();
    let mut cursor = 0;
    loop {
        let (ids, next) = store.list(cursor, 13).unwrap();
        for id in ids {
            assert!(seen.insert(id), "{id} listed twice");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    let missing = stable.iter().filter(|id| !seen.contains(id)).count();
    assert_eq!(missing, 0, "{missing} stable sessions not listed");
}

#[test]
fn every_session_alive_for_the_whole_scan_is_listed_once() {
    for url in ["mem://", "mem://?shards=1", "mem://?shards=4096"] {
        scan_under_churn(url);
    }
}

#[test]
fn bad_counts_are_refused() {
    let store = Store::open("mem://").unwrap();
    assert!(matches!(
        store.list(0, 0),
        Err(sessync::Error::InvalidArgument(_))
    ));
    // Any cursor is a place in the order: one never given just starts there.
    assert_eq!(store.list(u64::MAX, 10).unwrap(), (Vec::new(), 0));
}
