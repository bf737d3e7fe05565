//! The remote backend's connections: callers pipelined on a few shared connections, lock
//! waits on their own, a lost connection failing every request in flight, and reconnects
//! with backoff after the daemon went away.

#![cfg(feature = "daemon")]

mod daemon;

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::{UnixListener, UnixStream},
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use daemon::{Daemon, TempDir, start};
use sessync::{Error, SessionData, SessionId, Store, WriteOpts};

/// A raw RESP request and its reply's first line (enough for INFO and STATS fields).
fn info_field(d: &Daemon, field: &str) -> u64 {
    let mut s = UnixStream::connect(&d.sock).unwrap();
    s.write_all(b"*1\r\n$4\r\nINFO\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut len = String::new();
    r.read_line(&mut len).unwrap();
    let n: usize = len.trim_start_matches('$').trim().parse().unwrap();
    let mut body = vec![0; n + 2];
    r.read_exact(&mut body).unwrap();
    let body = String::from_utf8(body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {body}"))
        .trim()
        .parse()
        .unwrap()
}

fn new_session(store: &Store) -> SessionId {
    let id = SessionId::generate();
    store
        .write(
            &id,
            SessionData::from_json(r#"{"n":0}"#).unwrap(),
            WriteOpts::default(),
        )
        .unwrap();
    id
}

#[test]
fn eight_threads_share_two_connections_and_lose_no_increment() {
    let d = start(&[]);
    for (url, conns) in [
        (format!("{}?shared=2", d.url_unix()), 2),
        (format!("{}?shared=0&pool=8", d.url_unix()), 8),
        (format!("{}?shared=2", d.url_tcp()), 2),
    ] {
        let store = Store::open(&url).unwrap();
        let id = new_session(&store);
        let go = Arc::new(Barrier::new(8));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (store, id, go) = (&store, &id, go.clone());
                s.spawn(move || {
                    go.wait();
                    for _ in 0..500 {
                        store.incr(id, "n", 1, WriteOpts::default()).unwrap();
                    }
                });
            }
        });
        let rec = store.fetch(&id).unwrap().unwrap();
        assert_eq!(rec.data.get("n").unwrap().as_i64(), Some(4000), "{url}");
        // This store's connections, plus the one asking.
        assert!(info_field(&d, "connected_clients") <= conns + 1, "{url}");
        drop(store);
    }
}

#[test]
fn a_waiting_lock_does_not_stall_the_shared_connection() {
    let d = start(&[]);
    // One shared connection: a lock wait on it would hold up everything behind it.
    let store = Store::open(&format!("{}?shared=1", d.url_unix())).unwrap();
    let id = new_session(&store);
    let other = new_session(&store);
    let (token, _) = store
        .lock(&id, Duration::from_secs(60), Duration::ZERO)
        .unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            store
                .lock(&id, Duration::from_secs(60), Duration::from_secs(60))
                .unwrap()
                .0
        });
        while store.stats().lock_waits < 1 {
            std::thread::yield_now();
        }
        // The waiter is queued on the daemon; requests keep flowing meanwhile.
        for i in 1..=100 {
            assert_eq!(store.incr(&other, "n", 1, WriteOpts::default()).unwrap(), i);
        }
        store.unlock(&id, token).unwrap();
        assert_eq!(waiter.join().unwrap(), token + 1);
    });
}

/// A stand-in daemon on a Unix socket that answers as the test says.
fn fake_daemon() -> (TempDir, std::path::PathBuf, UnixListener) {
    let dir = TempDir::new("fake-daemon");
    let path = dir.0.join("fake.sock");
    let l = UnixListener::bind(&path).unwrap();
    (dir, path, l)
}

/// Reads requests from `s` until `n` have arrived (each a RESP array of bulk strings).
fn read_requests(r: &mut BufReader<UnixStream>, n: usize) {
    for _ in 0..n {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let items: usize = line.trim().trim_start_matches('*').parse().unwrap();
        for _ in 0..items * 2 {
            line.clear();
            r.read_line(&mut line).unwrap();
        }
    }
}

#[test]
fn a_lost_connection_fails_every_request_in_flight_and_is_replaced() {
    let (_dir, path, listener) = fake_daemon();
    let url = format!("unix://{}?shared=1&timeout=60s", path.display());
    let server = std::thread::spawn(move || {
        // The first connection: take four requests, answer none, hang up.
        let (first, _) = listener.accept().unwrap();
        let mut r = BufReader::new(first);
        read_requests(&mut r, 4);
        drop(r);
        // The next one answers a fetch: no such session.
        let (second, _) = listener.accept().unwrap();
        let mut r = BufReader::new(second);
        read_requests(&mut r, 1);
        r.get_mut().write_all(b"$-1\r\n").unwrap();
        read_requests(&mut r, 0);
        r
    });
    let store = Store::open(&url).unwrap();
    let id = SessionId::generate();
    let errors: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| store.fetch(&id).unwrap_err().to_string()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in &errors {
        assert!(
            e.contains(&format!("sessyncd at unix:{}", path.display())),
            "{e}"
        );
        assert!(e.contains("closed the connection"), "{e}");
    }
    assert_eq!(store.fetch(&id).unwrap(), None, "a new connection answers");
    drop(server.join().unwrap());
}

#[test]
fn a_killed_daemon_fails_calls_at_once_and_a_restarted_one_is_used_again() {
    let mut d = start(&[]);
    let store = Store::open(&format!("{}?timeout=30s", d.url_unix())).unwrap();
    let id = new_session(&store);
    d.stop();

    // Every call fails, quickly (far below the 30 s timeout), naming the daemon; calls in
    // the backoff window say when the next connect will be tried.
    let started = Instant::now();
    let mut waits = 0;
    for _ in 0..20 {
        let e = store.fetch(&id).unwrap_err();
        assert!(matches!(e, Error::Backend(_)), "{e:?}");
        let m = e.to_string();
        assert!(
            m.contains(&format!("sessyncd at unix:{}", d.sock.display())),
            "{m}"
        );
        assert!(m.contains("next connect attempt in "), "{m}");
        if m.contains("is unreachable") {
            waits += 1;
        }
        let e = store
            .lock(&id, Duration::from_secs(5), Duration::from_secs(5))
            .unwrap_err();
        assert!(e.to_string().contains("next connect attempt in "), "{e}");
    }
    assert!(
        waits > 0,
        "some calls were refused by the backoff, not by a connect"
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    d.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.fetch(&id) {
            // The new daemon starts empty.
            Ok(rec) => {
                assert_eq!(rec, None);
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "not back after the restart: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let id = new_session(&store);
    let (token, _) = store
        .lock(&id, Duration::from_secs(5), Duration::from_secs(5))
        .unwrap();
    store.unlock(&id, token).unwrap();
}

#[test]
fn a_daemon_that_does_not_answer_is_a_timeout_error_not_a_hang() {
    let (_dir, path, listener) = fake_daemon();
    let url = format!("unix://{}?shared=1&timeout=300ms", path.display());
    let server = std::thread::spawn(move || {
        // Accepts and reads, never answers, until the client hangs up.
        let (s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s);
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    });
    let store = Store::open(&url).unwrap();
    let id = SessionId::generate();
    let errors: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| store.fetch(&id).unwrap_err().to_string()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for e in &errors {
        assert!(e.contains("no reply within 300 ms"), "{e}");
    }
    drop(store);
    server.join().unwrap();
}
