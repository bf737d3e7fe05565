//! Real `redis-server` processes for tests: a standalone server or a 3-node Cluster on
//! free loopback ports, persistence off, in a temporary directory; stopped on drop.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// One redis-server process.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sessync-redis-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A port that is free now (and, for a Cluster node, whose bus port +10000 is too).
fn free_port(bus: bool) -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if !bus {
            return p;
        }
        if p < 55_000 && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair");
}

/// Sends one command in RESP and reads one line of reply (enough for PING and INFO's
/// first line); `None` if the server is not answering.
pub fn command(port: u16, args: &[&str]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    if let Some(n) = line.strip_prefix('$') {
        let n: usize = n.trim().parse().ok()?;
        let mut body = vec![0u8; n + 2];
        std::io::Read::read_exact(&mut r, &mut body).ok()?;
        return Some(String::from_utf8_lossy(&body[..n]).into_owned());
    }
    Some(line.trim_end().to_string())
}

/// Polls `ok` until it holds (panics after 30 s).
pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Server {
    /// Starts `redis-server` on a free port with persistence off and `extra` settings.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_in(temp_dir("one"), free_port(false), extra)
    }

    fn start_in(dir: PathBuf, port: u16, extra: &[&str]) -> Server {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn(&dir, port, &extra);
        let s = Server {
            child,
            port,
            dir,
            extra,
        };
        s.wait_ready();
        s
    }

    fn wait_ready(&self) {
        wait_until("redis-server to answer PING", || {
            command(self.port, &["PING"]).as_deref() == Some("+PONG")
        });
    }

    /// The store URL of this server, with `query` options.
    pub fn url(&self, query: &str) -> String {
        format!("redis://127.0.0.1:{}/?{query}", self.port)
    }

    /// Starts `redis-server` with TLS only (a throwaway CA and a certificate for
    /// 127.0.0.1 and localhost, made with the openssl command); returns it and the CA's
    /// PEM file.
    pub fn start_tls() -> (Server, PathBuf) {
        let dir = temp_dir("tls");
        let sh = |args: &str| {
            let out = Command::new("sh")
                .args(["-c", args])
                .current_dir(&dir)
                .output()
                .expect("sh runs");
            assert!(
                out.status.success(),
                "{args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj /CN=sessync-test-ca",
        );
        sh("openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=localhost");
        sh(
            "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && \
            openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out srv.pem -days 2 -extfile ext",
        );
        let port = free_port(false);
        let ca = dir.join("ca.pem");
        let args: Vec<String> = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            dir.join("srv.pem").to_str().unwrap(),
            "--tls-key-file",
            dir.join("srv.key").to_str().unwrap(),
            "--tls-ca-cert-file",
            ca.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server runs");
        wait_until("redis-server to listen with TLS", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        (
            Server {
                child,
                port,
                dir,
                extra: args,
            },
            ca,
        )
    }

    /// Kills the server (SIGKILL) and starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.dir, self.port, &self.extra);
        self.wait_ready();
    }

    /// Kills the server.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &std::path::Path, port: u16, extra: &[String]) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("redis-server runs (Debian: apt-get install redis-server)")
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A 3-node Redis Cluster (three primaries, no replicas).
pub struct Cluster {
    /// The nodes.
    pub nodes: Vec<Server>,
}

impl Cluster {
    /// Starts three nodes, joins them with `redis-cli --cluster create` and waits for
    /// `cluster_state:ok` on every node.
    pub fn start() -> Cluster {
        let dir = temp_dir("cluster");
        let mut nodes = Vec::new();
        for i in 0..3 {
            let d = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let port = free_port(true);
            nodes.push(Server::start_in(
                d,
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ],
            ));
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli runs (Debian: apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for n in &nodes {
            wait_until("cluster_state:ok", || {
                command(n.port, &["CLUSTER", "INFO"])
                    .is_some_and(|i| i.contains("cluster_state:ok"))
            });
        }
        let _ = std::fs::remove_dir_all(dir.join("unused"));
        Cluster { nodes }
    }

    /// The store URL of the Cluster, with `query` options.
    pub fn url(&self, query: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}/?{query}", hosts.join(","))
    }
}
