//! sessyncd: the session store as a daemon, shared by processes and machines.
//!
//! ```text
//! sessyncd --unix /run/sessync.sock                    # local processes (socket mode 0600)
//! SESSYNCD_TOKEN=secret sessyncd --tcp 0.0.0.0:7700    # other machines, AUTH required
//! sessyncd --tcp 0.0.0.0:7700 --tls-cert cert.pem --tls-key key.pem   # TCP over TLS
//! sessyncd --config sessyncd.toml                      # the same settings from a file
//! sessyncd --unix /run/sessync.sock --dir /var/lib/sessyncd   # sessions kept across restarts
//! ```
//!
//! A config file whose name ends in `.toml` is read as TOML; any other is read as JSON.

use std::{net::SocketAddr, os::unix::fs::PermissionsExt, path::PathBuf, time::Duration};

use clap::Parser;
use sessync::{
    Store,
    backend::memory::{Fsync, Persistence},
    server::{Config, Listener, resp::Limits},
};

/// The session store of sessync as a daemon, speaking RESP (redis-cli works).
#[derive(Parser, Debug, Default, serde::Deserialize)]
#[command(name = "sessyncd", version)]
#[serde(default, deny_unknown_fields)]
struct Flags {
    /// Listen on this Unix socket.
    #[arg(long, env = "SESSYNCD_UNIX")]
    unix: Option<PathBuf>,
    /// File mode of the Unix socket, in octal.
    #[arg(long, env = "SESSYNCD_UNIX_MODE")]
    unix_mode: Option<String>,
    /// Listen on this TCP address (e.g. 127.0.0.1:7700). Clients must AUTH when a token is set.
    #[arg(long, env = "SESSYNCD_TCP")]
    tcp: Option<SocketAddr>,
    /// The token TCP clients authenticate with (prefer --token-file or the environment).
    #[arg(long, env = "SESSYNCD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the token (surrounding whitespace is ignored).
    #[arg(long, env = "SESSYNCD_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The store's URL and options (e.g. mem://?ttl=30m&max_sessions=1000000).
    #[arg(long, env = "SESSYNCD_STORE")]
    store: Option<String>,
    /// Most connections open at once.
    #[arg(long, env = "SESSYNCD_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds before an idle connection is closed.
    #[arg(long, env = "SESSYNCD_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Most keys in the plain key space (GET/SET).
    #[arg(long, env = "SESSYNCD_MAX_KEYS")]
    max_keys: Option<usize>,
    /// Largest bulk string a client may send, in bytes.
    #[arg(long, env = "SESSYNCD_MAX_BULK")]
    max_bulk: Option<usize>,
    /// Serve TLS on the TCP listener with this certificate chain (PEM; needs --tls-key).
    #[arg(long, env = "SESSYNCD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SESSYNCD_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Seconds a TLS client has to finish its handshake before it is dropped.
    #[arg(long, env = "SESSYNCD_TLS_HANDSHAKE_TIMEOUT")]
    tls_handshake_timeout: Option<u64>,
    /// Threads serving connections (default 1: one event loop, as Redis has). More give
    /// a work-stealing pool of that many, for a daemon on cores of its own.
    #[arg(long, env = "SESSYNCD_THREADS")]
    threads: Option<usize>,
    /// Keep the sessions in this directory (snapshot + append-only log) so that a
    /// restart loses none. Without it they live in memory only.
    #[arg(long, env = "SESSYNCD_DIR")]
    dir: Option<PathBuf>,
    /// When logged changes reach the disk: always (before the reply), everysec
    /// (default) or no (the OS decides).
    #[arg(long, env = "SESSYNCD_APPENDFSYNC")]
    appendfsync: Option<String>,
    /// Compact the log into a new snapshot once it has grown by this many bytes (and by
    /// more than the last snapshot). Default 64 MiB.
    #[arg(long, env = "SESSYNCD_COMPACT_MIN_BYTES")]
    compact_min_bytes: Option<u64>,
    /// Serve the counters in the Prometheus text format at http://ADDR/metrics (no
    /// authentication: bind it where only monitoring reaches).
    #[arg(long, env = "SESSYNCD_METRICS")]
    metrics: Option<SocketAddr>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, env = "SESSYNCD_LOG")]
    log: Option<String>,
    /// For tests only: time moves only on `DEBUG.ADVANCE ms`.
    #[arg(long, hide = true)]
    #[serde(skip)]
    manual_clock: bool,
    /// A file with any of these settings, TOML if its name ends in .toml, JSON otherwise
    /// (flags and the environment win over it).
    #[arg(long, env = "SESSYNCD_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
}

macro_rules! fill {
    ($flags:ident, $file:ident, $($f:ident),*) => {
        $( if $flags.$f.is_none() { $flags.$f = $file.$f.take(); } )*
    };
}

fn settings() -> Result<Flags, String> {
    let mut f = Flags::parse();
    if let Some(path) = f.config.clone() {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        let mut file = parse_config(&path, &text)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        fill!(
            f,
            file,
            unix,
            unix_mode,
            tcp,
            token,
            token_file,
            store,
            max_connections,
            idle_timeout,
            max_bulk,
            max_keys,
            tls_cert,
            tls_key,
            tls_handshake_timeout,
            threads,
            dir,
            appendfsync,
            compact_min_bytes,
            metrics,
            log
        );
    }
    Ok(f)
}

/// The TLS acceptor of `--tls-cert` and `--tls-key`.
#[cfg(feature = "tls")]
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    sessync::server::tls::acceptor(cert, key)
}

/// Without the `tls` feature: an error that says so.
#[cfg(not(feature = "tls"))]
fn tls_acceptor(
    _cert: &std::path::Path,
    _key: &std::path::Path,
) -> Result<std::convert::Infallible, String> {
    Err("--tls-cert and --tls-key: this sessyncd was built without sessync's `tls` feature".into())
}

#[cfg(feature = "tls")]
fn tls_listener(l: tokio::net::TcpListener, a: tokio_rustls::TlsAcceptor) -> Listener {
    Listener::Tls(l, a)
}

#[cfg(not(feature = "tls"))]
fn tls_listener(_: tokio::net::TcpListener, a: std::convert::Infallible) -> Listener {
    match a {}
}

/// Reads a config file: TOML when its name ends in `.toml`, JSON otherwise.
fn parse_config(path: &std::path::Path, text: &str) -> Result<Flags, String> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
    {
        toml::from_str(text).map_err(|e| format!("invalid TOML: {}", e.to_string().trim_end()))
    } else {
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))
    }
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("sessyncd: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let f = settings()?;
    let level = match f.log.as_deref().unwrap_or("info") {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        other => return Err(format!("unknown log level {other:?}")),
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();

    let mut token = f.token.clone();
    if let Some(path) = &f.token_file {
        let t = std::fs::read_to_string(path)
            .map_err(|e| format!("token file {}: {e}", path.display()))?;
        token = Some(t.trim().to_string());
    }
    if token.as_deref().is_some_and(str::is_empty) {
        return Err("the token is empty".into());
    }
    if f.unix.is_none() && f.tcp.is_none() {
        return Err("nothing to listen on: give --unix PATH and/or --tcp ADDR".into());
    }
    if f.tcp.is_some() && token.is_none() {
        tracing::warn!("TCP without a token: any client that can connect can use the store");
    }
    let tls = match (&f.tls_cert, &f.tls_key) {
        (Some(cert), Some(key)) => {
            if f.tcp.is_none() {
                return Err("--tls-cert and --tls-key need --tcp ADDR to serve TLS on".into());
            }
            Some(tls_acceptor(cert, key)?)
        }
        (None, None) => None,
        _ => return Err("TLS needs both --tls-cert FILE and --tls-key FILE".into()),
    };
    let mode = match &f.unix_mode {
        Some(m) => {
            u32::from_str_radix(m, 8).map_err(|_| format!("--unix-mode {m:?} is not octal"))?
        }
        None => 0o600,
    };
    let url = f.store.as_deref().unwrap_or("mem://");
    // The daemon is the store: it applies commands on its own threads, without waiting on
    // another server (a redis:// or unix:// store would block them on every call).
    if !url.starts_with("mem:") {
        return Err(format!(
            "--store {url}: sessyncd keeps the sessions itself, so its store is mem://…; \
             clients that want Redis open redis:// themselves"
        ));
    }
    let manual_clock = f.manual_clock.then(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        sessync::ManualClock::new(now)
    });
    let clock: std::sync::Arc<dyn sessync::Clock> = match &manual_clock {
        Some(c) => c.clone(),
        None => std::sync::Arc::new(sessync::SystemClock),
    };
    let store = match &f.dir {
        Some(dir) => {
            let mut p = Persistence::new(dir);
            if let Some(policy) = &f.appendfsync {
                p.fsync = policy
                    .parse::<Fsync>()
                    .map_err(|e| format!("--appendfsync: {e}"))?;
            }
            if let Some(n) = f.compact_min_bytes {
                p.compact_min_bytes = n;
            }
            let (_, options) = sessync::config::parse_url(url).map_err(|e| e.to_string())?;
            tracing::info!("persistence: {} (appendfsync {})", dir.display(), p.fsync);
            Store::memory_persistent(options, clock, &p)
        }
        None => {
            if f.appendfsync.is_some() || f.compact_min_bytes.is_some() {
                return Err("--appendfsync and --compact-min-bytes need --dir".into());
            }
            tracing::info!("no --dir: the sessions live in memory only and a restart loses them");
            Store::open_with_clock(url, clock)
        }
    }
    .map_err(|e| e.to_string())?;
    let mut limits = Limits::default();
    if let Some(b) = f.max_bulk {
        limits.max_bulk = b;
    }
    let config = Config {
        token,
        max_connections: f.max_connections.unwrap_or(10_000),
        idle_timeout: Duration::from_secs(f.idle_timeout.unwrap_or(300)),
        limits,
        max_keys: f.max_keys.unwrap_or(1_000_000),
        manual_clock,
        tls_handshake_timeout: Duration::from_secs(f.tls_handshake_timeout.unwrap_or(10).max(1)),
    };

    // One thread by default: the daemon usually shares its machine with the workers it
    // serves, and a second thread then competes with them for the cores and lengthens
    // the tail latencies (docs/architecture.md, "sessyncd's threads").
    let rt = match f.threads.unwrap_or(1) {
        1 => tokio::runtime::Builder::new_current_thread(),
        n @ 2..=1024 => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        n => return Err(format!("--threads {n}: give 1 to 1024")),
    }
    .enable_all()
    .build()
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(async move {
        let mut listeners = Vec::new();
        if let Some(path) = &f.unix {
            if path.exists() {
                // A socket left by a process that is gone: refuse if one still answers.
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(format!("{} is in use by a running server", path.display()));
                }
                let _ = std::fs::remove_file(path);
            }
            let l = tokio::net::UnixListener::bind(path)
                .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
            tracing::info!("listening on unix:{}", path.display());
            listeners.push(Listener::Unix(l, path.clone()));
        }
        if let Some(addr) = f.tcp {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            let scheme = if tls.is_some() { "tls" } else { "tcp" };
            tracing::info!("listening on {scheme}:{local}");
            // One line on stdout with the bound address, for scripts and tests.
            println!("listening on {scheme}:{local}");
            listeners.push(match tls {
                Some(a) => tls_listener(l, a),
                None => Listener::Tcp(l),
            });
        }
        if f.unix.is_some() {
            println!(
                "listening on unix:{}",
                f.unix
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        if let Some(addr) = f.metrics {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            tracing::info!("metrics on http://{local}/metrics");
            println!("metrics on http://{local}/metrics");
            listeners.push(Listener::Metrics(l));
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        sessync::server::run(store, config, listeners, shutdown_signal()).await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
