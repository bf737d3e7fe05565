//! What the benchmarks share: the sessions, the access order, the thread runner.

#![allow(dead_code, reason = "each bench uses a part")]

use std::{
    thread,
    time::{Duration, Instant},
};

pub const SESSIONS: usize = 100_000;

/// A session of about 1 KiB, shaped like a real one (user, cart, preferences, flash).
pub fn session_json(i: usize) -> String {
    let json = serde_json::json!({
        "user": {"id": i, "name": format!("visitor-{i}"), "roles": ["reader", "buyer"]},
        "cart": (0..8).map(|n| serde_json::json!({"sku": format!("SKU-{n:05}"), "qty": n % 3 + 1, "price": 1999})).collect::<Vec<_>>(),
        "prefs": {"theme": "dark", "lang": "en-GB", "tz": "Europe/London", "currency": "GBP"},
        "csrf": "b0f5f1a6c8d94e7f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d",
        "views": 0,
        "flash": "x".repeat(300),
    });
    json.to_string()
}

/// Pseudo-random ids order, the same for every variant (xorshift).
pub fn order(n: usize, seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % SESSIONS as u64) as usize
        })
        .collect()
}

/// Runs `iters` operations split over `threads` threads; returns the wall time.
pub fn run_threads<F>(threads: usize, iters: u64, op: F) -> Duration
where
    F: Fn(usize, u64) + Sync,
{
    let per = iters.div_ceil(threads as u64);
    let start = Instant::now();
    thread::scope(|s| {
        for t in 0..threads {
            let op = &op;
            s.spawn(move || {
                for i in 0..per {
                    op(t, i);
                }
            });
        }
    });
    start.elapsed()
}
