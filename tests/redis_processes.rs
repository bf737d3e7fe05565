//! Worker processes sharing sessions through a real redis-server and a real 3-node
//! Cluster: no lost update across processes, a lock holder killed with SIGKILL does not
//! stop the others, and a Redis that restarts or drops connections gives clear errors,
//! then recovery.

#![cfg(feature = "redis")]

mod redis;
mod worker;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use sessync::{Error, SessionData, SessionId, Store, WriteOpts};

#[test]
fn four_processes_times_ten_thousand_locked_increments_on_redis() {
    let server = redis::Server::start(&[]);
    worker::count_in_processes(&vec![server.url("ttl=10m"); 4]);
}

#[test]
fn four_processes_times_ten_thousand_locked_increments_on_a_cluster() {
    let cluster = redis::Cluster::start();
    worker::count_in_processes(&vec![cluster.url("ttl=10m"); 4]);
}

/// A holder with a 1.5 s lease is killed; a waiter (willing to wait 2 min) gets the lock
/// once the lease ends on the server's clock, and the dead holder's token is refused.
fn killed_holder(url: &str) {
    let store = Store::open(url).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    let mut holder = Command::new(worker::remote_counter())
        .args([url, id.as_str(), "hold", "1500"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let dead_token: u64 = line.trim().parse().unwrap();
    holder.kill().unwrap(); // SIGKILL: no unlock
    holder.wait().unwrap();
    assert_eq!(
        store
            .lock(&id, Duration::from_secs(30), Duration::ZERO)
            .unwrap_err(),
        Error::LockTimeout,
        "the dead holder's lease still holds"
    );
    let (token, _) = store
        .lock(&id, Duration::from_secs(30), Duration::from_secs(120))
        .unwrap();
    assert!(token > dead_token);
    let stale = store.write(&id, SessionData::new(), WriteOpts::token(dead_token));
    assert_eq!(stale, Err(Error::StaleToken));
    store.unlock(&id, token).unwrap();
}

#[test]
fn a_holder_killed_with_sigkill_loses_its_lock_after_the_lease_on_redis() {
    let server = redis::Server::start(&[]);
    killed_holder(&server.url(""));
}

#[test]
fn a_holder_killed_with_sigkill_loses_its_lock_after_the_lease_on_a_cluster() {
    let cluster = redis::Cluster::start();
    killed_holder(&cluster.url(""));
}

#[test]
fn a_redis_restart_gives_clear_errors_then_recovery() {
    let mut server = redis::Server::start(&[]);
    let store = Store::open(&server.url("timeout=2s")).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    server.kill();
    let t = Instant::now();
    match store.fetch(&id) {
        Err(Error::Backend(m)) => assert!(m.contains("redis at 127.0.0.1"), "{m}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "a down server must not hang the caller"
    );
    server.restart();
    // The restarted server is empty (no persistence): the session is gone, and the
    // store works again without being reopened.
    assert_eq!(store.fetch(&id).unwrap(), None);
    assert_eq!(store.incr(&id, "n", 1, WriteOpts::create()).unwrap(), 1);
}

#[test]
fn dropped_connections_give_at_most_one_error_each_then_recovery() {
    let server = redis::Server::start(&[]);
    let store = Store::open(&server.url("")).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    // Every client connection of the server is cut, as a proxy or failover would.
    let killed = redis::command(server.port, &["CLIENT", "KILL", "TYPE", "normal"]);
    assert!(killed.is_some_and(|r| r.starts_with(':')));
    let mut errors = 0;
    let mut n = 0;
    for _ in 0..5 {
        match store.incr(&id, "n", 1, WriteOpts::default()) {
            Ok(v) => n = v,
            Err(Error::Backend(_)) => errors += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(errors <= 1, "{errors} errors after one cut");
    assert_eq!(n, 5 - errors as i64);
}
