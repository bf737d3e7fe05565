//! The multi-process example: `examples/c/server.c` with `--processes 4 --workers 2`, four
//! forked processes that each open their own store on one sessyncd (started here over a
//! Unix socket). One visitor's session counts exactly across processes, sequentially and
//! under concurrent visits; SIGTERM stops the whole group, children included. The server
//! is compiled the way `tests/c_example_server.rs` does it.

#![cfg(feature = "daemon")]

mod cbuild;
mod daemon;

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpStream},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

/// The pids whose parent is `ppid`, from `/proc/*/stat` (Linux).
fn children_of(ppid: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": the command may hold spaces and parentheses.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(ppid) {
            out.insert(pid);
        }
    }
    out
}

/// Whether a process with this pid exists (a zombie counts).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The running prefork server; on drop, its processes and then it are killed.
struct Server {
    child: Child,
    port: u16,
    kids: BTreeSet<u32>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for &pid in &self.kids {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                // SAFETY: kill(2) takes plain integers; at worst the pid is gone.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(bin: &Path, store: &str) -> Server {
        let mut child = Command::new(bin)
            .args(["--port", "0", "--processes", "4", "--workers", "2"])
            .args(["--store", store])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the C example server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("the server prints its address");
        let mut server = Server {
            child,
            port: 0,
            kids: BTreeSet::new(),
        };
        assert!(
            line.starts_with("listening on http://127.0.0.1:")
                && line.ends_with(&format!(" with 4 processes x 2 workers, store {store}\n")),
            "unexpected first line {line:?}"
        );
        server.port = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        // The line comes before the forks: wait for the four processes.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            server.kids = children_of(server.child.id());
            if server.kids.len() == 4 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "expected 4 processes, found {:?}",
                server.kids
            );
            thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// SIGTERM to the parent only, then waits (at most 20 s) for it to end.
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

/// One parsed answer to `GET /`.
struct Answer {
    status: String,
    /// The first `Set-Cookie`'s `name=value`, without its attributes.
    set_cookie: Option<String>,
    body: String,
}

/// GET / with an optional cookie.
fn visit(port: u16, cookie: Option<&str>) -> Answer {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    req.push_str("\r\n");
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(req.as_bytes()).expect("send the request");
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let resp = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    Answer {
        status: head.lines().next().unwrap_or("").to_string(),
        set_cookie: head
            .lines()
            .find_map(|l| l.strip_prefix("Set-Cookie: "))
            .map(|v| v.split(';').next().unwrap_or("").to_string()),
        body: body.to_string(),
    }
}

/// (P, W, N) of "process P worker W served you; visits: N".
fn page(body: &str) -> (u32, u32, u64) {
    let parsed = (|| {
        let rest = body.strip_prefix("process ")?;
        let (p, rest) = rest.split_once(" worker ")?;
        let (w, rest) = rest.split_once(" served you; visits: ")?;
        Some((p.parse().ok()?, w.parse().ok()?, rest.trim().parse().ok()?))
    })();
    parsed.unwrap_or_else(|| panic!("not a visit page: {body:?}"))
}

#[test]
fn c_prefork_processes_share_one_counting_session_through_sessyncd() {
    let bin = cbuild::build_server("server-prefork");

    // A mem:// store cannot be shared by processes: refused, with a reason.
    let out = Command::new(&bin)
        .args(["--port", "0", "--processes", "2"])
        .output()
        .expect("the C example server runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--processes 2") && err.contains("mem://"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");

    let daemon = daemon::start(&[]);
    let url = daemon.url_unix();
    let mut server = Server::start(&bin, &url);
    let port = server.port;
    let kids = server.kids.clone();

    let first = visit(port, None);
    assert_eq!(first.status, "HTTP/1.1 200 OK", "{:?}", first.body);
    let (p, w, n) = page(&first.body);
    assert_eq!(n, 1);
    let cookie = first.set_cookie.expect("a new visitor gets a cookie");
    assert!(cookie.starts_with("sync_sess="), "{cookie:?}");

    let mut processes = BTreeSet::from([p]);
    let mut workers = BTreeSet::from([(p, w)]);
    for expected in 2..=40 {
        let a = visit(port, Some(&cookie));
        assert_eq!(a.status, "HTTP/1.1 200 OK", "{:?}", a.body);
        assert_eq!(a.set_cookie, None, "the cookie is not re-sent");
        let (p, w, n) = page(&a.body);
        assert_eq!(n, expected, "{:?}", a.body);
        processes.insert(p);
        workers.insert((p, w));
    }

    // Concurrent visits of one visitor all count, whichever process serves them.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let cookie = cookie.clone();
            thread::spawn(move || {
                (0..25)
                    .map(|_| {
                        let a = visit(port, Some(&cookie));
                        assert_eq!(a.status, "HTTP/1.1 200 OK", "{:?}", a.body);
                        let (p, w, _) = page(&a.body);
                        (p, w)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (p, w) in t.join().unwrap() {
            processes.insert(p);
            workers.insert((p, w));
        }
    }
    let a = visit(port, Some(&cookie));
    assert_eq!(page(&a.body).2, 40 + 200 + 1, "{:?}", a.body);
    assert!(
        processes.len() >= 2,
        "one process served everything: {processes:?}"
    );
    assert!(workers.iter().all(|&(p, w)| p < 4 && w < 2), "{workers:?}");

    // SIGTERM to the parent stops the group: forwarded, waited for, exit 0, and no
    // process left behind (the parent reaped them, so not even a zombie remains).
    let status = server.stop();
    assert!(status.success(), "the server stopped with {status}");
    let left: Vec<_> = kids.iter().filter(|&&pid| exists(pid)).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
    drop(daemon);
}
