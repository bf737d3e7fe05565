//! sessyncd: the store outside every worker, over RESP on a Unix socket and/or TCP.
//!
//! Shape (after tokio's mini-redis): [`run`] accepts connections on each listener, with
//! a semaphore bounding how many are open; each connection is a task that reads RESP
//! requests into a buffer, applies them to the shared [`Store`] (the same state machine
//! as `mem://`), and writes the replies. A shutdown future stops the listeners; open
//! connections finish the request in hand and close. A TLS listener ([`Listener::Tls`],
//! see [`tls`]) runs each handshake in the connection's task, under a timeout, so a
//! slow or broken client never holds up the accept loop.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod commands;
mod kv;
pub mod resp;
pub mod tls;

use std::{
    future::Future,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use subtle::ConstantTimeEq;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, UnixListener},
    sync::{Semaphore, watch},
};

use self::{
    commands::{Args, Fail},
    resp::{Limits, Out, ParseError, parse_request},
};
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
    /// TCP with TLS (every connection must handshake first); otherwise as `Tcp`.
    Tls(TcpListener, tokio_rustls::TlsAcceptor),
    /// A Unix socket (its path is removed when the server stops).
    Unix(UnixListener, PathBuf),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listener::Tcp(l) => f.debug_tuple("Tcp").field(l).finish(),
            Listener::Tls(l, _) => f.debug_tuple("Tls").field(l).finish(),
            Listener::Unix(l, p) => f.debug_tuple("Unix").field(l).field(p).finish(),
        }
    }
}

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
        tasks.spawn(accept_loop(l, shared, stop));
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

async fn accept_loop(l: Listener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
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
                let tls = match &l {
                    Listener::Tls(_, a) => Some(a.clone()),
                    _ => None,
                };
                conns.spawn(async move {
                    let _permit = permit;
                    let id = shared.next_client.fetch_add(1, Ordering::Relaxed);
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

/// One connection's stream, TCP or Unix.
type Io = Box<dyn AsyncIoStream>;
trait AsyncIoStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncIoStream for T {}

async fn accept(l: &Listener) -> std::io::Result<(Io, bool)> {
    match l {
        Listener::Tcp(t) | Listener::Tls(t, _) => {
            let (s, _) = t.accept().await?;
            let _ = s.set_nodelay(true);
            Ok((Box::new(s), true))
        }
        Listener::Unix(u, _) => {
            let (s, _) = u.accept().await?;
            Ok((Box::new(s), false))
        }
    }
}

/// What a request asks of the connection after its reply.
enum Next {
    Continue,
    Close,
}

struct Conn {
    shared: Arc<Shared>,
    authed: bool,
    name: Option<String>,
    out: Out,
}

/// The first read size of a connection, and the most it grows to.
const READ_MIN: usize = 4096;
const READ_MAX: usize = 64 * 1024;

/// A connection's read buffer, and how much one read may take. The read size doubles
/// while reads fill it (a pipelined client, or large values), so that a burst is read,
/// answered and written in one go rather than 4 KiB at a time with a partial reply after
/// each piece; it halves while reads take less than a quarter of it. Once everything
/// read is answered, the buffer gives back what a burst or a large value took, so that
/// 10,000 idle connections do not each keep the largest request they ever sent.
struct Inbox {
    buf: Vec<u8>,
    read_size: usize,
}

impl Inbox {
    fn new() -> Inbox {
        Inbox {
            buf: Vec::with_capacity(READ_MIN),
            read_size: READ_MIN,
        }
    }

    /// Makes room for one read; returns the room.
    fn ready(&mut self) -> usize {
        if self.buf.capacity() - self.buf.len() < self.read_size {
            self.buf.reserve(self.read_size);
        }
        self.buf.capacity() - self.buf.len()
    }

    /// A read took `n` bytes of the `room` that `ready` made.
    fn filled(&mut self, n: usize, room: usize) {
        if n == room && self.read_size < READ_MAX {
            self.read_size *= 2;
        } else if n < self.read_size / 4 && self.read_size > READ_MIN {
            self.read_size /= 2;
        }
    }

    /// After the answers: an empty buffer keeps about one read's room.
    fn settle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 2 * self.read_size {
            self.buf.shrink_to(self.read_size);
        }
    }
}

async fn serve(
    mut io: Io,
    shared: Arc<Shared>,
    needs_auth: bool,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = shared.config.limits;
    let idle = shared.config.idle_timeout;
    let mut c = Conn {
        shared,
        authed: !needs_auth,
        name: None,
        out: Out::default(),
    };
    let mut inbox = Inbox::new();
    // One timer per connection, not one per read: a read or an answer only notes the
    // time, and the timer, when it fires, either closes an idle connection or moves to the
    // new deadline. (An answer counts: a lock may wait longer than the idle timeout.)
    let mut last_active = tokio::time::Instant::now();
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    loop {
        // Answer every complete request in the buffer (pipelining), then write once, and
        // drop the bytes used in one move (not one per request).
        let mut off = 0;
        loop {
            match parse_request(&inbox.buf[off..], &limits) {
                Ok((args, used)) => {
                    off += used;
                    let next = c.request(args, &mut io, &mut inbox.buf).await;
                    if matches!(next, Next::Close) {
                        io.write_all(&c.out.buf).await?;
                        return io.shutdown().await;
                    }
                }
                Err(ParseError::Incomplete) => break,
                Err(e @ ParseError::Protocol(_)) => {
                    c.out.error(&format!("ERR {e}"));
                    io.write_all(&c.out.buf).await?;
                    return io.shutdown().await;
                }
            }
        }
        inbox.buf.drain(..off);
        if !c.out.buf.is_empty() {
            io.write_all(&c.out.buf).await?;
            c.out.buf.clear();
            last_active = tokio::time::Instant::now();
        }
        inbox.settle();
        if c.out.buf.capacity() > READ_MAX {
            c.out.buf.shrink_to(READ_MIN);
        }
        if *stop.borrow() {
            return Ok(());
        }
        let spare = inbox.ready();
        let read = tokio::select! {
            biased;
            r = io.read_buf(&mut inbox.buf) => r,
            _ = stop.changed() => return Ok(()),
            _ = &mut idle_timer => {
                let due = last_active + idle;
                if tokio::time::Instant::now() >= due {
                    return Ok(()); // idle timeout
                }
                idle_timer.as_mut().reset(due);
                continue;
            }
        };
        match read {
            Ok(0) => return Ok(()),
            Ok(n) => {
                last_active = tokio::time::Instant::now();
                inbox.filled(n, spare);
            }
            Err(e) => return Err(e),
        }
    }
}

fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

impl Conn {
    async fn request(&mut self, mut args: Vec<Vec<u8>>, io: &mut Io, buf: &mut Vec<u8>) -> Next {
        if args.is_empty() {
            return Next::Continue;
        }
        let name = upper(&args.remove(0));
        if !self.authed && !matches!(name.as_str(), "AUTH" | "HELLO" | "PING" | "QUIT") {
            self.out.error("NOAUTH Authentication required.");
            return Next::Continue;
        }
        let r = match name.as_str() {
            "PING" => {
                match args.first() {
                    Some(m) if args.len() == 1 => self.out.bulk(m),
                    None => self.out.simple("PONG"),
                    _ => self
                        .out
                        .error("ERR wrong number of arguments for 'ping' command"),
                }
                Ok(())
            }
            "ECHO" if args.len() == 1 => {
                self.out.bulk(&args[0]);
                Ok(())
            }
            "QUIT" => {
                self.out.simple("OK");
                return Next::Close;
            }
            "AUTH" => self.auth(&args),
            "HELLO" => self.hello(&args),
            "SELECT" => {
                if args.len() == 1 && args[0] == b"0" {
                    self.out.simple("OK");
                } else {
                    self.out.error("ERR DB index is out of range");
                }
                Ok(())
            }
            "CLIENT" => self.client(&args),
            "INFO" => {
                self.info();
                Ok(())
            }
            "COMMAND" => {
                self.out.array(0);
                Ok(())
            }
            "DEBUG.ADVANCE" if self.shared.config.manual_clock.is_some() => {
                match (
                    args.first()
                        .and_then(|a| std::str::from_utf8(a).ok()?.parse::<u64>().ok()),
                    &self.shared.config.manual_clock,
                ) {
                    (Some(ms), Some(c)) if args.len() == 1 => {
                        c.advance(Duration::from_millis(ms));
                        self.out.simple("OK");
                        Ok(())
                    }
                    _ => Err(Fail("ERR usage: DEBUG.ADVANCE milliseconds".into())),
                }
            }
            "GET" | "SET" | "DEL" | "EXISTS" | "EXPIRE" | "PEXPIRE" | "TTL" | "PTTL" | "MGET"
            | "SCAN" => self.keys(&name, args),
            "SESS.LOCK" => self.lock(Args::new(name.clone(), args), io, buf).await,
            n if n.starts_with("SESS.") => {
                let a = Args::new(name.clone(), args);
                commands::session(&self.shared.store, n, a, &mut self.out)
            }
            _ => Err(Fail(format!(
                "ERR unknown command '{}', with args beginning with: ",
                name.to_lowercase()
            ))),
        };
        if let Err(Fail(m)) = r {
            self.out.error(&m);
        }
        Next::Continue
    }

    /// The plain key commands. Takes the arguments so that `SET` keeps its value buffer.
    fn keys(&mut self, name: &str, mut args: Vec<Vec<u8>>) -> Result<(), Fail> {
        let a: &[Vec<u8>] = &args;
        let kv = &self.shared.kv;
        let now = self.shared.store.now_ms();
        let wrong = || {
            Fail(format!(
                "ERR wrong number of arguments for '{}' command",
                name.to_lowercase()
            ))
        };
        let int = |b: &[u8]| -> Result<i64, Fail> {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Fail("ERR value is not an integer or out of range".into()))
        };
        let o = &mut self.out;
        match name {
            "GET" => {
                let [k] = a else { return Err(wrong()) };
                if kv.with(k, now, |v| o.bulk(v)).is_none() {
                    o.null();
                }
            }
            "MGET" => {
                if a.is_empty() {
                    return Err(wrong());
                }
                o.array(a.len());
                for k in a {
                    if kv.with(k, now, |v| o.bulk(v)).is_none() {
                        o.null();
                    }
                }
            }
            "SET" => {
                if a.len() < 2 {
                    return Err(wrong());
                }
                let (mut cond, mut ttl, mut get) = (kv::Cond::Always, kv::Ttl::Clear, false);
                let mut i = 2;
                while i < a.len() {
                    let opt = upper(&a[i]);
                    let arg =
                        |i: usize| a.get(i + 1).ok_or_else(|| Fail("ERR syntax error".into()));
                    let positive = |n: i64| -> Result<u64, Fail> {
                        if n <= 0 {
                            Err(Fail("ERR invalid expire time in 'set' command".into()))
                        } else {
                            Ok(n as u64)
                        }
                    };
                    match opt.as_str() {
                        "NX" => cond = kv::Cond::IfAbsent,
                        "XX" => cond = kv::Cond::IfPresent,
                        "GET" => get = true,
                        "KEEPTTL" => ttl = kv::Ttl::Keep,
                        "EX" => {
                            ttl = kv::Ttl::At(
                                now.saturating_add(positive(int(arg(i)?)?)?.saturating_mul(1000)),
                            );
                            i += 1;
                        }
                        "PX" => {
                            ttl = kv::Ttl::At(now.saturating_add(positive(int(arg(i)?)?)?));
                            i += 1;
                        }
                        "EXAT" => {
                            ttl = kv::Ttl::At(positive(int(arg(i)?)?)?.saturating_mul(1000));
                            i += 1;
                        }
                        "PXAT" => {
                            ttl = kv::Ttl::At(positive(int(arg(i)?)?)?);
                            i += 1;
                        }
                        _ => return Err(Fail("ERR syntax error".into())),
                    }
                    i += 1;
                }
                let value = std::mem::take(&mut args[1]);
                let r = kv.set(&args[0], value, cond, ttl, get, now).map_err(Fail)?;
                if get {
                    match r.old {
                        Some(v) => o.bulk(&v),
                        None => o.null(),
                    }
                } else if r.written {
                    o.simple("OK");
                } else {
                    o.null();
                }
            }
            "DEL" | "EXISTS" => {
                if a.is_empty() {
                    return Err(wrong());
                }
                let n = a
                    .iter()
                    .filter(|k| {
                        if name == "DEL" {
                            kv.del(k, now)
                        } else {
                            kv.exists(k, now)
                        }
                    })
                    .count();
                o.int(n as i64);
            }
            "EXPIRE" | "PEXPIRE" => {
                let [k, t] = a else { return Err(wrong()) };
                let n = int(t)?;
                let ms = if name == "EXPIRE" {
                    n.saturating_mul(1000)
                } else {
                    n
                };
                let done = if ms <= 0 {
                    kv.del(k, now)
                } else {
                    kv.expire_at(k, now.saturating_add(ms as u64), now)
                };
                o.int(i64::from(done));
            }
            "TTL" | "PTTL" => {
                let [k] = a else { return Err(wrong()) };
                o.int(match kv.ttl(k, now) {
                    None => -2,
                    Some(None) => -1,
                    Some(Some(ms)) if name == "TTL" => (ms.div_ceil(1000)) as i64,
                    Some(Some(ms)) => ms as i64,
                });
            }
            "SCAN" => {
                let Some(c) = a.first() else {
                    return Err(wrong());
                };
                let cursor = int(c)?;
                let mut pattern = None;
                let mut i = 1;
                while i + 1 < a.len() + 1 && i < a.len() {
                    match upper(&a[i]).as_str() {
                        "MATCH" if i + 1 < a.len() => pattern = Some(a[i + 1].as_slice()),
                        "COUNT" if i + 1 < a.len() => {
                            int(&a[i + 1])?;
                        }
                        _ => return Err(Fail("ERR syntax error".into())),
                    }
                    i += 2;
                }
                let (next, keys) = kv.scan(cursor.max(0) as usize, pattern, now);
                o.array(2);
                o.bulk(next.to_string().as_bytes());
                o.array(keys.len());
                for k in keys {
                    o.bulk(&k);
                }
            }
            _ => return Err(wrong()),
        }
        Ok(())
    }

    fn check_token(&mut self, given: &[u8]) -> bool {
        match &self.shared.config.token {
            Some(t) => bool::from(t.as_bytes().ct_eq(given)),
            None => true,
        }
    }

    fn auth(&mut self, args: &[Vec<u8>]) -> Result<(), Fail> {
        // AUTH token, or AUTH default token (the username is ignored).
        let token = match args {
            [t] => t,
            [_, t] => t,
            _ => {
                return Err(Fail(
                    "ERR wrong number of arguments for 'auth' command".into(),
                ));
            }
        };
        if self.shared.config.token.is_none() {
            return Err(Fail(
                "ERR AUTH <password> called without any password configured for the default user."
                    .into(),
            ));
        }
        if self.check_token(token) {
            self.authed = true;
            self.out.simple("OK");
            Ok(())
        } else {
            Err(Fail(
                "WRONGPASS invalid username-password pair or user is disabled.".into(),
            ))
        }
    }

    fn hello(&mut self, args: &[Vec<u8>]) -> Result<(), Fail> {
        let mut i = 0;
        let mut proto = if self.out.resp3 { 3 } else { 2 };
        if let Some(v) = args.first() {
            proto = match v.as_slice() {
                b"2" => 2,
                b"3" => 3,
                _ => return Err(Fail("NOPROTO unsupported protocol version".into())),
            };
            i = 1;
        }
        while i < args.len() {
            match upper(&args[i]).as_str() {
                "AUTH" if i + 2 < args.len() => {
                    // HELLO … AUTH <username> <token>: the username is ignored.
                    let token = args[i + 2].clone();
                    if self.shared.config.token.is_some() && !self.check_token(&token) {
                        return Err(Fail(
                            "WRONGPASS invalid username-password pair or user is disabled.".into(),
                        ));
                    }
                    self.authed = true;
                    i += 3;
                }
                "SETNAME" if i + 1 < args.len() => {
                    self.name = Some(String::from_utf8_lossy(&args[i + 1]).into_owned());
                    i += 2;
                }
                _ => return Err(Fail("ERR syntax error in HELLO".into())),
            }
        }
        if !self.authed {
            return Err(Fail(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
                    .into(),
            ));
        }
        self.out.resp3 = proto == 3;
        let o = &mut self.out;
        o.map(7);
        o.bulk(b"server");
        o.bulk(b"sessyncd");
        o.bulk(b"version");
        o.bulk(env!("CARGO_PKG_VERSION").as_bytes());
        o.bulk(b"proto");
        o.int(proto);
        o.bulk(b"id");
        o.int(1);
        o.bulk(b"mode");
        o.bulk(b"standalone");
        o.bulk(b"role");
        o.bulk(b"master");
        o.bulk(b"modules");
        o.array(0);
        Ok(())
    }

    fn client(&mut self, args: &[Vec<u8>]) -> Result<(), Fail> {
        let sub = args.first().map(|s| upper(s)).unwrap_or_default();
        match sub.as_str() {
            "SETNAME" if args.len() == 2 => {
                self.name = Some(String::from_utf8_lossy(&args[1]).into_owned());
                self.out.simple("OK");
            }
            "GETNAME" => match &self.name {
                Some(n) => {
                    let n = n.clone();
                    self.out.bulk(n.as_bytes());
                }
                None => self.out.null(),
            },
            "SETINFO" => self.out.simple("OK"),
            "ID" => self.out.int(1),
            _ => {
                return Err(Fail(format!(
                    "ERR unknown subcommand '{}'",
                    sub.to_lowercase()
                )));
            }
        }
        Ok(())
    }

    fn info(&mut self) {
        let st = self.shared.store.stats();
        let text = format!(
            "# Server\r\nredis_version:7.2.0\r\nsessyncd_version:{}\r\nredis_mode:standalone\r\nuptime_in_seconds:{}\r\n\r\n# Clients\r\nconnected_clients:{}\r\n\r\n# Persistence\r\nloading:0\r\n\r\n# Keyspace\r\nkeys:{}\r\n\r\n# Sessions\r\nsessions:{}\r\ntombstones:{}\r\noperations:{}\r\nlock_waits:{}\r\nlock_timeouts:{}\r\nexpirations:{}\r\nevictions:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            self.shared.started.elapsed().as_secs(),
            self.shared.clients.load(Ordering::Relaxed),
            self.shared.kv.len(),
            st.sessions,
            st.tombstones,
            st.operations,
            st.lock_waits,
            st.lock_timeouts,
            st.expirations,
            st.evictions,
        );
        self.out.bulk(text.as_bytes());
    }

    /// `SESS.LOCK`: waits without blocking a thread, and gives up the wait when the client
    /// goes away (bytes it sends meanwhile are kept for after the reply).
    async fn lock(&mut self, a: Args, io: &mut Io, buf: &mut Vec<u8>) -> Result<(), Fail> {
        let (id, lease, wait) = commands::lock_args(a)?;
        let store = self.shared.store.clone();
        let fut = store.lock_async(&id, lease, wait);
        tokio::pin!(fut);
        let max = self.shared.config.limits.max_bulk * 2;
        loop {
            tokio::select! {
                r = &mut fut => {
                    let (token, rec) = r?;
                    commands::locked(&mut self.out, token, &rec);
                    return Ok(());
                }
                n = io.read_buf(buf), if buf.len() < max => {
                    match n {
                        Ok(0) | Err(_) => return Err(Fail("ERR client went away".into())),
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Inbox, READ_MAX, READ_MIN};

    /// Reads `n` bytes (as a socket would) into the room `ready` made.
    fn read(inbox: &mut Inbox, n: usize) {
        let room = inbox.ready();
        let n = n.min(room);
        inbox.buf.extend(std::iter::repeat_n(b'x', n));
        inbox.filled(n, room);
    }

    #[test]
    fn reads_grow_while_they_fill_and_the_buffer_shrinks_once_answered() {
        let mut inbox = Inbox::new();
        // A burst of 1 MiB: the read size doubles up to its cap, never beyond.
        while inbox.buf.len() < 1 << 20 {
            read(&mut inbox, usize::MAX);
        }
        assert_eq!(inbox.read_size, READ_MAX);
        // Answered: the buffer gives back the burst.
        inbox.buf.clear();
        inbox.settle();
        assert!(
            inbox.buf.capacity() <= 2 * READ_MAX,
            "{}",
            inbox.buf.capacity()
        );
        // Small requests from then on: the read size falls back to its start, and so does
        // what the empty buffer keeps.
        for _ in 0..8 {
            read(&mut inbox, 100);
            inbox.buf.clear();
            inbox.settle();
        }
        assert_eq!(inbox.read_size, READ_MIN);
        assert!(
            inbox.buf.capacity() <= 2 * READ_MIN,
            "{}",
            inbox.buf.capacity()
        );
        // A request that is still incomplete keeps its bytes.
        read(&mut inbox, 10);
        inbox.settle();
        assert_eq!(inbox.buf.len(), 10);
    }
}
