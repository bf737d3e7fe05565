//! A worker process for the multi-process tests: counts through a shared store.
//!
//! ```text
//! remote_counter URL SESSION_ID N      N locked read-modify-writes of the key "n"
//! remote_counter URL SESSION_ID hold [LEASE_MS]
//!                                      takes the lock (lease 30 s unless given), prints its
//!                                      token, waits to be killed
//! ```

use std::time::Duration;

use sessync::{FlowOptions, SessionId, Sessions, Store};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 && !(args.len() == 4 && args[2] == "hold") {
        eprintln!("usage: remote_counter URL SESSION_ID (N|hold [LEASE_MS])");
        std::process::exit(2);
    }
    let store = Store::open(&args[0]).unwrap_or_else(|e| {
        eprintln!("cannot open {}: {e}", args[0]);
        std::process::exit(1);
    });
    let id = SessionId::parse(&args[1]).unwrap_or_else(|e| {
        eprintln!("bad id: {e}");
        std::process::exit(2);
    });
    if args[2] == "hold" {
        let lease = args
            .get(3)
            .map_or(Ok(30_000), |a| a.parse())
            .unwrap_or_else(|_| {
                eprintln!("LEASE_MS must be a number");
                std::process::exit(2);
            });
        let (token, _) = store
            .lock(&id, Duration::from_millis(lease), Duration::from_secs(10))
            .unwrap_or_else(|e| {
                eprintln!("lock: {e}");
                std::process::exit(1);
            });
        println!("{token}");
        loop {
            std::thread::park();
        }
    }
    let n: u64 = args[2].parse().unwrap_or_else(|_| {
        eprintln!("N must be a number");
        std::process::exit(2);
    });
    let sessions = Sessions::new(store, FlowOptions::default()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1);
    });
    let cookie = format!("sync_sess={id}");
    for _ in 0..n {
        let mut s = sessions.begin(Some(&cookie), true).unwrap_or_else(|e| {
            eprintln!("begin: {e}");
            std::process::exit(1);
        });
        let v: i64 = s.get_as("n").ok().flatten().unwrap_or(0);
        if let Err(e) = s.set("n", &(v + 1)).and_then(|_| s.commit().map(|_| ())) {
            eprintln!("commit: {e}");
            std::process::exit(1);
        }
    }
}
