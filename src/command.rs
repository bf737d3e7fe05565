//! The store actor's messages: one [`Command`] in, one [`Reply`] out.
//!
//! These types carry no transport: the in-process store applies them to a shard, the
//! daemon decodes them from the wire, and the Redis backend maps each to one script.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::session::{RawJson, Record, SessionData, SessionId};

/// One change inside an atomic [`Command::Patch`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PatchOp {
    /// Set a top-level key to a value (replacing, never merging).
    Set(String, RawJson),
    /// Remove a top-level key (absent is fine).
    Remove(String),
    /// Add to the integer at a key (absent counts as 0). Its result is reported in
    /// [`Patched::values`].
    Incr(String, i64),
    /// An RFC 7396 JSON Merge Patch whose top level is an object.
    Merge(Map<String, Value>),
    /// Set or clear the session's owner (e.g. a user id).
    SetOwner(Option<Arc<str>>),
}

/// Conditions and lock context of a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOpts {
    /// Compare-and-swap: refuse with `Conflict` unless the session has this version
    /// (0 means "does not exist yet").
    pub expected_version: Option<u64>,
    /// The fencing token of the lock held by the writer. Required while another holder's
    /// lock is live; refused with `StaleToken` if it is not the current holder's.
    pub token: Option<u64>,
    /// For a patch: create the session when it does not exist (a write always creates).
    pub create: bool,
    /// Release the lock named by `token` in the same atomic step, when the write succeeds.
    pub release: bool,
}

impl WriteOpts {
    /// Options with only `expected_version` set.
    pub fn expect(version: u64) -> WriteOpts {
        WriteOpts {
            expected_version: Some(version),
            ..WriteOpts::default()
        }
    }

    /// Options with only `token` set.
    pub fn token(token: u64) -> WriteOpts {
        WriteOpts {
            token: Some(token),
            ..WriteOpts::default()
        }
    }

    /// Options that create the session when absent.
    pub fn create() -> WriteOpts {
        WriteOpts {
            create: true,
            ..WriteOpts::default()
        }
    }
}

/// A request to the store.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Read a session. With `touch`, also record the access (see [`Command::Touch`]).
    Fetch {
        /// The session.
        id: SessionId,
        /// Also touch it.
        touch: bool,
    },
    /// Replace the whole data of a session, creating it if needed.
    Write {
        /// The session.
        id: SessionId,
        /// The new data.
        data: Arc<SessionData>,
        /// Conditions and lock context.
        opts: WriteOpts,
        /// The session's own idle TTL in ms from now on (`None`: keep the one it has,
        /// or the store's `ttl` for a new session). See [`check_ttl`] for the range.
        ttl_ms: Option<u64>,
    },
    /// Apply changes atomically: all of them or, on any error, none.
    Patch {
        /// The session.
        id: SessionId,
        /// The changes, in order.
        ops: Vec<PatchOp>,
        /// Conditions and lock context.
        opts: WriteOpts,
        /// The session's own idle TTL in ms from now on, set with the changes (`None`:
        /// keep the one it has, or the store's `ttl` for a new session).
        ttl_ms: Option<u64>,
    },
    /// Take the session's lock, waiting up to `wait_ms` in arrival order.
    Lock {
        /// The session.
        id: SessionId,
        /// How long the lock lasts unless released.
        lease_ms: u64,
        /// How long to wait for it (0: fail at once if taken).
        wait_ms: u64,
    },
    /// Release the lock held with `token`.
    Unlock {
        /// The session.
        id: SessionId,
        /// The holder's fencing token.
        token: u64,
    },
    /// Record an access: extends the idle expiry, unless the last recorded access is more
    /// recent than the touch interval (`touch_fraction` × the session's TTL; then nothing
    /// is written). With `ttl_ms`, the session's own idle TTL is set to it and the access
    /// is always written.
    Touch {
        /// The session.
        id: SessionId,
        /// A new idle TTL for the session, in ms.
        ttl_ms: Option<u64>,
    },
    /// Delete the session and leave a tombstone that refuses late writes.
    Destroy {
        /// The session (an id rotated away also destroys its successor).
        id: SessionId,
    },
    /// Move the session to a fresh id; the old id answers reads for the grace period.
    Rotate {
        /// The session.
        id: SessionId,
        /// The caller's fencing token, if it holds the lock.
        token: Option<u64>,
    },
    /// The live sessions of an owner.
    Owned {
        /// The owner.
        owner: Arc<str>,
    },
    /// Destroy every session of an owner ("log out everywhere").
    DestroyOwned {
        /// The owner.
        owner: Arc<str>,
    },
    /// One page of the live sessions' ids, as Redis's `SCAN` pages keys: start with
    /// cursor 0 and pass each reply's `next` back until it is 0. Every session that lives
    /// for the whole scan is listed at least once; others may or may not be, and an id may
    /// come twice (on Redis).
    List {
        /// 0 to start, else the `next` of the previous page.
        cursor: u64,
        /// How many ids a page should hold (a hint: a page may hold fewer or more).
        count: usize,
    },
    /// Destroy every session, leaving tombstones as `Destroy` does.
    Clear,
}

/// Longest idle TTL a session may have of its own: one year.
pub const MAX_SESSION_TTL_MS: u64 = 365 * 24 * 3600 * 1000;

/// Checks a session's own idle TTL: 1 ms to [`MAX_SESSION_TTL_MS`], else
/// `InvalidArgument`.
pub fn check_ttl(ttl_ms: Option<u64>) -> crate::error::Result<()> {
    match ttl_ms {
        Some(t) if t == 0 || t > MAX_SESSION_TTL_MS => Err(crate::error::Error::invalid(format!(
            "a session's TTL must be between 1 ms and {MAX_SESSION_TTL_MS} ms (one year), got {t} ms"
        ))),
        _ => Ok(()),
    }
}

/// Checks the page size of a [`Command::List`]: at least 1.
pub fn check_count(count: usize) -> crate::error::Result<()> {
    if count == 0 {
        return Err(crate::error::Error::invalid(
            "a list's count must be at least 1",
        ));
    }
    Ok(())
}

/// The result of a successful [`Command::Patch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patched {
    /// The session's version after the patch.
    pub version: u64,
    /// The result of each `Incr` op, in order.
    pub values: Vec<i64>,
}

/// The result of a successful [`Command::Touch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touched {
    /// True when the access was recorded (false: it was recent enough to skip).
    pub written: bool,
    /// When the session now expires, in ms since the epoch.
    pub expires_at: u64,
}

/// The answer to a [`Command`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// For `Fetch`: the record (`None` when absent or expired) and whether it was touched.
    Record {
        /// The session, if it lives.
        record: Option<Record>,
        /// The fetch recorded an access.
        touched: bool,
    },
    /// For `Write`: the new version.
    Version(u64),
    /// For `Patch`.
    Patched(Patched),
    /// For `Lock`: the fencing token and the record as it is under the lock.
    Locked {
        /// The fencing token: greater than any earlier token of this session.
        token: u64,
        /// The session as the lock holder sees it.
        record: Record,
    },
    /// For `Unlock`.
    Unlocked,
    /// For `Touch`.
    Touched(Touched),
    /// For `Destroy`: whether a live session was there.
    Destroyed(bool),
    /// For `Rotate`: the new id.
    Rotated(SessionId),
    /// For `Owned`.
    Sessions(Vec<SessionId>),
    /// For `DestroyOwned` and `Clear`: how many sessions were destroyed.
    Count(usize),
    /// For `List`: one page of ids and the cursor of the next page (0: the scan is done).
    Page {
        /// Live sessions' ids.
        ids: Vec<SessionId>,
        /// The cursor to pass next; 0 when the scan is complete.
        next: u64,
    },
}
