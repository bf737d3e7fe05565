//! The accept loop of one listener: a connection slot (the semaphore of
//! [`Config::max_connections`](super::Config::max_connections)) before each accept, the
//! TLS handshake in the connection's own task, and the count of connections being served.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::watch;

use super::{
    Listener, Shared,
    connection::{Io, serve},
};

/// Accepts connections on `l` until `stop`, each served in a task of its own; then waits
/// for them to finish.
pub(super) async fn accept_loop(l: Listener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = shared.connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = accept(&l) => a,
        };
        match accepted {
            Ok((io, tcp)) => {
                let shared = shared.clone();
                let stop = stop.clone();
                #[cfg(feature = "tls")]
                let tls = match &l {
                    Listener::Tls(_, a) => Some(a.clone()),
                    _ => None,
                };
                conns.spawn(async move {
                    let _permit = permit;
                    let id = shared.next_client.fetch_add(1, Ordering::Relaxed);
                    #[cfg(feature = "tls")]
                    let io = match tls {
                        None => io,
                        Some(acceptor) => {
                            let hs = shared.config.tls_handshake_timeout;
                            match tokio::time::timeout(hs, acceptor.accept(io)).await {
                                Ok(Ok(s)) => Box::new(s),
                                Ok(Err(e)) => {
                                    tracing::debug!(client = id, "TLS handshake failed: {e}");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(client = id, "TLS handshake timed out");
                                    return;
                                }
                            }
                        }
                    };
                    let needs_auth = tcp && shared.config.token.is_some();
                    let counter = shared.clone();
                    let _counted = Counted::new(&counter.clients);
                    if let Err(e) = serve(io, shared, needs_auth, stop).await {
                        tracing::debug!(client = id, "connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while conns.try_join_next().is_some() {}
    }
    while conns.join_next().await.is_some() {}
}

/// Counts one in `n` while it lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(n: &'a AtomicUsize) -> Counted<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        Counted(n)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept(l: &Listener) -> std::io::Result<(Io, bool)> {
    match l {
        #[cfg(feature = "tls")]
        Listener::Tls(t, _) => accept_tcp(t).await,
        Listener::Tcp(t) => accept_tcp(t).await,
        Listener::Unix(u, _) => {
            let (s, _) = u.accept().await?;
            Ok((Box::new(s), false))
        }
        Listener::Metrics(_) => Err(std::io::Error::other(
            "the metrics listener serves no commands",
        )),
    }
}

async fn accept_tcp(t: &tokio::net::TcpListener) -> std::io::Result<(Io, bool)> {
    let (s, _) = t.accept().await?;
    let _ = s.set_nodelay(true);
    Ok((Box::new(s), true))
}
