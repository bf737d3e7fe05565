//! Property tests: merge patch against the RFC's algorithm, and the store's state machine
//! against a simple model of the contract.

use std::{collections::BTreeMap, time::Duration};

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sessync::{Error, ManualClock, SessionData, SessionId, Store, WriteOpts};

// ---------------------------------------------------------------- merge patch

/// RFC 7396, section 2, written out as the RFC's pseudo-code reads.
fn rfc_merge(target: Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut t = match target {
                Value::Object(t) => t,
                _ => Map::new(),
            };
            for (name, value) in p {
                if value.is_null() {
                    t.remove(name);
                } else {
                    let cur = t.remove(name).unwrap_or(Value::Null);
                    t.insert(name.clone(), rfc_merge(cur, value));
                }
            }
            Value::Object(t)
        }
        other => other.clone(),
    }
}

fn json_value(nulls: bool) -> impl Strategy<Value = Value> {
    let mut leaves: Vec<BoxedStrategy<Value>> = vec![
        any::<bool>().prop_map(Value::from).boxed(),
        (-5i64..5).prop_map(Value::from).boxed(),
        "[a-c]{0,2}".prop_map(Value::from).boxed(),
    ];
    if nulls {
        leaves.push(Just(Value::Null).boxed());
    }
    let leaf = prop::strategy::Union::new(leaves);
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-d]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object(nulls: bool) -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-d\"\\\\\n é]{0,2}", json_value(nulls), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #[test]
    fn store_patch_equals_the_rfc_algorithm(target in object(false), patch in object(true)) {
        let store = Store::open("mem://").unwrap();
        let id = SessionId::generate();
        store.write(&id, SessionData::from_value(&target).unwrap(), WriteOpts::default()).unwrap();
        store.patch_value(&id, patch.clone(), WriteOpts::default()).unwrap();
        let got = store.fetch(&id).unwrap().unwrap();
        let want = rfc_merge(target, &patch);
        prop_assert_eq!(got.data.to_value(), want.clone());
        // The cached whole-object JSON agrees with the data, byte count included.
        let text = got.data.to_json();
        prop_assert_eq!(serde_json::from_str::<Value>(text).unwrap(), want);
        prop_assert_eq!(text.len(), got.data.byte_len());
    }

    #[test]
    fn merge_patch_is_idempotent(target in object(false), patch in object(true)) {
        let once = rfc_merge(target, &patch);
        let mut twice = once.clone();
        sessync::session::merge_patch(&mut twice, &patch);
        prop_assert_eq!(once, twice);
    }
}

// ---------------------------------------------------------------- state machine

const TTL: u64 = 10_000;
const ABS: u64 = 30_000;
const TOUCH: u64 = 5_000;
const TOMB: u64 = 7_000;
const URL: &str = "mem://?ttl=10s&absolute_ttl=30s&touch_fraction=0.5&tombstone_ttl=7s";

#[derive(Debug, Clone)]
enum Op {
    Write(usize, i64, Option<usize>),
    Incr(usize, u8, i64, Option<usize>),
    Fetch(usize),
    Destroy(usize),
    Lock(usize, u64),
    Unlock(usize, usize),
    Touch(usize),
    Advance(u64),
    /// A write (no token) that gives the session its own TTL.
    WriteTtl(usize, i64, u64),
    /// A touch that gives the session its own TTL.
    TouchTtl(usize, u64),
    /// Every page of the list, with this count.
    List(usize),
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0..3usize;
    let tok = prop::option::of(0..4usize);
    prop_oneof![
        (id.clone(), -3i64..3, tok.clone()).prop_map(|(i, v, t)| Op::Write(i, v, t)),
        (id.clone(), 0..2u8, -3i64..3, tok).prop_map(|(i, k, b, t)| Op::Incr(i, k, b, t)),
        id.clone().prop_map(Op::Fetch),
        id.clone().prop_map(Op::Destroy),
        (id.clone(), 1_000..8_000u64).prop_map(|(i, l)| Op::Lock(i, l)),
        (id.clone(), 0..4usize).prop_map(|(i, t)| Op::Unlock(i, t)),
        id.clone().prop_map(Op::Touch),
        (1..6_000u64).prop_map(Op::Advance),
        (id.clone(), -3i64..3, 1..20_000u64).prop_map(|(i, v, t)| Op::WriteTtl(i, v, t)),
        (id, 1..20_000u64).prop_map(|(i, t)| Op::TouchTtl(i, t)),
        (1..4usize).prop_map(Op::List),
        Just(Op::Clear),
    ]
}

#[derive(Clone, Debug)]
struct MSession {
    data: BTreeMap<String, i64>,
    version: u64,
    created: u64,
    last: u64,
    expires: u64,
    fence: u64,
    lock: Option<(u64, u64)>,
    /// The session's own TTL.
    ttl: Option<u64>,
}

#[derive(Default)]
struct Model {
    now: u64,
    live: [Option<MSession>; 3],
    tomb: [u64; 3],
    tokens: [Vec<u64>; 3],
}

#[derive(Debug, PartialEq)]
enum Out {
    Version(u64),
    Int(i64),
    Data(Option<(Value, u64)>),
    Token,
    Done,
    Written(bool),
    Existed(bool),
    Ids(Vec<usize>),
    Count(usize),
    Err(&'static str),
}

impl MSession {
    fn access(&mut self, now: u64) {
        self.last = now;
        self.expires = (now + self.ttl.unwrap_or(TTL)).min(self.created + ABS);
    }
    /// The touch interval: half the session's TTL.
    fn touch_due(&self, now: u64) -> bool {
        let interval = self.ttl.map_or(TOUCH, |t| (t as f64 * 0.5) as u64);
        now - self.last >= interval && now > self.last
    }
    fn expire_lease(&mut self, now: u64) {
        if self.lock.is_some_and(|(_, until)| until <= now) {
            self.lock = None;
        }
    }
    fn check(&mut self, now: u64, token: Option<u64>) -> Result<(), &'static str> {
        self.expire_lease(now);
        match (self.lock, token) {
            (None, None) => Ok(()),
            (Some(_), None) => Err("locked"),
            (Some((t, _)), Some(x)) if t == x => Ok(()),
            _ => Err("stale_token"),
        }
    }
    fn json(&self) -> Value {
        Value::Object(
            self.data
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect(),
        )
    }
}

impl Model {
    /// Live, tombstoned or absent, after dropping an expired session.
    fn find(&mut self, i: usize) -> Result<Option<&mut MSession>, &'static str> {
        if self.live[i].as_ref().is_some_and(|s| s.expires <= self.now) {
            self.live[i] = None;
        }
        if self.live[i].is_some() {
            return Ok(self.live[i].as_mut());
        }
        if self.tomb[i] > self.now {
            return Err("destroyed");
        }
        Ok(None)
    }

    fn token(&self, i: usize, sel: usize) -> u64 {
        self.tokens[i].get(sel).copied().unwrap_or(1 << 40)
    }

    fn apply(&mut self, op: &Op) -> Out {
        let now = self.now;
        match *op {
            Op::Advance(ms) => {
                self.now += ms;
                Out::Done
            }
            Op::WriteTtl(i, v, ttl) => {
                let mut data = BTreeMap::new();
                data.insert("v".to_string(), v);
                match self.find(i) {
                    Err(e) => Out::Err(e),
                    Ok(None) => {
                        let mut s = MSession {
                            data,
                            version: 1,
                            created: now,
                            last: now,
                            expires: 0,
                            fence: 0,
                            lock: None,
                            ttl: Some(ttl),
                        };
                        s.access(now);
                        self.live[i] = Some(s);
                        Out::Version(1)
                    }
                    Ok(Some(s)) => match s.check(now, None) {
                        Err(e) => Out::Err(e),
                        Ok(()) => {
                            s.data = data;
                            s.version += 1;
                            s.ttl = Some(ttl);
                            s.access(now);
                            Out::Version(s.version)
                        }
                    },
                }
            }
            Op::TouchTtl(i, ttl) => match self.find(i) {
                Err(e) => Out::Err(e),
                Ok(None) => Out::Err("not_found"),
                Ok(Some(s)) => {
                    s.ttl = Some(ttl);
                    s.access(now);
                    Out::Written(true)
                }
            },
            Op::List(_) => Out::Ids(
                (0..3)
                    .filter(|&i| matches!(self.find(i), Ok(Some(_))))
                    .collect(),
            ),
            Op::Clear => {
                let mut n = 0;
                for i in 0..3 {
                    if matches!(self.find(i), Ok(Some(_))) {
                        n += 1;
                        self.live[i] = None;
                        self.tomb[i] = self.tomb[i].max(now + TOMB);
                    }
                }
                Out::Count(n)
            }
            Op::Write(i, v, t) => {
                let token = t.map(|t| self.token(i, t));
                let mut data = BTreeMap::new();
                data.insert("v".to_string(), v);
                match self.find(i) {
                    Err(e) => Out::Err(e),
                    Ok(None) => {
                        if token.is_some() {
                            return Out::Err("stale_token");
                        }
                        let mut s = MSession {
                            data,
                            version: 1,
                            created: now,
                            last: now,
                            expires: 0,
                            fence: 0,
                            lock: None,
                            ttl: None,
                        };
                        s.access(now);
                        self.live[i] = Some(s);
                        Out::Version(1)
                    }
                    Ok(Some(s)) => match s.check(now, token) {
                        Err(e) => Out::Err(e),
                        Ok(()) => {
                            s.data = data;
                            s.version += 1;
                            s.access(now);
                            Out::Version(s.version)
                        }
                    },
                }
            }
            Op::Incr(i, k, by, t) => {
                let token = t.map(|t| self.token(i, t));
                match self.find(i) {
                    Err(e) => Out::Err(e),
                    Ok(None) => Out::Err("not_found"),
                    Ok(Some(s)) => match s.check(now, token) {
                        Err(e) => Out::Err(e),
                        Ok(()) => {
                            let e = s.data.entry(format!("k{k}")).or_insert(0);
                            *e += by;
                            let v = *e;
                            s.version += 1;
                            s.access(now);
                            Out::Int(v)
                        }
                    },
                }
            }
            Op::Fetch(i) => match self.find(i) {
                Ok(Some(s)) => Out::Data(Some((s.json(), s.version))),
                _ => Out::Data(None),
            },
            Op::Destroy(i) => {
                let existed = matches!(self.find(i), Ok(Some(_)));
                self.live[i] = None;
                self.tomb[i] = self.tomb[i].max(now + TOMB);
                Out::Existed(existed)
            }
            Op::Lock(i, lease) => {
                let issued = match self.find(i) {
                    Err(e) => return Out::Err(e),
                    Ok(None) => return Out::Err("not_found"),
                    Ok(Some(s)) => {
                        s.expire_lease(now);
                        if s.lock.is_some() {
                            return Out::Err("lock_timeout");
                        }
                        s.fence += 1;
                        s.lock = Some((s.fence, now + lease));
                        if s.touch_due(now) {
                            s.access(now);
                        }
                        s.fence
                    }
                };
                self.tokens[i].push(issued);
                Out::Token
            }
            Op::Unlock(i, t) => {
                let token = self.token(i, t);
                match self.find(i) {
                    Err(e) => Out::Err(e),
                    Ok(None) => Out::Err("not_found"),
                    Ok(Some(s)) => {
                        s.expire_lease(now);
                        match s.lock {
                            Some((x, _)) if x == token => {
                                s.lock = None;
                                Out::Done
                            }
                            _ => Out::Err("stale_token"),
                        }
                    }
                }
            }
            Op::Touch(i) => match self.find(i) {
                Err(e) => Out::Err(e),
                Ok(None) => Out::Err("not_found"),
                Ok(Some(s)) => {
                    let due = s.touch_due(now);
                    if due {
                        s.access(now);
                    }
                    Out::Written(due)
                }
            },
        }
    }
}

fn run_store(
    store: &Store,
    clock: &ManualClock,
    ids: &[SessionId; 3],
    tokens: &mut [Vec<u64>; 3],
    op: &Op,
) -> Out {
    let tok =
        |tokens: &[Vec<u64>; 3], i: usize, t: usize| tokens[i].get(t).copied().unwrap_or(1 << 40);
    let err = |e: Error| Out::Err(e.kind());
    match *op {
        Op::Advance(ms) => {
            clock.advance(Duration::from_millis(ms));
            Out::Done
        }
        Op::Write(i, v, t) => {
            let opts = WriteOpts {
                token: t.map(|t| tok(tokens, i, t)),
                ..WriteOpts::default()
            };
            let data = SessionData::from_value(&json!({ "v": v })).unwrap();
            store
                .write(&ids[i], data, opts)
                .map_or_else(err, Out::Version)
        }
        Op::Incr(i, k, by, t) => {
            let opts = WriteOpts {
                token: t.map(|t| tok(tokens, i, t)),
                ..WriteOpts::default()
            };
            store
                .incr(&ids[i], &format!("k{k}"), by, opts)
                .map_or_else(err, Out::Int)
        }
        Op::Fetch(i) => match store.fetch(&ids[i]) {
            Ok(r) => Out::Data(r.map(|r| (r.data.to_value(), r.version))),
            Err(e) => err(e),
        },
        Op::Destroy(i) => store.destroy(&ids[i]).map_or_else(err, Out::Existed),
        Op::Lock(i, lease) => {
            match store.lock(&ids[i], Duration::from_millis(lease), Duration::ZERO) {
                Ok((t, _)) => {
                    tokens[i].push(t);
                    Out::Token
                }
                Err(e) => err(e),
            }
        }
        Op::Unlock(i, t) => store
            .unlock(&ids[i], tok(tokens, i, t))
            .map_or_else(err, |_| Out::Done),
        Op::Touch(i) => store
            .touch(&ids[i])
            .map_or_else(err, |t| Out::Written(t.written)),
        Op::WriteTtl(i, v, ttl) => {
            let data = SessionData::from_value(&json!({ "v": v })).unwrap();
            store
                .write_with_ttl(
                    &ids[i],
                    data,
                    WriteOpts::default(),
                    Duration::from_millis(ttl),
                )
                .map_or_else(err, Out::Version)
        }
        Op::TouchTtl(i, ttl) => store
            .touch_with_ttl(&ids[i], Duration::from_millis(ttl))
            .map_or_else(err, |t| Out::Written(t.written)),
        Op::List(count) => {
            let mut got = Vec::new();
            let mut cursor = 0;
            loop {
                match store.list(cursor, count) {
                    Ok((page, next)) => {
                        got.extend(page);
                        if next == 0 {
                            break;
                        }
                        cursor = next;
                    }
                    Err(e) => return err(e),
                }
            }
            // Memory lists each live session once.
            let mut idx: Vec<usize> = got
                .iter()
                .map(|id| ids.iter().position(|x| x == id).unwrap_or(usize::MAX))
                .collect();
            idx.sort_unstable();
            Out::Ids(idx)
        }
        Op::Clear => store.clear().map_or_else(err, Out::Count),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn the_store_behaves_like_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let clock = ManualClock::new(1_000_000);
        let store = Store::open_with_clock(URL, clock.clone()).unwrap();
        let ids = [SessionId::generate(), SessionId::generate(), SessionId::generate()];
        let mut model = Model { now: 1_000_000, ..Model::default() };
        let mut tokens: [Vec<u64>; 3] = Default::default();
        for (n, op) in ops.iter().enumerate() {
            let want = model.apply(op);
            let got = run_store(&store, &clock, &ids, &mut tokens, op);
            prop_assert_eq!(&got, &want, "step {} {:?}", n, op);
            prop_assert_eq!(&tokens, &model.tokens, "tokens after step {}", n);
        }
    }
}
