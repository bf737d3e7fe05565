//! Backends: where the sessions live. Each executes [`Command`]s and honours the same
//! contract (the conformance suite in `tests/conformance` states it).

pub mod memory;

use crate::{
    command::{Command, Reply},
    error::Result,
};

/// A store backend.
pub trait Backend: Send + Sync {
    /// Applies one command atomically. May block: a `Lock` waits for its turn.
    fn execute(&self, cmd: Command) -> Result<Reply>;

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
