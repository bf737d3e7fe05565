//! `unix:///path`, `tcp://:token@host:port` and `tls://:token@host:port?ca=…`: the
//! store in a sessyncd.
//!
//! Every [`Command`] becomes one `SESS.*` request, and its reply becomes the same
//! [`Reply`] (or [`Error`]) that `mem://` gives, so the conformance suite runs unchanged.
//!
//! - **Shared connections** (`shared`, default 1) carry every request that cannot block
//!   on the daemon: callers pipeline their requests on them and each waits for its own
//!   reply (see `shared.rs`). Callers are spread over them in turn.
//! - **Dedicated connections** (up to `pool`, default 16) carry one request at a time:
//!   a `SESS.LOCK` that may wait, so that it never stalls the requests behind it, and
//!   every request when `shared=0`.
//! - **Timeouts.** Sockets have read and write timeouts (`timeout`, plus a lock's own
//!   wait): a daemon that is down or stuck gives a clear `Backend` error, never a hang.
//!   A request that fails after it was sent is not retried (it may have been applied);
//!   one that found its connection dead before anything was sent is tried once more on
//!   a new connection.
//! - **Backoff.** After a connect fails, connects wait 50 ms, doubling to 2 s (with
//!   jitter); a call in that window fails at once, naming the address and the time
//!   left. The first connect that succeeds resets it.
//! - **TLS** (`tls://`) is rustls with the `ring` provider, trusting the CA certificates
//!   of the `ca` file, or the system's roots without it.

mod backoff;

#[cfg(feature = "tls")]
use std::sync::Arc;
use std::{
    net::TcpStream,
    os::unix::net::UnixStream,
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};
#[cfg(feature = "tls")]
use rustls::{
    ClientConfig, ClientConnection, RootCertStore,
    pki_types::{CertificateDer, ServerName, pem::PemObject},
};

use self::backoff::Backoff;
use super::{
    Backend, Stats,
    wire::{
        link::{Conn, Raw, Resp, encode},
        shared::{Places, Shared},
    },
};
use crate::{
    command::{Command, Patched, Reply, Touched, WriteOpts, check_count, check_ttl},
    config::{RemoteAddr, RemoteOptions},
    error::{Error, Result},
    protocol::{
        self, ops,
        record::{self, int, text, unexpected},
    },
    session::SessionId,
};

/// The client backend of a sessyncd.
pub struct Remote {
    opts: RemoteOptions,
    /// The address as errors name it (`unix:/run/s.sock`, `tls:host:7700`).
    at: String,
    /// TLS settings and the name the daemon's certificate must carry.
    #[cfg(feature = "tls")]
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    backoff: Mutex<Backoff>,
    /// The shared connections (`opts.shared` places, each connected on first use).
    shared: Places,
    /// Idle dedicated connections.
    idle: Mutex<Vec<Conn>>,
    /// How many dedicated connections exist (idle or in use).
    open: Mutex<usize>,
    freed: Condvar,
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// The rustls client settings of a `tls://` URL.
#[cfg(feature = "tls")]
fn tls_config(t: &crate::config::TlsOptions) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    match &t.ca {
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| {
                Error::invalid(format!("store URL option ca={}: {e}", path.display()))
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no PEM certificate in the file"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(Error::invalid(
                    "tls:// without ca=: no trusted CA certificates found on this system; \
                     give ca=/path/to/ca.pem",
                ));
            }
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| backend(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Remote {
    /// A client of the daemon at `opts.addr`. Connects once, to fail early and clearly.
    pub fn new(opts: RemoteOptions) -> Result<Remote> {
        let at = match (&opts.addr, &opts.tls) {
            (RemoteAddr::Unix(p), _) => format!("unix:{}", p.display()),
            (RemoteAddr::Tcp(h, p), None) => format!("tcp:{h}:{p}"),
            (RemoteAddr::Tcp(h, p), Some(_)) => format!("tls:{h}:{p}"),
        };
        #[cfg(feature = "tls")]
        let tls = match (&opts.addr, &opts.tls) {
            (RemoteAddr::Tcp(host, _), Some(t)) => {
                let name = t.server_name.clone().unwrap_or_else(|| host.clone());
                let name = ServerName::try_from(name.clone()).map_err(|_| {
                    Error::invalid(format!("{name:?} is not a valid TLS server name"))
                })?;
                Some((tls_config(t)?, name))
            }
            _ => None,
        };
        let r = Remote {
            shared: Places::new(opts.shared),
            opts,
            at,
            #[cfg(feature = "tls")]
            tls,
            backoff: Mutex::new(Backoff::default()),
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            freed: Condvar::new(),
        };
        let c = r.connect()?;
        if r.shared.is_empty() {
            *r.open.lock() += 1;
            r.idle.lock().push(c);
        } else {
            r.shared.seed(r.share(c));
        }
        Ok(r)
    }

    /// Connects, unless a failed connect is too recent (see `backoff.rs`).
    fn connect(&self) -> Result<Conn> {
        if let Err((wait, why)) = self.backoff.lock().check(Instant::now()) {
            return Err(backend(format!(
                "sessyncd at {} is unreachable ({why}); next connect attempt in {} ms",
                self.at,
                wait.as_millis().max(1)
            )));
        }
        match self.connect_now() {
            Ok(c) => {
                self.backoff.lock().succeeded();
                Ok(c)
            }
            Err(e) => {
                let d = self
                    .backoff
                    .lock()
                    .failed(Instant::now(), backoff::draw(), e.clone());
                Err(backend(format!(
                    "{e}; next connect attempt in {} ms",
                    d.as_millis().max(1)
                )))
            }
        }
    }

    fn connect_now(&self) -> std::result::Result<Conn, String> {
        let t = self.opts.timeout;
        let unreachable =
            |e: &dyn std::fmt::Display| format!("cannot reach sessyncd at {}: {e}", self.at);
        let raw = match &self.opts.addr {
            RemoteAddr::Unix(p) => Raw::Unix(UnixStream::connect(p).map_err(|e| unreachable(&e))?),
            RemoteAddr::Tcp(h, port) => {
                use std::net::ToSocketAddrs;
                let addrs: Vec<_> = (h.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {h}: {e}"))?
                    .collect();
                let mut last = None;
                let mut found = None;
                for a in addrs {
                    match TcpStream::connect_timeout(&a, t) {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            found = Some(s);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                Raw::Tcp(
                    found.ok_or_else(|| {
                        unreachable(&last.map(|e| e.to_string()).unwrap_or_default())
                    })?,
                )
            }
        };
        raw.set_timeout(t).map_err(|e| unreachable(&e))?;
        #[cfg(feature = "tls")]
        let tls = match (&self.tls, &raw) {
            (Some((config, name)), Raw::Tcp(tcp)) => Some(self.handshake(config, name, tcp)?),
            _ => None,
        };
        #[cfg(not(feature = "tls"))]
        let tls = None;
        let mut c = Conn::new(raw, tls).map_err(|e| unreachable(&e))?;
        if let Some(token) = &self.opts.token {
            match c.call(&[b"AUTH", token.as_bytes()]) {
                Ok(Resp::Simple(_)) => {}
                Ok(Resp::Error(e)) => {
                    return Err(format!("sessyncd at {} refused AUTH: {e}", self.at));
                }
                Ok(other) => {
                    return Err(format!(
                        "sessyncd at {}: unexpected AUTH reply {other:?}",
                        self.at
                    ));
                }
                Err(e) => return Err(format!("sessyncd at {}: {e}", self.at)),
            }
        }
        Ok(c)
    }

    /// The TLS handshake, under the socket's timeouts.
    #[cfg(feature = "tls")]
    fn handshake(
        &self,
        config: &Arc<ClientConfig>,
        name: &ServerName<'static>,
        tcp: &TcpStream,
    ) -> std::result::Result<ClientConnection, String> {
        let fail = |e: &dyn std::fmt::Display| {
            let mut m = format!("TLS handshake with sessyncd at {} failed: {e}", self.at);
            if m.contains("certificate") {
                m.push_str(
                    " (the `ca` option must name the CA that signed the daemon's certificate, \
                     and the certificate must carry the URL's host or `servername`)",
                );
            }
            m
        };
        let mut c = ClientConnection::new(config.clone(), name.clone()).map_err(|e| fail(&e))?;
        let mut io = tcp;
        while c.is_handshaking() {
            match c.complete_io(&mut io) {
                Ok((0, 0)) if c.is_handshaking() => {
                    return Err(fail(&"the daemon closed the connection"));
                }
                Ok(_) => {}
                Err(e) => return Err(fail(&e)),
            }
        }
        Ok(c)
    }

    /// A connection that is set up, to be shared.
    fn share(&self, c: Conn) -> Shared {
        Shared::new(c, format!("sessyncd at {}", self.at))
    }

    /// Takes an idle dedicated connection, or opens one while under the pool size, or
    /// waits for one until `deadline`.
    fn take(&self, deadline: Instant) -> Result<Conn> {
        loop {
            if let Some(c) = self.idle.lock().pop() {
                if !c.raw.peer_gone() {
                    return Ok(c);
                }
                *self.open.lock() -= 1;
                continue;
            }
            let mut open = self.open.lock();
            if *open < self.opts.pool {
                *open += 1;
                drop(open);
                return self.connect().inspect_err(|_| {
                    *self.open.lock() -= 1;
                    self.freed.notify_one();
                });
            }
            if self.freed.wait_until(&mut open, deadline).timed_out() {
                return Err(backend(format!(
                    "sessyncd at {}: all {} dedicated connections stayed busy (pool={})",
                    self.at, self.opts.pool, self.opts.pool
                )));
            }
        }
    }

    fn give_back(&self, c: Option<Conn>) {
        match c {
            Some(c) => self.idle.lock().push(c),
            None => *self.open.lock() -= 1,
        }
        self.freed.notify_one();
    }

    /// One request on a dedicated connection. A connection that failed is dropped.
    fn call_dedicated(&self, args: &[&[u8]], extra_wait: Duration) -> Result<Resp> {
        let limit = self.opts.timeout + extra_wait;
        let mut c = self.take(Instant::now() + limit)?;
        if !extra_wait.is_zero() {
            let _ = c.raw.set_timeout(limit);
        }
        let r = c.call(args);
        if !extra_wait.is_zero() {
            let _ = c.raw.set_timeout(self.opts.timeout);
        }
        match r {
            Ok(resp) => {
                self.give_back(Some(c));
                Ok(resp)
            }
            Err(e) => {
                self.give_back(None);
                Err(backend(format!("sessyncd at {}: {e}", self.at)))
            }
        }
    }

    /// One request on a shared connection.
    fn call_shared(&self, args: &[&[u8]]) -> Result<Resp> {
        self.shared.call(&encode(args), self.opts.timeout, &|| {
            Ok(self.share(self.connect()?))
        })
    }

    /// One request, one reply: `blocking` requests (lock waits) and every request when
    /// there are no shared connections go on a dedicated connection.
    fn call(&self, args: &[&[u8]], extra_wait: Duration) -> Result<Resp> {
        let resp = if extra_wait.is_zero() && !self.shared.is_empty() {
            self.call_shared(args)?
        } else {
            self.call_dedicated(args, extra_wait)?
        };
        match resp {
            Resp::Error(e) => Err(protocol::error::parse(&e, "sessyncd")),
            other => Ok(other),
        }
    }
}

fn ttl_args(ttl_ms: Option<u64>, out: &mut Vec<Vec<u8>>) {
    if let Some(t) = ttl_ms {
        out.push(b"TTL".to_vec());
        out.push(t.to_string().into_bytes());
    }
}

fn opts_args(o: &WriteOpts, out: &mut Vec<Vec<u8>>) {
    if let Some(v) = o.expected_version {
        out.push(b"VERSION".to_vec());
        out.push(v.to_string().into_bytes());
    }
    if let Some(t) = o.token {
        out.push(b"TOKEN".to_vec());
        out.push(t.to_string().into_bytes());
    }
    if o.create {
        out.push(b"CREATE".to_vec());
    }
    if o.release {
        out.push(b"RELEASE".to_vec());
    }
}

impl Backend for Remote {
    fn execute(&self, cmd: Command) -> Result<Reply> {
        let mut a: Vec<Vec<u8>> = Vec::with_capacity(8);
        let mut wait = Duration::ZERO;
        let name: &[u8] = match &cmd {
            Command::Fetch { id, touch } => {
                a.push(id.as_bytes().to_vec());
                if *touch {
                    a.push(b"TOUCH".to_vec());
                }
                b"SESS.FETCH"
            }
            Command::Write {
                id,
                data,
                opts,
                ttl_ms,
            } => {
                check_ttl(*ttl_ms)?;
                a.push(id.as_bytes().to_vec());
                a.push(data.to_json().as_bytes().to_vec());
                opts_args(
                    &WriteOpts {
                        create: false,
                        ..*opts
                    },
                    &mut a,
                );
                ttl_args(*ttl_ms, &mut a);
                b"SESS.WRITE"
            }
            Command::Patch {
                id,
                ops,
                opts,
                ttl_ms,
            } => {
                check_ttl(*ttl_ms)?;
                a.push(id.as_bytes().to_vec());
                a.push(ops::encode(ops).into_bytes());
                opts_args(opts, &mut a);
                ttl_args(*ttl_ms, &mut a);
                b"SESS.APPLY"
            }
            Command::Lock {
                id,
                lease_ms,
                wait_ms,
            } => {
                a.push(id.as_bytes().to_vec());
                a.push(lease_ms.to_string().into_bytes());
                a.push(wait_ms.to_string().into_bytes());
                wait = Duration::from_millis(*wait_ms);
                b"SESS.LOCK"
            }
            Command::Unlock { id, token } => {
                a.push(id.as_bytes().to_vec());
                a.push(token.to_string().into_bytes());
                b"SESS.UNLOCK"
            }
            Command::Touch { id, ttl_ms } => {
                check_ttl(*ttl_ms)?;
                a.push(id.as_bytes().to_vec());
                ttl_args(*ttl_ms, &mut a);
                b"SESS.TOUCH"
            }
            Command::Destroy { id } => {
                a.push(id.as_bytes().to_vec());
                b"SESS.DESTROY"
            }
            Command::Rotate { id, token } => {
                a.push(id.as_bytes().to_vec());
                if let Some(t) = token {
                    a.push(b"TOKEN".to_vec());
                    a.push(t.to_string().into_bytes());
                }
                b"SESS.ROTATE"
            }
            Command::Owned { owner } => {
                a.push(owner.as_bytes().to_vec());
                b"SESS.OWNED"
            }
            Command::DestroyOwned { owner } => {
                a.push(owner.as_bytes().to_vec());
                b"SESS.DESTROYALL"
            }
            Command::List { cursor, count } => {
                check_count(*count)?;
                a.push(cursor.to_string().into_bytes());
                a.push(b"COUNT".to_vec());
                a.push(count.to_string().into_bytes());
                b"SESS.LIST"
            }
            Command::Clear => b"SESS.CLEAR",
        };
        let mut args: Vec<&[u8]> = vec![name];
        args.extend(a.iter().map(|x| x.as_slice()));
        let resp = self.call(&args, wait)?;
        Ok(match cmd {
            Command::Fetch { touch, .. } => match resp {
                Resp::Null => Reply::Record {
                    record: None,
                    touched: false,
                },
                r if touch => {
                    let (touched, rec) = record::read_pair(r, "a touched fetch")?;
                    Reply::Record {
                        record: Some(rec),
                        touched: touched != 0,
                    }
                }
                r => Reply::Record {
                    record: Some(record::read(r)?),
                    touched: false,
                },
            },
            Command::Write { .. } => Reply::Version(int(&resp)? as u64),
            Command::Patch { .. } => {
                let Resp::Array(v) = resp else {
                    return Err(unexpected(resp));
                };
                let version = v.first().map(int).transpose()?.unwrap_or(0) as u64;
                let values = match v.get(1) {
                    Some(Resp::Array(xs)) => xs.iter().map(int).collect::<Result<Vec<_>>>()?,
                    _ => Vec::new(),
                };
                Reply::Patched(Patched { version, values })
            }
            Command::Lock { .. } => {
                let (token, rec) = record::read_pair(resp, "a lock reply")?;
                Reply::Locked {
                    token: token as u64,
                    record: rec,
                }
            }
            Command::Unlock { .. } => Reply::Unlocked,
            Command::Touch { .. } => {
                let Resp::Array(v) = resp else {
                    return Err(unexpected(resp));
                };
                let written = v.first().map(int).transpose()?.unwrap_or(0) != 0;
                let expires_at = v.get(1).map(int).transpose()?.unwrap_or(0) as u64;
                Reply::Touched(Touched {
                    written,
                    expires_at,
                })
            }
            Command::Destroy { .. } => Reply::Destroyed(int(&resp)? != 0),
            Command::Rotate { .. } => Reply::Rotated(SessionId::parse(&text(&resp)?)?),
            Command::Owned { .. } => {
                let Resp::Array(v) = resp else {
                    return Err(unexpected(resp));
                };
                let ids = v
                    .iter()
                    .map(|x| text(x).and_then(|t| SessionId::parse(&t)))
                    .collect::<Result<Vec<_>>>()?;
                Reply::Sessions(ids)
            }
            Command::DestroyOwned { .. } | Command::Clear => Reply::Count(int(&resp)? as usize),
            Command::List { .. } => {
                let Resp::Array(v) = resp else {
                    return Err(unexpected(resp));
                };
                let (Some(next), Some(Resp::Array(xs))) = (v.first(), v.get(1)) else {
                    return Err(Error::Backend("a list reply has 2 items".into()));
                };
                let next = text(next)?
                    .parse::<u64>()
                    .map_err(|_| Error::Backend("a list reply's cursor is not a number".into()))?;
                let ids = xs
                    .iter()
                    .map(|x| text(x).and_then(|t| SessionId::parse(&t)))
                    .collect::<Result<Vec<_>>>()?;
                Reply::Page { ids, next }
            }
        })
    }

    fn stats(&self) -> Stats {
        let Ok(resp) = self.call(&[b"SESS.STATS"], Duration::ZERO) else {
            return Stats::default();
        };
        let Ok(t) = text(&resp) else {
            return Stats::default();
        };
        serde_json::from_str(&t).unwrap_or_default()
    }
}
