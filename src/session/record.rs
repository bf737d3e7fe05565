//! The session record every backend returns.

use std::sync::Arc;

use super::{SessionData, SessionId};
use crate::error::{Error, Result};

/// Longest owner string, in bytes.
pub const MAX_OWNER_LEN: usize = 512;

/// Checks an owner string ([`Record::owner`]): 1 to [`MAX_OWNER_LEN`] bytes.
pub(crate) fn check_owner(owner: &str) -> Result<()> {
    if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
        return Err(Error::invalid(format!(
            "owner must be 1 to {MAX_OWNER_LEN} bytes, got {}",
            owner.len()
        )));
    }
    Ok(())
}

/// A session as the store holds it. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The id that carries the session now (after a rotation, the new one).
    pub id: SessionId,
    /// The data: a JSON object. A shared, immutable snapshot.
    pub data: Arc<SessionData>,
    /// Starts at 1 when the session is created and grows by one on every change of its
    /// data or owner (touches do not count).
    pub version: u64,
    /// When the session was created.
    pub created: u64,
    /// The last write or recorded touch.
    pub last_access: u64,
    /// When the session expires unless touched: `last_access + ttl`, capped by
    /// `created + absolute_ttl` (`ttl` being the session's own TTL when it has one).
    pub expires_at: u64,
    /// The owner (e.g. a user id), if one was set.
    pub owner: Option<Arc<str>>,
    /// The session's own idle TTL in ms, when one was given (a write, patch or touch with
    /// a TTL); `None`: the store's `ttl`.
    pub ttl_ms: Option<u64>,
}
