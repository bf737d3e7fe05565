//! sessyncd: the store outside every worker, over RESP on a Unix socket and/or TCP.
//!
//! Shape (after tokio's mini-redis): [`run`] accepts connections on each listener, with
//! a semaphore bounding how many are open; each connection is a task that reads RESP
//! requests into a buffer, applies them to the shared [`Store`] (the same state machine
//! as `mem://`), and writes the replies. A shutdown future stops the listeners; open
//! connections finish the request in hand and close. A TLS listener ([`Listener::Tls`],
//! see [`tls`]) runs each handshake in the connection's task, under a timeout, so a
//! slow or broken client never holds up the accept loop.
//!
//! Here: [`run`], [`Config`], [`Listener`] and the state every connection shares. The
//! rest: `listener.rs` (the accept loop, connection slots and counting), `connection.rs`
//! (a connection's state, read buffer and serve loop), `cmd/` (the commands, one file per
//! group), `kv.rs` (the plain key map), [`resp`] (RESP parsing and reply writing) and
//! [`tls`] (the TLS acceptor).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cmd;
mod connection;
mod kv;
mod listener;
mod metrics;
pub mod resp;
#[cfg(feature = "tls")]
pub mod tls;

use std::{
    future::Future,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize},
    },
    time::Duration,
};

use tokio::{
    net::{TcpListener, UnixListener},
    sync::{Semaphore, watch},
};

use self::resp::Limits;
use crate::store::Store;

/// How the daemon runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The token TCP clients must present with `AUTH` (or `HELLO … AUTH`). Unix-socket
    /// clients are trusted by the socket's file permissions.
    pub token: Option<String>,
    /// Most connections open at once; more wait in the listen queue.
    pub max_connections: usize,
    /// A connection idle this long is closed.
    pub idle_timeout: Duration,
    /// Request limits.
    pub limits: Limits,
    /// Most keys in the plain key space (`SET`).
    pub max_keys: usize,
    /// For tests: the store's clock, moved by `DEBUG.ADVANCE ms` (off: no such command).
    pub manual_clock: Option<Arc<crate::clock::ManualClock>>,
    /// How long a client of a TLS listener has to finish its handshake: one that sends
    /// nothing, or plain text, must not hold a connection slot for long.
    pub tls_handshake_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            token: None,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            limits: Limits::default(),
            max_keys: 1_000_000,
            manual_clock: None,
            tls_handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A listening socket.
pub enum Listener {
    /// TCP: clients must authenticate when a token is configured.
    Tcp(TcpListener),
    /// TCP with TLS (every connection must handshake first); otherwise as `Tcp` (the
    /// `tls` feature).
    #[cfg(feature = "tls")]
    Tls(TcpListener, tokio_rustls::TlsAcceptor),
    /// A Unix socket (its path is removed when the server stops).
    Unix(UnixListener, PathBuf),
    /// Plain HTTP serving the counters in the Prometheus text format at `GET /metrics`
    /// (no commands; no authentication, so bind it where only monitoring reaches).
    Metrics(TcpListener),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listener::Tcp(l) => f.debug_tuple("Tcp").field(l).finish(),
            #[cfg(feature = "tls")]
            Listener::Tls(l, _) => f.debug_tuple("Tls").field(l).finish(),
            Listener::Unix(l, p) => f.debug_tuple("Unix").field(l).field(p).finish(),
            Listener::Metrics(l) => f.debug_tuple("Metrics").field(l).finish(),
        }
    }
}

/// What every connection shares: the store, the plain keys, the settings, the counters.
struct Shared {
    store: Store,
    kv: kv::Kv,
    config: Config,
    next_client: AtomicU64,
    /// Connections being served (past their TLS handshake), for `INFO`.
    clients: AtomicUsize,
    started: std::time::Instant,
    connections: Arc<Semaphore>,
}

/// Serves `listeners` until `shutdown` completes, then waits for open connections to
/// finish their request in hand.
pub async fn run(
    store: Store,
    config: Config,
    listeners: Vec<Listener>,
    shutdown: impl Future<Output = ()>,
) {
    let shared = Arc::new(Shared {
        kv: kv::Kv::new(config.max_keys),
        store,
        connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
        config,
        next_client: AtomicU64::new(1),
        clients: AtomicUsize::new(0),
        started: std::time::Instant::now(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut paths = Vec::new();
    for l in listeners {
        let shared = shared.clone();
        let stop = stop_rx.clone();
        if let Listener::Unix(_, p) = &l {
            paths.push(p.clone());
        }
        match l {
            Listener::Metrics(m) => tasks.spawn(metrics::serve_http(m, shared, stop)),
            l => tasks.spawn(listener::accept_loop(l, shared, stop)),
        };
    }
    tasks.spawn(sweep_keys(shared.clone(), stop_rx.clone()));
    shutdown.await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

/// Drops expired plain keys, waking at the next deadline (at least once a second, so a
/// key set meanwhile with an earlier deadline waits at most that long for memory back;
/// reads never see it expired).
async fn sweep_keys(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        let now = shared.store.now_ms();
        let next = shared.kv.sweep(now);
        let wait = next.map_or(1_000, |t| t.saturating_sub(now).clamp(1, 1_000));
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
        }
    }
}
