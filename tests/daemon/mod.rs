//! Starting a real sessyncd for a test: a temporary socket, a free port, cleaned up; and
//! a throwaway CA and server certificate for its TLS listener.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

/// The token every test daemon requires on TCP.
pub const TOKEN: &str = "a-long-enough-test-token";

/// A sessyncd started for a test; killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// Whether its TCP listener speaks TLS.
    pub tls: bool,
    /// Its Unix socket.
    pub sock: PathBuf,
    /// The flags it was started with, for `restart`.
    extra: Vec<String>,
    dir: TempDir,
}

/// A temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new, empty temporary directory.
    pub fn new(what: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sessync-{what}-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts sessyncd on a fresh Unix socket and a free TCP port, with `extra` flags.
pub fn start(extra: &[&str]) -> Daemon {
    let dir = TempDir::new("sessyncd");
    let sock = dir.0.join("s.sock");
    let mut d = Daemon {
        child: None,
        port: 0,
        tls: false,
        sock,
        extra: extra.iter().map(|s| s.to_string()).collect(),
        dir,
    };
    d.spawn();
    d
}

/// Starts sessyncd as `start` does, its TCP listener with TLS: a certificate for
/// `localhost` and `127.0.0.1`, signed by a throwaway CA (`Daemon::ca`).
pub fn start_tls(extra: &[&str]) -> Daemon {
    let dir = TempDir::new("sessyncd");
    let (_, cert, key) = write_certs(&dir.0);
    let mut args = vec![
        "--tls-cert".to_string(),
        cert.display().to_string(),
        "--tls-key".to_string(),
        key.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut d = Daemon {
        child: None,
        port: 0,
        tls: true,
        sock: dir.0.join("s.sock"),
        extra: args,
        dir,
    };
    d.spawn();
    d
}

/// Runs sessyncd with `args` and returns it with the first `lines` lines it printed
/// (one per listener: `listening on tcp:…`, `tls:…`, `unix:…`).
pub fn spawn(args: &[&str], lines: usize) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessyncd"))
        .args(args)
        .env("SESSYNCD_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("sessyncd starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = Vec::new();
    for _ in 0..lines {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        printed.push(line.trim().to_string());
    }
    (child, printed)
}

impl Daemon {
    fn spawn(&mut self) {
        let sock = self.sock.display().to_string();
        let mut args = vec!["--unix", &sock, "--tcp", "127.0.0.1:0", "--log", "warn"];
        args.extend(self.extra.iter().map(String::as_str));
        let (child, lines) = spawn(&args, 2);
        self.child = Some(child);
        self.port = lines
            .iter()
            .find_map(|l| {
                l.strip_prefix("listening on tcp:127.0.0.1:")
                    .or_else(|| l.strip_prefix("listening on tls:127.0.0.1:"))
            })
            .and_then(|p| p.parse().ok())
            .expect("sessyncd printed its port");
    }

    /// Kills the daemon (SIGKILL: its socket file stays, as after a crash).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the daemon is running")
    }

    /// Starts it again with the same flags on the same socket path (a new TCP port).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The store URL of its Unix socket.
    pub fn url_unix(&self) -> String {
        format!("unix://{}", self.sock.display())
    }

    /// The store URL of its TCP listener, with the token (`tls://` with the test CA when
    /// it speaks TLS).
    pub fn url_tcp(&self) -> String {
        if self.tls {
            format!(
                "tls://:{TOKEN}@127.0.0.1:{}?ca={}",
                self.port,
                self.ca().display()
            )
        } else {
            format!("tcp://:{TOKEN}@127.0.0.1:{}", self.port)
        }
    }

    /// The PEM file of the CA that signed its TLS certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.0.join("ca.pem")
    }

    /// Its temporary directory.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }
}

/// Writes a throwaway CA (`ca.pem`) and a server certificate it signed for `localhost`
/// and `127.0.0.1` (`cert.pem`, `key.pem`) into `dir`; returns the three paths.
pub fn write_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own, so that another test CA is a different issuer, not an impostor.
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    ca.distinguished_name
        .push(DnType::CommonName, format!("sessync test CA {name}"));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "sessyncd");
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}
