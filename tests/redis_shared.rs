//! The Redis backend's shared connections (`shared`, default 1), on a real redis-server:
//! the calls of many threads go pipelined over one connection and lose nothing, the
//! connection is set up as the URL says (password, database), and a server that
//! restarted while the store was idle is not seen by the next call.

#![cfg(feature = "redis")]

mod redis;

use std::{process::Command, sync::Arc};

use sessync::{Error, SessionData, SessionId, Store, WriteOpts};

const THREADS: usize = 8;
const EACH: i64 = 300;

/// How many client connections the server has, this one included.
fn clients(port: u16) -> usize {
    let list = redis::command(port, &["CLIENT", "LIST"]).expect("CLIENT LIST");
    list.lines().filter(|l| l.contains("addr=")).count()
}

#[test]
fn the_calls_of_many_threads_share_one_connection_and_lose_nothing() {
    let server = redis::Server::start(&[]);
    let store = Arc::new(Store::open(&server.url("ttl=10m")).unwrap());
    let one = SessionId::generate();
    store
        .write(&one, SessionData::new(), WriteOpts::default())
        .unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let own = SessionId::generate();
                for i in 1..=EACH {
                    store.incr(&one, "n", 1, WriteOpts::default()).unwrap();
                    assert_eq!(store.incr(&own, "n", 1, WriteOpts::create()).unwrap(), i);
                }
                let r = store.fetch(&own).unwrap().expect("the thread's session");
                assert_eq!(r.data.get("n").and_then(|v| v.as_i64()), Some(EACH));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = store.fetch(&one).unwrap().expect("the shared session");
    let total = THREADS as i64 * EACH;
    assert_eq!(r.data.get("n").and_then(|v| v.as_i64()), Some(total));
    // One shared connection, the pooled one the store opened with, and this one.
    assert!(
        clients(server.port) <= 3,
        "{} connections",
        clients(server.port)
    );

    // Without shared connections, the same load takes a connection per thread.
    let pooled = Arc::new(Store::open(&server.url("ttl=10m&shared=0&prefix=p:")).unwrap());
    let gate = Arc::new(std::sync::Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (store, gate) = (pooled.clone(), gate.clone());
            std::thread::spawn(move || {
                let own = SessionId::generate();
                gate.wait();
                for i in 1..=EACH {
                    assert_eq!(store.incr(&own, "n", 1, WriteOpts::create()).unwrap(), i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        clients(server.port) > 3,
        "{} connections",
        clients(server.port)
    );
}

#[test]
fn shared_connections_use_the_password_and_the_database_of_the_url() {
    let server = redis::Server::start(&[]);
    redis::command(server.port, &["CONFIG", "SET", "requirepass", "s3cret"]).unwrap();
    let url = format!("redis://:s3cret@127.0.0.1:{}/3?ttl=10m", server.port);
    let store = Store::open(&url).unwrap();
    let id = SessionId::generate();
    assert_eq!(store.incr(&id, "n", 5, WriteOpts::create()).unwrap(), 5);
    assert_eq!(store.incr(&id, "n", 1, WriteOpts::default()).unwrap(), 6);
    let size = |db: &str| {
        let out = Command::new("redis-cli")
            .args([
                "-p",
                &server.port.to_string(),
                "-a",
                "s3cret",
                "--no-auth-warning",
            ])
            .args(["-n", db, "DBSIZE"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(size("0"), "0");
    assert_ne!(size("3"), "0");

    // A wrong password: the store does not open, and says why.
    let wrong = format!("redis://:nope@127.0.0.1:{}/3", server.port);
    match Store::open(&wrong) {
        Err(Error::Backend(m)) => assert!(m.contains("redis at 127.0.0.1"), "{m}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[test]
fn a_restart_while_the_store_was_idle_is_not_seen_by_the_next_call() {
    let mut server = redis::Server::start(&[]);
    let store = Store::open(&server.url("ttl=10m")).unwrap();
    let id = SessionId::generate();
    assert_eq!(store.incr(&id, "n", 1, WriteOpts::create()).unwrap(), 1);
    // No persistence: the sessions and the store's function library are gone.
    server.restart();
    assert_eq!(store.fetch(&id).unwrap(), None);
    assert_eq!(store.incr(&id, "n", 1, WriteOpts::create()).unwrap(), 1);
    assert_eq!(store.incr(&id, "n", 1, WriteOpts::default()).unwrap(), 2);
}
