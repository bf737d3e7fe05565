//! The conformance suite, unchanged, against a real redis-server and a real 3-node Redis
//! Cluster. Each case gets its own key prefix (a fresh, empty store) and a manual clock,
//! which the scripts follow instead of the server's.

mod conformance;
mod redis;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use sessync::{ManualClock, Store};

struct OnRedis {
    base: String,
    next: AtomicUsize,
}

struct Harness {
    store: Store,
    clock: Arc<ManualClock>,
}

impl conformance::Harness for Harness {
    fn store(&self) -> &Store {
        &self.store
    }
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

impl conformance::Backend for OnRedis {
    fn open(&self, options: &str) -> Box<dyn conformance::Harness> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let clock = ManualClock::new(1_700_000_000_000);
        let url = format!("{}{options}&prefix=case{n}:", self.base);
        let store = Store::open_with_clock(&url, clock.clone()).expect("redis is up");
        Box::new(Harness { store, clock })
    }
}

#[test]
fn standalone_redis_honours_the_contract() {
    let server = redis::Server::start(&[]);
    conformance::run_all(&OnRedis {
        base: server.url(""),
        next: AtomicUsize::new(0),
    });
}

#[test]
fn redis_cluster_honours_the_contract() {
    let cluster = redis::Cluster::start();
    conformance::run_all(&OnRedis {
        base: cluster.url(""),
        next: AtomicUsize::new(0),
    });
}

#[test]
fn the_connect_redis_layout_honours_the_contract() {
    let server = redis::Server::start(&[]);
    conformance::run_all(&OnRedis {
        base: server.url("layout=connect-redis&"),
        next: AtomicUsize::new(0),
    });
}
