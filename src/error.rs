//! The one error type of the crate.
//!
//! Every operation of every backend reports failure as an [`Error`]. The variants are the
//! outcomes a caller plans for (`NotFound`, `Conflict`, `LockTimeout`, `StaleToken`, …),
//! then misuse (`InvalidArgument`, `InvalidJson`, `TooLarge`, …), then the environment.
//! Each one carries enough text to say what was wrong; none of them ever follows a
//! partial change: an operation that fails has changed nothing.

use std::fmt;

use crate::session::SessionId;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The session does not exist (or has expired, which counts as not existing).
    NotFound,
    /// A compare-and-swap saw another version than the one expected.
    Conflict {
        /// The version the caller expected.
        expected: u64,
        /// The version the store holds.
        actual: u64,
    },
    /// The lock could not be taken within the allowed wait.
    LockTimeout,
    /// A fencing token was presented that is not the current holder's: its lease ended, it
    /// was released, or it was never issued.
    StaleToken,
    /// The session is locked by another holder and the write presented no token.
    Locked,
    /// The session was destroyed: writes for it are refused while its tombstone lasts.
    Destroyed,
    /// The id was rotated; it answers reads only, for its grace period. Writes go to `to`.
    Rotated {
        /// The id that now carries the session.
        to: SessionId,
    },
    /// The store holds `max_sessions` sessions and eviction is off.
    Full,
    /// A value, key, session or input exceeds a configured limit.
    TooLarge(String),
    /// Text that should be JSON is not, or JSON of the wrong shape.
    InvalidJson(String),
    /// An increment met a value that is not an integer, or overflowed.
    NotANumber(String),
    /// A malformed argument: an id, a URL, an option, a cookie setting.
    InvalidArgument(String),
    /// The backend failed (an I/O error, a lost connection, a server error).
    Backend(String),
}

impl Error {
    /// A short machine-readable name of the variant (`"not_found"`, `"stale_token"`, …),
    /// stable across releases, used by the conformance suite and the wire protocols.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotFound => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::LockTimeout => "lock_timeout",
            Error::StaleToken => "stale_token",
            Error::Locked => "locked",
            Error::Destroyed => "destroyed",
            Error::Rotated { .. } => "rotated",
            Error::Full => "full",
            Error::TooLarge(_) => "too_large",
            Error::InvalidJson(_) => "invalid_json",
            Error::NotANumber(_) => "not_a_number",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Backend(_) => "backend",
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidArgument(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str("session not found (or expired)"),
            Error::Conflict { expected, actual } => write!(
                f,
                "version conflict: expected version {expected}, the store has {actual}"
            ),
            Error::LockTimeout => f.write_str("timed out waiting for the session lock"),
            Error::StaleToken => f.write_str(
                "stale fencing token: the lock was released, its lease ended, or it was never issued",
            ),
            Error::Locked => {
                f.write_str("the session is locked by another holder and no token was given")
            }
            Error::Destroyed => f.write_str("the session was destroyed"),
            Error::Rotated { to } => write!(f, "the session id was rotated to {to}"),
            Error::Full => f.write_str("the store is full (max_sessions reached, eviction off)"),
            Error::TooLarge(m) => write!(f, "too large: {m}"),
            Error::InvalidJson(m) => write!(f, "invalid JSON: {m}"),
            Error::NotANumber(m) => write!(f, "not a number: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Backend(m) => write!(f, "backend error: {m}"),
        }
    }
}

impl std::error::Error for Error {}
