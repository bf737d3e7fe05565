//! Backends: where the sessions live. Each executes [`Command`]s and honours the same
//! contract (the conformance suite in `tests/conformance` states it).

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "client")]
pub mod remote;
#[cfg(any(feature = "client", feature = "redis"))]
pub(crate) mod wire;

use std::{future::Future, pin::Pin};

use crate::{
    command::{Command, Reply},
    error::Result,
    session::SessionId,
};

/// The future of an async backend call.
pub type BoxFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply>> + Send + 'a>>;

/// A store backend.
pub trait Backend: Send + Sync {
    /// Applies one command atomically. May block: a `Lock` waits for its turn.
    fn execute(&self, cmd: Command) -> Result<Reply>;

    /// `Command::Lock`, waiting without blocking a thread (for async servers). Dropping
    /// the future gives up the wait. The default blocks, as `execute` does.
    fn lock_async(&self, id: SessionId, lease_ms: u64, wait_ms: u64) -> BoxFuture<'_> {
        Box::pin(std::future::ready(self.execute(Command::Lock {
            id,
            lease_ms,
            wait_ms,
        })))
    }

    /// Whether `lock_async` waits without blocking the thread that polls it (the default
    /// `lock_async` blocks).
    fn waits_without_thread(&self) -> bool {
        false
    }

    /// Counters and sizes.
    fn stats(&self) -> Stats;

    /// Writes a snapshot of a persistent store and drops the log it covers.
    fn compact(&self) -> Result<()> {
        Err(crate::error::Error::invalid(
            "this store keeps no log to compact",
        ))
    }
}

/// Commands applied, by kind (in-process stores, and sessyncd's through `SESS.STATS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CommandCounts {
    /// `Fetch` (reads, with or without a touch).
    pub fetch: u64,
    /// `Write` (whole data).
    pub write: u64,
    /// `Patch` (set, remove, increment, merge patch, owner).
    pub patch: u64,
    /// `Lock`.
    pub lock: u64,
    /// `Unlock`.
    pub unlock: u64,
    /// `Touch`.
    pub touch: u64,
    /// `Destroy`.
    pub destroy: u64,
    /// `Rotate`.
    pub rotate: u64,
    /// `Owned`, `DestroyOwned`, `List` and `Clear`.
    pub other: u64,
}

impl CommandCounts {
    /// The counter of `cmd`'s kind: its index in the field order above.
    pub(crate) fn index(cmd: &crate::command::Command) -> usize {
        use crate::command::Command as C;
        match cmd {
            C::Fetch { .. } => 0,
            C::Write { .. } => 1,
            C::Patch { .. } => 2,
            C::Lock { .. } => 3,
            C::Unlock { .. } => 4,
            C::Touch { .. } => 5,
            C::Destroy { .. } => 6,
            C::Rotate { .. } => 7,
            _ => 8,
        }
    }

    /// Builds the counts from an array in field order.
    pub(crate) fn from_array(a: [u64; 9]) -> CommandCounts {
        let [
            fetch,
            write,
            patch,
            lock,
            unlock,
            touch,
            destroy,
            rotate,
            other,
        ] = a;
        CommandCounts {
            fetch,
            write,
            patch,
            lock,
            unlock,
            touch,
            destroy,
            rotate,
            other,
        }
    }
}

/// Counters and sizes of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions held (expired ones not yet swept included).
    pub sessions: u64,
    /// Tombstones of destroyed or rotated ids still refusing writes.
    pub tombstones: u64,
    /// Rotated ids still answering reads.
    pub aliases: u64,
    /// Timers queued for the background thread.
    pub timers: u64,
    /// Commands applied.
    pub operations: u64,
    /// Lock requests that found the lock taken.
    pub lock_waits: u64,
    /// Lock requests that gave up.
    pub lock_timeouts: u64,
    /// Sessions removed because they expired.
    pub expirations: u64,
    /// Sessions evicted to make room.
    pub evictions: u64,
    /// What the sessions count against `max_memory`: their JSON text plus a fixed
    /// overhead each (in-process stores; 0 elsewhere).
    pub memory: u64,
    /// Commands applied, by kind.
    pub commands: CommandCounts,
    /// The persistence log (all zero when the store keeps none).
    pub persistence: memory::PersistStats,
}
