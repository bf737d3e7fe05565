//! Worker processes sharing sessions through sessyncd: no lost update across processes,
//! and a lock holder killed with SIGKILL does not stop the others.

#![cfg(feature = "daemon")]

mod daemon;
mod worker;

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    process::{Command, Stdio},
    time::Duration,
};

use daemon::start;
use sessync::{Error, SessionData, SessionId, Store, WriteOpts};

#[test]
fn four_processes_times_ten_thousand_locked_increments_count_exactly() {
    let d = start(&[]);
    // Two over the Unix socket, two over TCP.
    let (unix, tcp) = (d.url_unix(), d.url_tcp());
    worker::count_in_processes(&[unix.clone(), tcp.clone(), unix, tcp]);
}

#[test]
fn a_holder_killed_with_sigkill_loses_its_lock_after_the_lease() {
    let d = start(&["--manual-clock"]);
    let store = Store::open(&d.url_unix()).unwrap();
    let id = SessionId::generate();
    store
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    let mut holder = Command::new(worker::remote_counter())
        .args([d.url_unix().as_str(), id.as_str(), "hold"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let dead_token: u64 = line.trim().parse().unwrap();
    holder.kill().unwrap(); // SIGKILL: no unlock, no goodbye
    holder.wait().unwrap();

    // Another worker asks for the lock; it is still held by the dead process's lease.
    let s2 = store.clone();
    let waiter =
        std::thread::spawn(move || s2.lock(&id, Duration::from_secs(30), Duration::from_secs(120)));
    while store.stats().lock_waits < 1 {}
    // The lease (30 s) runs out on the daemon's clock.
    let mut c = UnixStream::connect(&d.sock).unwrap();
    c.write_all(b"*2\r\n$13\r\nDEBUG.ADVANCE\r\n$5\r\n31000\r\n")
        .unwrap();
    let mut ok = String::new();
    BufReader::new(&c).read_line(&mut ok).unwrap();
    assert_eq!(ok, "+OK\r\n");

    let (token, _) = waiter.join().unwrap().unwrap();
    assert!(token > dead_token);
    let stale = store.write(&id, SessionData::new(), WriteOpts::token(dead_token));
    assert_eq!(stale, Err(Error::StaleToken));
    store.unlock(&id, token).unwrap();
}

#[test]
fn a_daemon_that_is_down_is_a_clear_error_not_a_hang() {
    let d = start(&[]);
    let url = d.url_unix();
    let store = Store::open(&url).unwrap();
    drop(d);
    let id = SessionId::generate();
    match store.fetch(&id) {
        Err(Error::Backend(m)) => assert!(m.contains("sessyncd"), "{m}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
    match Store::open(&url) {
        Err(Error::Backend(m)) => assert!(m.contains("cannot reach sessyncd"), "{m}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}
