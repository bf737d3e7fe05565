//! `unix:///path` and `tcp://:token@host:port`: the store in a sessyncd.
//!
//! Every [`Command`] becomes one `SESS.*` request on a pooled connection, and its reply
//! becomes the same [`Reply`] (or [`Error`]) that `mem://` gives, so the conformance
//! suite runs unchanged. Connections are blocking sockets with timeouts: a daemon that is
//! down or stuck gives a clear `Backend` error, never a hang. A request that fails after
//! it was sent is not retried (it may have been applied); a failed connect is.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    os::unix::net::UnixStream,
    sync::Arc,
    time::Duration,
};

use parking_lot::{Condvar, Mutex};
use serde_json::{Value, json};

use super::{Backend, Stats};
use crate::{
    command::{Command, PatchOp, Patched, Reply, Touched, WriteOpts},
    config::{RemoteAddr, RemoteOptions},
    error::{Error, Result},
    session::{Record, SessionData, SessionId},
};

enum Sock {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Sock {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Unix(s) => s.read(b),
            Sock::Tcp(s) => s.read(b),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Unix(s) => s.write(b),
            Sock::Tcp(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sock::Unix(s) => s.flush(),
            Sock::Tcp(s) => s.flush(),
        }
    }
}

impl Sock {
    fn set_timeout(&self, t: Duration) -> std::io::Result<()> {
        match self {
            Sock::Unix(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
            Sock::Tcp(s) => {
                s.set_read_timeout(Some(t))?;
                s.set_write_timeout(Some(t))
            }
        }
    }
}

/// One reply from the daemon.
#[derive(Debug)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Resp>),
}

struct Conn {
    r: BufReader<Sock>,
}

/// Largest reply accepted from the daemon, per bulk string.
const MAX_REPLY_BULK: usize = 64 * 1024 * 1024;

impl Conn {
    fn send(&mut self, args: &[&[u8]]) -> std::io::Result<()> {
        let mut b = Vec::with_capacity(64 + args.iter().map(|a| a.len() + 16).sum::<usize>());
        b.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            b.extend_from_slice(a);
            b.extend_from_slice(b"\r\n");
        }
        self.r.get_mut().write_all(&b)
    }

    fn read(&mut self, depth: usize) -> std::io::Result<Resp> {
        let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection",
            ));
        }
        let text =
            String::from_utf8_lossy(line.strip_suffix(b"\r\n").unwrap_or(&line)).into_owned();
        let (kind, rest) = text.split_at(1.min(text.len()));
        let n = || rest.parse::<i64>().map_err(|_| bad("bad length in reply"));
        Ok(match kind {
            "+" => Resp::Simple(rest.to_string()),
            "-" => Resp::Error(rest.to_string()),
            ":" => Resp::Int(n()?),
            "_" => Resp::Null,
            "$" => {
                let len = n()?;
                if len < 0 {
                    return Ok(Resp::Null);
                }
                let len = len as usize;
                if len > MAX_REPLY_BULK {
                    return Err(bad("reply too large"));
                }
                let mut b = vec![0; len + 2];
                self.r.read_exact(&mut b)?;
                b.truncate(len);
                Resp::Bulk(b)
            }
            "*" | "%" => {
                let len = n()?;
                if len < 0 {
                    return Ok(Resp::Null);
                }
                if depth > 4 || len > 1_000_000 {
                    return Err(bad("reply nested or long beyond reason"));
                }
                let count = if kind == "%" { 2 * len } else { len } as usize;
                let mut v = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    v.push(self.read(depth + 1)?);
                }
                Resp::Array(v)
            }
            _ => return Err(bad("unknown reply type")),
        })
    }
}

/// The client backend of a sessyncd.
pub struct Remote {
    opts: RemoteOptions,
    idle: Mutex<Vec<Conn>>,
    /// How many connections exist (idle or in use).
    open: Mutex<usize>,
    freed: Condvar,
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

impl Remote {
    /// A client of the daemon at `opts.addr`. Connects once, to fail early and clearly.
    pub fn new(opts: RemoteOptions) -> Result<Remote> {
        let r = Remote {
            opts,
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            freed: Condvar::new(),
        };
        let c = r.connect()?;
        *r.open.lock() += 1;
        r.idle.lock().push(c);
        Ok(r)
    }

    fn where_(&self) -> String {
        match &self.opts.addr {
            RemoteAddr::Unix(p) => format!("unix:{}", p.display()),
            RemoteAddr::Tcp(h, p) => format!("tcp:{h}:{p}"),
        }
    }

    fn connect(&self) -> Result<Conn> {
        let t = self.opts.timeout;
        let sock = match &self.opts.addr {
            RemoteAddr::Unix(p) => Sock::Unix(UnixStream::connect(p).map_err(|e| {
                backend(format!("cannot reach sessyncd at {}: {e}", self.where_()))
            })?),
            RemoteAddr::Tcp(h, port) => {
                use std::net::ToSocketAddrs;
                let addrs: Vec<_> = (h.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| backend(format!("cannot resolve {h}: {e}")))?
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
                Sock::Tcp(found.ok_or_else(|| {
                    backend(format!(
                        "cannot reach sessyncd at {}: {}",
                        self.where_(),
                        last.map(|e| e.to_string()).unwrap_or_default()
                    ))
                })?)
            }
        };
        sock.set_timeout(t).map_err(backend)?;
        let mut c = Conn {
            r: BufReader::new(sock),
        };
        if let Some(token) = &self.opts.token {
            c.send(&[b"AUTH", token.as_bytes()]).map_err(backend)?;
            match c.read(0).map_err(backend)? {
                Resp::Simple(_) => {}
                Resp::Error(e) => return Err(backend(format!("sessyncd refused AUTH: {e}"))),
                other => return Err(backend(format!("unexpected AUTH reply {other:?}"))),
            }
        }
        Ok(c)
    }

    /// Takes an idle connection, or opens one while under the pool size, or waits.
    fn take(&self) -> Result<Conn> {
        loop {
            if let Some(c) = self.idle.lock().pop() {
                return Ok(c);
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
            self.freed.wait_for(&mut open, self.opts.timeout);
        }
    }

    fn give_back(&self, c: Option<Conn>) {
        match c {
            Some(c) => self.idle.lock().push(c),
            None => *self.open.lock() -= 1,
        }
        self.freed.notify_one();
    }

    /// One request, one reply. A connection that failed is dropped, not reused.
    fn call(&self, args: &[&[u8]], extra_wait: Duration) -> Result<Resp> {
        let mut c = self.take()?;
        if !extra_wait.is_zero() {
            let _ = c.r.get_ref().set_timeout(self.opts.timeout + extra_wait);
        }
        let r = c.send(args).and_then(|_| c.read(0));
        if !extra_wait.is_zero() {
            let _ = c.r.get_ref().set_timeout(self.opts.timeout);
        }
        match r {
            Ok(resp) => {
                self.give_back(Some(c));
                match resp {
                    Resp::Error(e) => Err(decode_error(&e)),
                    other => Ok(other),
                }
            }
            Err(e) => {
                self.give_back(None);
                Err(backend(format!("sessyncd at {}: {e}", self.where_())))
            }
        }
    }
}

fn decode_error(e: &str) -> Error {
    let (code, rest) = e.split_once(' ').unwrap_or((e, ""));
    match code {
        "NOTFOUND" => Error::NotFound,
        "LOCKTIMEOUT" => Error::LockTimeout,
        "STALETOKEN" => Error::StaleToken,
        "LOCKED" => Error::Locked,
        "DESTROYED" => Error::Destroyed,
        "FULL" => Error::Full,
        "ROTATED" => match rest.split(' ').next().map(SessionId::parse) {
            Some(Ok(to)) => Error::Rotated { to },
            _ => Error::Backend(format!("bad ROTATED reply: {e}")),
        },
        "CONFLICT" => {
            let mut n = rest.split(' ').map(|x| x.parse::<u64>());
            match (n.next(), n.next()) {
                (Some(Ok(expected)), Some(Ok(actual))) => Error::Conflict { expected, actual },
                _ => Error::Backend(format!("bad CONFLICT reply: {e}")),
            }
        }
        "TOOLARGE" => Error::TooLarge(strip(rest, "too large: ")),
        "INVALIDJSON" => Error::InvalidJson(strip(rest, "invalid JSON: ")),
        "NOTANUMBER" => Error::NotANumber(strip(rest, "not a number: ")),
        "ERR" if rest.starts_with("invalid argument: ") => {
            Error::InvalidArgument(strip(rest, "invalid argument: "))
        }
        _ => Error::Backend(format!("sessyncd: {e}")),
    }
}

fn strip(s: &str, prefix: &str) -> String {
    s.strip_prefix(prefix).unwrap_or(s).to_string()
}

fn unexpected(r: Resp) -> Error {
    Error::Backend(format!("unexpected reply from sessyncd: {r:?}"))
}

fn int(r: &Resp) -> Result<i64> {
    match r {
        Resp::Int(n) => Ok(*n),
        _ => Err(Error::Backend(format!("expected an integer, got {r:?}"))),
    }
}

fn text(r: &Resp) -> Result<String> {
    match r {
        Resp::Bulk(b) => String::from_utf8(b.clone()).map_err(backend),
        Resp::Simple(s) => Ok(s.clone()),
        _ => Err(Error::Backend(format!("expected a string, got {r:?}"))),
    }
}

fn record(r: Resp) -> Result<Record> {
    let Resp::Array(v) = r else {
        return Err(unexpected(r));
    };
    if v.len() != 7 {
        return Err(Error::Backend(format!(
            "a record has 7 items, got {}",
            v.len()
        )));
    }
    Ok(Record {
        id: SessionId::parse(&text(&v[0])?)?,
        data: Arc::new(SessionData::from_json(&text(&v[1])?)?),
        version: int(&v[2])? as u64,
        created: int(&v[3])? as u64,
        last_access: int(&v[4])? as u64,
        expires_at: int(&v[5])? as u64,
        owner: match &v[6] {
            Resp::Null => None,
            other => Some(Arc::from(text(other)?.as_str())),
        },
    })
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

fn ops_json(ops: &[PatchOp]) -> String {
    let list: Vec<Value> = ops
        .iter()
        .map(|op| match op {
            PatchOp::Set(k, v) => json!(["set", k, v.to_value()]),
            PatchOp::Remove(k) => json!(["remove", k]),
            PatchOp::Incr(k, by) => json!(["incr", k, by]),
            PatchOp::Merge(m) => json!(["merge", m]),
            PatchOp::SetOwner(o) => json!(["owner", o.as_deref()]),
        })
        .collect();
    Value::Array(list).to_string()
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
            Command::Write { id, data, opts } => {
                a.push(id.as_bytes().to_vec());
                a.push(data.to_json().as_bytes().to_vec());
                opts_args(
                    &WriteOpts {
                        create: false,
                        ..*opts
                    },
                    &mut a,
                );
                b"SESS.WRITE"
            }
            Command::Patch { id, ops, opts } => {
                a.push(id.as_bytes().to_vec());
                a.push(ops_json(ops).into_bytes());
                opts_args(opts, &mut a);
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
            Command::Touch { id } => {
                a.push(id.as_bytes().to_vec());
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
                    let Resp::Array(mut v) = r else {
                        return Err(unexpected(r));
                    };
                    if v.len() != 2 {
                        return Err(Error::Backend("a touched fetch has 2 items".into()));
                    }
                    let rec = record(v.pop().ok_or_else(|| Error::Backend("empty".into()))?)?;
                    Reply::Record {
                        record: Some(rec),
                        touched: int(&v[0])? != 0,
                    }
                }
                r => Reply::Record {
                    record: Some(record(r)?),
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
                let Resp::Array(mut v) = resp else {
                    return Err(unexpected(resp));
                };
                if v.len() != 2 {
                    return Err(Error::Backend("a lock reply has 2 items".into()));
                }
                let rec = record(v.pop().ok_or_else(|| Error::Backend("empty".into()))?)?;
                let token = int(&v[0])? as u64;
                Reply::Locked { token, record: rec }
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
            Command::DestroyOwned { .. } => Reply::Count(int(&resp)? as usize),
        })
    }

    fn stats(&self) -> Stats {
        let Ok(resp) = self.call(&[b"SESS.STATS"], Duration::ZERO) else {
            return Stats::default();
        };
        let Ok(t) = text(&resp) else {
            return Stats::default();
        };
        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
        let g = |k: &str| v[k].as_u64().unwrap_or(0);
        Stats {
            sessions: g("sessions"),
            tombstones: g("tombstones"),
            aliases: g("aliases"),
            timers: g("timers"),
            operations: g("operations"),
            lock_waits: g("lock_waits"),
            lock_timeouts: g("lock_timeouts"),
            expirations: g("expirations"),
            evictions: g("evictions"),
        }
    }
}
