//! Throughput of sessync's in-process store beside two baselines, in one run:
//!
//! * `mutex_map`: a `std::sync::Mutex<HashMap<String, Vec<u8>>>` holding each session as
//!   JSON bytes — what popular in-process session stores do. A fetch copies the bytes; an
//!   update parses the session, changes a key and serializes it back.
//! * `actor`: the seed's shape — one owner thread holding the map, a channel request and a
//!   reply per operation.
//!
//! Sessions are 1 KiB of JSON, 100,000 ids, accessed in a random order; each group runs
//! with 1 and 2 threads. Every measurement is wall time for a fixed number of operations
//! shared among the threads, so criterion's "thrpt" is operations per second in total.
//! `scripts/bench.sh` runs this and prints the ratios.

#![allow(missing_docs, reason = "criterion_group! generates an undocumented fn")]

mod common;

use std::{
    collections::HashMap,
    hint::black_box,
    sync::{Mutex, mpsc},
    thread,
    time::Duration,
};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sessync::{FlowOptions, SessionData, SessionId, Sessions, Store, WriteOpts};

use common::{SESSIONS, order, run_threads, session_json};

// ---------------------------------------------------------------- baselines

type MutexMap = Mutex<HashMap<String, Vec<u8>>>;

fn mutex_update(map: &MutexMap, id: &str) {
    let mut m = map.lock().unwrap();
    let bytes = m.get(id).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let n = v["views"].as_i64().unwrap_or(0);
    v["views"] = (n + 1).into();
    let out = serde_json::to_vec(&v).unwrap();
    m.insert(id.to_string(), out);
}

enum Msg {
    Fetch(String, mpsc::SyncSender<Option<Vec<u8>>>),
    Update(String, mpsc::SyncSender<Option<Vec<u8>>>),
}

/// The seed's actor: one thread owns the map; every operation is a message and a reply.
struct Actor {
    tx: mpsc::Sender<Msg>,
}

impl Actor {
    fn start(ids: &[String]) -> Actor {
        let mut map: HashMap<String, Vec<u8>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), session_json(i).into_bytes()))
            .collect();
        let (tx, rx) = mpsc::channel::<Msg>();
        thread::spawn(move || {
            for msg in rx {
                match msg {
                    Msg::Fetch(id, reply) => {
                        let _ = reply.send(map.get(&id).cloned());
                    }
                    Msg::Update(id, reply) => {
                        let bytes = map.get(&id).cloned();
                        if let Some(b) = bytes {
                            let mut v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                            let n = v["views"].as_i64().unwrap_or(0);
                            v["views"] = (n + 1).into();
                            map.insert(id, serde_json::to_vec(&v).unwrap());
                        }
                        let _ = reply.send(None);
                    }
                }
            }
        });
        Actor { tx }
    }

    fn call(&self, msg: impl FnOnce(mpsc::SyncSender<Option<Vec<u8>>>) -> Msg) -> Option<Vec<u8>> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        self.tx.send(msg(rtx)).unwrap();
        rrx.recv().unwrap()
    }
}

// ---------------------------------------------------------------- setup

struct World {
    ids: Vec<SessionId>,
    names: Vec<String>,
    headers: Vec<String>,
    store: Store,
    flow: Sessions,
    map: MutexMap,
    actor: Actor,
    orders: [Vec<usize>; 2],
}

fn world() -> World {
    let store = Store::open("mem://?max_session_bytes=65536").unwrap();
    let ids: Vec<SessionId> = (0..SESSIONS).map(|_| SessionId::generate()).collect();
    for (i, id) in ids.iter().enumerate() {
        let data = SessionData::from_json(&session_json(i)).unwrap();
        store.write(id, data, WriteOpts::default()).unwrap();
    }
    let names: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let map = Mutex::new(
        names
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), session_json(i).into_bytes()))
            .collect(),
    );
    World {
        headers: names
            .iter()
            .map(|n| format!("theme=dark; sync_sess={n}"))
            .collect(),
        actor: Actor::start(&names),
        flow: Sessions::new(store.clone(), FlowOptions::default()).unwrap(),
        store,
        map,
        ids,
        names,
        orders: [order(1 << 20, 0x9E37_79B9), order(1 << 20, 0x7F4A_7C15)],
    }
}

impl World {
    fn pick(&self, t: usize, i: u64) -> usize {
        let o = &self.orders[t % 2];
        o[(i as usize) & (o.len() - 1)]
    }
}

fn benches(c: &mut Criterion) {
    let w = world();
    let threads = [1usize, 2];

    let mut g = c.benchmark_group("fetch_1k");
    g.throughput(Throughput::Elements(1));
    for &n in &threads {
        g.bench_function(BenchmarkId::new("sessync", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    black_box(w.store.fetch(&w.ids[w.pick(t, i)]).unwrap());
                })
            })
        });
        g.bench_function(BenchmarkId::new("mutex_map", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    let v = w.map.lock().unwrap().get(&w.names[w.pick(t, i)]).cloned();
                    black_box(v);
                })
            })
        });
        g.bench_function(BenchmarkId::new("actor", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    let id = w.names[w.pick(t, i)].clone();
                    black_box(w.actor.call(|r| Msg::Fetch(id, r)));
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("locked_update");
    g.throughput(Throughput::Elements(1));
    for &n in &threads {
        // The request flow from a raw Cookie header: begin with the lock, read a key, set
        // it, commit (one atomic patch that also releases the lock).
        g.bench_function(BenchmarkId::new("sessync_flow", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    let k = w.pick(t, i);
                    let mut s = w.flow.begin(Some(&w.headers[k]), true).unwrap();
                    let v: i64 = s.get_as("views").unwrap().unwrap_or(0);
                    s.set("views", &(v + 1)).unwrap();
                    black_box(s.commit().unwrap());
                })
            })
        });
        g.bench_function(BenchmarkId::new("mutex_map", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    mutex_update(&w.map, &w.names[w.pick(t, i)])
                })
            })
        });
        g.bench_function(BenchmarkId::new("actor", n), |b| {
            b.iter_custom(|iters| {
                run_threads(n, iters, |t, i| {
                    let id = w.names[w.pick(t, i)].clone();
                    black_box(w.actor.call(|r| Msg::Update(id, r)));
                })
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = store;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(store);
