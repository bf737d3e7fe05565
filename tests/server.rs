//! sessyncd over real sockets: a Unix socket and TCP on a free port, raw RESP bytes,
//! redis-cli, authentication, bad frames, idle connections and lock queues.

#![cfg(feature = "daemon")]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpStream},
    os::unix::{fs::PermissionsExt, net::UnixStream},
    process::Command,
};

mod daemon;

#[cfg(feature = "tls")]
use daemon::write_certs;
use daemon::{Daemon, TOKEN, TempDir, spawn, start};

const ID: &str = "abcdefghijklmnopqrstuvwxyz012345";

/// A blocking RESP client over any stream.
struct Client<S: Read + Write> {
    r: BufReader<S>,
}

fn tcp(d: &Daemon) -> Client<TcpStream> {
    Client {
        r: BufReader::new(TcpStream::connect(("127.0.0.1", d.port)).unwrap()),
    }
}

fn unix(d: &Daemon) -> Client<UnixStream> {
    Client {
        r: BufReader::new(UnixStream::connect(&d.sock).unwrap()),
    }
}

impl<S: Read + Write> Client<S> {
    fn send(&mut self, args: &[&str]) {
        let mut b = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            b.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        self.r.get_mut().write_all(&b).unwrap();
    }

    /// Reads one reply, rendered as text: `+OK`, `-ERR …`, `:1`, `"bulk"`, `nil`, `[a, b]`.
    fn read(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).unwrap();
        let line = line.trim_end_matches("\r\n").to_string();
        let (kind, rest) = line.split_at(1.min(line.len()));
        match kind {
            "+" | "-" | ":" => line,
            "$" if rest == "-1" => "nil".into(),
            "_" => "nil".into(),
            "$" => {
                let n: usize = rest.parse().unwrap();
                let mut b = vec![0; n + 2];
                self.r.read_exact(&mut b).unwrap();
                format!("{:?}", String::from_utf8_lossy(&b[..n]))
            }
            "*" | "%" => {
                let n: usize = rest.parse().unwrap();
                let n = if kind == "%" { 2 * n } else { n };
                let items: Vec<String> = (0..n).map(|_| self.read()).collect();
                format!("[{}]", items.join(", "))
            }
            "" => "closed".into(),
            _ => panic!("unexpected reply line {line:?}"),
        }
    }

    fn call(&mut self, args: &[&str]) -> String {
        self.send(args);
        self.read()
    }
}

#[test]
fn tcp_needs_auth_and_unix_relies_on_file_permissions() {
    let d = start(&[]);
    let mode = std::fs::metadata(&d.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let mut c = tcp(&d);
    assert_eq!(c.call(&["PING"]), "+PONG");
    assert!(c.call(&["SESS.FETCH", ID]).starts_with("-NOAUTH"));
    assert!(c.call(&["SESS.WRITE", ID, "{}"]).starts_with("-NOAUTH"));
    assert!(c.call(&["AUTH", "wrong"]).starts_with("-WRONGPASS"));
    assert!(c.call(&["SESS.FETCH", ID]).starts_with("-NOAUTH"));
    assert_eq!(c.call(&["AUTH", TOKEN]), "+OK");
    assert_eq!(c.call(&["SESS.WRITE", ID, r#"{"n":1}"#]), ":1");

    let mut h = tcp(&d);
    assert!(
        h.call(&["HELLO", "3", "AUTH", "default", TOKEN])
            .contains("\"proto\", :3")
    );
    assert_eq!(h.call(&["SESS.INCR", ID, "n", "2"]), ":3");

    let mut u = unix(&d);
    assert_eq!(u.call(&["SELECT", "0"]), "+OK");
    assert_eq!(u.call(&["CLIENT", "SETNAME", "worker-1"]), "+OK");
    assert!(u.call(&["INFO"]).contains("loading:0"));
    let rec = u.call(&["SESS.FETCH", ID]);
    assert!(
        rec.starts_with(&format!("[\"{ID}\", \"{{\\\"n\\\":3}}\", :2")),
        "{rec}"
    );
    assert_eq!(
        u.call(&["SESS.FETCH", "abcdefghijklmnopqrstuvwxyz000000"]),
        "nil"
    );
    assert!(u.call(&["SESS.FETCH", "short"]).starts_with("-ERR"));
    assert!(
        u.call(&["SESS.WRITE", ID, "[1]"])
            .starts_with("-INVALIDJSON")
    );
    assert!(u.call(&["NOPE"]).starts_with("-ERR unknown command"));
    assert_eq!(u.call(&["QUIT"]), "+OK");
    assert_eq!(u.read(), "closed");
}

#[test]
fn a_locked_read_modify_write_is_one_round_trip_each_way() {
    let d = start(&[]);
    let mut c = unix(&d);
    assert_eq!(c.call(&["SESS.WRITE", ID, r#"{"n":41}"#]), ":1");
    let locked = c.call(&["SESS.LOCK", ID, "30000", "0"]);
    assert!(locked.starts_with("[:1, [\""), "{locked}");
    assert!(locked.contains(r#"{\"n\":41}"#));
    let r = c.call(&[
        "SESS.APPLY",
        ID,
        r#"[["incr","n",1],["set","who","me"],["owner","u1"]]"#,
        "TOKEN",
        "1",
        "RELEASE",
    ]);
    assert_eq!(r, "[:2, [:42]]");
    assert_eq!(c.call(&["SESS.OWNED", "u1"]), format!("[\"{ID}\"]"));
    assert!(c.call(&["SESS.UNLOCK", ID, "1"]).starts_with("-STALETOKEN"));
    assert!(
        c.call(&["SESS.APPLY", ID, r#"[["bogus"]]"#])
            .starts_with("-INVALIDJSON")
    );
    let rotated = c.call(&["SESS.ROTATE", ID]);
    assert!(rotated.starts_with('"'), "{rotated}");
    assert!(c.call(&["SESS.WRITE", ID, "{}"]).starts_with("-ROTATED "));
    assert_eq!(c.call(&["SESS.DESTROYALL", "u1"]), ":1");
    let new_id = rotated.trim_matches('"');
    assert!(
        c.call(&["SESS.WRITE", new_id, "{}"])
            .starts_with("-DESTROYED")
    );
}

#[test]
fn lock_waiters_on_different_connections_are_served_in_order_and_dropped_when_gone() {
    // One serving thread (the default), and a pool, where the waiters' connections are
    // served by different threads.
    for flags in [&[][..], &["--threads", "3"][..]] {
        lock_waiters_in_order(&start(flags));
    }
}

fn lock_waiters_in_order(d: &Daemon) {
    let mut a = unix(d);
    assert_eq!(a.call(&["SESS.WRITE", ID, "{}"]), ":1");
    assert!(a.call(&["SESS.LOCK", ID, "30000", "0"]).starts_with("[:1,"));
    let waits = |c: &mut Client<UnixStream>| -> u64 {
        let s = c.call(&["SESS.STATS"]);
        let json = s.trim_matches('"').replace("\\\"", "\"");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["lock_waits"].as_u64().unwrap()
    };
    // b queues first, then gone (which leaves), then c.
    let mut b = unix(d);
    b.send(&["SESS.LOCK", ID, "30000", "60000"]);
    while waits(&mut a) < 1 {}
    let mut gone = unix(d);
    gone.send(&["SESS.LOCK", ID, "30000", "60000"]);
    while waits(&mut a) < 2 {}
    let mut c = unix(d);
    c.send(&["SESS.LOCK", ID, "30000", "60000"]);
    while waits(&mut a) < 3 {}
    gone.r.get_mut().shutdown(Shutdown::Both).unwrap();
    drop(gone);
    // Wait until the daemon has seen it go (it gives up the wait: a lock timeout).
    while {
        let s = a.call(&["SESS.STATS"]);
        !s.contains(r#"\"lock_timeouts\":1"#)
    } {}

    assert_eq!(a.call(&["SESS.UNLOCK", ID, "1"]), "+OK");
    assert!(
        b.read().starts_with("[:2,"),
        "b, first in line, gets token 2"
    );
    assert_eq!(b.call(&["SESS.UNLOCK", ID, "2"]), "+OK");
    assert!(c.read().starts_with("[:3,"), "the gone waiter was skipped");
    assert_eq!(c.call(&["SESS.UNLOCK", ID, "3"]), "+OK");
}

/// How many of a running process's threads are tokio's pool workers (Linux: the tasks
/// named `tokio-rt-worker`; the main thread and the store's expiry thread are not).
fn pool_workers(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter(|t| {
            let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm"));
            comm.is_ok_and(|c| c.trim() == "tokio-rt-worker")
        })
        .count()
}

#[test]
fn one_thread_serves_by_default_and_threads_asks_for_a_pool() {
    let serves = |d: &Daemon| {
        let mut c = unix(d);
        assert_eq!(c.call(&["SESS.WRITE", ID, r#"{"n":1}"#]), ":1");
        assert_eq!(c.call(&["SESS.INCR", ID, "n", "2"]), ":3");
    };
    // Counted after requests were served: in a pool, a worker that ran one has named
    // itself by then.
    let d = start(&[]);
    serves(&d);
    assert_eq!(
        pool_workers(d.pid()),
        0,
        "the default: the main thread serves"
    );
    let pool = start(&["--threads", "3"]);
    serves(&pool);
    // Idle workers name themselves once they first run, which may be later still.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pool_workers(pool.pid()) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(pool_workers(pool.pid()), 3);
    for bad in ["0", "1025", "two"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sessyncd"))
            .args(["--threads", bad, "--tcp", "127.0.0.1:0", "--log", "error"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "--threads {bad} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--threads"), "{err}");
    }
}

#[test]
fn bad_frames_get_an_error_and_the_daemon_keeps_serving() {
    let d = start(&["--max-bulk", "1024"]);
    let raw = |bytes: &[u8]| -> String {
        let mut s = UnixStream::connect(&d.sock).unwrap();
        s.write_all(bytes).unwrap();
        let _ = s.shutdown(Shutdown::Write);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(raw(b"*1\r\n+PING\r\n").starts_with("-ERR Protocol error"));
    assert!(raw(b"*x\r\n").starts_with("-ERR Protocol error"));
    assert!(raw(b"*1\r\n$2000\r\n").starts_with("-ERR Protocol error: bulk of 2000 bytes"));
    assert!(raw(&vec![b'a'; 100_000]).starts_with("-ERR Protocol error"));
    // Inline commands and a half-closed connection are served.
    assert_eq!(raw(b"PING\r\n"), "+PONG\r\n");
    assert_eq!(
        raw(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n"),
        "+PONG\r\n$2\r\nhi\r\n"
    );
    // A thousand idle connections do not stop a new one from being served.
    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(&d.sock).unwrap())
        .collect();
    let mut c = unix(&d);
    assert_eq!(c.call(&["PING"]), "+PONG");
    drop(idle);
    let mut t = tcp(&d);
    assert_eq!(t.call(&["PING", "still here"]), "\"still here\"");
}

#[test]
fn redis_cli_talks_to_it() {
    let d = start(&[]);
    let cli = |args: &[&str]| -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &d.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed (apt-get install redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["PING"]), "PONG");
    assert!(cli(&["SESS.FETCH", ID]).contains("NOAUTH"));
    let auth = ["-a", TOKEN, "--no-auth-warning"];
    assert_eq!(
        cli(&[&auth[..], &["SESS.WRITE", ID, r#"{"a":1}"#]].concat()),
        "1"
    );
    let fetched = cli(&[&auth[..], &["SESS.FETCH", ID]].concat());
    assert!(
        fetched.starts_with(&format!("{ID}\n{{\"a\":1}}\n1")),
        "{fetched}"
    );
}

#[test]
fn plain_key_commands_behave_as_redis_does() {
    let d = start(&["--manual-clock"]);
    let mut c = unix(&d);
    assert_eq!(c.call(&["SET", "sess:a", "{\"n\":1}", "EX", "60"]), "+OK");
    assert_eq!(c.call(&["GET", "sess:a"]), "\"{\\\"n\\\":1}\"");
    assert_eq!(c.call(&["TTL", "sess:a"]), ":60");
    assert_eq!(c.call(&["PTTL", "sess:a"]), ":60000");
    assert_eq!(c.call(&["SET", "sess:a", "x", "NX"]), "nil");
    assert_eq!(c.call(&["SET", "sess:b", "y", "XX"]), "nil");
    assert_eq!(
        c.call(&["SET", "sess:a", "z", "XX", "GET", "KEEPTTL"]),
        "\"{\\\"n\\\":1}\""
    );
    assert_eq!(c.call(&["TTL", "sess:a"]), ":60");
    assert_eq!(c.call(&["SET", "plain", "p"]), "+OK");
    assert_eq!(c.call(&["TTL", "plain"]), ":-1");
    assert_eq!(c.call(&["TTL", "missing"]), ":-2");
    assert_eq!(
        c.call(&["MGET", "sess:a", "missing", "plain"]),
        "[\"z\", nil, \"p\"]"
    );
    assert_eq!(c.call(&["EXISTS", "sess:a", "plain", "missing"]), ":2");
    assert_eq!(c.call(&["PEXPIRE", "plain", "1500"]), ":1");
    assert!(
        c.call(&["SET", "k", "v", "EX", "0"])
            .starts_with("-ERR invalid expire")
    );
    assert!(
        c.call(&["SET", "k", "v", "BOGUS"])
            .starts_with("-ERR syntax")
    );
    assert!(c.call(&["GET"]).starts_with("-ERR wrong number"));

    let mut keys = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let r = c.call(&["SCAN", &cursor, "MATCH", "sess:*", "COUNT", "100"]);
        // [ "next", [ "k", … ] ]
        let inner = r.trim_start_matches('[').trim_end_matches(']');
        let (next, rest) = inner.split_once(", ").unwrap();
        cursor = next.trim_matches('"').to_string();
        keys.extend(
            rest.trim_start_matches('[')
                .split(", ")
                .filter(|k| !k.is_empty())
                .map(|k| k.trim_matches('"').to_string()),
        );
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(keys, vec!["sess:a".to_string()]);

    // Time passes on the daemon's clock: keys expire, on access and in the background.
    assert_eq!(c.call(&["DEBUG.ADVANCE", "2000"]), "+OK");
    assert_eq!(c.call(&["GET", "plain"]), "nil");
    assert_eq!(c.call(&["DEBUG.ADVANCE", "59000"]), "+OK");
    assert_eq!(c.call(&["EXISTS", "sess:a"]), ":0");
    assert_eq!(c.call(&["DEL", "sess:a", "plain"]), ":0");
    assert!(c.call(&["INFO"]).contains("keys:0"));
}

#[test]
fn redis_cli_sets_and_gets() {
    let d = start(&[]);
    let cli = |args: &[&str]| -> String {
        let out = Command::new("redis-cli")
            .args(["-s", d.sock.to_str().unwrap()])
            .args(args)
            .output()
            .expect("redis-cli is installed (apt-get install redis-tools)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "sess:x", "hello", "EX", "100"]), "OK");
    assert_eq!(cli(&["GET", "sess:x"]), "hello");
    assert_eq!(cli(&["DEL", "sess:x"]), "1");
}

/// Starts sessyncd with only `--config FILE` (the token comes from the environment) and
/// returns it with what it printed.
fn with_config(file: &std::path::Path, lines: usize) -> (std::process::Child, Vec<String>) {
    spawn(&["--config", file.to_str().unwrap()], lines)
}

/// `SET` of two keys: the second is refused when the file's `max_keys = 1` was applied.
fn second_key_refused(sock: &std::path::Path) -> bool {
    let mut c = Client {
        r: BufReader::new(UnixStream::connect(sock).unwrap()),
    };
    assert_eq!(c.call(&["SET", "a", "1"]), "+OK");
    c.call(&["SET", "b", "2"]).starts_with("-ERR max keys")
}

#[test]
#[cfg(feature = "tls")]
fn a_toml_config_file_sets_what_flags_set() {
    let dir = TempDir::new("config");
    let (_, cert, key) = write_certs(&dir.0);
    let sock = dir.0.join("t.sock");
    let file = dir.0.join("sessyncd.toml");
    std::fs::write(
        &file,
        format!(
            "# sessyncd settings\nunix = \"{}\"\ntcp = \"127.0.0.1:0\"\nmax_keys = 1\n\
             tls_cert = \"{}\"\ntls_key = \"{}\"\nlog = \"warn\"\n",
            sock.display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let (mut child, lines) = with_config(&file, 2);
    assert!(
        lines[0].starts_with("listening on tls:127.0.0.1:"),
        "{lines:?}"
    );
    assert_eq!(lines[1], format!("listening on unix:{}", sock.display()));
    assert!(second_key_refused(&sock));
    child.kill().unwrap();
    child.wait().unwrap();

    // Wrong TOML, or a setting that does not exist, stops it with a clear message.
    for (text, says) in [
        ("unix = ", "invalid TOML"),
        ("colour = \"red\"", "unknown field `colour`"),
        ("max_keys = \"many\"", "invalid type"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sessyncd"))
            .args(["--config", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("sessyncd.toml") && err.contains(says), "{err}");
    }
}

#[test]
fn a_json_config_file_sets_what_flags_set() {
    let dir = TempDir::new("config");
    let sock = dir.0.join("j.sock");
    let file = dir.0.join("sessyncd.json");
    let json = serde_json::json!({"unix": sock, "max_keys": 1, "log": "warn"});
    std::fs::write(&file, json.to_string()).unwrap();
    let (mut child, lines) = with_config(&file, 1);
    assert_eq!(lines, [format!("listening on unix:{}", sock.display())]);
    assert!(second_key_refused(&sock));
    child.kill().unwrap();
    child.wait().unwrap();

    // Without the .toml name a file is JSON, so TOML text in it is refused as JSON.
    std::fs::write(&file, "max_keys = 1").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sessyncd"))
        .args(["--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid JSON"));
}

#[test]
fn a_store_outside_the_daemon_is_refused_at_start() {
    for url in [
        "redis://127.0.0.1:6379",
        "unix:///tmp/another-sessyncd.sock",
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessyncd"))
            .args(["--store", url, "--tcp", "127.0.0.1:0", "--log", "error"])
            .env("SESSYNCD_TOKEN", daemon::TOKEN)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("its store is mem://"), "{err}");
    }
}

#[test]
fn session_ttls_list_and_clear_on_the_wire() {
    let d = start(&["--manual-clock"]);
    let mut c = unix(&d);
    const ID2: &str = "bbcdefghijklmnopqrstuvwxyz012345";
    assert_eq!(c.call(&["SESS.WRITE", ID, "{}", "TTL", "5000"]), ":1");
    // A record with a TTL of its own carries it as an eighth item.
    let rec = c.call(&["SESS.FETCH", ID]);
    assert!(rec.ends_with(", nil, :5000]"), "{rec}");
    assert_eq!(c.call(&["SESS.INCR", ID2, "n", "2", "CREATE"]), ":2");
    let rec = c.call(&["SESS.FETCH", ID2]);
    assert!(rec.ends_with(", nil]"), "{rec}");
    assert!(
        c.call(&["SESS.WRITE", ID, "{}", "TTL", "0"])
            .starts_with("-ERR invalid argument")
    );
    assert!(
        c.call(&["SESS.TOUCH", ID, "TTL", "x"])
            .starts_with("-ERR value is not an integer")
    );
    assert!(
        c.call(&["SESS.TOUCH", ID, "BOGUS"])
            .starts_with("-ERR syntax")
    );
    let t = c.call(&["SESS.TOUCH", ID2, "TTL", "2000"]);
    assert!(t.starts_with("[:1, :"), "{t}");
    assert_eq!(c.call(&["SESS.INCR", ID2, "n", "1", "TTL", "3000"]), ":3");
    assert!(c.call(&["SESS.FETCH", ID2]).ends_with(", nil, :3000]"));
    // Both listed, on one page or over several.
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    for _ in 0..100 {
        let page = c.call(&["SESS.LIST", &cursor, "COUNT", "1"]);
        let (head, ids) = page
            .strip_prefix("[\"")
            .and_then(|p| p.split_once("\", ["))
            .unwrap_or_else(|| panic!("{page}"));
        seen.extend(
            ids.trim_end_matches("]]")
                .split(", ")
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_matches('"').to_string()),
        );
        cursor = head.to_string();
        if cursor == "0" {
            break;
        }
    }
    seen.sort();
    assert_eq!(seen, [ID, ID2]);
    assert!(
        c.call(&["SESS.LIST", "0", "COUNT", "0"])
            .starts_with("-ERR invalid argument")
    );
    assert!(
        c.call(&["SESS.LIST", "0", "LIMIT", "1"])
            .starts_with("-ERR syntax")
    );
    assert!(c.call(&["SESS.LIST"]).starts_with("-ERR wrong number"));
    // ID2's own 3 s pass: only ID is left to clear.
    assert_eq!(c.call(&["DEBUG.ADVANCE", "3001"]), "+OK");
    assert_eq!(
        c.call(&["SESS.LIST", "0", "COUNT", "100"]),
        format!("[\"0\", [\"{ID}\"]]")
    );
    assert!(
        c.call(&["SESS.CLEAR", "x"])
            .starts_with("-ERR wrong number")
    );
    assert_eq!(c.call(&["SESS.CLEAR"]), ":1");
    assert!(c.call(&["SESS.WRITE", ID, "{}"]).starts_with("-DESTROYED"));
    assert_eq!(c.call(&["SESS.LIST", "0"]), "[\"0\", []]");
    assert_eq!(c.call(&["SESS.CLEAR"]), ":0");
}

/// A line of the daemon's `/proc/PID/status` (`VmRSS`, `VmHWM`: the peak), in KiB.
fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_client_that_does_not_read_its_replies_cannot_make_the_daemon_buffer_them_all() {
    // Sessions of up to 1 MiB; a client pipelines 2,000 reads of one (2 GB of replies)
    // and never reads. The daemon holds at most 256 KiB plus one reply for it at a time,
    // and drops the connection once the client has taken nothing for the idle timeout.
    let d = start(&[
        "--store",
        "mem://?max_session_bytes=1048576",
        "--idle-timeout",
        "1",
    ]);
    let mut c = unix(&d);
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1_000_000));
    assert_eq!(c.call(&["SESS.WRITE", ID, &big]), ":1");
    let before = vm_kib(d.pid(), "VmRSS");
    let mut s = UnixStream::connect(&d.sock).unwrap();
    let one = format!("*2\r\n$10\r\nSESS.FETCH\r\n${}\r\n{ID}\r\n", ID.len());
    s.write_all(one.repeat(2000).as_bytes()).unwrap();
    // Wait (polling, with a bound) until the daemon has taken the client, then until it
    // has dropped it: then only the checking connection is left.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for clients in ["connected_clients:2\\r\\n", "connected_clients:1\\r\\n"] {
        while !c.call(&["INFO"]).contains(clients) {
            assert!(std::time::Instant::now() < deadline, "never {clients}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    // The peak, not the current size: what it held at its worst.
    let grown = vm_kib(d.pid(), "VmHWM").saturating_sub(before);
    assert!(grown < 64 * 1024, "the daemon grew by {grown} KiB");
    // What reached the client is what the socket buffers held, not every reply.
    s.set_nonblocking(true).unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    assert!(
        sink.len() < 100 * 1_000_000,
        "{} bytes reached the client",
        sink.len()
    );
    assert_eq!(c.call(&["PING"]), "+PONG");
}
