//! Load driver for `scripts/bench-daemon.sh`: the session update against sessyncd and
//! against Redis, with the same client code, over TCP.
//!
//! ```text
//! daemon_load fill-sessync ADDR          100,000 sessions of ~1 KiB (SESS.WRITE)
//! daemon_load fill-redis ADDR            the same as sess:<id> keys with a TTL (SET EX)
//! daemon_load MODE ADDR CLIENTS SECONDS  run MODE; prints "MODE,CLIENTS,ops_per_s,p50_us,p99_us"
//!   MODE: sessync-incr   SESS.INCR id views 1                  (1 round trip)
//!         sessync-lock   SESS.LOCK, then SESS.APPLY … RELEASE  (2 round trips, any change)
//!         phpredis       SET lock NX PX, GET, SET … EX, DEL     (4 round trips)
//!         lua            EVALSHA of a GET/decode/incr/encode/SET script (1 round trip)
//! daemon_load fill-store URL             100,000 sessions through a sessync Store (any URL)
//! daemon_load MODE URL CLIENTS SECONDS   the same through a sessync Store (redis://…):
//!   MODE: store-incr     Store::incr (one script call)
//!         store-lock     Store::lock, then Store::apply … release (two script calls)
//!         store-fetch    Store::fetch (one script call, the whole record back)
//! ```
//!
//! With `LAT_DETAIL` set in the environment, a run also prints to stderr the mean, p90,
//! p95, p99.9 and longest latency, and the share of the time spent in calls over 300 µs
//! (where a throughput that moves from run to run while the p50 does not comes from).

use sessync::{PatchOp, RawJson, SessionData, SessionId, Store, WriteOpts};
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

const SESSIONS: usize = 100_000;

fn id(i: usize) -> String {
    format!("bench-session-{i:018}")
}

fn session_json(i: usize) -> String {
    serde_json::json!({
        "user": {"id": i, "name": format!("visitor-{i}")},
        "cart": (0..8).map(|n| serde_json::json!({"sku": format!("SKU-{n:05}"), "qty": 1, "price": 1999})).collect::<Vec<_>>(),
        "views": 0,
        "flash": "x".repeat(500),
    })
    .to_string()
}

struct Conn {
    r: BufReader<TcpStream>,
}

#[derive(Debug)]
enum R {
    Ok,
    Err(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Arr(Vec<R>),
}

impl Conn {
    fn new(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        Conn {
            r: BufReader::new(s),
        }
    }
    fn send(&mut self, args: &[&[u8]]) {
        let mut b = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&b).unwrap();
    }
    fn read(&mut self) -> R {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        let (k, rest) = l.split_at(1);
        match k {
            "+" => R::Ok,
            "-" => R::Err(rest.into()),
            ":" => R::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return R::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                self.r.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                R::Bulk(Some(b))
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                R::Arr((0..n.max(0)).map(|_| self.read()).collect())
            }
            _ => panic!("bad reply {l}"),
        }
    }
    fn call(&mut self, args: &[&[u8]]) -> R {
        self.send(args);
        self.read()
    }
}

fn bulk(r: R) -> Vec<u8> {
    match r {
        R::Bulk(Some(b)) => b,
        other => panic!("expected a bulk, got {other:?}"),
    }
}

fn bump(json: &[u8]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(json).unwrap();
    let n = v["views"].as_i64().unwrap_or(0);
    v["views"] = (n + 1).into();
    serde_json::to_vec(&v).unwrap()
}

const LUA: &str = "local v = redis.call('GET', KEYS[1]) if not v then return nil end \
    local s = cjson.decode(v) s.views = (s.views or 0) + 1 \
    redis.call('SET', KEYS[1], cjson.encode(s), 'EX', 1800) return s.views";

fn fill(addr: &str, redis: bool) {
    let mut c = Conn::new(addr);
    for chunk in (0..SESSIONS).collect::<Vec<_>>().chunks(1000) {
        for &i in chunk {
            let (k, j) = (id(i), session_json(i));
            if redis {
                let key = format!("sess:{k}");
                c.send(&[b"SET", key.as_bytes(), j.as_bytes(), b"EX", b"1800"]);
            } else {
                c.send(&[b"SESS.WRITE", k.as_bytes(), j.as_bytes()]);
            }
        }
        for _ in chunk {
            if let R::Err(e) = c.read() {
                panic!("fill: {e}");
            }
        }
    }
}

fn fill_store(url: &str) {
    let store = Store::open(url).expect("store URL");
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = &store;
            s.spawn(move || {
                for i in (t..SESSIONS).step_by(4) {
                    let sid = SessionId::parse(&id(i)).unwrap();
                    let data = SessionData::from_json(&session_json(i)).unwrap();
                    store.write(&sid, data, WriteOpts::default()).expect("fill");
                }
            });
        }
    });
}

fn one_store(store: &Store, mode: &str, i: usize) {
    let sid = SessionId::parse(&id(i)).unwrap();
    match mode {
        "store-incr" => {
            store
                .incr(&sid, "views", 1, WriteOpts::default())
                .expect("incr");
        }
        "store-fetch" => {
            store.fetch(&sid).expect("fetch").expect("a filled session");
        }
        "store-lock" => {
            let (token, rec) = store
                .lock(&sid, Duration::from_secs(30), Duration::from_secs(5))
                .expect("lock");
            let n = rec.data.get("views").and_then(|v| v.as_i64()).unwrap_or(0) + 1;
            let opts = WriteOpts {
                token: Some(token),
                release: true,
                ..WriteOpts::default()
            };
            store
                .apply(
                    &sid,
                    vec![PatchOp::Set("views".into(), RawJson::from_i64(n))],
                    opts,
                )
                .expect("apply");
        }
        _ => panic!("unknown mode {mode}"),
    }
}

fn one(c: &mut Conn, mode: &str, i: usize, sha: &str, rng: &mut u64) {
    let k = id(i);
    match mode {
        "sessync-incr" => {
            let r = c.call(&[b"SESS.INCR", k.as_bytes(), b"views", b"1"]);
            assert!(matches!(r, R::Int(_)), "{r:?}");
        }
        "sessync-lock" => {
            let R::Arr(mut v) = c.call(&[b"SESS.LOCK", k.as_bytes(), b"30000", b"5000"]) else {
                panic!("lock failed")
            };
            let R::Arr(mut rec) = v.pop().unwrap() else {
                panic!()
            };
            let R::Int(token) = v[0] else { panic!() };
            let data = bulk(rec.swap_remove(1));
            let d: serde_json::Value = serde_json::from_slice(&data).unwrap();
            let n = d["views"].as_i64().unwrap_or(0) + 1;
            let ops = format!(r#"[["set","views",{n}]]"#);
            let t = token.to_string();
            let r = c.call(&[
                b"SESS.APPLY",
                k.as_bytes(),
                ops.as_bytes(),
                b"TOKEN",
                t.as_bytes(),
                b"RELEASE",
            ]);
            assert!(matches!(r, R::Arr(_)), "{r:?}");
        }
        "phpredis" => {
            let lock = format!("lock:{k}");
            *rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1);
            let me = rng.to_string();
            while !matches!(
                c.call(&[
                    b"SET",
                    lock.as_bytes(),
                    me.as_bytes(),
                    b"NX",
                    b"PX",
                    b"30000"
                ]),
                R::Ok
            ) {
                std::thread::yield_now();
            }
            let key = format!("sess:{k}");
            let data = bulk(c.call(&[b"GET", key.as_bytes()]));
            let next = bump(&data);
            c.call(&[b"SET", key.as_bytes(), &next, b"EX", b"1800"]);
            c.call(&[b"DEL", lock.as_bytes()]);
        }
        "lua" => {
            let key = format!("sess:{k}");
            let r = c.call(&[b"EVALSHA", sha.as_bytes(), b"1", key.as_bytes()]);
            assert!(matches!(r, R::Int(_)), "{r:?}");
        }
        _ => panic!("unknown mode {mode}"),
    }
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a[0].as_str() {
        "fill-sessync" => return fill(&a[1], false),
        "fill-redis" => return fill(&a[1], true),
        "fill-store" => return fill_store(&a[1]),
        _ => {}
    }
    let (mode, addr) = (a[0].clone(), a[1].clone());
    let clients: usize = a[2].parse().unwrap();
    let secs: f64 = a[3].parse().unwrap();
    let sha = if mode == "lua" {
        match Conn::new(&addr).call(&[b"SCRIPT", b"LOAD", LUA.as_bytes()]) {
            R::Bulk(Some(s)) => String::from_utf8(s).unwrap(),
            other => panic!("SCRIPT LOAD: {other:?}"),
        }
    } else {
        String::new()
    };
    let store = mode
        .starts_with("store-")
        .then(|| Store::open(&addr).expect("store URL"));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let lat: Vec<Vec<u32>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|t| {
                let (mode, addr, sha, store) = (&mode, &addr, &sha, &store);
                s.spawn(move || {
                    let mut c = store.is_none().then(|| Conn::new(addr));
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 * 7919);
                    let mut lat = Vec::new();
                    while Instant::now() < deadline {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let i = (rng % SESSIONS as u64) as usize;
                        let t0 = Instant::now();
                        match (&mut c, store) {
                            (Some(c), _) => one(c, mode, i, sha, &mut rng),
                            (None, Some(st)) => one_store(st, mode, i),
                            (None, None) => unreachable!(),
                        }
                        lat.push(t0.elapsed().as_micros() as u32);
                    }
                    lat
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut all: Vec<u32> = lat.into_iter().flatten().collect();
    all.sort_unstable();
    let q = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    if std::env::var_os("LAT_DETAIL").is_some() {
        let mean = all.iter().map(|&x| x as f64).sum::<f64>() / all.len() as f64;
        let slow: u64 = all.iter().filter(|&&x| x > 300).map(|&x| x as u64).sum();
        let total: u64 = all.iter().map(|&x| x as u64).sum();
        eprintln!(
            "{mode}: mean {mean:.0} p90 {} p95 {} p99.9 {} max {} share of time in calls >300us {:.0}%",
            q(0.9),
            q(0.95),
            q(0.999),
            all[all.len() - 1],
            100.0 * slow as f64 / total as f64
        );
    }
    println!(
        "{mode},{clients},{:.0},{},{}",
        all.len() as f64 / elapsed,
        q(0.5),
        q(0.99)
    );
}
