//! Backends: where the sessions live. Each executes [`Command`]s and honours the same
//! contract (the conformance suite in `tests/conformance` states it).

pub mod memory;
pub mod redis;
pub mod remote;
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
}

/// Counters and sizes of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
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
}
