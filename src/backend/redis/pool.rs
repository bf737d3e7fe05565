//! Connections: redis-rs's (to one server, or to a Cluster), pooled, one call at a time;
//! and on a standalone server, shared connections that the calls which cannot block
//! pipeline (`src/backend/wire/shared.rs`), set up as redis-rs would set up one of the
//! URL. A refused command keeps its connection; anything else drops it and every idle one.

use std::{sync::atomic::Ordering, time::Duration};

use ::redis::{ConnectionLike, Value};

use super::{Redis, backend};
use crate::{
    backend::wire::{
        link::{self, Raw, Resp},
        shared::Shared,
    },
    config::RedisOptions,
    error::{Error, Result},
    protocol,
};

/// A connection: to one server, or to a Cluster (routing each call by its key's slot).
pub(super) enum Conn {
    One(::redis::Connection),
    Cluster(Box<::redis::cluster::ClusterConnection>),
}

impl Conn {
    pub(super) fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::One(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }

    pub(super) fn set_read_timeout(&self, t: Duration) {
        let _ = match self {
            Conn::One(c) => c.set_read_timeout(Some(t)),
            Conn::Cluster(c) => c.set_read_timeout(Some(t)),
        };
    }
}

/// How connections are made: redis-rs's client of one server, or of a Cluster.
pub(super) enum Client {
    One(::redis::Client),
    Cluster(::redis::cluster::ClusterClient),
}

impl Client {
    /// The client of the URL's nodes (TLS with `rediss://`, the `ca` file's roots when
    /// given), and whether it uses TLS.
    pub(super) fn open(opts: &RedisOptions) -> Result<(Client, bool)> {
        // Without the `tls` feature the URL parser refuses `rediss://` and `ca`, so
        // `tls` is false and there are no certificates.
        #[cfg(feature = "tls")]
        let certs = match &opts.ca {
            Some(path) => Some(::redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(path).map_err(|e| {
                    Error::invalid(format!("store URL option ca={}: {e}", path.display()))
                })?),
            }),
            None => None,
        };
        let tls = opts.nodes.iter().any(|n| n.starts_with("rediss:"));
        #[cfg(feature = "tls")]
        if tls {
            // rustls's ring provider, unless the application installed one already.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = if opts.cluster {
            #[allow(unused_mut)]
            let mut b = ::redis::cluster::ClusterClientBuilder::new(opts.nodes.clone())
                .connection_timeout(opts.timeout)
                .response_timeout(opts.timeout);
            #[cfg(feature = "tls")]
            {
                if tls {
                    b = b.tls(::redis::cluster::TlsMode::Secure);
                }
                if let Some(c) = certs {
                    b = b.certs(c);
                }
            }
            let c = b
                .build()
                .map_err(|e| Error::invalid(format!("redis cluster URL: {e}")))?;
            Client::Cluster(c)
        } else {
            let url = opts.nodes.first().cloned().unwrap_or_default();
            #[cfg(feature = "tls")]
            let c = match certs {
                Some(certs) => ::redis::Client::build_with_tls(url.as_str(), certs),
                None => ::redis::Client::open(url.as_str()),
            };
            #[cfg(not(feature = "tls"))]
            let c = ::redis::Client::open(url.as_str());
            Client::One(c.map_err(|e| Error::invalid(format!("redis URL: {e}")))?)
        };
        Ok((client, tls))
    }
}

/// A failed call: the error, and whether the connection is still good.
pub(super) struct Failed {
    pub(super) err: Error,
    pub(super) broken: bool,
}

/// A reply of a shared connection as redis-rs would give it (`+OK` is `Okay`); an error
/// reply as its text.
pub(super) fn value_of(r: Resp) -> std::result::Result<Value, String> {
    Ok(match r {
        Resp::Error(e) => return Err(e),
        Resp::Simple(s) if s == "OK" => Value::Okay,
        Resp::Simple(s) => Value::SimpleString(s),
        Resp::Int(n) => Value::Int(n),
        Resp::Bulk(b) => Value::BulkString(b),
        Resp::Null => Value::Nil,
        Resp::Array(items) => Value::Array(
            items
                .into_iter()
                .map(value_of)
                .collect::<std::result::Result<_, _>>()?,
        ),
    })
}

impl Redis {
    pub(super) fn where_(&self) -> String {
        let hosts: Vec<&str> = self
            .opts
            .nodes
            .iter()
            .map(|n| {
                let n = n.split_once("://").map_or(n.as_str(), |(_, r)| r);
                n.rsplit_once('@').map(|(_, h)| h).unwrap_or(n)
            })
            .collect();
        format!("redis at {}", hosts.join(","))
    }

    pub(super) fn connect(&self) -> Result<Conn> {
        let fail = |e: ::redis::RedisError| backend(format!("cannot reach {}: {e}", self.where_()));
        let t = self.opts.timeout;
        let c = match &self.client {
            Client::One(c) => {
                let c = c.get_connection_with_timeout(t).map_err(fail)?;
                c.set_read_timeout(Some(t)).map_err(fail)?;
                c.set_write_timeout(Some(t)).map_err(fail)?;
                Conn::One(c)
            }
            Client::Cluster(c) => {
                let c = c.get_connection().map_err(fail)?;
                c.set_read_timeout(Some(t)).map_err(fail)?;
                c.set_write_timeout(Some(t)).map_err(fail)?;
                Conn::Cluster(Box::new(c))
            }
        };
        Ok(c)
    }

    /// A new connection to be shared: to the server of the URL, authenticated and on
    /// its database, as redis-rs would set it up.
    pub(super) fn connect_shared(&self) -> Result<Shared> {
        let Client::One(client) = &self.client else {
            return Err(backend("no shared connections to a Cluster"));
        };
        let at = self.where_();
        let fail = |e: &dyn std::fmt::Display| backend(format!("cannot reach {at}: {e}"));
        let info = client.get_connection_info();
        let t = self.opts.timeout;
        let raw = match info.addr() {
            ::redis::ConnectionAddr::Tcp(host, port) => {
                use std::net::ToSocketAddrs;
                let mut last = None;
                let mut stream = None;
                for a in (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| fail(&e))?
                {
                    match std::net::TcpStream::connect_timeout(&a, t) {
                        Ok(s) => {
                            stream = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let s = match (stream, last) {
                    (Some(s), _) => s,
                    (None, Some(e)) => return Err(fail(&e)),
                    (None, None) => return Err(fail(&"no address")),
                };
                s.set_nodelay(true).map_err(|e| fail(&e))?;
                Raw::Tcp(s)
            }
            ::redis::ConnectionAddr::Unix(p) => {
                Raw::Unix(std::os::unix::net::UnixStream::connect(p).map_err(|e| fail(&e))?)
            }
            _ => return Err(backend("no shared connections over TLS")),
        };
        raw.set_timeout(t).map_err(|e| fail(&e))?;
        let mut c = link::Conn::new(raw, None).map_err(|e| fail(&e))?;
        let settings = info.redis_settings();
        let mut steps: Vec<Vec<&[u8]>> = Vec::new();
        if let Some(p) = settings.password() {
            match settings.username() {
                Some(u) => steps.push(vec![b"AUTH", u.as_bytes(), p.as_bytes()]),
                None => steps.push(vec![b"AUTH", p.as_bytes()]),
            }
        }
        let db = settings.db().to_string();
        if settings.db() != 0 {
            steps.push(vec![b"SELECT", db.as_bytes()]);
        }
        for step in steps {
            match c.call(&step).map_err(|e| fail(&e))? {
                Resp::Error(e) => return Err(fail(&e)),
                _ => continue,
            }
        }
        Ok(Shared::new(c, at))
    }

    /// `c` on a shared connection: its reply, or the text of its error reply.
    pub(super) fn on_shared(&self, c: &::redis::Cmd) -> Result<std::result::Result<Value, String>> {
        let reply = self
            .shared
            .call(&c.get_packed_command(), self.opts.timeout, &|| {
                self.connect_shared()
            })
            .inspect_err(|_| {
                // As on a pooled connection: after a restart the idle ones are dead too.
                self.idle.lock().clear();
            })?;
        Ok(value_of(reply))
    }

    /// A plain command (no script): on a shared connection when there are some, else on
    /// a pooled one.
    pub(super) fn plain(&self, c: &::redis::Cmd) -> Result<Value> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        if self.shared.is_empty() {
            return self.query(c);
        }
        self.on_shared(c)?
            .map_err(|e| protocol::error::parse(&e, &self.where_()))
    }

    pub(super) fn take(&self) -> Result<Conn> {
        if let Some(c) = self.idle.lock().pop() {
            return Ok(c);
        }
        self.connect()
    }

    pub(super) fn give_back(&self, c: Conn) {
        let mut idle = self.idle.lock();
        if idle.len() < self.opts.pool {
            idle.push(c);
        }
    }

    /// A call failed: a server's refusal keeps the connection, anything else drops it and
    /// every idle one (after a restart they are all dead).
    pub(super) fn failed(&self, e: ::redis::RedisError) -> Failed {
        let server = matches!(
            e.kind(),
            ::redis::ErrorKind::Extension | ::redis::ErrorKind::Server(_)
        ) && !e.is_connection_dropped();
        if server {
            if let Some(code) = e.code() {
                let wire = match e.detail() {
                    Some(d) => format!("{code} {d}"),
                    None => code.to_string(),
                };
                return Failed {
                    err: protocol::error::parse(&wire, &self.where_()),
                    broken: false,
                };
            }
        }
        self.idle.lock().clear();
        Failed {
            err: backend(format!("{}: {e}", self.where_())),
            broken: true,
        }
    }

    /// `f` on a pooled connection, which goes back to the pool unless it broke.
    pub(super) fn pooled<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> std::result::Result<T, Failed>,
    ) -> Result<T> {
        let mut conn = self.take()?;
        match f(&mut conn) {
            Ok(v) => {
                self.give_back(conn);
                Ok(v)
            }
            Err(fail) => {
                if !fail.broken {
                    self.give_back(conn);
                }
                Err(fail.err)
            }
        }
    }

    /// A plain command on a pooled connection.
    pub(super) fn query(&self, c: &::redis::Cmd) -> Result<Value> {
        self.pooled(|conn| c.query::<Value>(conn.like()).map_err(|e| self.failed(e)))
    }
}
