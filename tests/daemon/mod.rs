//! Starting a real sessyncd for a test: a temporary socket, a free port, cleaned up.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

/// The token every test daemon requires on TCP.
pub const TOKEN: &str = "a-long-enough-test-token";

/// A sessyncd started for a test; killed when dropped.
pub struct Daemon {
    child: Child,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Its Unix socket.
    pub sock: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts sessyncd on a fresh Unix socket and a free TCP port, with `extra` flags.
pub fn start(extra: &[&str]) -> Daemon {
    let dir = std::env::temp_dir().join(format!(
        "sessyncd-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("s.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessyncd"))
        .args([
            "--unix",
            sock.to_str().unwrap(),
            "--tcp",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .args(extra)
        .env("SESSYNCD_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sessyncd starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut port = 0;
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if let Some(p) = line.trim().strip_prefix("listening on tcp:127.0.0.1:") {
            port = p.parse().unwrap();
        }
    }
    assert!(port > 0, "sessyncd printed its port");
    Daemon {
        child,
        port,
        sock,
        _dir: TempDir(dir),
    }
}

impl Daemon {
    /// The store URL of its Unix socket.
    pub fn url_unix(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The store URL of its TCP listener, with the token.
    pub fn url_tcp(&self) -> String {
        format!("tcp://:{TOKEN}@127.0.0.1:{}", self.port)
    }
}
