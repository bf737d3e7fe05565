//! Drives `examples/server.rs` the way the README does: one process, several worker
//! threads, one shared session per visitor; then bad requests that must not bring it down.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::Duration,
};

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

/// `target/<profile>/examples/server`, built now with the same profile (a no-op after a
/// full `cargo test`, which builds the examples; needed when only this test was built).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps");
    let bin = profile_dir.join("examples").join("server");
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--example", "server"]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building the example server failed");
    }
    bin
}

fn start() -> Server {
    let mut child = Command::new(example_binary())
        .args(["--port", "0", "--workers", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the example server starts (cargo test builds examples)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout is piped"))
        .read_line(&mut line)
        .expect("the server prints its address");
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Server { child, port }
}

/// Sends raw bytes, returns the raw answer.
fn raw(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer and close before reading everything of a huge request.
    let _ = s.write_all(request);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// GET with an optional cookie; returns (status line, Set-Cookie name=value, body).
fn get(port: u16, path: &str, cookie: Option<&str>) -> (String, Option<String>, String) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    req.push_str("\r\n");
    let resp = raw(port, req.as_bytes());
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.lines().next().unwrap_or("").to_string();
    let set_cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .map(|v| v.split(';').next().unwrap_or("").to_string());
    (status, set_cookie, body.to_string())
}

fn visits(body: &str) -> u64 {
    body.trim()
        .rsplit("visits: ")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {body:?}"))
}

#[test]
fn workers_share_one_counting_session_and_survive_bad_requests() {
    let server = start();
    let port = server.port;

    let (status, cookie, body) = get(port, "/", None);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(visits(&body), 1);
    let cookie = cookie.expect("a new visitor gets a cookie");
    assert!(cookie.starts_with("sync_sess="));

    for n in 2..=10 {
        let (_, again, body) = get(port, "/", Some(&cookie));
        assert_eq!(visits(&body), n);
        assert_eq!(again, None, "the cookie is not re-sent");
    }

    // A forged cookie is not adopted: a new session starts at 1 with a new id.
    let forged = "sync_sess=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (_, fresh, body) = get(port, "/", Some(forged));
    assert_eq!(visits(&body), 1);
    assert_ne!(fresh.as_deref(), Some(forged));

    // Bad requests get an answer and leave the server running.
    assert!(raw(port, b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    assert!(raw(port, b"GET / HTTP/1.1\r\nno colon here\r\n\r\n").starts_with("HTTP/1.1 400"));
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000));
    assert!(raw(port, huge.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(raw(port, b"POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    drop(TcpStream::connect(("127.0.0.1", port)).unwrap());
    assert!(raw(port, b"GET / HTTP/1.1\r\nHost: x\r\n").starts_with("HTTP/1.1 400"));

    // Concurrent visits of one visitor all count, whichever worker serves them.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cookie = cookie.clone();
            thread::spawn(move || {
                for _ in 0..25 {
                    let (status, _, _) = get(port, "/", Some(&cookie));
                    assert_eq!(status, "HTTP/1.1 200 OK");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (_, _, body) = get(port, "/", Some(&cookie));
    assert_eq!(visits(&body), 10 + 200 + 1);

    // Logout removes the session; the old cookie then starts over.
    let (_, removal, _) = get(port, "/logout", Some(&cookie));
    assert_eq!(removal.as_deref(), Some("sync_sess="));
    let (_, _, body) = get(port, "/", Some(&cookie));
    assert_eq!(visits(&body), 1);
}
