//! The store's Lua code (`store.lua`): its text with the store's settings filled in, as
//! a function library (`FCALL`, loaded again when a server lost it) or a script
//! (`EVALSHA`, reloaded on `NOSCRIPT`); one call of it, on a shared or a pooled
//! connection; and the time each call is given.

use std::sync::atomic::Ordering;

use ::redis::{Script, Value};

use super::{
    Redis, backend,
    codec::{ms, text},
    pool::{Conn, Failed},
};
use crate::{
    config::{Eviction, RedisLayout, RedisOptions, StoreOptions},
    error::Result,
    protocol,
    session::SessionId,
};

/// The store's Lua code: one command per call (settings and tail filled in by `new`).
pub(super) const SOURCE: &str = include_str!("store.lua");

/// How often the offset to the server's clock is measured again.
const CLOCK_SYNC_MS: u64 = 10_000;

/// The code as a script, and as a function library: (script, function name, library).
pub(super) fn code(opts: &RedisOptions, store: &StoreOptions) -> (Script, String, String) {
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
    (script, name, library)
}

impl Redis {
    /// `FUNCTION LOAD REPLACE` of the library (on every primary of a Cluster).
    pub(super) fn load_library(&self, c: &mut Conn) -> Result<()> {
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

    /// An `FCALL` built by the caller: on a shared connection when there are some, else
    /// on a pooled one. A library the server lost (a restart without persistence) is
    /// loaded again on a pooled connection, which then makes the call.
    pub(super) fn fcall(&self, c: &::redis::Cmd) -> Result<Value> {
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
                r.map_err(|e| protocol::error::parse(&e, &self.where_()))
            }
        }
    }

    /// The scripts' `now`: a test's clock as it is; otherwise the server's clock, as this
    /// host's clock plus its offset to the server's `TIME`, measured again every
    /// [`CLOCK_SYNC_MS`] (so hosts whose clocks disagree still agree on leases and TTLs).
    pub(super) fn now_arg(&self) -> String {
        match self.now() {
            (ms, true) => format!("w{ms}"),
            (ms, false) => ms.to_string(),
        }
    }

    /// The scripts' time in ms, and whether it is the server's clock (else a test's).
    pub(super) fn now(&self) -> (u64, bool) {
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
    pub(super) fn measure_offset(&self) -> Option<i64> {
        let before = self.clock.now_ms();
        let v = self.query(&::redis::cmd("TIME")).ok()?;
        let after = self.clock.now_ms();
        let Value::Array(a) = v else { return None };
        let secs: i64 = text(a.first()?).ok()?.parse().ok()?;
        let micros: i64 = text(a.get(1)?).ok()?.parse().ok()?;
        let server = secs * 1000 + micros / 1000;
        Some(server - ((before + after) / 2) as i64)
    }

    /// One call of the script on `conn`.
    pub(super) fn invoke_on(
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
    pub(super) fn call_on(
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
    pub(super) fn fcall_cmd(
        &self,
        keys: &[String],
        head: &[&str],
        args: &[String],
    ) -> ::redis::Cmd {
        let mut c = ::redis::cmd("FCALL");
        c.arg(&self.name).arg(keys.len()).arg(keys);
        c.arg(head).arg(args);
        c
    }

    /// An `FCALL` of the library's function, built by the caller.
    pub(super) fn fcall_on(
        &self,
        conn: &mut Conn,
        c: &::redis::Cmd,
    ) -> std::result::Result<Value, Failed> {
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
    pub(super) fn invoke(
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
    pub(super) fn call(&self, keys: &[String], head: &[&str], args: &[String]) -> Result<Value> {
        if self.function.load(Ordering::Relaxed) {
            return self.fcall(&self.fcall_cmd(keys, head, args));
        }
        self.pooled(|c| self.call_on(c, keys, head, args))
    }

    pub(super) fn on(&self, cmd: &str, id: &SessionId, args: &[String]) -> Result<Value> {
        self.invoke(cmd, &self.keys(id.as_str()), (id.as_str(), ""), args)
    }
}
