//! Load driver for `scripts/bench-memory.sh`: the same sessions of exactly 1 KiB of
//! compact JSON, written into each store whose memory per session the script measures.
//!
//! ```text
//! memory_load mem N [pad]        opens mem:// in this process, writes N sessions, then
//!                                writes each again whole (replacing its data); prints
//!                                "mem,N,rss_before_kib,rss_after_kib,heap_bytes,allocations,
//!                                rss_after_rewrite_kib,heap_bytes,allocations" (heap: live
//!                                bytes asked of the allocator, minus before); with `pad`,
//!                                each JSON is sent with one trailing space
//! memory_load resp sessync N     prints the RESP of N SESS.WRITE id json (for redis-cli --pipe)
//! memory_load resp redis N       prints the RESP of N SET sess:<id> json EX 1800
//! memory_load store URL N THREADS  writes N sessions through sessync's Store (e.g. redis://:
//!                                the Redis backend's own layout)
//! memory_load sizes              the layout of one session, measured: the heap bytes of one
//!                                SessionData made from the JSON (from_json, from_json of the
//!                                JSON and a space, from_value), and the public types' sizes
//! ```
//!
//! Session `i` has the id `memory-session-<i, 24 digits>` (39 characters: a generated
//! id has 32) and the data `session_json(i)`: a user, an 8-item cart, a view count and a
//! flash message padded so that the compact text is 1024 bytes.

#[path = "common/mod.rs"]
mod common;

use sessync::{Record, SessionData, SessionId, Store, WriteOpts};
use std::{
    alloc::{GlobalAlloc, Layout, System},
    io::{BufWriter, Write},
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
};

/// The system allocator (glibc's malloc, as in sessyncd), counting what is live.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Relaxed);
        LIVE_ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
        LIVE_ALLOCS.fetch_sub(1, Relaxed);
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
        // SAFETY: the caller's contract for `realloc` is `System.realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const SIZE: usize = 1024;

fn id(i: usize) -> String {
    format!("memory-session-{i:024}")
}

/// Compact JSON of exactly `SIZE` bytes, keys in order (as sessync keeps them).
fn session_json(i: usize) -> String {
    let short = common::session_json(i as u64, 0).len();
    let s = common::session_json(i as u64, SIZE - short);
    assert_eq!(s.len(), SIZE);
    s
}

fn rss_kib() -> u64 {
    common::rss_kib("self")
}

fn sid(i: usize) -> SessionId {
    SessionId::parse(&id(i)).expect("a valid id")
}

fn mem(n: usize, pad: bool) {
    let store = Store::open("mem://?max_sessions=0").expect("mem://");
    // The first write sets up what a store sets up once (the expiry thread's first pass).
    store
        .write(&sid(n), SessionData::new(), WriteOpts::default())
        .expect("write");
    store.destroy(&sid(n)).expect("destroy");
    let at = || {
        (
            rss_kib(),
            LIVE_BYTES.load(Relaxed),
            LIVE_ALLOCS.load(Relaxed),
        )
    };
    let fill = || {
        for i in 0..n {
            let mut json = session_json(i);
            if pad {
                json.push(' ');
            }
            let data = SessionData::from_json(&json).expect("json");
            store
                .write(&sid(i), data, WriteOpts::default())
                .expect("write");
        }
    };
    let (rss0, heap0, allocs0) = at();
    fill();
    let (rss1, heap1, allocs1) = at();
    // Every session written again, whole: a write that replaces a live session's data.
    fill();
    let (rss2, heap2, allocs2) = at();
    let check: Option<Record> = store.fetch(&sid(n / 2)).expect("fetch");
    assert_eq!(
        check.expect("a written session").data.to_json(),
        session_json(n / 2)
    );
    println!(
        "mem,{n},{rss0},{rss1},{},{},{rss2},{},{}",
        heap1 - heap0,
        allocs1 - allocs0,
        heap2 - heap0,
        allocs2 - allocs0
    );
}

fn resp(kind: &str, n: usize) {
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut put = |args: &[&[u8]]| {
        write!(out, "*{}\r\n", args.len()).expect("stdout");
        for a in args {
            write!(out, "${}\r\n", a.len()).expect("stdout");
            out.write_all(a).expect("stdout");
            out.write_all(b"\r\n").expect("stdout");
        }
    };
    for i in 0..n {
        let (k, j) = (id(i), session_json(i));
        match kind {
            "sessync" => put(&[b"SESS.WRITE", k.as_bytes(), j.as_bytes()]),
            "redis" => put(&[
                b"SET",
                format!("sess:{k}").as_bytes(),
                j.as_bytes(),
                b"EX",
                b"1800",
            ]),
            _ => panic!("resp sessync|redis, not {kind}"),
        }
    }
    out.flush().expect("stdout");
}

fn store(url: &str, n: usize, threads: usize) {
    let store = Store::open(url).expect("store URL");
    std::thread::scope(|s| {
        for t in 0..threads {
            let store = &store;
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let data = SessionData::from_json(&session_json(i)).expect("json");
                    store
                        .write(&sid(i), data, WriteOpts::default())
                        .expect("write");
                }
            });
        }
    });
}

fn sizes() {
    let json = session_json(0);
    let (b0, a0) = (LIVE_BYTES.load(Relaxed), LIVE_ALLOCS.load(Relaxed));
    let data = SessionData::from_json(&json).expect("json");
    let (b1, a1) = (LIVE_BYTES.load(Relaxed), LIVE_ALLOCS.load(Relaxed));
    let padded = SessionData::from_json(&format!("{json} ")).expect("json");
    let (b2, a2) = (LIVE_BYTES.load(Relaxed), LIVE_ALLOCS.load(Relaxed));
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    let (b3, a3) = (LIVE_BYTES.load(Relaxed), LIVE_ALLOCS.load(Relaxed));
    let from_value = SessionData::from_value(&value).expect("an object");
    let (b4, a4) = (LIVE_BYTES.load(Relaxed), LIVE_ALLOCS.load(Relaxed));
    println!(
        "json_bytes,{},members,{}",
        json.len(),
        data.to_value().as_object().map_or(0, |o| o.len())
    );
    println!("session_data_heap,{},allocations,{}", b1 - b0, a1 - a0);
    println!(
        "session_data_heap_padded,{},allocations,{}",
        b2 - b1,
        a2 - a1
    );
    println!(
        "session_data_heap_from_value,{},allocations,{}",
        b4 - b3,
        a4 - a3
    );
    println!(
        "size_of,SessionId,{},SessionData,{}",
        std::mem::size_of::<SessionId>(),
        std::mem::size_of::<SessionData>()
    );
    drop((data, padded, value, from_value));
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let n = |i: usize| -> usize { a[i].parse().expect("a count") };
    match a.first().map(String::as_str) {
        Some("mem") => mem(n(1), a.get(2).is_some_and(|p| p == "pad")),
        Some("resp") => resp(&a[1], n(2)),
        Some("store") => store(&a[1], n(2), n(3)),
        Some("sizes") => sizes(),
        _ => {
            eprintln!(
                "usage: memory_load mem N [pad] | resp sessync|redis N | store URL N THREADS | sizes"
            );
            std::process::exit(2);
        }
    }
}
