//! The harness of the interop tests with Node: the npm packages of
//! `tests/interop/package.json` (express, express-session, connect-redis, redis),
//! a real `redis-server` on a free loopback port, the Express app
//! (`tests/interop/express_app.js`), and a small raw-HTTP client.
//!
//! ```ignore
//! mod interop;
//! let redis = interop::Redis::start();
//! let app = interop::ExpressApp::start(&redis, &["a secret of 16+ bytes"], Some(60_000));
//! let r = interop::http(app.port, "GET", "/visits", None);
//! let cookie = interop::cookie_pair(r.set_cookie("connect.sid").unwrap());
//! let r = interop::http(app.port, "GET", "/visits", Some(&cookie));
//! ```
//!
//! Every server is killed when its handle is dropped, and every wait has a deadline: no
//! test result depends on a sleep.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

/// How long a server may take to start, and an HTTP exchange to finish.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The repository's `tests/interop` directory.
fn source_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The cargo target directory: the test executable is `target/<profile>/deps/<name>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    exe.ancestors()
        .nth(3)
        .expect("the test executable is in target/<profile>/deps")
        .to_path_buf()
}

/// `target/interop-node`, with the packages of `tests/interop/package.json` installed from
/// the npm registry: the first call in a process installs them unless the directory holds
/// an install of the same `package.json` (a marker file records it), later calls return
/// at once. Returns the directory; its `node_modules` goes into `NODE_PATH`.
pub fn node_dir() -> PathBuf {
    static INSTALLED: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = installed.as_ref() {
        return dir.clone();
    }
    let dir = target_dir().join("interop-node");
    let wanted = std::fs::read_to_string(source_dir().join("package.json"))
        .expect("tests/interop/package.json is readable");
    let marker = dir.join(".sessync-installed");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        std::fs::create_dir_all(&dir).expect("target/interop-node can be made");
        let _ = std::fs::remove_file(&marker);
        std::fs::write(dir.join("package.json"), &wanted).expect("package.json is written");
        let st = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is installed (apt-get install nodejs npm)");
        assert!(st.success(), "npm install in {} failed", dir.display());
        std::fs::write(&marker, &wanted).expect("the install marker is written");
    }
    *installed = Some(dir.clone());
    dir
}

/// `node_dir()`'s `node_modules`, for `NODE_PATH`.
pub fn node_path() -> PathBuf {
    node_dir().join("node_modules")
}

/// A `node` command that finds the installed packages (`NODE_PATH` is set).
pub fn node() -> Command {
    let mut cmd = Command::new("node");
    cmd.env("NODE_PATH", node_path());
    cmd
}

/// A port on 127.0.0.1 that was free a moment ago (the OS picked it).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a loopback port can be bound")
        .port()
}

/// Waits until something accepts connections on `127.0.0.1:port`, or `child` exits, or
/// the deadline passes; true if it accepts.
fn wait_for_port(port: u16, child: &mut Child, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        let addr = (Ipv4Addr::LOCALHOST, port).into();
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
            return true;
        }
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Kills `child` and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A `redis-server` of its own, on a free loopback port, with no persistence; killed when
/// dropped.
pub struct Redis {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Redis {
    /// Starts one (`--port P --save '' --appendonly no`) and waits until it accepts
    /// connections. Tries a few ports, in case another process takes the chosen one first.
    pub fn start() -> Redis {
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .current_dir(std::env::temp_dir())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("redis-server is installed (apt-get install redis-server)");
            if wait_for_port(port, &mut child, Instant::now() + DEADLINE) {
                return Redis { child, port };
            }
            kill(&mut child);
        }
        panic!("redis-server did not start on a free port");
    }

    /// Runs `redis-cli -p PORT --raw ARGS...` and returns its output without the final
    /// newline; panics if redis-cli fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("redis-cli is installed (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut text = String::from_utf8(out.stdout).expect("redis-cli printed UTF-8");
        if text.ends_with('\n') {
            text.pop();
        }
        text
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The value of `key` (`redis-cli GET`), or `None` if it does not exist.
    pub fn get(&self, key: &str) -> Option<String> {
        (self.cli(&["EXISTS", key]) == "1").then(|| self.cli(&["GET", key]))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The Express app (`tests/interop/express_app.js`) on a free loopback port; stopped when
/// dropped.
pub struct ExpressApp {
    child: Child,
    /// Its HTTP port on 127.0.0.1.
    pub port: u16,
}

impl ExpressApp {
    /// Starts the app on `redis` with express-session's `secrets` (the first signs) and the
    /// cookie's `maxAge` in milliseconds (`None`: a browser-session cookie), installing the
    /// packages first if needed; returns once it printed `listening on PORT`.
    pub fn start(redis: &Redis, secrets: &[&str], max_age_ms: Option<u64>) -> ExpressApp {
        ExpressApp::start_on(redis.port, secrets, max_age_ms)
    }

    /// [`ExpressApp::start`] with a Redis on `127.0.0.1:redis_port` that the harness did
    /// not start.
    pub fn start_on(redis_port: u16, secrets: &[&str], max_age_ms: Option<u64>) -> ExpressApp {
        let redis_port = redis_port.to_string();
        let mut cmd = node();
        cmd.arg(source_dir().join("express_app.js")).args([
            "--port",
            "0",
            "--redis-port",
            &redis_port,
        ]);
        for secret in secrets {
            cmd.args(["--secret", secret]);
        }
        if let Some(ms) = max_age_ms {
            cmd.args(["--max-age", &ms.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is installed (apt-get install nodejs)");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // Reads the app's output to its end, so that it never blocks on a full pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("listening on ") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        match rx.recv_timeout(DEADLINE) {
            Ok(Some(port)) => ExpressApp { child, port },
            other => {
                kill(&mut child);
                panic!("the Express app did not print `listening on PORT` ({other:?})");
            }
        }
    }

    /// Stops the app with SIGTERM and returns its exit status (success when it shut down
    /// cleanly); kills it if it has not exited within [`DEADLINE`].
    pub fn stop(mut self) -> ExitStatus {
        self.terminate()
    }

    fn terminate(&mut self) -> ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            return status;
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits in pid_t");
        // SAFETY: `kill` has no memory-safety preconditions; `pid` is our child, not yet
        // reaped (try_wait above), so the pid cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().expect("the app can be reaped")
    }
}

impl Drop for ExpressApp {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// An HTTP response, as [`http`] read it.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Every header, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked when it came chunked).
    pub body: String,
}

impl Response {
    /// The values of every `Set-Cookie` header, in order.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first `Set-Cookie` header value for the cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies()
            .into_iter()
            .find(|v| v.split_once('=').is_some_and(|(n, _)| n.trim() == name))
    }

    /// The first header named `name` (ASCII case ignored).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON; panics if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", self.body))
    }
}

/// The `name=value` part of a `Set-Cookie` value: what a browser sends back in `Cookie`.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Sends one HTTP/1.1 request to `127.0.0.1:port` over a fresh connection
/// (`Connection: close`), with `cookie` as the `Cookie` header when given and an empty
/// body, and reads the whole response. Panics on an I/O error, a malformed response or
/// one that takes longer than [`DEADLINE`].
pub fn http(port: u16, method: &str, path: &str, cookie: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
    request(port, method, path, &headers, b"")
}

/// Sends one HTTP/1.1 request with extra `headers` and `body` (its `Content-Length` is
/// added) over a fresh connection (`Connection: close`), and reads the whole response.
/// Panics like [`http`].
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("timeouts can be set");
    stream
        .set_write_timeout(Some(DEADLINE))
        .expect("timeouts can be set");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).expect("the request is sent");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("the response is read to its end");
    parse_response(&raw)
}

/// Parses a whole HTTP/1.1 response (status line, headers, a body delimited by the end of
/// the connection, `Content-Length` or chunked encoding).
fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("the response head is UTF-8");
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header {l:?}"));
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    } else if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        assert!(
            body.len() >= len,
            "the body is shorter than its Content-Length"
        );
        body.truncate(len);
    }
    Response {
        status,
        headers,
        body: String::from_utf8(body).expect("the body is UTF-8"),
    }
}

/// Decodes a chunked body (trailers are ignored).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_text = std::str::from_utf8(&raw[..eol]).expect("the chunk size is ASCII");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).expect("the chunk size is hex");
        raw = &raw[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// The path of a file under `tests/interop`.
pub fn interop_file(name: &str) -> PathBuf {
    source_dir().join(name)
}
