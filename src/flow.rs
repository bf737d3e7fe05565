//! The request flow: the seed's fetch-before and persist-after middlewares, as two calls.
//!
//! ```text
//! Sessions::begin(cookie header, lock?)  → Session
//!     get / set / remove / incr / rotate / destroy / set_owner   (local, no I/O but rotate)
//! Session::commit()                      → Committed { set_cookie, … }
//! Session::abort()                       → releases the lock, writes nothing
//! ```
//!
//! `begin` adopts a cookie's id only when the id is well formed, correctly signed (when
//! signing is on) and names a live session; otherwise the visitor gets a fresh id. `commit`
//! sends only what the handler changed, as one atomic patch (with increments as
//! increments), so two requests that change different keys — or increment the same
//! counter — never lose each other's writes, with or without the lock.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde::{Serialize, de::DeserializeOwned};

use crate::{
    command::{PatchOp, WriteOpts},
    cookie::{CookieConfig, cookie_values},
    error::{Error, Result},
    session::{Json, RawJson, Record, SessionData, SessionId, check_key},
    store::{MAX_LEASE, MAX_WAIT, Store},
};

/// Most times one operation follows a rotated id to its successor.
const MAX_HOPS: usize = 8;

/// Settings of the request flow. Build with `..Default::default()`.
#[derive(Debug, Clone)]
pub struct FlowOptions {
    /// The session cookie: name, attributes, signing keys.
    pub cookie: CookieConfig,
    /// How long a request's lock lasts if it is never released (default 30 s).
    pub lock_lease: Duration,
    /// How long `begin` waits for the lock (default 10 s).
    pub lock_wait: Duration,
}

impl Default for FlowOptions {
    fn default() -> Self {
        FlowOptions {
            cookie: CookieConfig::default(),
            lock_lease: Duration::from_secs(30),
            lock_wait: Duration::from_secs(10),
        }
    }
}

/// The middleware: a store plus the flow's settings. Cheap to clone (one `Arc`); share it.
#[derive(Debug, Clone)]
pub struct Sessions {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    store: Store,
    opts: FlowOptions,
}

#[derive(Debug, Clone)]
enum Change {
    Set(RawJson),
    Remove,
    /// An increment by the first field; the second is the value as this request sees it.
    Incr(i64, RawJson),
}

/// One request's view of its visitor's session.
///
/// Life cycle: `Sessions::begin` → `get`/`set`/`remove`/`incr`/`rotate`/`destroy` … →
/// `commit` or `abort`. Dropping it without either aborts (the lock is released).
#[derive(Debug)]
pub struct Session {
    sessions: Sessions,
    id: SessionId,
    base: Option<Record>,
    changes: BTreeMap<String, Change>,
    owner: Option<Option<Arc<str>>>,
    token: Option<u64>,
    /// The visitor sent a cookie of our name (valid or not).
    had_cookie: bool,
    /// The cookie must be (re)sent: a new id, a rotation, a followed alias, a rolling
    /// refresh.
    cookie_needed: bool,
    destroy: bool,
    finished: bool,
}

/// What `commit` did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Committed {
    /// The `Set-Cookie` header value to send, when one must be sent.
    pub set_cookie: Option<String>,
    /// The session's id after the request.
    pub id: SessionId,
    /// The session's version after the write, if anything was written.
    pub version: Option<u64>,
}

impl Sessions {
    /// A request flow over `store`. Fails if the cookie settings are invalid.
    pub fn new(store: Store, opts: FlowOptions) -> Result<Sessions> {
        opts.cookie.validate()?;
        if opts.lock_lease.is_zero() || opts.lock_lease > MAX_LEASE {
            return Err(Error::invalid(format!(
                "lock_lease must be between 1 ms and {} s",
                MAX_LEASE.as_secs()
            )));
        }
        if opts.lock_wait > MAX_WAIT {
            return Err(Error::invalid(format!(
                "lock_wait must be at most {} s",
                MAX_WAIT.as_secs()
            )));
        }
        Ok(Sessions {
            inner: Arc::new(Shared { store, opts }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The flow's settings.
    pub fn options(&self) -> &FlowOptions {
        &self.inner.opts
    }

    /// Starts a request: resolves the visitor's session from the `Cookie` header (or
    /// makes a fresh id), takes the session's lock when `lock` is set, and fetches it.
    pub fn begin(&self, cookie_header: Option<&str>, lock: bool) -> Result<Session> {
        let header = cookie_header.unwrap_or("");
        let cookie = &self.inner.opts.cookie;
        let mut had_cookie = false;
        // (record, token, touched, the id the cookie named)
        let mut found: Option<(Record, Option<u64>, bool, SessionId)> = None;
        for value in cookie_values(header, &cookie.name) {
            had_cookie = true;
            let Some(cand) = cookie.decode_value(value) else {
                continue;
            };
            let before = self.inner.store.now_ms();
            if lock {
                match self.lock_following(cand) {
                    Ok((token, rec)) => {
                        let touched = rec.last_access >= before;
                        found = Some((rec, Some(token), touched, cand));
                        break;
                    }
                    Err(Error::NotFound | Error::Destroyed) => continue,
                    Err(e) => return Err(e),
                }
            } else if let (Some(rec), touched) = self.inner.store.fetch_touch(&cand)? {
                found = Some((rec, None, touched, cand));
                break;
            }
        }
        let (id, base, token, cookie_needed) = match found {
            Some((rec, token, touched, cand)) => {
                // The cookie named an id that was rotated away: hand out the successor.
                let needed = rec.id != cand || (touched && cookie.max_age.is_some());
                (rec.id, Some(rec), token, needed)
            }
            None => (SessionId::generate(), None, None, false),
        };
        Ok(Session {
            sessions: self.clone(),
            id,
            base,
            changes: BTreeMap::new(),
            owner: None,
            token,
            had_cookie,
            cookie_needed,
            destroy: false,
            finished: false,
        })
    }

    fn lock_following(&self, mut id: SessionId) -> Result<(u64, Record)> {
        for _ in 0..MAX_HOPS {
            let opts = &self.inner.opts;
            match self.inner.store.lock(&id, opts.lock_lease, opts.lock_wait) {
                Err(Error::Rotated { to }) => id = to,
                other => return other,
            }
        }
        Err(Error::NotFound)
    }
}

impl Session {
    /// The session's id (fresh and not yet stored when [`Session::is_new`]).
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// True when no stored session was found: `commit` creates one if anything was set.
    pub fn is_new(&self) -> bool {
        self.base.is_none()
    }

    /// The fencing token, when the session was begun with the lock.
    pub fn token(&self) -> Option<u64> {
        self.token
    }

    /// The record as fetched by `begin` (`None` for a new session).
    pub fn record(&self) -> Option<&Record> {
        self.base.as_ref()
    }

    /// The value at `key`, with this request's changes applied.
    pub fn get(&self, key: &str) -> Option<Json<'_>> {
        match self.changes.get(key) {
            Some(Change::Set(v) | Change::Incr(_, v)) => Some(v.as_json()),
            Some(Change::Remove) => None,
            None => self.base.as_ref().and_then(|r| r.data.get(key)),
        }
    }

    /// The value at `key`, decoded.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get(key).map(|v| v.deserialize()).transpose()
    }

    /// All keys with this request's changes applied, as one JSON object text (keys
    /// sorted). Untouched members are copied as they are stored, not re-encoded.
    pub fn to_json(&self) -> String {
        let empty = SessionData::new();
        let base = self.base.as_ref().map_or(&empty, |r| &*r.data);
        if self.changes.is_empty() {
            return base.to_json().to_string();
        }
        let mut edit = base.edit();
        for (k, c) in &self.changes {
            match c {
                // Keys were checked when the change was recorded.
                Change::Set(v) | Change::Incr(_, v) => {
                    let _ = edit.set(k, v.clone());
                }
                Change::Remove => edit.remove(k),
            }
        }
        edit.finish()
            .map(|d| d.to_json().to_string())
            .unwrap_or_else(|_| base.to_json().to_string())
    }

    fn check_value(&self, key: &str, v: &RawJson) -> Result<()> {
        check_key(key)?;
        let max = self.sessions.inner.store.options().max_session_bytes;
        if v.as_str().len() > max {
            return Err(Error::TooLarge(format!(
                "value of {} bytes for key {key:?} exceeds max_session_bytes={max}",
                v.as_str().len()
            )));
        }
        Ok(())
    }

    /// Sets `key` to `value` (serialized as JSON), replacing what was there.
    pub fn set<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<()> {
        self.set_raw_json(key, RawJson::from_serialize(value)?)
    }

    /// Sets `key` to the JSON text `json`, which is validated.
    pub fn set_json(&mut self, key: &str, json: &str) -> Result<()> {
        self.set_raw_json(key, RawJson::parse(json)?)
    }

    fn set_raw_json(&mut self, key: &str, v: RawJson) -> Result<()> {
        self.check_value(key, &v)?;
        self.changes.insert(key.to_string(), Change::Set(v));
        Ok(())
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Result<()> {
        check_key(key)?;
        self.changes.insert(key.to_string(), Change::Remove);
        Ok(())
    }

    /// Adds `by` to the integer at `key` (absent counts as 0). The store applies it as an
    /// atomic increment at commit, so concurrent increments all count. Returns the value
    /// as this request sees it (exact when the session is locked).
    pub fn incr(&mut self, key: &str, by: i64) -> Result<i64> {
        check_key(key)?;
        let cur = match self.get(key) {
            None => 0,
            Some(v) => v.as_i64().ok_or_else(|| {
                Error::NotANumber(format!("key {key:?} does not hold an integer"))
            })?,
        };
        let next = cur
            .checked_add(by)
            .ok_or_else(|| Error::NotANumber(format!("incrementing key {key:?} overflows i64")))?;
        let now = RawJson::from_i64(next);
        let change = match self.changes.get(key) {
            Some(Change::Incr(s, _)) => Change::Incr(s.saturating_add(by), now),
            Some(Change::Set(_) | Change::Remove) => Change::Set(now),
            None => Change::Incr(by, now),
        };
        self.changes.insert(key.to_string(), change);
        Ok(next)
    }

    /// Sets or clears the session's owner (e.g. the user id at login).
    pub fn set_owner(&mut self, owner: Option<&str>) -> Result<()> {
        if let Some(o) = owner {
            crate::backend::memory::check_owner(o)?;
        }
        self.owner = Some(owner.map(Arc::from));
        Ok(())
    }

    /// Gives the session a fresh id now (e.g. at login, against fixation). The data, owner
    /// and lock move with it; the old id keeps answering reads for the store's grace
    /// period. `commit` sends the new cookie.
    pub fn rotate(&mut self) -> Result<()> {
        if self.base.is_none() {
            self.id = SessionId::generate();
            return Ok(());
        }
        let store = &self.sessions.inner.store;
        for _ in 0..MAX_HOPS {
            match store.rotate(&self.id, self.token) {
                Ok(to) => {
                    self.id = to;
                    self.cookie_needed = true;
                    return Ok(());
                }
                Err(Error::Rotated { to }) => self.id = to,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Backend("too many rotations in a row".into()))
    }

    /// Marks the session for destruction at `commit` (logout); `commit` then returns a
    /// removal cookie. Later writes for this id, even from requests in flight, are refused.
    pub fn destroy(&mut self) {
        self.destroy = true;
    }

    fn ops(&self) -> Vec<PatchOp> {
        let mut ops: Vec<PatchOp> = self
            .changes
            .iter()
            .map(|(k, c)| match c {
                Change::Set(v) => PatchOp::Set(k.clone(), v.clone()),
                Change::Remove => PatchOp::Remove(k.clone()),
                Change::Incr(by, _) => PatchOp::Incr(k.clone(), *by),
            })
            .collect();
        if let Some(o) = &self.owner {
            ops.push(PatchOp::SetOwner(o.clone()));
        }
        ops
    }

    /// Ends the request: writes what changed as one atomic patch (or destroys), releases
    /// the lock, and says which `Set-Cookie` to send. Consumes the session.
    ///
    /// Errors: `StaleToken` when the lock's lease ran out and another request took it (this
    /// request's changes are refused, nothing is written); `Destroyed` when the session was
    /// destroyed meanwhile; `NotFound` when it expired meanwhile.
    pub fn commit(mut self) -> Result<Committed> {
        self.finished = true;
        // One clone of the shared part (one atomic increment) lends the store and the
        // settings to the helpers below, which also need `self` mutably.
        let sessions = self.sessions.clone();
        let store = &sessions.inner.store;
        let cookie = &sessions.inner.opts.cookie;
        if self.destroy {
            if self.base.is_some() {
                store.destroy(&self.id)?;
            }
            return Ok(Committed {
                set_cookie: (self.had_cookie || self.base.is_some())
                    .then(|| cookie.removal_cookie()),
                id: self.id,
                version: None,
            });
        }
        let mut version = None;
        let is_new = self.base.is_none();
        if !self.changes.is_empty() || self.owner.is_some() {
            version = Some(self.write(store, is_new)?);
        } else if let Some(t) = self.token {
            self.unlock_following(store, t)?;
        }
        let saved_new = is_new && version.is_some();
        Ok(Committed {
            set_cookie: (self.cookie_needed || saved_new)
                .then(|| cookie.set_cookie(&self.id, store.now_ms())),
            id: self.id,
            version,
        })
    }

    fn write(&mut self, store: &Store, create: bool) -> Result<u64> {
        let mut opts = WriteOpts {
            token: self.token,
            release: self.token.is_some(),
            create,
            expected_version: None,
        };
        // A lock this commit had to take because another request held it.
        let mut taken: Option<u64> = None;
        let mut result = Err(Error::Backend("too many rotations in a row".into()));
        for _ in 0..MAX_HOPS {
            match store.apply(&self.id, self.ops(), opts) {
                Err(Error::Rotated { to }) => {
                    self.id = to;
                    self.cookie_needed = true;
                }
                Err(Error::Locked) if opts.token.is_none() => {
                    // Another request holds the lock: wait for our turn, as it would.
                    let lease = self.sessions.inner.opts.lock_lease;
                    let wait = self.sessions.inner.opts.lock_wait;
                    let (t, _) = store.lock(&self.id, lease, wait)?;
                    taken = Some(t);
                    opts.token = Some(t);
                    opts.release = true;
                }
                other => {
                    result = other.map(|p| p.version);
                    break;
                }
            }
        }
        if result.is_err() {
            if let Some(t) = taken {
                let _ = store.unlock(&self.id, t);
            }
        }
        result
    }

    fn unlock_following(&mut self, store: &Store, token: u64) -> Result<()> {
        for _ in 0..MAX_HOPS {
            match store.unlock(&self.id, token) {
                Err(Error::Rotated { to }) => {
                    self.id = to;
                    self.cookie_needed = true;
                }
                other => return other,
            }
        }
        Ok(())
    }

    /// Ends the request without writing; releases the lock. Consumes the session.
    pub fn abort(mut self) -> Result<()> {
        self.finished = true;
        match self.token {
            Some(t) => {
                let store = self.sessions.inner.store.clone();
                self.unlock_following(&store, t)
            }
            None => Ok(()),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(t) = self.token {
                let store = self.sessions.inner.store.clone();
                let _ = self.unlock_following(&store, t);
            }
        }
    }
}
