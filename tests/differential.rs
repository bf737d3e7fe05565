//! Every store, every operation, the same answers: seeded random sequences of every
//! operation of the `Store` API run on `mem://` (the reference), on sessyncd over a Unix
//! socket, on a standalone redis-server (the code as a function library on a shared
//! connection, and as a script run by `EVALSHA` on pooled connections), in the
//! connect-redis layout, and on a 3-node Redis Cluster, all on one manual clock (the
//! daemon's moves by `DEBUG.ADVANCE`). Every reply (values, error kinds, conflict
//! versions, rotation targets, lock tokens, records) must be the same on every store,
//! and at checkpoints so must the full observable state of every id ever used: the
//! record a fetch gives (data, version, times, owner, own TTL, the id it answers under)
//! and what an unlock with a token never issued says (live, absent, destroyed, rotated).
//!
//! This is what keeps the Redis backend's code (`store.lua`: its short paths and its
//! general one) and the in-process store one state machine. A failure prints the seed,
//! the step, every store's answer and the steps before it; `DIFFERENTIAL_SEED=<seed>`
//! runs that seed alone (`DIFFERENTIAL_SEEDS`, `DIFFERENTIAL_STEPS` change the run, and
//! `DIFFERENTIAL_CHECKPOINTS=1` compares the states after every step).
//!
//! Where the stores differ by design, the test says so at the place (see
//! "Documented differences" below): nothing else may differ.

mod daemon;
mod redis;

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Map, Value};
use sessync::{
    Clock, Error, ManualClock, PatchOp, RawJson, Record, SessionData, SessionId, Store, WriteOpts,
};

// The store's settings, the same everywhere (the daemon's are given on its command line).
const OPTIONS: &str = "ttl=60s&absolute_ttl=5m&touch_fraction=0.5&tombstone_ttl=60s&rotate_grace=30s&max_session_bytes=300";
const ABS: u64 = 300_000;
const TOUCH: u64 = 30_000;
const TOMB: u64 = 60_000;
const GRACE: u64 = 30_000;

// Documented differences and the test's own constraints:
//
// 1. Increments on Redis are exact within ±2^53 (Lua numbers are doubles) and refused
//    beyond it with `not_a_number` (docs/architecture.md, "Keys"); `mem://` and sessyncd
//    are exact to i64. An operation whose increment reads or makes a value beyond ±2^53
//    (but within i64) runs on the Redis stores only, which must refuse it and change
//    nothing (the next checkpoint compares them with the others again).
// 2. `list` on Redis pages Redis's `SCAN`, which may give an id twice: pages are compared
//    as sets of sessions.
// 3. In the connect-redis layout the top-level key `cookie` is express-session's: the
//    test data has no such key.
// 4. Redis also expires keys on its own clock, by the time left when they were written
//    (the code keeps its own deadlines on the test's clock, so this never decides an
//    answer as long as Redis's copy outlives the logical deadline). A key written with
//    little time left and then kept for longer in real time than the manual clock moves
//    would vanish early. So every deadline the stores write is at least MARGIN ahead
//    (own TTLs, tombstones, grace; the absolute end: the clock never stops in the
//    MARGIN before a live session's absolute end, it jumps to it), and a seed's run must
//    take less than MARGIN of real time, which the test checks.
const MARGIN: u64 = 20_000;

/// A small deterministic generator (xorshift), so a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next() % one_in == 0
    }
}

/// Which stores run an operation.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    /// `mem://`, in this process: the reference.
    Memory,
    /// sessyncd (a `mem://` store behind the wire protocol).
    Daemon,
    /// The Redis backend, any deployment.
    Redis,
}

struct Target {
    name: &'static str,
    kind: Kind,
    store: Store,
}

/// The servers every seed uses (each seed under key prefixes of its own).
struct Servers {
    redis: redis::Server,
    cluster: redis::Cluster,
}

// ------------------------------------------------------------------------ the inputs

fn writes() -> Vec<String> {
    let mut w: Vec<String> = [
        r#"{}"#,
        r#"{"n":1}"#,
        r#"{"n":9,"s":"text","f":1.5}"#,
        r#"{"n":-99999,"m":999999999999999}"#,
        r#"{"n":1000000000000000,"s":[1,2]}"#,
        r#"{"n":-0,"m":null}"#,
        r#"{"big":9007199254740993,"edge":9007199254740990,"max":9223372036854775807,"min":-9223372036854775808}"#,
        r#"{ "user" : { "name" : "ada", "tags" : [ "a" , "b" ] }, "n" : 3 }"#,
        r#"{"q\"uote":{"x\\y":1},"é":"ü","\u0061b":2,"long key with \"quotes\"":7}"#,
        r#"{"deep":{"a":{"b":{"c":1}}},"t":true,"z":false,"e":[],"o":{}}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Near max_session_bytes (300), and over it.
    w.push(format!(r#"{{"n":1,"pad":"{}"}}"#, "x".repeat(270)));
    w.push(format!(r#"{{"pad":"{}"}}"#, "x".repeat(284)));
    w.push(format!(r#"{{"pad":"{}"}}"#, "x".repeat(300)));
    w
}

fn merges() -> Vec<String> {
    let mut m: Vec<String> = [
        r#"{"user":{"name":"bob","age":3}}"#,
        r#"{"user":{"name":null,"tags":null}}"#,
        r#"{"user":null}"#,
        r#"{"n":null,"s":"x"}"#,
        r#"{"deep":{"a":{"b":{"d":[1,{"e":null}]}}}}"#,
        r#"{"deep":{"a":{"b":null,"x":{}}}}"#,
        r#"{"deep":{"a":5}}"#,
        r#"{"n":{"x":1}}"#,
        r#"{}"#,
        r#"{"a":{}}"#,
        r#"{"o":{"p":{"q":null}}}"#,
        r#"{"q\"uote":{"x\\y":null,"new":{"k":"v"}},"é":null}"#,
        r#"{"s":{"a":null}}"#,
        r#"{"n":7,"m":-2,"t":null}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    m.push(format!(r#"{{"pad":"{}"}}"#, "y".repeat(200)));
    m
}

const KEYS: &[&str] = &[
    "n",
    "m",
    "s",
    "f",
    "user",
    "big",
    "edge",
    "max",
    "min",
    "new",
    "long key with \"quotes\"",
];

const BYS: &[i64] = &[
    1,
    -1,
    0,
    9,
    11,
    -100,
    99_999_999_999_999,
    -1_000_000_000_000_000,
    1 << 52,
    -(1 << 53),
    i64::MAX,
    i64::MIN,
];

/// The sets of a patch (`PatchOp::Set`): key and JSON text.
const SETS: &[(&str, &str)] = &[
    ("n", "5"),
    ("n", "9007199254740992"),
    ("s", r#""str""#),
    ("o", r#"{ "b" : 1 }"#),
    ("t", "[1, 2]"),
    ("user", r#"{"name":"eve"}"#),
];

const OWNERS: &[&str] = &["alice", "bob", "ö w"];
/// Own idle TTLs (ms): all at least MARGIN (see above); 0 is bad input.
const OWN_TTLS: &[u64] = &[20_000, 45_000, 120_000];
const LEASES: &[u64] = &[1_000, 45_000, 70_000];
const STEPS_MS: &[u64] = &[
    1, 999, 5_000, 29_999, 30_000, 59_999, 60_000, 61_000, 200_000,
];

// ------------------------------------------------------------------------ one seed

/// One seed's stores, its logical sessions and its log.
struct World {
    seed: u64,
    rng: Rng,
    targets: Vec<Target>,
    clock: Arc<ManualClock>,
    control: BufReader<UnixStream>,
    _daemon: daemon::Daemon,
    t0: u64,
    /// `ids[t][l]`: logical session `l`'s id on target `t` (a rotation gives each store an
    /// id of its own).
    ids: Vec<Vec<SessionId>>,
    /// Lock tokens issued per logical session (the same on every store, or a step fails).
    tokens: Vec<Vec<u64>>,
    /// Deadlines the test made (leases, tombstones, grace periods), to step onto.
    marks: Vec<u64>,
    log: Vec<String>,
    step: usize,
    started: Instant,
}

/// What a step runs on.
#[derive(Clone, Copy, PartialEq)]
enum On {
    All,
    /// Documented difference 1: the Redis stores only, which must refuse.
    RedisRefuses,
}

impl World {
    fn open(servers: &Servers, n: usize, seed: u64) -> World {
        let store_url = format!("mem://?{OPTIONS}");
        let d = daemon::start(&["--manual-clock", "--store", &store_url]);
        let remote = Store::open(&d.url_unix()).expect("sessyncd is up");
        // The daemon's manual clock starts at its wall clock: read it off a session.
        let probe = SessionId::generate();
        remote
            .write(&probe, SessionData::new(), WriteOpts::default())
            .unwrap();
        let t0 = remote.fetch(&probe).unwrap().unwrap().created;
        remote.destroy(&probe).unwrap();
        let clock = ManualClock::new(t0);
        let open = |url: String| {
            Store::open_with_clock(&url, clock.clone()).unwrap_or_else(|e| panic!("{url}: {e}"))
        };
        let r = &servers.redis;
        let targets = vec![
            Target {
                name: "mem://",
                kind: Kind::Memory,
                store: open(store_url.clone()),
            },
            Target {
                name: "sessyncd unix://",
                kind: Kind::Daemon,
                store: remote,
            },
            Target {
                name: "redis FCALL shared",
                kind: Kind::Redis,
                store: open(r.url(&format!("{OPTIONS}&prefix=d{n}f:"))),
            },
            Target {
                name: "redis EVALSHA pooled",
                kind: Kind::Redis,
                store: open(r.url(&format!("{OPTIONS}&script=eval&shared=0&prefix=d{n}e:"))),
            },
            Target {
                name: "redis connect-redis",
                kind: Kind::Redis,
                store: open(r.url(&format!("{OPTIONS}&layout=connect-redis&prefix=d{n}c:"))),
            },
            Target {
                name: "redis cluster",
                kind: Kind::Redis,
                store: open(servers.cluster.url(&format!("{OPTIONS}&prefix=d{n}k:"))),
            },
        ];
        let first: Vec<SessionId> = (0..4).map(|_| SessionId::generate()).collect();
        let control = BufReader::new(UnixStream::connect(&d.sock).unwrap());
        World {
            seed,
            rng: Rng(seed),
            ids: targets.iter().map(|_| first.clone()).collect(),
            targets,
            clock,
            control,
            _daemon: d,
            t0,
            tokens: vec![Vec::new(); first.len()],
            marks: Vec::new(),
            log: Vec::new(),
            step: 0,
            started: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The reference's record of logical session `l` (an alias answers with its
    /// successor's).
    fn reference(&self, l: usize) -> Option<Record> {
        self.targets[0].store.fetch(&self.ids[0][l]).unwrap()
    }

    /// Moves every store's clock.
    fn advance(&mut self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
        let ms = ms.to_string();
        let mut c = self.control.get_ref();
        write!(c, "*2\r\n$13\r\nDEBUG.ADVANCE\r\n${}\r\n{ms}\r\n", ms.len()).unwrap();
        let mut line = String::new();
        self.control.read_line(&mut line).unwrap();
        assert_eq!(line, "+OK\r\n", "DEBUG.ADVANCE");
    }

    fn fail(&self, what: &str, outcomes: &[(&str, String)]) -> ! {
        let table: Vec<String> = outcomes
            .iter()
            .map(|(n, o)| format!("  {n:<22} {o}"))
            .collect();
        let from = self.log.len().saturating_sub(60);
        let elapsed = self.started.elapsed();
        let slow = if elapsed.as_millis() as u64 >= MARGIN {
            format!(
                "\n(this seed has run {elapsed:?}, longer than the MARGIN of {MARGIN} ms: \
                 Redis may have expired a key on its own clock, see difference 4)"
            )
        } else {
            String::new()
        };
        panic!(
            "seed {seed}, step {step}: the stores disagree on {what}:\n{}\n\
             the steps before it (times in ms from the start):\n{}{slow}\n\
             replay: DIFFERENTIAL_SEED={seed} cargo test --test differential",
            table.join("\n"),
            self.log[from..].join("\n"),
            seed = self.seed,
            step = self.step,
        )
    }

    /// Runs `f` on the stores `on` names and requires the same outcome from each.
    /// `show` renders a success with the target's ids (for rotations, records).
    fn each<T>(
        &mut self,
        on: On,
        what: &str,
        f: impl Fn(&Store, &[SessionId]) -> Result<T, Error>,
        show: impl Fn(&T, &[SessionId], u64) -> String,
    ) -> Vec<Option<T>> {
        // Beyond ±2^53 the Redis stores go first: when they refuse for another reason
        // than the range (a token, a version, a tombstone…), so must every store.
        let mut order: Vec<usize> = (0..self.targets.len()).collect();
        order.sort_by_key(|&t| on == On::RedisRefuses && self.targets[t].kind != Kind::Redis);
        let mut outcomes = Vec::new();
        let mut values: Vec<Option<T>> = self.targets.iter().map(|_| None).collect();
        let mut rest = on == On::All;
        for t in order {
            let target = &self.targets[t];
            if target.kind != Kind::Redis && !rest {
                rest = outcomes.iter().all(|(_, o): &(&str, String)| {
                    o.starts_with("error ") && o != "error not_a_number"
                });
                if !rest {
                    continue;
                }
            }
            let ids = &self.ids[t];
            let r = f(&target.store, ids);
            let o = match &r {
                Ok(v) => format!("ok {}", show(v, ids, self.t0)),
                Err(e) => format!("error {}", error(e, ids)),
            };
            outcomes.push((target.name, o));
            values[t] = r.ok();
        }
        let same = outcomes.windows(2).all(|w| w[0].1 == w[1].1);
        if !same {
            self.fail(what, &outcomes);
        }
        if on == On::RedisRefuses && !outcomes[0].1.starts_with("error ") {
            self.fail(
                &format!("{what} (beyond ±2^53: the Redis stores must refuse it)"),
                &outcomes,
            );
        }
        values
    }

    /// Logs `desc` and runs it as [`World::each`] does.
    fn step<T>(
        &mut self,
        on: On,
        desc: String,
        f: impl Fn(&Store, &[SessionId]) -> Result<T, Error>,
        show: impl Fn(&T, &[SessionId], u64) -> String,
    ) -> Vec<Option<T>> {
        self.log.push(desc.clone());
        self.each(on, &desc, f, show)
    }

    /// Compares what every store says of every logical session.
    fn checkpoint(&mut self) {
        for l in 0..self.ids[0].len() {
            self.each(
                On::All,
                &format!("the state of s{l} (fetch)"),
                |s, ids| s.fetch(&ids[l]),
                |r, ids, t0| match r {
                    Some(r) => record(r, ids, t0),
                    None => "none".into(),
                },
            );
            // Token 0 is never issued: a refusal that says what the id is.
            self.each(
                On::All,
                &format!("the state of s{l} (unlock with token 0)"),
                |s, ids| s.unlock(&ids[l], 0),
                |_, _, _| "unlocked".into(),
            );
        }
    }

    fn session(&mut self) -> usize {
        let n = self.ids[0].len();
        // Mostly a live session (on the reference), else any (absent, destroyed, rotated
        // away), mostly among the newer ones.
        if !self.rng.chance(4) {
            let live: Vec<usize> = (0..n).filter(|&l| self.reference(l).is_some()).collect();
            if !live.is_empty() {
                return self.rng.pick(&live);
            }
        }
        if n > 4 && self.rng.chance(2) {
            n - 1 - self.rng.below(4)
        } else {
            self.rng.below(n)
        }
    }

    fn token(&mut self, l: usize) -> u64 {
        let ts = &self.tokens[l];
        match (ts.last(), self.rng.below(4)) {
            (Some(&t), 0 | 1) => t,
            (Some(_), 2) => ts[self.rng.below(ts.len())],
            (t, _) => t.copied().unwrap_or(0) + 1000,
        }
    }

    /// Write options from the reference's state of `l`.
    fn opts(&mut self, l: usize, patch: bool) -> WriteOpts {
        let version = self.reference(l).map_or(0, |r| r.version);
        let expected_version = match self.rng.below(8) {
            0 | 1 => Some(version),
            2 => Some(version + 1),
            _ => None,
        };
        let token = if self.rng.chance(3) {
            Some(self.token(l))
        } else {
            None
        };
        WriteOpts {
            expected_version,
            token,
            create: patch && self.rng.chance(3),
            release: token.is_some() && self.rng.chance(2),
        }
    }

    fn own_ttl(&mut self) -> Option<Duration> {
        match self.rng.below(30) {
            0..=5 => Some(Duration::from_millis(self.rng.pick(OWN_TTLS))),
            6 => Some(Duration::ZERO),
            _ => None,
        }
    }

    /// The next clock step: a random one, or onto (or next to) a deadline.
    fn clock_step(&mut self) {
        let now = self.now();
        let mut deadlines: Vec<u64> = self.marks.clone();
        for l in 0..self.ids[0].len() {
            if let Some(r) = self.reference(l) {
                let interval = r.ttl_ms.map_or(TOUCH, |t| t / 2);
                deadlines.extend([r.expires_at, r.created + ABS, r.last_access + interval]);
            }
        }
        deadlines.retain(|&d| d > now + 1);
        let mut target = if deadlines.is_empty() || self.rng.chance(2) {
            now + self.rng.pick(STEPS_MS)
        } else {
            self.rng.pick(&deadlines) + self.rng.pick(&[0, 0, 1]) - self.rng.pick(&[0, 1])
        };
        // Difference 4: never stop in the MARGIN before a live session's absolute end.
        for _ in 0..self.ids[0].len() + 1 {
            let ends: Vec<u64> = (0..self.ids[0].len())
                .filter_map(|l| self.reference(l).map(|r| r.created + ABS))
                .collect();
            match ends.iter().find(|&&a| a > target && a - target < MARGIN) {
                Some(&a) => target = a,
                None => break,
            }
        }
        self.log.push(format!(
            "  advance {} ms (to {})",
            target - now,
            target - self.t0
        ));
        self.advance(target - now);
        self.marks.retain(|&d| d > target);
    }

    fn one_step(&mut self) {
        let l = self.session();
        let now = self.now() - self.t0;
        let mut what = self.rng.below(100);
        if what > 13 && self.rng.chance(2) && self.reference(l).is_none() {
            // Half the time a session that is not there is written first.
            what = 0;
        }
        match what {
            0..=13 => {
                let json = self.rng.pick(&writes());
                let data = SessionData::from_json(&json).unwrap();
                let opts = self.opts(l, false);
                let ttl = self.own_ttl();
                let desc = format!("{now}: write s{l} {json} {opts:?} ttl {ttl:?}");
                self.step(
                    On::All,
                    desc,
                    |s, ids| match ttl {
                        Some(t) => s.write_with_ttl(&ids[l], data.clone(), opts, t),
                        None => s.write(&ids[l], data.clone(), opts),
                    },
                    |v, _, _| format!("version {v}"),
                );
            }
            14..=23 => {
                let patch: Value = serde_json::from_str(&self.rng.pick(&merges())).unwrap();
                let mut ops = vec![PatchOp::Merge(object(&patch))];
                if self.rng.chance(4) {
                    ops.push(PatchOp::Incr(
                        self.rng.pick(KEYS).into(),
                        self.rng.pick(BYS),
                    ));
                }
                let opts = self.opts(l, true);
                let ttl = self.own_ttl();
                self.apply(l, ops, opts, ttl, now);
            }
            24..=33 => {
                let mut ops = Vec::new();
                for _ in 0..1 + self.rng.below(3) {
                    ops.push(match self.rng.below(5) {
                        0 => {
                            let (k, v) = self.rng.pick(SETS);
                            PatchOp::Set(k.into(), RawJson::parse(v).unwrap())
                        }
                        1 => PatchOp::Remove(self.rng.pick(KEYS).into()),
                        2 if self.rng.chance(3) => {
                            PatchOp::SetOwner(Some(Arc::from(self.rng.pick(OWNERS))))
                        }
                        _ => PatchOp::Incr(self.rng.pick(KEYS).into(), self.rng.pick(BYS)),
                    });
                }
                if self.rng.chance(10) {
                    ops.clear();
                }
                let opts = self.opts(l, true);
                let ttl = self.own_ttl();
                self.apply(l, ops, opts, ttl, now);
            }
            34..=49 => {
                // The plain increment (`Store::incr`): the Redis backend's short path.
                let key: String = self.rng.pick(KEYS).into();
                let by = if self.rng.chance(2) {
                    self.rng.pick(&[1, -1, 2, 9])
                } else {
                    self.rng.pick(BYS)
                };
                let opts = match self.rng.below(4) {
                    0 => WriteOpts {
                        token: Some(self.token(l)),
                        ..WriteOpts::default()
                    },
                    1 => self.opts(l, true),
                    _ => WriteOpts::default(),
                };
                let ops = vec![PatchOp::Incr(key.clone(), by)];
                let on = self.incr_on(l, &ops);
                let desc = format!("{now}: incr s{l} {key:?} by {by} {opts:?}");
                self.step(
                    on,
                    desc,
                    |s, ids| s.incr(&ids[l], &key, by, opts),
                    |v, _, _| format!("{v}"),
                );
            }
            50..=54 => {
                let owner = if self.rng.chance(3) {
                    None
                } else {
                    Some(self.rng.pick(OWNERS))
                };
                let opts = if self.rng.chance(3) {
                    self.opts(l, false)
                } else {
                    WriteOpts::default()
                };
                let desc = format!("{now}: set_owner s{l} {owner:?} {opts:?}");
                self.step(
                    On::All,
                    desc,
                    |s, ids| s.set_owner(&ids[l], owner, opts),
                    |v, _, _| format!("version {v}"),
                );
            }
            55..=57 => {
                let owner = self.rng.pick(OWNERS);
                let desc = format!("{now}: sessions_of {owner:?}");
                self.step(
                    On::All,
                    desc,
                    |s, _| s.sessions_of(owner),
                    |v, ids, _| names(v, ids),
                );
            }
            58 => {
                let owner = self.rng.pick(OWNERS);
                let desc = format!("{now}: destroy_all {owner:?}");
                self.step(
                    On::All,
                    desc,
                    |s, _| s.destroy_all(owner),
                    |v, _, _| format!("{v}"),
                );
            }
            59..=62 => self.rotate(l, now),
            63..=65 => {
                let desc = format!("{now}: destroy s{l}");
                self.step(
                    On::All,
                    desc,
                    |s, ids| s.destroy(&ids[l]),
                    |v, _, _| format!("{v}"),
                );
                self.marks.push(self.now() + TOMB);
            }
            66..=72 => {
                let lease = self.rng.pick(LEASES);
                let desc = format!("{now}: lock s{l} lease {lease} ms, wait 0");
                let got = self.step(
                    On::All,
                    desc,
                    |s, ids| s.lock(&ids[l], Duration::from_millis(lease), Duration::ZERO),
                    |(t, r), ids, t0| format!("token {t} {}", record(r, ids, t0)),
                );
                if let Some(Some((t, _))) = got.first() {
                    self.tokens[l].push(*t);
                    self.marks.push(self.now() + lease);
                }
            }
            73..=77 => {
                let token = self.token(l);
                let desc = format!("{now}: unlock s{l} token {token}");
                self.step(
                    On::All,
                    desc,
                    |s, ids| s.unlock(&ids[l], token),
                    |_, _, _| "unlocked".into(),
                );
            }
            78..=82 => {
                let ttl = match self.rng.below(3) {
                    0 => self.own_ttl(),
                    _ => None,
                };
                let desc = format!("{now}: touch s{l} ttl {ttl:?}");
                self.step(
                    On::All,
                    desc,
                    |s, ids| match ttl {
                        Some(t) => s.touch_with_ttl(&ids[l], t),
                        None => s.touch(&ids[l]),
                    },
                    |t, _, t0| format!("written {} expires +{}", t.written, t.expires_at - t0),
                );
            }
            83..=88 => {
                let touch = self.rng.chance(2);
                let desc = format!("{now}: fetch s{l} (touch: {touch})");
                self.step(
                    On::All,
                    desc,
                    |s, ids| {
                        if touch {
                            s.fetch_touch(&ids[l])
                        } else {
                            s.fetch(&ids[l]).map(|r| (r, false))
                        }
                    },
                    |(r, touched), ids, t0| match r {
                        Some(r) => format!("{} touched {touched}", record(r, ids, t0)),
                        None => "none".into(),
                    },
                );
            }
            89..=95 => self.clock_step(),
            96..=97 => {
                let count = self.rng.pick(&[1, 3, 100]);
                let desc = format!("{now}: list, {count} a page");
                self.step(
                    On::All,
                    desc,
                    |s, _| {
                        let (mut all, mut cursor) = (Vec::new(), 0);
                        loop {
                            let (page, next) = s.list(cursor, count)?;
                            all.extend(page);
                            if next == 0 {
                                return Ok(all);
                            }
                            cursor = next;
                        }
                    },
                    // Difference 2: Redis may list an id twice.
                    |v, ids, _| names(v, ids),
                );
            }
            _ => {
                if self.rng.chance(4) {
                    let desc = format!("{now}: clear");
                    self.step(On::All, desc, |s, _| s.clear(), |v, _, _| format!("{v}"));
                    self.marks.push(self.now() + TOMB);
                }
            }
        }
    }

    /// Where an increment runs: everywhere, or (difference 1) where Redis must refuse.
    fn incr_on(&mut self, l: usize, ops: &[PatchOp]) -> On {
        let data = self.reference(l).map(|r| r.data);
        beyond_exact(data.as_deref(), ops)
    }

    fn apply(
        &mut self,
        l: usize,
        ops: Vec<PatchOp>,
        opts: WriteOpts,
        ttl: Option<Duration>,
        now: u64,
    ) {
        let on = self.incr_on(l, &ops);
        let desc = format!("{now}: apply s{l} {ops:?} {opts:?} ttl {ttl:?}");
        self.step(
            on,
            desc,
            |s, ids| match ttl {
                Some(t) => s.apply_with_ttl(&ids[l], ops.clone(), opts, t),
                None => s.apply(&ids[l], ops.clone(), opts),
            },
            |p, _, _| format!("version {} values {:?}", p.version, p.values),
        );
    }

    fn rotate(&mut self, l: usize, now: u64) {
        if self.ids[0].len() >= 12 {
            return;
        }
        let token = if self.rng.chance(2) {
            Some(self.token(l))
        } else {
            None
        };
        let desc = format!("{now}: rotate s{l} token {token:?}");
        let new = self.ids[0].len();
        let got = self.step(
            On::All,
            desc,
            |s, ids| s.rotate(&ids[l], token),
            move |_, _, _| format!("to s{new}"),
        );
        if got[0].is_some() {
            for (t, to) in got.into_iter().enumerate() {
                self.ids[t].push(to.expect("every store rotated"));
            }
            let tokens = self.tokens[l].clone();
            self.tokens.push(tokens);
            self.log.push(format!("  (s{new} is s{l} rotated)"));
            self.marks.push(self.now() + GRACE);
            self.marks.push(self.now() + GRACE + TOMB);
        }
    }
}

/// The object of a JSON value known to be one.
fn object(v: &Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

/// Difference 1: whether the increments in `ops`, applied to `data` (the reference's, if
/// the session is there), read or make a value beyond ±2^53 while the in-process store
/// can do them all (within i64): then the Redis stores alone run them, and must refuse.
fn beyond_exact(data: Option<&SessionData>, ops: &[PatchOp]) -> On {
    const EXACT: i128 = 1 << 53;
    // The top-level members as JSON texts (an integer is what `RawJson::as_i64` says).
    let mut m: std::collections::HashMap<String, String> = data
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.into_owned(), v.as_str().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let mut beyond = false;
    for op in ops {
        match op {
            PatchOp::Set(k, v) => {
                m.insert(k.clone(), v.as_str().to_string());
            }
            PatchOp::Remove(k) => {
                m.remove(k);
            }
            PatchOp::Merge(p) => {
                for (k, v) in p {
                    match v {
                        Value::Null => m.remove(k),
                        other => m.insert(k.clone(), other.to_string()),
                    };
                }
            }
            PatchOp::Incr(k, by) => {
                let cur = match m.get(k) {
                    None => 0,
                    Some(v) => match RawJson::parse(v).ok().and_then(|j| j.as_i64()) {
                        Some(n) => n as i128,
                        // Not an integer: refused everywhere.
                        None => return On::All,
                    },
                };
                let next = cur + *by as i128;
                if i64::try_from(next).is_err() {
                    // Refused everywhere (overflow, or beyond 2^53).
                    return On::All;
                }
                beyond |= cur.abs() > EXACT || (*by as i128).abs() > EXACT || next.abs() > EXACT;
                m.insert(k.clone(), next.to_string());
            }
            _ => {}
        }
    }
    if beyond { On::RedisRefuses } else { On::All }
}

/// The logical name of `id` on a target.
fn name(id: &SessionId, ids: &[SessionId]) -> String {
    match ids.iter().position(|x| x == id) {
        Some(l) => format!("s{l}"),
        None => format!("unknown id {id}"),
    }
}

/// A set of sessions by logical name, sorted, each once.
fn names(v: &[SessionId], ids: &[SessionId]) -> String {
    let set: BTreeSet<String> = v.iter().map(|id| name(id, ids)).collect();
    format!("{set:?}")
}

/// An error as it must agree: its kind, the versions of a conflict, a rotation's target.
fn error(e: &Error, ids: &[SessionId]) -> String {
    match e {
        Error::Conflict { expected, actual } => {
            format!("conflict (expected {expected}, actual {actual})")
        }
        Error::Rotated { to } => format!("rotated to {}", name(to, ids)),
        // Never expected: its text says what broke.
        Error::Backend(m) => format!("backend ({m})"),
        other => other.kind().to_string(),
    }
}

/// A record as it must agree: the data as JSON with its keys in order (Redis keeps a
/// hash's fields in its own order), times from the start.
fn record(r: &Record, ids: &[SessionId], t0: u64) -> String {
    let data: Value = serde_json::from_str(r.data.to_json()).unwrap();
    format!(
        "{} {} v{} created +{} accessed +{} expires +{} owner {:?} ttl {:?}",
        name(&r.id, ids),
        data,
        r.version,
        r.created - t0,
        r.last_access - t0,
        r.expires_at - t0,
        r.owner,
        r.ttl_ms
    )
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn every_store_answers_every_operation_alike() {
    let servers = Servers {
        redis: redis::Server::start(&[]),
        cluster: redis::Cluster::start(),
    };
    let seeds: Vec<u64> = match env("DIFFERENTIAL_SEED") {
        Some(s) => vec![s],
        None => (1..=env("DIFFERENTIAL_SEEDS").unwrap_or(10))
            .map(|n| n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect(),
    };
    let steps = env("DIFFERENTIAL_STEPS").unwrap_or(300) as usize;
    // A checkpoint after every step finds the step where a state began to differ.
    let every = env("DIFFERENTIAL_CHECKPOINTS").unwrap_or(5);
    for (n, &seed) in seeds.iter().enumerate() {
        let mut w = World::open(&servers, n, seed);
        while w.step < steps {
            w.one_step();
            if w.rng.chance(5) || every == 1 {
                w.checkpoint();
            }
            w.step += 1;
        }
        w.checkpoint();
        let took = w.started.elapsed();
        assert!(
            (took.as_millis() as u64) < MARGIN,
            "seed {seed} took {took:?}: longer than the MARGIN of {MARGIN} ms that Redis's \
             own expiry is kept from deciding an answer by (difference 4); run fewer steps"
        );
    }
}
