//! Persistence: what a reopened store holds is what the store held, for random sequences
//! of every command, with compactions in between; a torn tail is cut, other damage
//! refuses to start; fencing tokens keep rising across a restart.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use super::{
    Memory,
    persist::{self, Fsync, Persistence, State},
    shard::FENCE_GAP,
};
use crate::{
    backend::Backend,
    clock::ManualClock,
    command::{Command, PatchOp, Reply, WriteOpts},
    config::StoreOptions,
    error::Error,
    session::{RawJson, SessionData, SessionId},
};

struct Dir(PathBuf);

impl Dir {
    fn new(what: &str) -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "sessync-persist-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options() -> StoreOptions {
    StoreOptions {
        ttl: Duration::from_secs(60),
        tombstone_ttl: Duration::from_secs(30),
        rotate_grace: Duration::from_secs(10),
        shards: 4,
        ..StoreOptions::default()
    }
}

fn open(dir: &Dir, clock: &Arc<ManualClock>, fsync: Fsync) -> Memory {
    let mut p = Persistence::new(&dir.0);
    p.fsync = fsync;
    p.compact_min_bytes = 1 << 40;
    Memory::open_persistent(options(), clock.clone(), &p).expect("opens")
}

/// Every id's state that still matters now, as the log would keep it.
fn dump(m: &Memory) -> BTreeMap<SessionId, State> {
    let now = m.inner.clock.now_ms();
    let mut out = BTreeMap::new();
    for shard in m.inner.shards.iter() {
        let s = shard.lock();
        for id in s.ids() {
            let st = s.state_of(&id);
            if st.alive_at(now) {
                out.insert(id, normalize(st, now));
            }
        }
    }
    out
}

/// Leases that ran out count as no lock, and ended tombstones or aliases as none: the
/// store treats them so, and a restore drops them.
fn normalize(st: State, now: u64) -> State {
    match st {
        State::Live(mut s) => {
            s.lock = s.lock.filter(|&(_, until)| until > now);
            State::Live(s)
        }
        State::Dead { tomb, alias } => State::Dead {
            tomb: tomb.filter(|&t| t > now),
            alias: alias.filter(|&(_, t)| t > now),
        },
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs `n` random commands on `m` over a pool of ids; remembers lock tokens.
fn churn(m: &Memory, clock: &ManualClock, rng: &mut Rng, ids: &mut Vec<SessionId>, n: usize) {
    let mut tokens: BTreeMap<SessionId, u64> = BTreeMap::new();
    for _ in 0..n {
        if ids.is_empty() || rng.below(8) == 0 {
            ids.push(SessionId::generate());
        }
        let id = ids[rng.below(ids.len() as u64) as usize];
        let token = tokens.get(&id).copied();
        let opts = WriteOpts {
            token: token.filter(|_| rng.below(4) != 0),
            release: rng.below(3) == 0,
            ..WriteOpts::default()
        };
        let cmd = match rng.below(13) {
            0 | 1 => Command::Write {
                id,
                data: Arc::new(
                    SessionData::from_json(&format!(r#"{{"n":{},"s":"x"}}"#, rng.below(100)))
                        .unwrap(),
                ),
                opts,
                ttl_ms: (rng.below(4) == 0).then(|| 1000 + rng.below(120_000)),
            },
            2 | 3 => Command::Patch {
                id,
                ops: vec![
                    PatchOp::Incr("c".into(), 1 + rng.below(5) as i64),
                    PatchOp::Set("k".into(), RawJson::from_i64(rng.below(9) as i64)),
                    PatchOp::Merge(serde_json::from_str(r#"{"m":{"a":1,"b":null}}"#).unwrap()),
                    PatchOp::SetOwner(match rng.below(3) {
                        0 => None,
                        1 => Some(Arc::from("alice")),
                        _ => Some(Arc::from("bob")),
                    }),
                ][..1 + rng.below(4) as usize]
                    .to_vec(),
                opts: WriteOpts {
                    create: true,
                    ..opts
                },
                ttl_ms: None,
            },
            4 | 5 => Command::Lock {
                id,
                lease_ms: 1 + rng.below(20_000),
                wait_ms: 0,
            },
            6 => Command::Unlock {
                id,
                token: token.unwrap_or(0),
            },
            7 => Command::Touch {
                id,
                ttl_ms: (rng.below(2) == 0).then(|| 5000 + rng.below(60_000)),
            },
            8 => Command::Destroy { id },
            9 => Command::Rotate { id, token },
            10 => Command::Fetch { id, touch: true },
            11 => Command::DestroyOwned {
                owner: "bob".into(),
            },
            _ => {
                clock.advance(Duration::from_millis(rng.below(15_000)));
                continue;
            }
        };
        match m.execute(cmd) {
            Ok(Reply::Locked { token, .. }) => {
                tokens.insert(id, token);
            }
            Ok(Reply::Rotated(to)) => ids.push(to),
            _ => {}
        }
        // Let the actor run what fell due (expiries, leases, tombstones).
        if rng.below(16) == 0 {
            m.inner.shards.iter().for_each(|s| {
                let mut s = s.lock();
                let ctx = m.inner.ctx();
                s.run_timers(&ctx);
                m.inner.settle(&mut s);
            });
        }
    }
}

#[test]
fn a_reopened_store_holds_what_the_store_held() {
    for (seed, fsync) in [
        (1u64, Fsync::Always),
        (2, Fsync::EverySec),
        (3, Fsync::No),
        (4, Fsync::Always),
        (5, Fsync::EverySec),
    ] {
        let dir = Dir::new("model");
        let clock = ManualClock::new(1_700_000_000_000);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
        let mut ids = Vec::new();
        let mut m = open(&dir, &clock, fsync);
        for round in 0..6 {
            churn(&m, &clock, &mut rng, &mut ids, 300);
            if round % 2 == 1 {
                m.compact().unwrap();
                churn(&m, &clock, &mut rng, &mut ids, 100);
            }
            let mut before = dump(&m);
            assert!(
                !before.is_empty(),
                "seed {seed}: the run keeps some sessions"
            );
            // A restore moves every fencing counter on by the gap (see FENCE_GAP).
            for st in before.values_mut() {
                if let State::Live(s) = st {
                    s.fence += FENCE_GAP;
                }
            }
            drop(m);
            m = open(&dir, &clock, fsync);
            let after = dump(&m);
            assert_eq!(before, after, "seed {seed}, round {round}");
            let st = m.stats();
            assert!(st.persistence.enabled);
            assert_eq!(
                st.persistence.restored,
                before
                    .values()
                    .filter(|s| matches!(s, State::Live(_)))
                    .count() as u64
            );
            assert_eq!(st.sessions, st.persistence.restored);
        }
    }
}

#[test]
fn owners_and_rotation_aliases_survive() {
    let dir = Dir::new("owners");
    let clock = ManualClock::new(1_700_000_000_000);
    let m = open(&dir, &clock, Fsync::Always);
    let id = SessionId::generate();
    m.execute(Command::Patch {
        id,
        ops: vec![PatchOp::SetOwner(Some(Arc::from("carol")))],
        opts: WriteOpts::create(),
        ttl_ms: None,
    })
    .unwrap();
    let Reply::Rotated(to) = m.execute(Command::Rotate { id, token: None }).unwrap() else {
        panic!("rotated")
    };
    drop(m);
    let m = open(&dir, &clock, Fsync::Always);
    assert_eq!(
        m.execute(Command::Owned {
            owner: "carol".into()
        })
        .unwrap(),
        Reply::Sessions(vec![to])
    );
    // The old id is still an alias of the successor during the grace period (the
    // store follows it; the backend says where to).
    assert_eq!(
        m.execute(Command::Fetch { id, touch: false }),
        Err(Error::Rotated { to })
    );
}

#[test]
fn fencing_tokens_keep_rising_across_a_restart() {
    let dir = Dir::new("fence");
    let clock = ManualClock::new(1_700_000_000_000);
    let m = open(&dir, &clock, Fsync::Always);
    let id = SessionId::generate();
    m.execute(Command::Write {
        id,
        data: Arc::new(SessionData::new()),
        opts: WriteOpts::create(),
        ttl_ms: None,
    })
    .unwrap();
    let lock = |m: &Memory| match m.execute(Command::Lock {
        id,
        lease_ms: 5000,
        wait_ms: 0,
    }) {
        Ok(Reply::Locked { token, .. }) => Ok(token),
        Ok(r) => panic!("{r:?}"),
        Err(e) => Err(e),
    };
    let t1 = lock(&m).unwrap();
    drop(m);
    // The lease is still running after the restart: the holder keeps it.
    let m = open(&dir, &clock, Fsync::Always);
    assert_eq!(lock(&m), Err(Error::LockTimeout));
    clock.advance(Duration::from_millis(5001));
    let t2 = lock(&m).unwrap();
    assert!(t2 > t1, "{t2} > {t1}");
    // The holder from before the restart is stale now.
    let stale = m.execute(Command::Write {
        id,
        data: Arc::new(SessionData::new()),
        opts: WriteOpts::token(t1),
        ttl_ms: None,
    });
    assert_eq!(stale, Err(Error::StaleToken));
}

fn last_segment(dir: &Dir) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log."))
        })
        .collect();
    segs.sort();
    segs.pop().expect("a log segment")
}

#[test]
fn a_torn_tail_is_cut_to_the_last_whole_record() {
    let dir = Dir::new("torn");
    let clock = ManualClock::new(1_700_000_000_000);
    let m = open(&dir, &clock, Fsync::Always);
    let mut rng = Rng(77);
    let mut ids = Vec::new();
    churn(&m, &clock, &mut rng, &mut ids, 200);
    let before = dump(&m);
    drop(m);
    // Half of a record, as a crash in the middle of a write leaves it.
    let seg = last_segment(&dir);
    let mut extra = Vec::new();
    persist::encode(
        &SessionId::generate(),
        &State::Dead {
            tomb: Some(u64::MAX),
            alias: None,
        },
        &mut extra,
    );
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &extra[..extra.len() / 2]).unwrap();
    drop(f);
    let m = open(&dir, &clock, Fsync::Always);
    let moved = |d: BTreeMap<SessionId, State>| -> Vec<(SessionId, u64)> {
        d.into_iter()
            .filter_map(|(id, st)| match st {
                State::Live(s) => Some((id, s.version)),
                State::Dead { .. } => None,
            })
            .collect()
    };
    assert_eq!(moved(dump(&m)), moved(before));
    assert_eq!(
        m.stats().persistence.truncated_bytes,
        (extra.len() / 2) as u64
    );
    // The reopened store wrote a snapshot of all it restored, and dropped that log.
    assert!(!seg.exists());
}

#[test]
fn damage_before_the_tail_refuses_to_start() {
    let dir = Dir::new("damage");
    let clock = ManualClock::new(1_700_000_000_000);
    let m = open(&dir, &clock, Fsync::Always);
    let mut rng = Rng(78);
    let mut ids = Vec::new();
    churn(&m, &clock, &mut rng, &mut ids, 100);
    m.compact().unwrap();
    churn(&m, &clock, &mut rng, &mut ids, 20);
    drop(m);
    // Flip one byte in the middle of the snapshot.
    let snap = dir.0.join("snapshot");
    let mut bytes = std::fs::read(&snap).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&snap, &bytes).unwrap();
    let mut p = Persistence::new(&dir.0);
    p.fsync = Fsync::Always;
    let err = Memory::open_persistent(options(), clock.clone(), &p)
        .err()
        .expect("refuses");
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[test]
fn a_directory_is_used_by_one_store_at_a_time() {
    let dir = Dir::new("lock");
    let clock = ManualClock::new(1_700_000_000_000);
    let _m = open(&dir, &clock, Fsync::No);
    let p = Persistence::new(&dir.0);
    let err = Memory::open_persistent(options(), clock.clone(), &p)
        .err()
        .expect("refuses");
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn records_round_trip_and_bad_bytes_are_errors() {
    let id = SessionId::generate();
    let live = State::Live(persist::Saved {
        data: Arc::new(SessionData::from_json(r#"{"a":[1,2],"b":"é"}"#).unwrap()),
        version: 7,
        created: 1,
        last_access: 2,
        expires_at: 3,
        owner: Some(Arc::from("o")),
        ttl: Some(9),
        fence: 4,
        lock: Some((4, 10)),
    });
    let dead = State::Dead {
        tomb: Some(5),
        alias: Some((SessionId::generate(), 6)),
    };
    for st in [live, dead] {
        let mut buf = vec![0; 20];
        persist::encode(&id, &st, &mut buf);
        let mut got = Vec::new();
        assert_eq!(
            persist::read_records(&buf, |r| got.push(r)),
            persist::Tail::Clean
        );
        assert_eq!(got, vec![Some((id, st.clone()))]);
        // Every cut and every flipped byte is caught.
        for cut in 21..buf.len() {
            assert!(matches!(
                persist::read_records(&buf[..cut], |_| {}),
                persist::Tail::Bad { at: 20, .. }
            ));
        }
        for i in 20..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 1;
            assert!(matches!(
                persist::read_records(&b, |_| {}),
                persist::Tail::Bad { .. }
            ));
        }
    }
}

/// The log fuzz target's seeds (`fuzz/corpus/log/seed-*`, written by hand from the
/// format in `persist.rs`) are what they say: whole records, a torn one, a bad checksum.
/// A change of the format breaks this test before it silently empties the fuzzing.
#[test]
fn the_log_fuzz_seeds_follow_the_format() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/log");
    for (name, whole) in [
        ("seed-live", 1),
        ("seed-live-plain", 1),
        ("seed-dead", 1),
        ("seed-tomb", 1),
        ("seed-both", 2),
        ("seed-end", 0),
        ("seed-torn", 0),
        ("seed-badcrc", 0),
    ] {
        let mut bytes = persist::segment_header(1);
        let start = bytes.len();
        bytes.extend(std::fs::read(dir.join(name)).unwrap());
        let mut n = 0;
        let tail = persist::read_records(&bytes, |r| n += usize::from(r.is_some()));
        assert_eq!(n, whole, "{name}");
        let torn = matches!(name, "seed-torn" | "seed-badcrc");
        assert_eq!(
            matches!(tail, persist::Tail::Bad { at, .. } if at == start),
            torn,
            "{name}: {tail:?}"
        );
    }
}

#[test]
fn two_compactions_at_once_never_share_a_snapshot() {
    // A second compaction while one runs is refused, and the directory opens after
    // writers and compactions racing each other.
    let dir = Dir::new("race");
    let clock = ManualClock::new(1_700_000_000_000);
    let m = Arc::new(open(&dir, &clock, Fsync::Always));
    let ids: Vec<SessionId> = (0..64).map(|_| SessionId::generate()).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..2 {
        let (m, ids, stop) = (m.clone(), ids.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = t;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = m.execute(Command::Patch {
                    id: ids[i % ids.len()],
                    ops: vec![PatchOp::Incr("n".into(), 1)],
                    opts: WriteOpts::create(),
                    ttl_ms: None,
                });
                i += 1;
            }
        }));
    }
    let compactors: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                let (mut done, mut refused) = (0, 0);
                for _ in 0..40 {
                    match m.compact() {
                        Ok(()) => done += 1,
                        Err(e) if e.to_string().contains("a compaction is running") => refused += 1,
                        Err(e) => panic!("compaction failed: {e}"),
                    }
                }
                (done, refused)
            })
        })
        .collect();
    let mut done = 0;
    for c in compactors {
        done += c.join().unwrap().0;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(done >= 40, "{done} compactions");
    let before = dump(&m);
    drop(Arc::into_inner(m).expect("the only handle"));
    let m = open(&dir, &clock, Fsync::Always);
    assert_eq!(dump(&m).len(), before.len());
}

#[test]
fn a_compaction_that_cannot_start_leaves_the_store_serving() {
    let dir = Dir::new("retry");
    let clock = ManualClock::new(1_700_000_000_000);
    let m = open(&dir, &clock, Fsync::Always);
    // The next segment's name taken by a directory: creating it fails.
    let next = m.inner.journal.as_ref().unwrap().stats();
    assert_eq!(next.compactions, 1);
    let seg = last_segment(&dir);
    let n: u64 = seg.file_name().unwrap().to_str().unwrap()[4..]
        .parse()
        .unwrap();
    let blocker = dir.0.join(format!("log.{:020}", n + 1));
    std::fs::create_dir(&blocker).unwrap();
    let err = m.compact().unwrap_err();
    assert!(err.to_string().contains("cannot create"), "{err}");
    // The store still serves and logs; a later compaction works once the way is clear.
    m.execute(Command::Write {
        id: SessionId::generate(),
        data: Arc::new(SessionData::new()),
        opts: WriteOpts::create(),
        ttl_ms: None,
    })
    .unwrap();
    std::fs::remove_dir(&blocker).unwrap();
    m.compact().unwrap();
    assert_eq!(m.stats().persistence.compactions, 2);
}
