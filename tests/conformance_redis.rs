//! The conformance suite, unchanged, against a real redis-server (the store's code as a
//! function library on shared connections and on pooled ones, and as a script run by
//! EVALSHA), a real 3-node Redis Cluster, TLS and
//! the connect-redis layout. Each case gets its own key prefix (a fresh, empty store) and a manual clock,
//! which the scripts follow instead of the server's.

#![cfg(feature = "redis")]

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
fn standalone_redis_without_shared_connections_honours_the_contract() {
    let server = redis::Server::start(&[]);
    conformance::run_all(&OnRedis {
        base: server.url("shared=0&"),
        next: AtomicUsize::new(0),
    });
}

#[test]
fn standalone_redis_with_evalsha_honours_the_contract() {
    let server = redis::Server::start(&[]);
    conformance::run_all(&OnRedis {
        base: server.url("script=eval&"),
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

#[test]
fn redis_over_tls_honours_the_contract() {
    let (server, ca) = redis::Server::start_tls();
    conformance::run_all(&OnRedis {
        base: format!("rediss://127.0.0.1:{}/?ca={}&", server.port, ca.display()),
        next: AtomicUsize::new(0),
    });
}

#[test]
fn tls_with_a_ca_that_did_not_sign_the_server_is_a_clear_error() {
    let (server, _ca) = redis::Server::start_tls();
    let (_other, other_ca) = redis::Server::start_tls();
    let url = format!(
        "rediss://127.0.0.1:{}/?ca={}",
        server.port,
        other_ca.display()
    );
    match Store::open(&url) {
        Err(sessync::Error::Backend(m)) => assert!(m.contains("cannot reach redis at"), "{m}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    // Plain text on the TLS port is no answer either.
    match Store::open(&format!("redis://127.0.0.1:{}/?timeout=2s", server.port)) {
        Err(sessync::Error::Backend(_)) => {}
        other => panic!("expected a backend error, got {other:?}"),
    }
}
