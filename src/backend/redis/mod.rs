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
//!
//! The files: `pool.rs` (pooled and shared connections), `script.rs` (the code's text,
//! loading and calls, the time they are given), `codec.rs` (key names, a record ↔ its
//! hash fields and the code's replies), `ops.rs` (the operations on a session),
//! `fast.rs` (the live fetch and the increment without the general path), `lock.rs`
//! (lock tickets and waits), `cluster.rs` (what a Cluster composes across slots),
//! `list.rs` (listing and clearing), `schema.rs` (the names of the record's fields and
//! keys, which the tests hold `store.lua` to); this file holds the backend and its
//! dispatch.

mod cluster;
mod codec;
mod fast;
mod list;
mod lock;
mod ops;
mod pool;
mod schema;
mod script;

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
};

use ::redis::Script;
use parking_lot::Mutex;

use self::pool::{Client, Conn};
use super::{Backend, Stats, wire::shared::Places};
use crate::{
    clock::Clock,
    command::{Command, Reply, check_count},
    config::{RedisOptions, ScriptMode, StoreOptions},
    error::{Error, Result},
};

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

/// A `Backend` error with this text.
fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

impl Redis {
    /// Connects to Redis (once, to fail early and clearly).
    pub fn new(opts: RedisOptions, store: StoreOptions, clock: Arc<dyn Clock>) -> Result<Redis> {
        let (client, tls) = Client::open(&opts)?;
        let (script, name, library) = script::code(&opts, &store);
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
            } => self.write(id, &data, opts, ttl_ms),
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
            Command::Unlock { id, token } => self.unlock(id, token),
            Command::Touch { id, ttl_ms } => self.touch(id, ttl_ms),
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
