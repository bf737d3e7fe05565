//! Load driver for `scripts/bench-remote.sh`: many threads of one process sharing one
//! `Store` opened on a sessyncd URL, so the remote backend's connection handling is what
//! is measured (compare `shared=0`, one request per pooled connection, with `shared=N`,
//! requests pipelined on N connections).
//!
//! ```text
//! remote_load URL THREADS SECONDS MODE   prints "MODE,THREADS,ops_per_s,p50_us,p99_us"
//!   MODE: fetch   Store::fetch of a 1 KiB session
//!         incr    Store::incr of one counter in it
//!         lock    Store::lock (wait allowed), then an increment that releases it
//! ```
//! The sessions (10,000) are written first, over the same URL.

use std::time::{Duration, Instant};

use sessync::{PatchOp, SessionData, SessionId, Store, WriteOpts};

const SESSIONS: usize = 10_000;

fn session_json(i: usize) -> String {
    serde_json::json!({
        "user": {"id": i, "name": format!("visitor-{i}")},
        "cart": (0..8).map(|n| serde_json::json!({"sku": format!("SKU-{n:05}"), "qty": 1, "price": 1999})).collect::<Vec<_>>(),
        "views": 0,
        "flash": "x".repeat(500),
    })
    .to_string()
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 4 {
        eprintln!("usage: remote_load URL THREADS SECONDS fetch|incr|lock");
        std::process::exit(2);
    }
    let (url, mode) = (&a[0], a[3].as_str());
    let threads: usize = a[1].parse().expect("THREADS is a number");
    let secs: f64 = a[2].parse().expect("SECONDS is a number");
    let store = Store::open(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let ids: Vec<SessionId> = (0..SESSIONS)
        .map(|i| SessionId::parse(&format!("remote-load-{i:020}")).expect("a valid id"))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let data = SessionData::from_json(&session_json(i)).expect("valid JSON");
        store.write(id, data, WriteOpts::default()).expect("fill");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let lat: Vec<Vec<u32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (store, ids) = (&store, &ids);
                s.spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ ((t as u64 + 1) * 7919);
                    let mut lat = Vec::new();
                    while Instant::now() < deadline {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let id = &ids[(rng % SESSIONS as u64) as usize];
                        let t0 = Instant::now();
                        match mode {
                            "fetch" => {
                                store.fetch(id).expect("fetch").expect("present");
                            }
                            "incr" => {
                                store
                                    .incr(id, "views", 1, WriteOpts::default())
                                    .expect("incr");
                            }
                            "lock" => {
                                let (token, _rec) = store
                                    .lock(id, Duration::from_secs(30), Duration::from_secs(5))
                                    .expect("lock");
                                let opts = WriteOpts {
                                    token: Some(token),
                                    release: true,
                                    ..WriteOpts::default()
                                };
                                store
                                    .apply(id, vec![PatchOp::Incr("views".into(), 1)], opts)
                                    .expect("patch");
                            }
                            other => panic!("unknown mode {other}"),
                        }
                        lat.push(t0.elapsed().as_micros() as u32);
                    }
                    lat
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("a load thread"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut all: Vec<u32> = lat.into_iter().flatten().collect();
    all.sort_unstable();
    let q = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "{mode},{threads},{:.0},{},{}",
        all.len() as f64 / elapsed,
        q(0.5),
        q(0.99)
    );
}
