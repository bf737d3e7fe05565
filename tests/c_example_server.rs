//! Drives `examples/c/server.c` the way `tests/example_server.rs` drives the Rust one: the
//! C server is compiled here (strict warnings, against the `libsessync.a` that cargo built
//! for this test run), started with four workers sharing one store, then visited by a raw
//! HTTP client: one counting session, forged cookies, bad requests that must not bring it
//! down, concurrent visits that must all count, logout, and a clean stop on SIGTERM.

mod cbuild;

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpStream},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

/// The running server; killed on drop if the test did not stop it.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(bin: &Path) -> Server {
        let mut child = Command::new(bin)
            .args(["--port", "0", "--workers", "4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the C example server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("the server prints its address");
        // Own the child before any assertion, so that a failure still kills it.
        let mut server = Server { child, port: 0 };
        assert!(
            line.starts_with("listening on http://127.0.0.1:")
                && line.ends_with(" with 4 workers, store mem://\n"),
            "unexpected first line {line:?}"
        );
        server.port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        server
    }

    /// SIGTERM, then waits (at most 20 s) for the process to end.
    fn stop(&mut self) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) takes plain integers; `pid` is our child, not yet reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM could not be sent");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(Instant::now() < deadline, "the server ignored SIGTERM");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Sends raw bytes, returns the raw answer.
fn raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer and close before reading everything of a huge request.
    let _ = s.write_all(request);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// One parsed answer.
struct Answer {
    status: String,
    /// The first `Set-Cookie`'s `name=value`, without its attributes.
    set_cookie: Option<String>,
    body: String,
}

fn parse(resp: &str) -> Answer {
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((resp, ""));
    Answer {
        status: head.lines().next().unwrap_or("").to_string(),
        set_cookie: head
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .map(|v| v.split(';').next().unwrap_or("").to_string()),
        body: body.to_string(),
    }
}

/// GET with an optional cookie.
fn get(port: u16, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    req.push_str("\r\n");
    parse(&raw(port, req.as_bytes()))
}

/// The N of "worker W served you; visits: N".
fn visits(body: &str) -> u64 {
    body.trim()
        .rsplit("visits: ")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {body:?}"))
}

/// The W of "worker W served you; visits: N".
fn worker(body: &str) -> u32 {
    body.strip_prefix("worker ")
        .and_then(|r| r.split(' ').next())
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no worker in {body:?}"))
}

#[test]
fn c_workers_share_one_counting_session_and_survive_bad_requests() {
    let bin = cbuild::build_server("server");
    let mut server = Server::start(&bin);
    let port = server.port;

    // A client that connects and then says nothing: its worker gives up after the
    // receive timeout (5 s), closes without answering, and the others serve meanwhile.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");

    let first = get(port, "/", None);
    assert_eq!(first.status, "HTTP/1.1 200 OK");
    assert_eq!(visits(&first.body), 1);
    assert!(first.body.starts_with("worker "), "{:?}", first.body);
    let cookie = first.set_cookie.expect("a new visitor gets a cookie");
    assert!(cookie.starts_with("sync_sess="), "{cookie:?}");
    assert!(cookie.len() > "sync_sess=".len());

    for n in 2..=10 {
        let a = get(port, "/", Some(&cookie));
        assert_eq!(a.status, "HTTP/1.1 200 OK");
        assert_eq!(visits(&a.body), n);
        assert_eq!(a.set_cookie, None, "the cookie is not re-sent");
    }

    // A forged cookie is not adopted: a new session starts at 1 with a new id.
    let forged = "sync_sess=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let a = get(port, "/", Some(forged));
    assert_eq!(visits(&a.body), 1);
    let fresh = a
        .set_cookie
        .expect("the forged visitor gets a fresh cookie");
    assert!(fresh.starts_with("sync_sess="));
    assert_ne!(fresh, forged);
    assert_ne!(fresh, cookie);

    // Header names are case-insensitive; several Cookie headers are read together.
    let a = parse(&raw(
        port,
        format!("GET / HTTP/1.1\r\ncookie: theme=dark\r\nCOOKIE: {fresh}\r\n\r\n").as_bytes(),
    ));
    assert_eq!(visits(&a.body), 2);
    assert_eq!(a.set_cookie, None);

    // Bad requests get an answer and leave the server running.
    let bad = raw(port, b"\x00\x01garbage\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad:?}");
    let bad = raw(port, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad:?}");
    let bad = raw(port, b"GET / HTTP/1.1\r\nX-Bytes: \xff\xfe\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad:?}");
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000));
    let bad = raw(port, huge.as_bytes());
    assert!(bad.starts_with("HTTP/1.1 431"), "{bad:?}");
    let bad = raw(port, b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert!(bad.starts_with("HTTP/1.1 405"), "{bad:?}");
    let bad = raw(port, b"GET /nowhere HTTP/1.1\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 404"), "{bad:?}");
    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    let bad = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad:?}");
    assert_eq!(raw(port, b""), "", "nothing sent, nothing answered");

    // Concurrent visits of one visitor all count, whichever worker serves them.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cookie = cookie.clone();
            thread::spawn(move || {
                (0..25)
                    .map(|_| {
                        let a = get(port, "/", Some(&cookie));
                        assert_eq!(a.status, "HTTP/1.1 200 OK");
                        worker(&a.body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut workers = BTreeSet::new();
    for t in threads {
        workers.extend(t.join().unwrap());
    }
    assert!(
        workers.len() >= 2,
        "one worker served everything: {workers:?}"
    );
    assert!(workers.iter().all(|&w| w < 4), "{workers:?}");
    let a = get(port, "/", Some(&cookie));
    assert_eq!(visits(&a.body), 10 + 200 + 1);

    // Logout removes the session; the old cookie then starts over.
    let a = get(port, "/logout", Some(&cookie));
    assert_eq!(a.status, "HTTP/1.1 200 OK");
    assert_eq!(a.set_cookie.as_deref(), Some("sync_sess="));
    let a = get(port, "/", Some(&cookie));
    assert_eq!(visits(&a.body), 1);
    assert_ne!(a.set_cookie.as_deref(), Some(cookie.as_str()));

    // The silent client was closed, unanswered (how long it took is not the point: the
    // read above would otherwise wait for its own 30 s timeout and fail).
    idle.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the silent client got {rest:?}");

    // SIGTERM stops it cleanly: workers leave accept(), the store is freed, exit 0.
    let status = server.stop();
    assert!(status.success(), "the server stopped with {status}");
}
