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
    /// The flow manages the cookie (false for sessions begun by id: the framework does).
    own_cookie: bool,
    /// The session's own idle TTL in ms, set by this request (applied at commit).
    ttl_ms: Option<u64>,
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
        self.begin_with(cookie_header, lock, self.inner.opts.lock_wait)
    }

    /// [`Sessions::begin`] waiting up to `wait` for the lock instead of the flow's
    /// `lock_wait`.
    pub fn begin_with(
        &self,
        cookie_header: Option<&str>,
        lock: bool,
        wait: Duration,
    ) -> Result<Session> {
        check_wait(wait)?;
        let (had_cookie, candidates) = self.candidates(cookie_header);
        let mut found = None;
        for cand in candidates {
            let before = self.inner.store.now_ms();
            if let Some(f) = self.find(cand, lock, wait, before)? {
                found = Some(f);
                break;
            }
        }
        Ok(self.assemble(found, had_cookie, None))
    }

    /// [`Sessions::begin_with`] for async code: a lock wait parks no thread when the
    /// store's backend waits without one ([`Store::waits_without_thread`]; otherwise it
    /// blocks the polling thread, as [`Store::lock_async`] does). Dropping the future gives
    /// up the wait.
    pub async fn begin_async(
        &self,
        cookie_header: Option<&str>,
        lock: bool,
        wait: Duration,
    ) -> Result<Session> {
        check_wait(wait)?;
        let (had_cookie, candidates) = self.candidates(cookie_header);
        let mut found = None;
        for cand in candidates {
            let before = self.inner.store.now_ms();
            if let Some(f) = self.find_async(cand, lock, wait, before).await? {
                found = Some(f);
                break;
            }
        }
        Ok(self.assemble(found, had_cookie, None))
    }

    /// Starts a request on a session the caller names itself, for frameworks that issue
    /// and check their own session cookies (express-session's store, Django's engine,
    /// PHP's save handler). No cookie is read and `commit` never asks for one to be sent.
    ///
    /// The caller vouches for `id`: when it names no live session, the request begins a
    /// new session under that very id (stored at `commit` if anything was set). With
    /// `lock`, waits up to `wait` for the session's lock; a new session has no lock to
    /// take.
    pub fn begin_id(&self, id: SessionId, lock: bool, wait: Duration) -> Result<Session> {
        check_wait(wait)?;
        let before = self.inner.store.now_ms();
        let found = self.find(id, lock, wait, before)?;
        Ok(self.assemble(found, false, Some(id)))
    }

    /// [`Sessions::begin_id`] for async code (see [`Sessions::begin_async`]).
    pub async fn begin_id_async(
        &self,
        id: SessionId,
        lock: bool,
        wait: Duration,
    ) -> Result<Session> {
        check_wait(wait)?;
        let before = self.inner.store.now_ms();
        let found = self.find_async(id, lock, wait, before).await?;
        Ok(self.assemble(found, false, Some(id)))
    }

    /// Whether the header carries our cookie, and the ids its values name, in order.
    fn candidates(&self, header: Option<&str>) -> (bool, Vec<SessionId>) {
        let cookie = &self.inner.opts.cookie;
        let mut had_cookie = false;
        let mut ids = Vec::new();
        for value in cookie_values(header.unwrap_or(""), &cookie.name) {
            had_cookie = true;
            if let Some(id) = cookie.decode_value(value) {
                ids.push(id);
            }
        }
        (had_cookie, ids)
    }

    /// The live session `cand` (locked when `lock`), or `None`.
    ///
    /// An id that was rotated away counts as absent here, although the store still
    /// answers reads for it during `rotate_grace`: handing its successor to a new request
    /// would hand a login's fresh id to whoever knew the old one (session fixation).
    /// Requests already in flight when the id was rotated follow it at commit.
    fn find(&self, cand: SessionId, lock: bool, wait: Duration, before: u64) -> Result<Found> {
        if lock {
            let lease = self.inner.opts.lock_lease;
            return match self.inner.store.lock(&cand, lease, wait) {
                Ok((token, rec)) => Ok(Some(found_locked(rec, token, cand, before))),
                Err(Error::NotFound | Error::Destroyed | Error::Rotated { .. }) => Ok(None),
                Err(e) => Err(e),
            };
        }
        Ok(match self.inner.store.fetch_touch(&cand)? {
            (Some(rec), touched) if rec.id == cand => Some((rec, None, touched, cand)),
            _ => None,
        })
    }

    async fn find_async(
        &self,
        cand: SessionId,
        lock: bool,
        wait: Duration,
        before: u64,
    ) -> Result<Found> {
        if !lock {
            return self.find(cand, false, wait, before);
        }
        let lease = self.inner.opts.lock_lease;
        match self.inner.store.lock_async(&cand, lease, wait).await {
            Ok((token, rec)) => Ok(Some(found_locked(rec, token, cand, before))),
            Err(Error::NotFound | Error::Destroyed | Error::Rotated { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn assemble(&self, found: Found, had_cookie: bool, named: Option<SessionId>) -> Session {
        let cookie = &self.inner.opts.cookie;
        let (id, base, token, cookie_needed) = match found {
            Some((rec, token, touched, _)) => {
                // A rolling cookie is sent again when the access was recorded.
                let needed = touched && cookie.max_age.is_some();
                (rec.id, Some(rec), token, needed)
            }
            None => (named.unwrap_or_else(SessionId::generate), None, None, false),
        };
        Session {
            sessions: self.clone(),
            id,
            base,
            changes: BTreeMap::new(),
            owner: None,
            token,
            had_cookie,
            cookie_needed,
            own_cookie: named.is_none(),
            ttl_ms: None,
            destroy: false,
            finished: false,
        }
    }
}

/// The one key of an object that holds bytes that are not UTF-8.
const BYTES_KEY: &str = "$base64";

fn bytes_of(v: &serde_json::Value) -> Option<Vec<u8>> {
    use base64::Engine as _;
    match v {
        serde_json::Value::String(s) => Some(s.as_bytes().to_vec()),
        serde_json::Value::Object(m) if m.len() == 1 => {
            let b64 = m.get(BYTES_KEY)?.as_str()?;
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        }
        _ => None,
    }
}

/// What `begin` found: (record, token, touched, the id the cookie named).
type Found = Option<(Record, Option<u64>, bool, SessionId)>;

fn found_locked(
    rec: Record,
    token: u64,
    cand: SessionId,
    before: u64,
) -> (Record, Option<u64>, bool, SessionId) {
    let touched = rec.last_access >= before;
    (rec, Some(token), touched, cand)
}

fn check_wait(wait: Duration) -> Result<()> {
    if wait > MAX_WAIT {
        return Err(Error::invalid(format!(
            "lock wait must be at most {} s",
            MAX_WAIT.as_secs()
        )));
    }
    Ok(())
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

    /// True when the request changed something that `commit` would write (a key, the
    /// owner, the TTL) or destroy.
    pub fn is_changed(&self) -> bool {
        !self.changes.is_empty() || self.owner.is_some() || self.ttl_ms.is_some() || self.destroy
    }

    /// Gives the session its own idle TTL from `commit` on (express-session's
    /// `cookie.maxAge`, Django's `set_expiry`): see [`Store::write_with_ttl`]. Applied in
    /// the same atomic step as the request's changes; without changes, commit touches the
    /// session with it. A new session with nothing set is still not stored. `ttl` must be
    /// 1 ms to [`crate::store::MAX_SESSION_TTL`], else `InvalidArgument` and nothing
    /// changes.
    pub fn set_ttl(&mut self, ttl: Duration) -> Result<()> {
        self.ttl_ms = Some(crate::store::ttl_ms(ttl)?);
        Ok(())
    }

    /// The bytes at `key`, as [`Session::set_bytes`] stored them: a JSON string gives its
    /// UTF-8 bytes, `{"$base64": "…"}` its decoded bytes; any other value is
    /// `InvalidJson`.
    pub fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        bytes_of(&v.to_value()).map(Some).ok_or_else(|| {
            Error::InvalidJson(format!(
                "key {key:?} holds neither a string nor {{\"$base64\": ...}}"
            ))
        })
    }

    /// Sets `key` to opaque bytes (a serialized session of another framework, a gob): kept
    /// as a JSON string when they are UTF-8, else as `{"$base64": "…"}` (standard
    /// alphabet, padded), so the session stays JSON that every binding reads.
    pub fn set_bytes(&mut self, key: &str, bytes: &[u8]) -> Result<()> {
        let v = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::Value::String(text.to_string()),
            Err(_) => {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                serde_json::json!({ BYTES_KEY: b64 })
            }
        };
        self.set_raw_json(key, RawJson::from_value(&v))
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
            crate::session::check_owner(o)?;
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
        let token = self.token;
        let to = store.follow_mut(&mut self.id, |id| store.rotate(id, token))?;
        self.id = to;
        self.cookie_needed = true;
        Ok(())
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
    /// destroyed meanwhile; `NotFound` when it expired meanwhile. On any error nothing was
    /// written and the lock, if the session held it, is released.
    pub fn commit(mut self) -> Result<Committed> {
        // `finished` is set only once the commit succeeded: on any error, dropping the
        // session releases its lock (a failed write released nothing).
        // One clone of the shared part (one atomic increment) lends the store and the
        // settings to the helpers below, which also need `self` mutably.
        let sessions = self.sessions.clone();
        let store = &sessions.inner.store;
        let cookie = &sessions.inner.opts.cookie;
        if self.destroy {
            if self.base.is_some() {
                store.destroy(&self.id)?;
            }
            self.finished = true;
            return Ok(Committed {
                set_cookie: (self.own_cookie && (self.had_cookie || self.base.is_some()))
                    .then(|| cookie.removal_cookie()),
                id: self.id,
                version: None,
            });
        }
        let mut version = None;
        let is_new = self.base.is_none();
        if !self.changes.is_empty() || self.owner.is_some() {
            version = Some(self.write(store, is_new)?);
        } else {
            if let (Some(ttl), false) = (self.ttl_ms, is_new) {
                self.touch_following(store, ttl)?;
            }
            if let Some(t) = self.token {
                self.unlock_following(store, t)?;
            }
        }
        self.finished = true;
        let saved_new = is_new && version.is_some();
        Ok(Committed {
            set_cookie: (self.own_cookie && (self.cookie_needed || saved_new))
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
        let ops = self.ops();
        let (ttl_ms, new) = (self.ttl_ms, self.base.is_none());
        let (lease, wait) = (
            self.sessions.inner.opts.lock_lease,
            self.sessions.inner.opts.lock_wait,
        );
        // In flight when another request rotated the id: follow the data, but never hand
        // the new id out in this response (the request that rotated sends it).
        let result = store.follow_mut(&mut self.id, |id| {
            let mut r = store.apply_ttl(id, ops.clone(), opts, ttl_ms);
            if matches!(r, Err(Error::Locked)) && opts.token.is_none() {
                // Another request holds the lock: wait for our turn, as it would. A new
                // session named by the caller never follows a rotation it waited through.
                let (t, _) = match store.lock(id, lease, wait) {
                    Err(Error::Rotated { .. }) if new => return Err(rotated_away()),
                    r => r?,
                };
                taken = Some(t);
                opts.token = Some(t);
                opts.release = true;
                r = store.apply_ttl(id, ops.clone(), opts, ttl_ms);
            }
            match r {
                // A new session named by the caller, on an id rotated away: never write
                // into the successor of an id this request did not find live.
                Err(Error::Rotated { .. }) if new => Err(rotated_away()),
                r => r.map(|p| p.version),
            }
        });
        if result.is_err() {
            if let Some(t) = taken {
                let _ = store.unlock(&self.id, t);
            }
        }
        result
    }

    fn touch_following(&mut self, store: &Store, ttl_ms: u64) -> Result<()> {
        let ttl = Duration::from_millis(ttl_ms);
        store
            .follow_mut(&mut self.id, |id| store.touch_with_ttl(id, ttl))
            .map(|_| ())
    }

    fn unlock_following(&mut self, store: &Store, token: u64) -> Result<()> {
        store.follow_mut(&mut self.id, |id| store.unlock(id, token))
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

/// A new session named by the caller, on an id rotated away: never written into the
/// successor of an id the request did not find live (that would fix the visitor's data
/// into someone's logged-in session).
fn rotated_away() -> Error {
    Error::invalid("the session id was rotated away; it cannot start a new session")
}
