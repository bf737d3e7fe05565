//! `redis://host:port` and `redis+cluster://h1:p1,h2:p2`: the sessions in Redis or Valkey.
//!
//! Every [`Command`] is one atomic call of one Lua program (`store.lua`): a function
//! library called by `FCALL` where the server has functions (loaded again when a server
//! lost it), else a script run by `EVALSHA` (reloaded when a server answers `NOSCRIPT`).
//! A session's record, lock, fencing counter, lock queue, tombstone and rotation alias
//! share the hash tag `{<id>}`, so each call touches one Cluster slot. Expiry is Redis's
//! own TTL, and the code also checks each deadline itself, so a session is gone the
//! moment it expires whether or not Redis has reclaimed it yet.
//!
//! What cannot be one slot is composed by the client: on a Cluster, a rotation is three
//! checked steps, and the owner index (one sorted set per owner) is kept a superset of
//! the owner's live sessions and verified on every read. On a single server the script
//! does both in the same atomic call. Lock waiters block in `BLPOP` on a list of their own
//! that the releasing call pushes to, with a bounded wait, in arrival order.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use ::redis::{ConnectionLike, Script, Value};
use parking_lot::Mutex;
use serde_json::{Map, Value as Json};

use super::{
    Backend, Stats,
    wire::{
        link::{self, Raw, Resp},
        shared::{Places, Shared},
    },
};
use crate::{
    clock::Clock,
    command::{Command, PatchOp, Patched, Reply, Touched, WriteOpts, check_count, check_ttl},
    config::{Eviction, RedisLayout, RedisOptions, ScriptMode, StoreOptions},
    error::{Error, Result},
    session::{Record, SessionData, SessionId, check_key, check_owner},
};

/// The store's Lua code: one command per call (settings and tail filled in by `new`).
const SOURCE: &str = include_str!("store.lua");

/// How often a waiting locker checks in (its place in the queue lives 3× this long).
const HEARTBEAT_MS: u64 = 1000;

/// How often the offset to the server's clock is measured again.
const CLOCK_SYNC_MS: u64 = 10_000;

/// A connection: to one server, or to a Cluster (routing each call by its key's slot).
enum Conn {
    One(::redis::Connection),
    Cluster(Box<::redis::cluster::ClusterConnection>),
}

impl Conn {
    fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::One(c) => c,
            Conn::Cluster(c) => &mut **c,
        }
    }

    fn set_read_timeout(&self, t: Duration) {
        let _ = match self {
            Conn::One(c) => c.set_read_timeout(Some(t)),
            Conn::Cluster(c) => c.set_read_timeout(Some(t)),
        };
    }
}

enum Client {
    One(::redis::Client),
    Cluster(::redis::cluster::ClusterClient),
}

/// The Redis backend.
pub struct Redis {
    opts: RedisOptions,
    store: StoreOptions,
    clock: Arc<dyn Clock>,
    client: Client,
    script: Script,
    /// Calls go by FCALL (else EVALSHA).
    function: AtomicBool,
    /// The function library's source and its name.
    library: String,
    name: String,
    idle: Mutex<Vec<Conn>>,
    ops: AtomicU64,
    lock_waits: AtomicU64,
    lock_timeouts: AtomicU64,
    /// The server's clock minus this host's, in ms.
    offset: AtomicI64,
    /// When (on this host's clock) the offset was last measured; 0: never.
    synced_at: AtomicU64,
    /// The connections that the calls which cannot block share, pipelined (`shared`;
    /// none for a Cluster or TLS).
    shared: Places,
}

/// A failed call: the error, and whether the connection is still good.
struct Failed {
    err: Error,
    broken: bool,
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// A reply of a shared connection as redis-rs would give it (`+OK` is `Okay`); an error
/// reply as its text.
fn value_of(r: Resp) -> std::result::Result<Value, String> {
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

fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        other => Err(Error::Backend(format!(
            "redis: expected an integer, got {other:?}"
        ))),
    }
}

fn text(v: &Value) -> Result<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(backend),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Okay => Ok("OK".into()),
        other => Err(Error::Backend(format!(
            "redis: expected a string, got {other:?}"
        ))),
    }
}

fn items(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(Error::Backend(format!(
            "redis: expected an array, got {other:?}"
        ))),
    }
}

/// `{'->', id}`: the id was rotated to this one.
fn redirect(v: &Value) -> Option<SessionId> {
    let Value::Array(a) = v else { return None };
    match (a.first(), a.get(1)) {
        (Some(Value::BulkString(m)), Some(to)) if m == b"->" => {
            text(to).ok().and_then(|t| SessionId::parse(&t).ok())
        }
        _ => None,
    }
}

fn record(id: SessionId, v: Value) -> Result<Record> {
    let a = items(v)?;
    if a.len() != 7 {
        return Err(Error::Backend(format!(
            "redis: a record has 7 items, got {}",
            a.len()
        )));
    }
    Ok(Record {
        id,
        data: Arc::new(SessionData::from_json(&text(&a[0])?)?),
        version: int(&a[1])? as u64,
        created: int(&a[2])? as u64,
        last_access: int(&a[3])? as u64,
        expires_at: int(&a[4])? as u64,
        owner: match &a[5] {
            Value::Nil => None,
            other => Some(Arc::from(text(other)?.as_str())),
        },
        // 0: none (the store's TTL).
        ttl_ms: Some(int(&a[6])? as u64).filter(|&t| t > 0),
    })
}

/// A member's value as the script stores it: an object in serde_json's form (its keys
/// escaped one way, so that a later merge patch finds them), anything else as it is.
fn canonical(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        if let Ok(v) = serde_json::from_str::<Json>(raw) {
            return v.to_string();
        }
    }
    raw.to_string()
}

fn key_json(k: &str) -> Result<String> {
    check_key(k)?;
    serde_json::to_string(k).map_err(backend)
}

/// A merge patch as changes at paths (see `at_path` in the script): null deletes, an
/// object makes sure an object is there and recurses, anything else is set.
fn flatten(m: &Map<String, Json>, path: &mut Vec<String>, out: &mut Vec<String>) -> Result<()> {
    for (k, v) in m {
        path.push(serde_json::to_string(k).map_err(backend)?);
        let head = |op: &str, out: &mut Vec<String>| {
            out.push(op.into());
            out.push(path.len().to_string());
            out.extend(path.iter().cloned());
        };
        match v {
            Json::Null => head("D", out),
            Json::Object(o) => {
                head("O", out);
                flatten(o, path, out)?;
            }
            other => {
                head("P", out);
                out.push(other.to_string());
            }
        }
        path.pop();
    }
    Ok(())
}

fn ops_args(ops: &[PatchOp], out: &mut Vec<String>) -> Result<()> {
    for op in ops {
        match op {
            PatchOp::Set(k, v) => {
                out.extend(["P".into(), "1".into(), key_json(k)?]);
                out.push(canonical(v.as_str()));
            }
            PatchOp::Remove(k) => out.extend(["D".into(), "1".into(), key_json(k)?]),
            PatchOp::Incr(k, by) => out.extend(["I".into(), key_json(k)?, by.to_string()]),
            PatchOp::Merge(m) => {
                for k in m.keys() {
                    check_key(k)?;
                }
                flatten(m, &mut Vec::new(), out)?;
            }
            PatchOp::SetOwner(Some(o)) => {
                check_owner(o)?;
                out.extend(["W".into(), "1".into(), o.to_string()]);
            }
            PatchOp::SetOwner(None) => out.extend(["W".into(), "0".into(), String::new()]),
        }
    }
    Ok(())
}

fn opt_num(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.into()
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

impl Redis {
    /// Connects to Redis (once, to fail early and clearly).
    pub fn new(opts: RedisOptions, store: StoreOptions, clock: Arc<dyn Clock>) -> Result<Redis> {
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
        if tls {
            // rustls's ring provider, unless the application installed one already.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = if opts.cluster {
            let mut b = ::redis::cluster::ClusterClientBuilder::new(opts.nodes.clone())
                .connection_timeout(opts.timeout)
                .response_timeout(opts.timeout);
            if tls {
                b = b.tls(::redis::cluster::TlsMode::Secure);
            }
            if let Some(c) = certs {
                b = b.certs(c);
            }
            let c = b
                .build()
                .map_err(|e| Error::invalid(format!("redis cluster URL: {e}")))?;
            Client::Cluster(c)
        } else {
            let url = opts.nodes.first().cloned().unwrap_or_default();
            let c = match certs {
                Some(certs) => ::redis::Client::build_with_tls(url.as_str(), certs),
                None => ::redis::Client::open(url.as_str()),
            };
            Client::One(c.map_err(|e| Error::invalid(format!("redis URL: {e}")))?)
        };
        let layout = match opts.layout {
            RedisLayout::Native => "n",
            RedisLayout::ConnectRedis => "c",
        };
        // The settings go into the script's text (see the script's header).
        let lua_str = |t: &str| -> String {
            let mut q = String::from("'");
            for b in t.bytes() {
                q.push_str(&format!("\\{b}"));
            }
            q.push('\'');
            q
        };
        let source = SOURCE
            .replace("@TTL@", &ms(store.ttl).to_string())
            .replace("@ABS@", &ms(store.absolute_ttl).to_string())
            .replace("@TOUCH@", &store.touch_interval_ms().to_string())
            .replace("@FRAC@", &store.touch_fraction.to_string())
            .replace("@TOMB@", &ms(store.tombstone_ttl).to_string())
            .replace("@GRACE@", &ms(store.rotate_grace).to_string())
            .replace("@MAXB@", &store.max_session_bytes.to_string())
            .replace("@MAXS@", &store.max_sessions.to_string())
            .replace("@LRU@", &(store.eviction == Eviction::Lru).to_string())
            .replace("@SAME@", &(!opts.cluster).to_string())
            .replace("@PREFIX@", &lua_str(&opts.prefix))
            .replace("@LAYOUT@", &lua_str(layout));
        // The same code two ways: a function library (FCALL: its helpers are made once,
        // at load, instead of on every call) where the server has functions (Redis 7,
        // Valkey), else a script (EVALSHA, reloaded on NOSCRIPT).
        let script = Script::new(&source.replace("@TAIL@", "return main(KEYS, ARGV)"));
        let name = format!("sessync_{}", &script.get_hash()[..16]);
        let library = format!(
            "#!lua name={name}\n{}",
            source.replace(
                "@TAIL@",
                &format!("redis.register_function('{name}', main)")
            )
        );
        let mode = opts.script;
        // A Cluster routes through redis-rs, and TLS is redis-rs's: those calls stay pooled.
        let shared = if opts.cluster || tls { 0 } else { opts.shared };
        let r = Redis {
            opts,
            store,
            clock,
            client,
            script,
            function: AtomicBool::new(false),
            library,
            name,
            idle: Mutex::new(Vec::new()),
            ops: AtomicU64::new(0),
            lock_waits: AtomicU64::new(0),
            lock_timeouts: AtomicU64::new(0),
            offset: AtomicI64::new(0),
            synced_at: AtomicU64::new(0),
            shared: Places::new(shared),
        };
        let mut c = r.connect()?;
        if mode != ScriptMode::Eval {
            match r.load_library(&mut c) {
                Ok(()) => r.function.store(true, Ordering::Relaxed),
                Err(e) if mode == ScriptMode::Function => return Err(e),
                Err(_) => {}
            }
        }
        r.idle.lock().push(c);
        Ok(r)
    }

    /// `FUNCTION LOAD REPLACE` of the library (on every primary of a Cluster).
    fn load_library(&self, c: &mut Conn) -> Result<()> {
        ::redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(&self.library)
            .query::<Value>(c.like())
            .map(|_| ())
            .map_err(|e| {
                backend(format!(
                    "{}: cannot load the sessync functions: {e}",
                    self.where_()
                ))
            })
    }

    fn where_(&self) -> String {
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

    fn connect(&self) -> Result<Conn> {
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
    fn connect_shared(&self) -> Result<Shared> {
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

    /// An `FCALL` built by the caller: on a shared connection when there are some, else
    /// on a pooled one. A library the server lost (a restart without persistence) is
    /// loaded again on a pooled connection, which then makes the call.
    fn fcall(&self, c: &::redis::Cmd) -> Result<Value> {
        if self.shared.is_empty() {
            return self.pooled(|conn| self.fcall_on(conn, c));
        }
        match self.on_shared(c)? {
            Err(e) if e.starts_with("ERR Function not found") => {
                // The server lost the library, so it restarted or was flushed: the idle
                // connections predate that.
                self.idle.lock().clear();
                self.pooled(|conn| self.fcall_on(conn, c))
            }
            r => {
                self.ops.fetch_add(1, Ordering::Relaxed);
                r.map_err(|e| Error::from_wire(&e, &self.where_()))
            }
        }
    }

    /// `c` on a shared connection: its reply, or the text of its error reply.
    fn on_shared(&self, c: &::redis::Cmd) -> Result<std::result::Result<Value, String>> {
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
    fn plain(&self, c: &::redis::Cmd) -> Result<Value> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        if self.shared.is_empty() {
            return self.query(c);
        }
        self.on_shared(c)?
            .map_err(|e| Error::from_wire(&e, &self.where_()))
    }

    fn take(&self) -> Result<Conn> {
        if let Some(c) = self.idle.lock().pop() {
            return Ok(c);
        }
        self.connect()
    }

    fn give_back(&self, c: Conn) {
        let mut idle = self.idle.lock();
        if idle.len() < self.opts.pool {
            idle.push(c);
        }
    }

    /// A call failed: a server's refusal keeps the connection, anything else drops it and
    /// every idle one (after a restart they are all dead).
    fn failed(&self, e: ::redis::RedisError) -> Failed {
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
                    err: Error::from_wire(&wire, &self.where_()),
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

    /// The scripts' `now`: a test's clock as it is; otherwise the server's clock, as this
    /// host's clock plus its offset to the server's `TIME`, measured again every
    /// [`CLOCK_SYNC_MS`] (so hosts whose clocks disagree still agree on leases and TTLs).
    fn now_arg(&self) -> String {
        match self.now() {
            (ms, true) => format!("w{ms}"),
            (ms, false) => ms.to_string(),
        }
    }

    /// The scripts' time in ms, and whether it is the server's clock (else a test's).
    fn now(&self) -> (u64, bool) {
        if !self.clock.is_wall_clock() {
            return (self.clock.now_ms(), false);
        }
        let local = self.clock.now_ms();
        let synced = self.synced_at.load(Ordering::Relaxed);
        if local.saturating_sub(synced) >= CLOCK_SYNC_MS
            && self
                .synced_at
                .compare_exchange(synced, local, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            if let Some(off) = self.measure_offset() {
                self.offset.store(off, Ordering::Relaxed);
            }
        }
        let off = self.offset.load(Ordering::Relaxed);
        ((local as i64).saturating_add(off).max(0) as u64, true)
    }

    /// The server's `TIME` minus this host's clock, in ms, from the middle of a round trip.
    fn measure_offset(&self) -> Option<i64> {
        let before = self.clock.now_ms();
        let v = self.query(&::redis::cmd("TIME")).ok()?;
        let after = self.clock.now_ms();
        let Value::Array(a) = v else { return None };
        let secs: i64 = text(a.first()?).ok()?.parse().ok()?;
        let micros: i64 = text(a.get(1)?).ok()?.parse().ok()?;
        let server = secs * 1000 + micros / 1000;
        Some(server - ((before + after) / 2) as i64)
    }

    /// Session keys: record, tombstone, alias. (In connect-redis layout the data key
    /// `<prefix><id>` hashes to the same slot as the hash tag `{<prefix><id>}`.)
    fn keys(&self, id: &str) -> Vec<String> {
        let p = &self.opts.prefix;
        let m = match self.opts.layout {
            RedisLayout::Native => self.record_key(id),
            RedisLayout::ConnectRedis => format!("{{{p}{id}}}:m"),
        };
        let base = m.strip_suffix(":m").unwrap_or(&m).to_string();
        vec![m, format!("{base}:t"), format!("{base}:a")]
    }

    /// The record's key in the native layout: `<prefix>{<id>}`.
    fn record_key(&self, id: &str) -> String {
        format!("{}{{{id}}}", self.opts.prefix)
    }

    fn owner_key(&self, owner: &str) -> String {
        format!("{}{{o:{owner}}}", self.opts.prefix)
    }

    /// One call of the script on `conn`.
    fn invoke_on(
        &self,
        conn: &mut Conn,
        cmd: &str,
        keys: &[String],
        ids: (&str, &str),
        args: &[String],
    ) -> std::result::Result<Value, Failed> {
        let now = self.now_arg();
        self.call_on(conn, keys, &[cmd, &now, ids.0, ids.1], args)
    }

    /// One call of the code with these keys and arguments (`head` then `args`).
    fn call_on(
        &self,
        conn: &mut Conn,
        keys: &[String],
        head: &[&str],
        args: &[String],
    ) -> std::result::Result<Value, Failed> {
        if self.function.load(Ordering::Relaxed) {
            return self.fcall_on(conn, &self.fcall_cmd(keys, head, args));
        }
        self.ops.fetch_add(1, Ordering::Relaxed);
        let mut inv = self.script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in head {
            inv.arg(*a);
        }
        for a in args {
            inv.arg(a);
        }
        inv.invoke::<Value>(conn.like()).map_err(|e| self.failed(e))
    }

    /// The `FCALL` of the library's function with these keys and arguments.
    fn fcall_cmd(&self, keys: &[String], head: &[&str], args: &[String]) -> ::redis::Cmd {
        let mut c = ::redis::cmd("FCALL");
        c.arg(&self.name).arg(keys.len()).arg(keys);
        c.arg(head).arg(args);
        c
    }

    /// An `FCALL` of the library's function, built by the caller.
    fn fcall_on(&self, conn: &mut Conn, c: &::redis::Cmd) -> std::result::Result<Value, Failed> {
        self.ops.fetch_add(1, Ordering::Relaxed);
        match c.query::<Value>(conn.like()) {
            // A server restarted without persistence (or FUNCTION FLUSH) lost the
            // library: load it again and retry, as EVALSHA does on NOSCRIPT.
            Err(e)
                if e.detail()
                    .is_some_and(|d| d.starts_with("Function not found")) =>
            {
                self.load_library(conn)
                    .map_err(|err| Failed { err, broken: false })?;
                c.query::<Value>(conn.like()).map_err(|e| self.failed(e))
            }
            r => r.map_err(|e| self.failed(e)),
        }
    }

    /// One call of the script on a pooled connection.
    fn invoke(
        &self,
        cmd: &str,
        keys: &[String],
        ids: (&str, &str),
        args: &[String],
    ) -> Result<Value> {
        let now = self.now_arg();
        self.call(keys, &[cmd, &now, ids.0, ids.1], args)
    }

    /// [`Redis::call_on`] on a shared connection, or a pooled one.
    fn call(&self, keys: &[String], head: &[&str], args: &[String]) -> Result<Value> {
        if self.function.load(Ordering::Relaxed) {
            return self.fcall(&self.fcall_cmd(keys, head, args));
        }
        self.pooled(|c| self.call_on(c, keys, head, args))
    }

    /// `f` on a pooled connection, which goes back to the pool unless it broke.
    fn pooled<T>(&self, f: impl FnOnce(&mut Conn) -> std::result::Result<T, Failed>) -> Result<T> {
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

    fn on(&self, cmd: &str, id: &SessionId, args: &[String]) -> Result<Value> {
        self.invoke(cmd, &self.keys(id.as_str()), (id.as_str(), ""), args)
    }

    /// A plain command on a pooled connection.
    fn query(&self, c: &::redis::Cmd) -> Result<Value> {
        self.pooled(|conn| c.query::<Value>(conn.like()).map_err(|e| self.failed(e)))
    }

    /// Cluster only: adds `id` to the owner's index before the session names the owner,
    /// so the index always holds every live session of the owner (and maybe more).
    fn index_add(&self, owner: &str, id: &SessionId, max_life_end: u64) -> Result<()> {
        self.invoke(
            "index",
            &[self.owner_key(owner)],
            ("", ""),
            &[
                owner.to_string(),
                id.as_str().to_string(),
                max_life_end.to_string(),
            ],
        )?;
        Ok(())
    }

    /// A Cluster with `max_sessions`: the client keeps the live set (see the script).
    fn counted(&self) -> bool {
        self.opts.cluster && self.store.max_sessions > 0
    }

    fn live_key(&self) -> String {
        format!("{}{{live}}", self.opts.prefix)
    }

    fn live(&self, cmd: &str, args: &[String]) -> Result<Value> {
        self.invoke(cmd, &[self.live_key()], ("", ""), args)
    }

    /// Cluster: an access moves the session up the LRU order.
    fn accessed(&self, id: &SessionId) -> Result<()> {
        if self.counted() && self.store.eviction == Eviction::Lru {
            self.live(
                "live_add",
                &[id.as_str().to_string(), self.clock.now_ms().to_string()],
            )?;
        }
        Ok(())
    }

    /// Cluster: counts `id` in before it may be created; `Full`, or evicts.
    fn reserve(&self, id: &SessionId) -> Result<()> {
        if !self.counted() {
            return Ok(());
        }
        let args = [id.as_str().to_string(), self.store.max_sessions.to_string()];
        for _ in 0..64 {
            let v = self.live("live_reserve", &args)?;
            let Value::Array(a) = v else {
                return Ok(());
            };
            // An existing session is never refused: it was counted, or now is.
            if int(&self.on("alive", id, &[])?)? == 1 {
                self.live(
                    "live_add",
                    &[args[0].clone(), self.clock.now_ms().to_string()],
                )?;
                return Ok(());
            }
            let lru = items(a.into_iter().nth(1).unwrap_or_default())?;
            let mut dead = Vec::new();
            let mut first_live = None;
            for x in &lru {
                let c = SessionId::parse(&text(x)?)?;
                if int(&self.on("alive", &c, &[])?)? == 0 {
                    dead.push(c.as_str().to_string());
                } else if first_live.is_none() {
                    first_live = Some(c);
                }
            }
            if dead.is_empty() {
                match first_live {
                    Some(victim) if self.store.eviction == Eviction::Lru => {
                        self.on("evict", &victim, &[])?;
                        dead.push(victim.as_str().to_string());
                    }
                    _ => return Err(Error::Full),
                }
            }
            self.live("live_rem", &dead)?;
        }
        Err(Error::Backend("redis: could not make room".into()))
    }

    fn uncount(&self, id: &SessionId) {
        if self.counted() {
            let _ = self.live("live_rem", &[id.as_str().to_string()]);
        }
    }

    fn fetch(&self, id: SessionId, touch: bool) -> Result<Reply> {
        if let Some(record) = self.fetch_live(&id, touch)? {
            return Ok(Reply::Record {
                record: Some(record),
                touched: false,
            });
        }
        let mut id = id;
        for _ in 0..4 {
            let v = self.on("fetch", &id, &[flag(touch)])?;
            if let Some(to) = redirect(&v) {
                id = to;
                continue;
            }
            if v == Value::Nil {
                return Ok(Reply::Record {
                    record: None,
                    touched: false,
                });
            }
            let mut a = items(v)?;
            if a.len() != 2 {
                return Err(Error::Backend("redis: a fetch reply has 2 items".into()));
            }
            let rec = a.pop().unwrap_or_default();
            let touched = int(&a[0])? != 0;
            if touched {
                self.accessed(&id)?;
            }
            return Ok(Reply::Record {
                record: Some(record(id, rec)?),
                touched,
            });
        }
        Err(Error::Backend("redis: too many rotations in a row".into()))
    }

    /// The common fetch, without a script: one `HGETALL` of a native record, which is
    /// all of it when it is live and needs no touch (a read changes nothing then, and one
    /// command is atomic on its own). `None` for everything else (absent, expired, a
    /// touch due, a field that does not read as the code writes it, the connect-redis
    /// layout), which the store's `fetch` decides: aliases, tombstones, touches.
    fn fetch_live(&self, id: &SessionId, touch: bool) -> Result<Option<Record>> {
        if self.opts.layout != RedisLayout::Native {
            return Ok(None);
        }
        let key = self.record_key(id.as_str());
        let Value::Array(items) = self.plain(::redis::cmd("HGETALL").arg(&key))? else {
            return Ok(None);
        };
        let (now, _) = self.now();
        let (mut v, mut c, mut a, mut e, mut owner) = (None, None, None, None, None);
        let mut own_ttl = None;
        let num = |x: &[u8]| std::str::from_utf8(x).ok()?.parse::<u64>().ok();
        let mut text = String::with_capacity(
            items
                .iter()
                .map(|i| match i {
                    Value::BulkString(b) => b.len() + 1,
                    _ => 0,
                })
                .sum::<usize>()
                + 2,
        );
        text.push('{');
        for pair in items.chunks(2) {
            let [Value::BulkString(f), Value::BulkString(x)] = pair else {
                return Ok(None);
            };
            match f.as_slice() {
                [b'"', ..] => {
                    let (Ok(f), Ok(x)) = (std::str::from_utf8(f), std::str::from_utf8(x)) else {
                        return Ok(None);
                    };
                    if text.len() > 1 {
                        text.push(',');
                    }
                    text.push_str(f);
                    text.push(':');
                    text.push_str(x);
                }
                b"v" => v = num(x),
                b"c" => c = num(x),
                b"a" => a = num(x),
                b"e" => e = num(x),
                b"o" => owner = std::str::from_utf8(x).ok().map(Arc::from),
                b"tt" => match num(x) {
                    Some(t) => own_ttl = Some(t).filter(|&t| t > 0),
                    None => return Ok(None),
                },
                _ => {}
            }
        }
        text.push('}');
        let (Some(version), Some(created), Some(last_access), Some(expires_at)) = (v, c, a, e)
        else {
            return Ok(None);
        };
        // A session with a TTL of its own is touched by the code (with its own TTL).
        let touch_due = touch
            && (own_ttl.is_some()
                || (now > last_access && now - last_access >= self.store.touch_interval_ms()));
        if expires_at <= now || touch_due {
            return Ok(None);
        }
        Ok(Some(Record {
            id: *id,
            data: Arc::new(SessionData::from_json(&text)?),
            version,
            created,
            last_access,
            expires_at,
            owner,
            ttl_ms: own_ttl,
        }))
    }

    /// The increment's own path in the code (see `fast_incr` there): the new version and
    /// value, or `None` where the general `patch` must decide.
    fn fast_incr(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        token: Option<u64>,
    ) -> Result<Option<Patched>> {
        const LOW: u64 = 1_000_000_000_000;
        const HIGH: u64 = 10_000_000_000_000;
        let (now, _) = self.now();
        let end = now.saturating_add(ms(self.store.ttl));
        if self.opts.layout != RedisLayout::Native || now < LOW || end >= HIGH {
            return Ok(None);
        }
        let low = end.saturating_sub(ms(self.store.absolute_ttl));
        let key = key_json(key)?;
        let record = self.record_key(id.as_str());
        // 13 digits, zero-padded (text order is number order).
        let low = format!("{low:013}");
        let reply = if self.function.load(Ordering::Relaxed) {
            // Built straight into the command: the numbers go as redis-rs writes them.
            let mut c = ::redis::cmd("FCALL");
            c.arg(&self.name)
                .arg(1)
                .arg(&record)
                .arg("+")
                .arg(now)
                .arg(end);
            c.arg(&low).arg(&key).arg(by);
            if let Some(t) = token {
                c.arg(t);
            }
            self.fcall(&c)?
        } else {
            let mut args = vec![key, by.to_string()];
            if let Some(t) = token {
                args.push(t.to_string());
            }
            let (now, end) = (now.to_string(), end.to_string());
            self.call(&[record], &["+", &now, &end, &low], &args)?
        };
        // "version value" when done; 0 when the general path must do it.
        let Value::BulkString(b) = reply else {
            return Ok(None);
        };
        let parsed = std::str::from_utf8(&b).ok().and_then(|t| {
            let (v, n) = t.split_once(' ')?;
            Some((v.parse::<u64>().ok()?, n.parse::<i64>().ok()?))
        });
        match parsed {
            Some((version, n)) => Ok(Some(Patched {
                version,
                values: vec![n],
            })),
            None => Err(Error::Backend(format!(
                "redis: unexpected reply to an increment: {:?}",
                String::from_utf8_lossy(&b)
            ))),
        }
    }

    fn patch(
        &self,
        id: SessionId,
        ops: &[PatchOp],
        opts: WriteOpts,
        ttl_ms: Option<u64>,
    ) -> Result<Reply> {
        check_ttl(ttl_ms)?;
        // The increment's path uses the store's TTL: not with a TTL given here (and the
        // code gives up on a record with one of its own).
        if let [PatchOp::Incr(k, by)] = ops {
            if opts.expected_version.is_none() && !opts.release && ttl_ms.is_none() {
                if let Some(p) = self.fast_incr(&id, k, *by, opts.token)? {
                    self.accessed(&id)?;
                    return Ok(Reply::Patched(p));
                }
            }
        }
        let mut args = vec![
            opt_num(opts.expected_version),
            opt_num(opts.token),
            flag(opts.create),
            flag(opts.release),
            opt_num(ttl_ms),
        ];
        ops_args(ops, &mut args)?;
        if self.opts.cluster {
            let bound = self.clock.now_ms() + ms(self.store.absolute_ttl);
            for op in ops {
                if let PatchOp::SetOwner(Some(o)) = op {
                    self.index_add(o, &id, bound)?;
                }
            }
        }
        if opts.create {
            self.reserve(&id)?;
        }
        let a = items(self.on("patch", &id, &args)?)?;
        self.accessed(&id)?;
        let version = a.first().map(int).transpose()?.unwrap_or(0) as u64;
        let values = match a.get(1) {
            Some(Value::Array(xs)) => xs.iter().map(int).collect::<Result<Vec<_>>>()?,
            _ => Vec::new(),
        };
        Ok(Reply::Patched(Patched { version, values }))
    }

    fn lock(&self, id: SessionId, lease_ms: u64, wait_ms: u64) -> Result<Reply> {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let ticket = if wait_ms == 0 {
            String::new()
        } else {
            let mut b = [0u8; 12];
            getrandom::fill(&mut b).map_err(backend)?;
            b.iter().map(|x| format!("{x:02x}")).collect()
        };
        let keys = self.keys(id.as_str());
        let wake_key = format!("{}:w:{ticket}", keys[0]);
        let mut conn = self.take()?;
        let mut waited = false;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let args = [
                lease_ms.to_string(),
                flag(!left.is_zero()),
                ticket.clone(),
                HEARTBEAT_MS.to_string(),
            ];
            let v = match self.invoke_on(&mut conn, "lock", &keys, (id.as_str(), ""), &args) {
                Ok(v) => v,
                Err(f) => break Err(f),
            };
            let a = match items(v) {
                Ok(a) => a,
                Err(err) => break Err(Failed { err, broken: false }),
            };
            let token = a.first().map(int).transpose();
            match (token, a.get(1)) {
                (Ok(Some(t)), Some(rec)) if t > 0 => {
                    break record(id, rec.clone())
                        .map(|record| Reply::Locked {
                            token: t as u64,
                            record,
                        })
                        .map_err(|err| Failed { err, broken: false });
                }
                (Ok(Some(0)), Some(lease_left)) => {
                    if !waited {
                        waited = true;
                        self.lock_waits.fetch_add(1, Ordering::Relaxed);
                    }
                    let lease_left = int(lease_left).unwrap_or(0).max(0) as u64;
                    let mut block = left.min(Duration::from_millis(HEARTBEAT_MS));
                    if lease_left > 0 {
                        block = block.min(Duration::from_millis(lease_left + 1));
                    }
                    if block < Duration::from_millis(1) {
                        continue;
                    }
                    conn.set_read_timeout(block + self.opts.timeout);
                    let r = ::redis::cmd("BLPOP")
                        .arg(&wake_key)
                        .arg(format!("{:.3}", block.as_secs_f64()))
                        .query::<Value>(conn.like());
                    conn.set_read_timeout(self.opts.timeout);
                    if let Err(e) = r {
                        break Err(self.failed(e));
                    }
                }
                _ => {
                    break Err(Failed {
                        err: Error::Backend("redis: unexpected lock reply".into()),
                        broken: false,
                    });
                }
            }
        };
        match result {
            Ok(r) => {
                self.give_back(conn);
                Ok(r)
            }
            Err(f) => {
                if f.err == Error::LockTimeout {
                    self.lock_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                if f.broken && !ticket.is_empty() {
                    // Best effort: leave the queue now rather than when the place expires.
                    let _ = self.on("cancel", &id, &[ticket]);
                } else {
                    self.give_back(conn);
                }
                Err(f.err)
            }
        }
    }

    fn destroy(&self, id: SessionId) -> Result<Reply> {
        let v = self.on("destroy", &id, &[])?;
        self.uncount(&id);
        if let Some(to) = redirect(&v) {
            self.uncount(&to);
            return match self.on("destroy", &to, &[])? {
                Value::Int(n) => Ok(Reply::Destroyed(n != 0)),
                other => Err(Error::Backend(format!(
                    "redis: unexpected destroy reply {other:?}"
                ))),
            };
        }
        Ok(Reply::Destroyed(int(&v)? != 0))
    }

    fn rotate(&self, id: SessionId, token: Option<u64>) -> Result<Reply> {
        if !self.opts.cluster {
            let to = SessionId::generate();
            let mut keys = self.keys(id.as_str());
            keys.extend(self.keys(to.as_str()));
            self.invoke(
                "rotate",
                &keys,
                (id.as_str(), to.as_str()),
                &[opt_num(token)],
            )?;
            return Ok(Reply::Rotated(to));
        }
        // Cluster: read, copy, retire-if-unchanged; again from the start if it changed.
        for _ in 0..16 {
            let state = items(self.on("rot_read", &id, &[opt_num(token)])?)?;
            if state.len() < 10 {
                return Err(Error::Backend(
                    "redis: a rotation state has 10 items".into(),
                ));
            }
            let to = SessionId::generate();
            let created = int(&state[2])? as u64;
            let owner = match &state[9] {
                Value::Nil => None,
                o => Some(text(o)?),
            };
            if let Some(o) = &owner {
                self.index_add(o, &to, created + ms(self.store.absolute_ttl))?;
            }
            let mut args = Vec::with_capacity(11);
            for v in &state[..9] {
                args.push(match v {
                    Value::Int(n) => n.to_string(),
                    other => text(other)?,
                });
            }
            args.push(owner.unwrap_or_default());
            args.push(match state.get(10) {
                Some(Value::Nil) | None => String::new(),
                Some(c) => text(c)?,
            });
            if self.counted() {
                self.live("live_add", &[to.as_str().to_string(), args[3].clone()])?;
            }
            self.on("rot_in", &to, &args)?;
            let out = self.on(
                "rot_out",
                &id,
                &[
                    to.as_str().to_string(),
                    args[1].clone(),
                    args[5].clone(),
                    args[6].clone(),
                ],
            )?;
            if int(&out)? == 1 {
                self.uncount(&id);
                return Ok(Reply::Rotated(to));
            }
            self.on("drop", &to, &[])?;
            self.uncount(&to);
        }
        Err(Error::Backend(
            "redis: the session kept changing during its rotation".into(),
        ))
    }

    fn owned(&self, owner: &str, kill: bool) -> Result<Reply> {
        check_owner(owner)?;
        let okey = self.owner_key(owner);
        if !self.opts.cluster {
            let v = self.invoke("owned", &[okey], ("", ""), &[owner.to_string(), flag(kill)])?;
            if kill {
                return Ok(Reply::Count(int(&v)? as usize));
            }
            let mut ids = items(v)?
                .iter()
                .map(|x| text(x).and_then(|t| SessionId::parse(&t)))
                .collect::<Result<Vec<_>>>()?;
            ids.sort();
            return Ok(Reply::Sessions(ids));
        }
        // Cluster: the index is a superset; each entry is checked in its own slot.
        let listed =
            items(self.invoke("index_list", std::slice::from_ref(&okey), ("", ""), &[])?)?;
        let mut ids = Vec::new();
        let mut stale = Vec::new();
        for x in &listed {
            let Ok(id) = text(x).and_then(|t| SessionId::parse(&t)) else {
                continue;
            };
            let keep = if kill {
                int(&self.on("destroy_if", &id, &[owner.to_string()])?)? == 1
            } else {
                text(&self.on("owner_of", &id, &[])?).is_ok_and(|o| o == owner)
            };
            if keep {
                ids.push(id);
            }
            if kill || !keep {
                stale.push(id);
            }
        }
        if !stale.is_empty() {
            let mut c = ::redis::cmd("ZREM");
            c.arg(&okey);
            for id in &stale {
                c.arg(id.as_str());
            }
            self.query(&c)?;
        }
        if kill {
            return Ok(Reply::Count(ids.len()));
        }
        ids.sort();
        Ok(Reply::Sessions(ids))
    }
}

/// Text made literal for a `SCAN … MATCH` pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Bits of a Cluster list cursor that hold the node's own `SCAN` cursor; the bits above
/// hold a slot of the node (its lowest), so a cursor names the node and the place in it.
const NODE_CURSOR_BITS: u32 = 48;

impl Redis {
    /// The `SCAN … MATCH` pattern of the keys that name sessions: the record hashes
    /// (`<prefix>{<id>}`), or in connect-redis layout the data keys (`<prefix><id>`).
    /// It also matches a few other keys (an owner index, the live set), which do not
    /// read as ids and are skipped.
    fn list_pattern(&self) -> String {
        let p = glob_escape(&self.opts.prefix);
        match self.opts.layout {
            RedisLayout::Native => format!("{p}{{*}}"),
            RedisLayout::ConnectRedis => format!("{p}*"),
        }
    }

    /// The session id a listed key names, if it names one.
    fn id_of_key(&self, key: &[u8]) -> Option<SessionId> {
        let k = std::str::from_utf8(key).ok()?;
        let rest = k.strip_prefix(self.opts.prefix.as_str())?;
        let id = match self.opts.layout {
            RedisLayout::Native => rest.strip_prefix('{')?.strip_suffix('}')?,
            RedisLayout::ConnectRedis => rest,
        };
        SessionId::parse(id).ok()
    }

    /// `Command::List`: one `SCAN` step (on a Cluster, on one primary: the cursor carries
    /// which), then the ids whose sessions are live.
    fn list(&self, cursor: u64, count: usize) -> Result<(Vec<SessionId>, u64)> {
        let mut scan = ::redis::cmd("SCAN");
        let pattern = self.list_pattern();
        let (node_cursor, slot) = if self.opts.cluster {
            let slot = cursor >> NODE_CURSOR_BITS;
            if slot >= 16384 {
                return Err(Error::invalid(format!(
                    "list cursor {cursor} is not one this store gave"
                )));
            }
            (cursor & ((1 << NODE_CURSOR_BITS) - 1), Some(slot as u16))
        } else {
            (cursor, None)
        };
        scan.arg(node_cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(count);
        let reply = match slot {
            None => self.plain(&scan)?,
            Some(slot) => {
                use ::redis::cluster_routing::{
                    Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
                };
                self.ops.fetch_add(1, Ordering::Relaxed);
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(slot, SlotAddr::Master),
                ));
                self.pooled(|conn| match conn {
                    Conn::Cluster(c) => c.route_command(&scan, route).map_err(|e| self.failed(e)),
                    Conn::One(_) => Err(Failed {
                        err: backend("redis: a Cluster list on a single connection"),
                        broken: false,
                    }),
                })?
            }
        };
        let mut a = items(reply)?;
        if a.len() != 2 {
            return Err(Error::Backend("redis: a SCAN reply has 2 items".into()));
        }
        let keys = items(a.pop().unwrap_or_default())?;
        let node_next: u64 = text(&a[0])?
            .parse()
            .map_err(|_| Error::Backend("redis: a SCAN cursor is not a number".into()))?;
        let next = match slot {
            None => node_next,
            Some(slot) => {
                if node_next >> NODE_CURSOR_BITS != 0 {
                    return Err(Error::Backend(format!(
                        "redis: a node's SCAN cursor {node_next} is too large to carry"
                    )));
                }
                if node_next != 0 {
                    (u64::from(slot) << NODE_CURSOR_BITS) | node_next
                } else {
                    // This primary is done: on to the one whose lowest slot comes next.
                    match self.next_primary(slot)? {
                        Some(s) => u64::from(s) << NODE_CURSOR_BITS,
                        None => 0,
                    }
                }
            }
        };
        let mut ids: Vec<SessionId> = Vec::with_capacity(keys.len());
        for k in &keys {
            if let Value::BulkString(b) = k {
                if let Some(id) = self.id_of_key(b) {
                    ids.push(id);
                }
            }
        }
        Ok((self.live_ones(ids)?, next))
    }

    /// The lowest slot of the primary after the one serving `slot`, in the order of their
    /// lowest slots (from `CLUSTER SLOTS`); `None` after the last.
    fn next_primary(&self, slot: u16) -> Result<Option<u16>> {
        let v = self.query(::redis::cmd("CLUSTER").arg("SLOTS"))?;
        let mut lowest: std::collections::HashMap<(String, i64), i64> =
            std::collections::HashMap::new();
        for range in items(v)? {
            let r = items(range)?;
            let (Some(start), Some(Value::Array(node))) = (r.first(), r.get(2)) else {
                continue;
            };
            let (Some(host), Some(port)) = (node.first(), node.get(1)) else {
                continue;
            };
            let start = int(start)?;
            let e = lowest.entry((text(host)?, int(port)?)).or_insert(start);
            *e = (*e).min(start);
        }
        let mut starts: Vec<i64> = lowest.into_values().collect();
        starts.sort_unstable();
        Ok(starts
            .into_iter()
            .find(|&s| s > i64::from(slot))
            .and_then(|s| u16::try_from(s).ok()))
    }

    /// Those of `ids` whose sessions are live now: a native record's `e` read (one
    /// pipeline), else the code's `alive` for each.
    fn live_ones(&self, ids: Vec<SessionId>) -> Result<Vec<SessionId>> {
        if ids.is_empty() {
            return Ok(ids);
        }
        if self.opts.layout != RedisLayout::Native {
            let mut live = Vec::with_capacity(ids.len());
            for id in ids {
                if int(&self.on("alive", &id, &[])?)? == 1 {
                    live.push(id);
                }
            }
            return Ok(live);
        }
        let (now, _) = self.now();
        self.ops.fetch_add(1, Ordering::Relaxed);
        let ends: Vec<Value> = self.pooled(|conn| match conn {
            Conn::One(c) => {
                let mut p = ::redis::pipe();
                for id in &ids {
                    p.cmd("HGET").arg(self.record_key(id.as_str())).arg("e");
                }
                p.query::<Vec<Value>>(c).map_err(|e| self.failed(e))
            }
            Conn::Cluster(c) => {
                let mut p = ::redis::cluster::cluster_pipe();
                for id in &ids {
                    p.cmd("HGET").arg(self.record_key(id.as_str())).arg("e");
                }
                p.query::<Vec<Value>>(c).map_err(|e| self.failed(e))
            }
        })?;
        Ok(ids
            .into_iter()
            .zip(ends)
            .filter(|(_, e)| {
                text(e)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .is_some_and(|e| e > now)
            })
            .map(|(id, _)| id)
            .collect())
    }

    /// `Command::Clear`: every listed session destroyed by the code's `destroy`, one
    /// atomic call each (not one atomic step across sessions).
    fn clear(&self) -> Result<Reply> {
        let (mut n, mut cursor) = (0, 0);
        loop {
            let (ids, next) = self.list(cursor, 500)?;
            for id in ids {
                if let Reply::Destroyed(true) = self.destroy(id)? {
                    n += 1;
                }
            }
            if next == 0 {
                return Ok(Reply::Count(n));
            }
            cursor = next;
        }
    }
}

impl Backend for Redis {
    fn execute(&self, cmd: Command) -> Result<Reply> {
        match cmd {
            Command::Fetch { id, touch } => self.fetch(id, touch),
            Command::Write {
                id,
                data,
                opts,
                ttl_ms,
            } => {
                check_ttl(ttl_ms)?;
                let n = data.byte_len();
                if n > self.store.max_session_bytes {
                    return Err(Error::TooLarge(format!(
                        "session data of {n} bytes exceeds max_session_bytes={}",
                        self.store.max_session_bytes
                    )));
                }
                let mut args = Vec::with_capacity(4 + 2 * data.len());
                args.extend([
                    opt_num(opts.expected_version),
                    opt_num(opts.token),
                    flag(opts.release),
                    opt_num(ttl_ms),
                ]);
                for (k, v) in data.iter() {
                    args.push(serde_json::to_string(&k).map_err(backend)?);
                    args.push(canonical(v.as_str()));
                }
                self.reserve(&id)?;
                let v = int(&self.on("write", &id, &args)?)? as u64;
                self.accessed(&id)?;
                Ok(Reply::Version(v))
            }
            Command::Patch {
                id,
                ops,
                opts,
                ttl_ms,
            } => self.patch(id, &ops, opts, ttl_ms),
            Command::Lock {
                id,
                lease_ms,
                wait_ms,
            } => self.lock(id, lease_ms, wait_ms),
            Command::Unlock { id, token } => {
                self.on("unlock", &id, &[token.to_string()])?;
                Ok(Reply::Unlocked)
            }
            Command::Touch { id, ttl_ms } => {
                check_ttl(ttl_ms)?;
                let a = items(self.on("touch", &id, &[opt_num(ttl_ms)])?)?;
                let written = a.first().map(int).transpose()?.unwrap_or(0) != 0;
                let expires_at = a.get(1).map(int).transpose()?.unwrap_or(0) as u64;
                if written {
                    self.accessed(&id)?;
                }
                Ok(Reply::Touched(Touched {
                    written,
                    expires_at,
                }))
            }
            Command::Destroy { id } => self.destroy(id),
            Command::Rotate { id, token } => self.rotate(id, token),
            Command::Owned { owner } => self.owned(&owner, false),
            Command::DestroyOwned { owner } => self.owned(&owner, true),
            Command::List { cursor, count } => {
                check_count(count)?;
                let (ids, next) = self.list(cursor, count)?;
                Ok(Reply::Page { ids, next })
            }
            Command::Clear => self.clear(),
        }
    }

    fn stats(&self) -> Stats {
        Stats {
            operations: self.ops.load(Ordering::Relaxed),
            lock_waits: self.lock_waits.load(Ordering::Relaxed),
            lock_timeouts: self.lock_timeouts.load(Ordering::Relaxed),
            ..Stats::default()
        }
    }
}
