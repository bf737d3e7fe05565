//! Crash tests of sessyncd's persistence: a steady write load, SIGKILL at a point chosen
//! by the number of acknowledged writes (not by a timer), a restart on the same
//! directory, then a check of every acknowledged write.
//!
//! With `--appendfsync always`, every acknowledged write is there after each of 20
//! crashes, nothing unacknowledged appears beyond the one write each client had in
//! flight, and a lock taken after the restart gets a larger fencing token than any taken
//! before it. With `everysec`, the writes lost at each crash are counted and printed
//! (`cargo test --release --test crash -- --nocapture`): docs/benchmarks.md records them.

#![cfg(feature = "daemon")]

mod daemon;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use sessync::{Error, SessionData, SessionId, Store, WriteOpts};

const WRITERS: usize = 4;
const SESSIONS_PER_WRITER: usize = 3;

/// What one writer had acknowledged when the daemon died.
struct Acked {
    counters: HashMap<SessionId, i64>,
    last_token: u64,
}

/// Runs the load until the daemon stops answering; returns what each writer saw
/// acknowledged. `acks` counts acknowledged writes for the killer.
fn load(
    url: &str,
    ids: &[Vec<SessionId>],
    lock_id: SessionId,
    acks: &Arc<AtomicU64>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Acked>> {
    let mut handles = Vec::new();
    for (w, mine) in ids.iter().enumerate() {
        let store = Store::open(url).expect("client opens");
        let mine = mine.clone();
        let acks = acks.clone();
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let mut acked = Acked {
                counters: HashMap::new(),
                last_token: 0,
            };
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                // One writer of the four also takes the shared lock now and then, so
                // that fencing tokens are issued while the daemon dies.
                if w == 0 && i % 5 == 0 {
                    match store.lock(&lock_id, Duration::from_millis(50), Duration::ZERO) {
                        Ok((t, _)) => {
                            acked.last_token = t;
                            if store.unlock(&lock_id, t).is_err() {
                                break;
                            }
                        }
                        Err(Error::LockTimeout) => {}
                        Err(_) => break,
                    }
                }
                let id = mine[i % mine.len()];
                i += 1;
                match store.incr(&id, "n", 1, WriteOpts::default()) {
                    Ok(v) => {
                        acked.counters.insert(id, v);
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    handles
}

/// Runs `cycles` crash cycles with `policy`; returns the acknowledged writes lost at
/// each crash (a counter lower than its last acknowledged value).
fn crash_cycles(policy: &str, cycles: usize) -> Vec<i64> {
    let data = daemon::TempDir::new("crash-data");
    let dir = data.0.join("store");
    let dir_s = dir.display().to_string();
    let mut d = daemon::start(&["--dir", &dir_s, "--appendfsync", policy]);
    let setup = Store::open(&d.url_unix()).unwrap();
    let ids: Vec<Vec<SessionId>> = (0..WRITERS)
        .map(|_| {
            (0..SESSIONS_PER_WRITER)
                .map(|_| SessionId::generate())
                .collect()
        })
        .collect();
    let lock_id = SessionId::generate();
    for id in ids.iter().flatten().chain([&lock_id]) {
        setup
            .write(id, SessionData::new(), WriteOpts::create())
            .unwrap();
    }
    drop(setup);
    let mut expected: HashMap<SessionId, i64> = HashMap::new();
    let mut max_token = 0u64;
    let mut losses = Vec::new();
    // A deterministic spread of kill points: after 40 to 400 acknowledged writes.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for cycle in 0..cycles {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let kill_after = 40 + x % 360;
        let acks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handles = load(&d.url_unix(), &ids, lock_id, &acks, &stop);
        while acks.load(Ordering::Relaxed) < kill_after {
            std::thread::yield_now();
            if handles.iter().all(|h| h.is_finished()) {
                panic!("cycle {cycle}: every writer stopped before the crash");
            }
        }
        d.stop(); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            let a = h.join().unwrap();
            expected.extend(a.counters);
            max_token = max_token.max(a.last_token);
        }
        d.restart();
        let s = Store::open(&d.url_unix()).unwrap();
        let mut lost = 0;
        for id in ids.iter().flatten() {
            let r = s
                .fetch(id)
                .unwrap()
                .unwrap_or_else(|| panic!("cycle {cycle}: session {id} is gone after the restart"));
            let got = r.data.get("n").and_then(|j| j.as_i64()).unwrap_or(0);
            let want = expected.get(id).copied().unwrap_or(0);
            if got < want {
                lost += want - got;
            }
            // Nothing appears that was never sent: at most the one write in flight.
            assert!(
                got <= want + 1,
                "cycle {cycle}: {id} has {got}, acknowledged {want}"
            );
            // The next cycle counts on from what is there.
            expected.insert(*id, got);
        }
        let (t, _) = s
            .lock(&lock_id, Duration::from_millis(50), Duration::from_secs(5))
            .unwrap();
        assert!(
            t > max_token,
            "cycle {cycle}: fencing token {t} after the restart, {max_token} before"
        );
        max_token = t;
        s.unlock(&lock_id, t).unwrap();
        losses.push(lost);
    }
    losses
}

#[test]
fn always_keeps_every_acknowledged_write_over_20_crashes() {
    let losses = crash_cycles("always", 20);
    assert_eq!(losses, vec![0; 20], "acknowledged writes lost per crash");
}

#[test]
fn everysec_survives_crashes_and_reports_its_loss() {
    let losses = crash_cycles("everysec", 5);
    println!("everysec: acknowledged writes lost per SIGKILL: {losses:?}");
}
