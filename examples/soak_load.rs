//! Load driver for `scripts/soak.sh`: mixed session traffic through sessync's own client
//! (`Store` on `unix://…`) for a bounded time, reporting throughput and the daemon's
//! resident memory and open descriptors at a fixed interval.
//!
//! ```text
//! soak_load URL SECONDS THREADS DAEMON_PID [EVERY]
//! ```
//!
//! Every two threads share one `Store` (one client process's worth). Each thread keeps
//! its own sessions: a fixed set with the store's TTL (destroyed and rotated ones are
//! replaced, so the set keeps its size) and a ring of the latest sessions it made with a
//! TTL of 1 to 6 seconds, most of which expire during the run. An operation is one of:
//! a short-TTL write, a fetch, begin + get + set + commit (`lock`, `apply … release`),
//! begin + abort (`lock`, `unlock`), a merge patch, an increment, a destroy (and a new
//! session in its place), a rotation; some locks go to 16 sessions all threads share.
//! Every EVERY seconds (default 10) each thread also opens a `Store` of its own, does a
//! few fetches and drops it (connections that come and go).
//!
//! Prints a CSV line per interval:
//! `t_s,ops,ops_per_s,rss_kib,fds,sessions,tombstones,aliases,timers,expirations`
//! (the last five from `Store::stats`, i.e. `SESS.STATS`), then the count of each
//! operation and of each outcome. Outcomes a short TTL or a rotation makes expected
//! (`NotFound`, `Destroyed`, `Rotated`, …) are counted; any other error is printed, and
//! the exit status is 1 if there was one.

#[path = "common/mod.rs"]
mod common;

use common::{rss_kib, session_json};
use sessync::{Error, PatchOp, RawJson, SessionData, SessionId, Store, WriteOpts};
use std::{
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

const OPS: [&str; 9] = [
    "write-short-ttl",
    "fetch",
    "lock-set-commit",
    "lock-abort",
    "patch",
    "incr",
    "destroy",
    "rotate",
    "reconnect-fetch",
];
/// Sessions with the store's TTL, per thread.
const LONG: usize = 2000;
/// The latest short-TTL sessions a thread remembers (older ones are left to expire).
const SHORT: usize = 4000;

struct Shared {
    ops: [AtomicU64; OPS.len()],
    outcomes: Mutex<std::collections::BTreeMap<String, u64>>,
    unexpected: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn outcome(&self, what: &str) {
        *self
            .outcomes
            .lock()
            .expect("outcomes")
            .entry(what.to_string())
            .or_default() += 1;
    }

    /// Counts an error: expected ones by name, others printed (the first few).
    fn error(&self, op: &str, e: &Error) {
        let name = match e {
            Error::NotFound => "not-found",
            Error::Destroyed => "destroyed",
            Error::Rotated { .. } => "rotated",
            Error::StaleToken => "stale-token",
            Error::LockTimeout => "lock-timeout",
            Error::Locked => "locked",
            _ => {
                if self.unexpected.fetch_add(1, Relaxed) < 10 {
                    eprintln!("unexpected error in {op}: {e}");
                }
                "UNEXPECTED"
            }
        };
        self.outcome(&format!("{op}: {name}"));
    }
}

/// A 64-bit linear congruential generator; the high bits are used.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 16
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn new_session(store: &Store, rng: &mut Rng, ttl: Option<Duration>) -> sessync::Result<SessionId> {
    let id = SessionId::generate();
    let data = SessionData::from_json(&session_json(rng.next() % 1_000_000, 500))?;
    match ttl {
        Some(t) => store.write_with_ttl(&id, data, WriteOpts::default(), t)?,
        None => store.write(&id, data, WriteOpts::default())?,
    };
    Ok(id)
}

/// begin (lock), get, set, commit (apply with the token, releasing the lock).
fn lock_set_commit(store: &Store, id: &SessionId) -> sessync::Result<()> {
    let (token, rec) = store.lock(id, Duration::from_secs(5), Duration::from_secs(2))?;
    let n = rec.data.get("views").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
    let opts = WriteOpts {
        token: Some(token),
        release: true,
        ..WriteOpts::default()
    };
    store.apply(
        id,
        vec![PatchOp::Set("views".into(), RawJson::from_i64(n))],
        opts,
    )?;
    Ok(())
}

fn worker(url: &str, store: &Store, hot: &[SessionId], t: usize, sh: &Shared, every: Duration) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 7919));
    let mut long: Vec<SessionId> = (0..LONG)
        .map(|_| new_session(store, &mut rng, None).expect("the first sessions"))
        .collect();
    let mut short: VecDeque<SessionId> = VecDeque::with_capacity(SHORT);
    let mut next_reconnect = Instant::now() + every;
    while !sh.stop.load(Relaxed) {
        let r = rng.below(100);
        // Half the reads and updates go to a short-TTL session (perhaps expired by now).
        let pick_short = !short.is_empty() && rng.below(2) == 0;
        let slot = rng.below(LONG);
        let target = if pick_short {
            short[rng.below(short.len())]
        } else {
            long[slot]
        };
        let (op, res): (usize, sessync::Result<()>) = match r {
            0..15 => {
                let ttl = Duration::from_millis(1000 + rng.below(5000) as u64);
                let res = new_session(store, &mut rng, Some(ttl)).map(|id| {
                    if short.len() == SHORT {
                        short.pop_front();
                    }
                    short.push_back(id);
                });
                (0, res)
            }
            15..35 => (
                1,
                store
                    .fetch(&target)
                    .and_then(|r| r.map(|_| ()).ok_or(Error::NotFound)),
            ),
            35..50 => {
                let id = if rng.below(20) == 0 {
                    hot[rng.below(hot.len())]
                } else {
                    target
                };
                (2, lock_set_commit(store, &id))
            }
            50..55 => (
                3,
                store
                    .lock(&target, Duration::from_secs(5), Duration::from_secs(2))
                    .and_then(|(token, _)| store.unlock(&target, token)),
            ),
            55..65 => {
                let patch = format!(
                    r#"{{"flash":"{}","seen":{}}}"#,
                    "y".repeat(rng.below(400)),
                    r
                );
                (
                    4,
                    store
                        .patch(&target, &patch, WriteOpts::default())
                        .map(|_| ()),
                )
            }
            65..85 => (
                5,
                store
                    .incr(&target, "views", 1, WriteOpts::default())
                    .map(|_| ()),
            ),
            85..92 => {
                let res = store.destroy(&long[slot]).map(|_| ());
                long[slot] = new_session(store, &mut rng, None).expect("a new session");
                (6, res)
            }
            _ => {
                let res = store.rotate(&long[slot], None).map(|id| long[slot] = id);
                if res.is_err() {
                    long[slot] = new_session(store, &mut rng, None).expect("a new session");
                }
                (7, res)
            }
        };
        sh.ops[op].fetch_add(1, Relaxed);
        match res {
            Ok(()) => sh.outcome(&format!("{}: ok", OPS[op])),
            Err(e) => sh.error(OPS[op], &e),
        }
        if Instant::now() >= next_reconnect {
            next_reconnect += every;
            let res = Store::open(url).and_then(|s| {
                for id in long.iter().take(20) {
                    s.fetch(id)?;
                }
                Ok(())
            });
            sh.ops[8].fetch_add(1, Relaxed);
            match res {
                Ok(()) => sh.outcome(&format!("{}: ok", OPS[8])),
                Err(e) => sh.error(OPS[8], &e),
            }
        }
    }
}

fn fds(pid: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        eprintln!("usage: soak_load URL SECONDS THREADS DAEMON_PID [EVERY]");
        std::process::exit(2);
    }
    let url = a[0].as_str();
    let secs: u64 = a[1].parse().expect("SECONDS");
    let threads: usize = a[2].parse().expect("THREADS");
    let pid = a[3].as_str();
    let every = Duration::from_secs(a.get(4).map_or(10, |e| e.parse().expect("EVERY")));
    let sh = Shared {
        ops: Default::default(),
        outcomes: Mutex::new(Default::default()),
        unexpected: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let watcher = Store::open(url).expect("store URL");
    let hot: Vec<SessionId> = (0..16)
        .map(|i| {
            let id = SessionId::generate();
            let data = SessionData::from_json(&session_json(i, 500)).expect("json");
            watcher
                .write(&id, data, WriteOpts::default())
                .expect("write");
            id
        })
        .collect();
    let stores: Vec<Store> = (0..threads.div_ceil(2))
        .map(|_| Store::open(url).expect("store URL"))
        .collect();
    println!("t_s,ops,ops_per_s,rss_kib,fds,sessions,tombstones,aliases,timers,expirations");
    std::thread::scope(|s| {
        for t in 0..threads {
            let (store, hot, sh) = (&stores[t / 2], &hot, &sh);
            s.spawn(move || worker(url, store, hot, t, sh, every));
        }
        let start = Instant::now();
        let total = || sh.ops.iter().map(|o| o.load(Relaxed)).sum::<u64>();
        let mut last = (0u64, start);
        let mut k = 1;
        loop {
            let next = start + every * k;
            let end = start + Duration::from_secs(secs);
            std::thread::sleep(next.min(end).saturating_duration_since(Instant::now()));
            let now = Instant::now();
            let n = total();
            let st = watcher.stats();
            println!(
                "{:.0},{n},{:.0},{},{},{},{},{},{},{}",
                (now - start).as_secs_f64(),
                (n - last.0) as f64 / (now - last.1).as_secs_f64(),
                rss_kib(pid),
                fds(pid),
                st.sessions,
                st.tombstones,
                st.aliases,
                st.timers,
                st.expirations
            );
            last = (n, now);
            if now >= end {
                break;
            }
            k += 1;
        }
        sh.stop.store(true, Relaxed);
    });
    println!();
    for (i, name) in OPS.iter().enumerate() {
        println!("op,{name},{}", sh.ops[i].load(Relaxed));
    }
    for (what, n) in sh.outcomes.lock().expect("outcomes").iter() {
        println!("outcome,{what},{n}");
    }
    let bad = sh.unexpected.load(Relaxed);
    println!("unexpected_errors,{bad}");
    if bad > 0 {
        std::process::exit(1);
    }
}
