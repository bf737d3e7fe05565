//! [`Store`]: the contract every backend honours, opened from a URL.

use std::{sync::Arc, time::Duration};

use serde_json::Value;

use crate::{
    backend::{Backend, Stats, memory::Memory},
    clock::{Clock, SystemClock},
    command::{Command, PatchOp, Patched, Reply, Touched, WriteOpts, check_count, check_ttl},
    config::{StoreOptions, Target, parse_url},
    error::{Error, Result},
    session::{Record, SessionData, SessionId},
};

/// A session store. Cheap to clone (an `Arc`), safe to share between threads.
///
/// ```
/// use sessync::{Store, SessionData, SessionId, WriteOpts};
/// let store = Store::open("mem://?ttl=30m").unwrap();
/// let id = SessionId::generate();
/// store.write(&id, SessionData::from_json(r#"{"n":1}"#).unwrap(), WriteOpts::default()).unwrap();
/// assert_eq!(store.incr(&id, "n", 2, WriteOpts::default()).unwrap(), 3);
/// let rec = store.fetch(&id).unwrap().unwrap();
/// assert_eq!(rec.version, 2);
/// ```
#[derive(Clone)]
pub struct Store {
    /// One `Arc` for everything, so a clone is one atomic increment.
    inner: Arc<StoreInner>,
}

struct StoreInner {
    backend: Box<dyn Backend>,
    options: StoreOptions,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("options", &self.inner.options)
            .finish()
    }
}

/// Most times one operation follows a rotated id to its successor: each hop is a
/// rotation within the previous one's grace period.
pub const MAX_HOPS: usize = 8;

/// Longest lock lease accepted: one day.
pub const MAX_LEASE: Duration = Duration::from_secs(86_400);
/// Longest lock wait accepted: one hour.
pub const MAX_WAIT: Duration = Duration::from_secs(3_600);
/// Longest idle TTL a session may have of its own: one year
/// ([`MAX_SESSION_TTL_MS`](crate::command::MAX_SESSION_TTL_MS)).
pub const MAX_SESSION_TTL: Duration = Duration::from_millis(crate::command::MAX_SESSION_TTL_MS);

impl Store {
    /// Opens a store from a URL such as `mem://?ttl=30m&max_sessions=100000`.
    pub fn open(url: &str) -> Result<Store> {
        Store::open_with_clock(url, Arc::new(SystemClock))
    }

    /// Opens a store whose expiry decisions read `clock` (tests use a `ManualClock`).
    pub fn open_with_clock(url: &str, clock: Arc<dyn Clock>) -> Result<Store> {
        let (target, options) = parse_url(url)?;
        match target {
            Target::Memory => Store::memory(options, clock),
            #[cfg(feature = "client")]
            Target::Remote(r) => Ok(Store {
                inner: Arc::new(StoreInner {
                    backend: Box::new(crate::backend::remote::Remote::new(r)?),
                    options,
                    clock,
                }),
            }),
            #[cfg(feature = "redis")]
            Target::Redis(r) => Ok(Store {
                inner: Arc::new(StoreInner {
                    backend: Box::new(crate::backend::redis::Redis::new(
                        r,
                        options.clone(),
                        clock.clone(),
                    )?),
                    options,
                    clock,
                }),
            }),
        }
    }

    /// Opens an in-process store with these options.
    pub fn memory(options: StoreOptions, clock: Arc<dyn Clock>) -> Result<Store> {
        let backend = Memory::new(options.clone(), clock.clone())?;
        Ok(Store {
            inner: Arc::new(StoreInner {
                backend: Box::new(backend),
                options,
                clock,
            }),
        })
    }

    /// Opens an in-process store that keeps its sessions in a directory across
    /// restarts (what sessyncd does with `--dir`): see [`Persistence`].
    ///
    /// [`Persistence`]: crate::backend::memory::Persistence
    pub fn memory_persistent(
        options: StoreOptions,
        clock: Arc<dyn Clock>,
        persistence: &crate::backend::memory::Persistence,
    ) -> Result<Store> {
        let backend = Memory::open_persistent(options.clone(), clock.clone(), persistence)?;
        Ok(Store {
            inner: Arc::new(StoreInner {
                backend: Box::new(backend),
                options,
                clock,
            }),
        })
    }

    /// Writes a snapshot of a persistent store now and drops the log it covers; an
    /// error on a store without persistence.
    pub fn compact(&self) -> Result<()> {
        self.inner.backend.compact()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// The store's clock, in ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// Applies one command. Every other method is a typed wrapper of this one.
    ///
    /// A read (`Fetch`) or a `Destroy` of a rotated-away id in its grace period follows
    /// it to its successor, here and only here: backends answer such an id with
    /// `Error::Rotated` and never follow it themselves.
    pub fn execute(&self, cmd: Command) -> Result<Reply> {
        let backend = &self.inner.backend;
        match cmd {
            Command::Fetch { id, touch } => {
                self.follow(id, |id| backend.execute(Command::Fetch { id, touch }))
            }
            Command::Destroy { id } => {
                self.follow(id, |id| backend.execute(Command::Destroy { id }))
            }
            cmd => backend.execute(cmd),
        }
    }

    /// Runs `op` on `id`, then on the successor each time it answers that the id was
    /// rotated (a chain when a session is rotated again within the grace period), at
    /// most [`MAX_HOPS`] times. Every place that follows a rotation goes through here.
    pub(crate) fn follow<T>(
        &self,
        id: SessionId,
        mut op: impl FnMut(SessionId) -> Result<T>,
    ) -> Result<T> {
        let mut id = id;
        self.follow_mut(&mut id, |id| op(*id))
    }

    /// [`Store::follow`], leaving `id` at the id that answered (the flow of a request
    /// keeps following the session it began).
    pub(crate) fn follow_mut<T>(
        &self,
        id: &mut SessionId,
        mut op: impl FnMut(&SessionId) -> Result<T>,
    ) -> Result<T> {
        for _ in 0..MAX_HOPS {
            match op(id) {
                Err(Error::Rotated { to }) => *id = to,
                other => return other,
            }
        }
        Err(Error::Backend(format!(
            "more than {MAX_HOPS} rotations in a row"
        )))
    }

    /// Whether [`Store::lock_async`] waits without blocking a thread (the in-process
    /// store). With other backends it blocks the thread that polls it, so async callers
    /// run it on a thread of their own (`spawn_blocking`).
    pub fn waits_without_thread(&self) -> bool {
        self.inner.backend.waits_without_thread()
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        self.inner.backend.stats()
    }

    /// The session, or `None` if it does not exist or has expired. A rotated-away id in
    /// its grace period answers with the successor's record (whose `id` is the new one).
    pub fn fetch(&self, id: &SessionId) -> Result<Option<Record>> {
        match self.execute(Command::Fetch {
            id: *id,
            touch: false,
        })? {
            Reply::Record { record, .. } => Ok(record),
            other => Err(unexpected(other)),
        }
    }

    /// Fetches and records the access (see [`Store::touch`]); also says whether the
    /// access was written.
    pub fn fetch_touch(&self, id: &SessionId) -> Result<(Option<Record>, bool)> {
        match self.execute(Command::Fetch {
            id: *id,
            touch: true,
        })? {
            Reply::Record { record, touched } => Ok((record, touched)),
            other => Err(unexpected(other)),
        }
    }

    /// Replaces the session's data (creating the session if it does not exist); returns
    /// the new version. With `opts.expected_version`, a compare-and-swap.
    pub fn write(&self, id: &SessionId, data: SessionData, opts: WriteOpts) -> Result<u64> {
        self.write_ttl(id, data, opts, None)
    }

    /// [`Store::write`] that also gives the session its own idle TTL (express-session's
    /// `cookie.maxAge`, Django's `set_expiry`): from now on every write, patch and touch
    /// of it extends its expiry by `ttl` instead of the store's `ttl` (still capped by
    /// `absolute_ttl`), and touches are written after `touch_fraction × ttl`. Writes and
    /// patches without a TTL keep the session's own. `ttl` must be 1 ms to
    /// [`MAX_SESSION_TTL`], else `InvalidArgument` and nothing changes.
    pub fn write_with_ttl(
        &self,
        id: &SessionId,
        data: SessionData,
        opts: WriteOpts,
        ttl: Duration,
    ) -> Result<u64> {
        self.write_ttl(id, data, opts, Some(ttl_ms(ttl)?))
    }

    fn write_ttl(
        &self,
        id: &SessionId,
        data: SessionData,
        opts: WriteOpts,
        ttl_ms: Option<u64>,
    ) -> Result<u64> {
        match self.execute(Command::Write {
            id: *id,
            data: Arc::new(data),
            opts,
            ttl_ms,
        })? {
            Reply::Version(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// Applies an RFC 7396 JSON Merge Patch given as text; returns the new version. The
    /// patch must be a JSON object (the session stays an object).
    pub fn patch(&self, id: &SessionId, merge_patch: &str, opts: WriteOpts) -> Result<u64> {
        let v: Value =
            serde_json::from_str(merge_patch).map_err(|e| Error::InvalidJson(e.to_string()))?;
        self.patch_value(id, v, opts)
    }

    /// Applies an RFC 7396 JSON Merge Patch; returns the new version.
    pub fn patch_value(&self, id: &SessionId, merge_patch: Value, opts: WriteOpts) -> Result<u64> {
        let Value::Object(m) = merge_patch else {
            return Err(Error::InvalidJson(
                "a merge patch of a session must be a JSON object".into(),
            ));
        };
        Ok(self.apply(id, vec![PatchOp::Merge(m)], opts)?.version)
    }

    /// Applies `ops` atomically: all of them, or none on any error.
    pub fn apply(&self, id: &SessionId, ops: Vec<PatchOp>, opts: WriteOpts) -> Result<Patched> {
        self.apply_ttl(id, ops, opts, None)
    }

    /// [`Store::apply`] that also sets the session's own idle TTL, in the same atomic step
    /// (see [`Store::write_with_ttl`]); with `opts.create`, a new session starts with it.
    /// An increment with a TTL is `apply_with_ttl(id, vec![PatchOp::Incr(..)], ..)`.
    pub fn apply_with_ttl(
        &self,
        id: &SessionId,
        ops: Vec<PatchOp>,
        opts: WriteOpts,
        ttl: Duration,
    ) -> Result<Patched> {
        self.apply_ttl(id, ops, opts, Some(ttl_ms(ttl)?))
    }

    pub(crate) fn apply_ttl(
        &self,
        id: &SessionId,
        ops: Vec<PatchOp>,
        opts: WriteOpts,
        ttl_ms: Option<u64>,
    ) -> Result<Patched> {
        match self.execute(Command::Patch {
            id: *id,
            ops,
            opts,
            ttl_ms,
        })? {
            Reply::Patched(p) => Ok(p),
            other => Err(unexpected(other)),
        }
    }

    /// Adds `by` to the integer at `key` (absent counts as 0), atomically; returns the sum.
    pub fn incr(&self, id: &SessionId, key: &str, by: i64, opts: WriteOpts) -> Result<i64> {
        let p = self.apply(id, vec![PatchOp::Incr(key.to_string(), by)], opts)?;
        p.values
            .first()
            .copied()
            .ok_or_else(|| Error::Backend("increment returned no value".into()))
    }

    /// Sets or clears the session's owner (e.g. a user id); returns the new version.
    pub fn set_owner(&self, id: &SessionId, owner: Option<&str>, opts: WriteOpts) -> Result<u64> {
        Ok(self
            .apply(id, vec![PatchOp::SetOwner(owner.map(Arc::from))], opts)?
            .version)
    }

    /// Takes the session's lock for `lease`, waiting up to `wait` behind earlier callers.
    /// Returns the fencing token (greater than every earlier one of this session) and the
    /// record as seen under the lock.
    pub fn lock(&self, id: &SessionId, lease: Duration, wait: Duration) -> Result<(u64, Record)> {
        check_lock_args(lease, wait)?;
        match self.execute(Command::Lock {
            id: *id,
            lease_ms: lease.as_millis().max(1) as u64,
            wait_ms: wait.as_millis() as u64,
        })? {
            Reply::Locked { token, record } => Ok((token, record)),
            other => Err(unexpected(other)),
        }
    }

    /// [`Store::lock`] for async code: on the in-process store, waits without blocking a
    /// thread, on any executor (the store wakes the task when the lock is handed over or
    /// the wait ends; no runtime timer is needed). Dropping the future gives up the wait
    /// (and gives back a lock granted meanwhile).
    pub async fn lock_async(
        &self,
        id: &SessionId,
        lease: Duration,
        wait: Duration,
    ) -> Result<(u64, Record)> {
        check_lock_args(lease, wait)?;
        match self
            .inner
            .backend
            .lock_async(
                *id,
                lease.as_millis().max(1) as u64,
                wait.as_millis() as u64,
            )
            .await?
        {
            Reply::Locked { token, record } => Ok((token, record)),
            other => Err(unexpected(other)),
        }
    }

    /// Releases the lock held with `token`.
    pub fn unlock(&self, id: &SessionId, token: u64) -> Result<()> {
        match self.execute(Command::Unlock { id: *id, token })? {
            Reply::Unlocked => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Records an access, extending the idle expiry (capped by the absolute one). Writes
    /// only when the last recorded access is older than `touch_fraction × ttl` (the
    /// session's own TTL when it has one).
    pub fn touch(&self, id: &SessionId) -> Result<Touched> {
        self.touch_ttl(id, None)
    }

    /// Gives the session its own idle TTL (see [`Store::write_with_ttl`]) and records an
    /// access now: always written, the expiry becomes now + `ttl` (capped by the absolute
    /// TTL). The data and version do not change. A bad `ttl` is `InvalidArgument`.
    pub fn touch_with_ttl(&self, id: &SessionId, ttl: Duration) -> Result<Touched> {
        self.touch_ttl(id, Some(ttl_ms(ttl)?))
    }

    fn touch_ttl(&self, id: &SessionId, ttl_ms: Option<u64>) -> Result<Touched> {
        match self.execute(Command::Touch { id: *id, ttl_ms })? {
            Reply::Touched(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes the session and leaves a tombstone: writes for this id are refused with
    /// `Destroyed` for `tombstone_ttl`. Returns whether a live session was there.
    pub fn destroy(&self, id: &SessionId) -> Result<bool> {
        match self.execute(Command::Destroy { id: *id })? {
            Reply::Destroyed(b) => Ok(b),
            other => Err(unexpected(other)),
        }
    }

    /// Moves the session to a fresh id carrying the same data, owner and lock. The old id
    /// answers reads for `rotate_grace`, refuses writes with `Rotated`, and is then gone.
    pub fn rotate(&self, id: &SessionId, token: Option<u64>) -> Result<SessionId> {
        match self.execute(Command::Rotate { id: *id, token })? {
            Reply::Rotated(to) => Ok(to),
            other => Err(unexpected(other)),
        }
    }

    /// The live sessions of `owner`, sorted by id.
    pub fn sessions_of(&self, owner: &str) -> Result<Vec<SessionId>> {
        match self.execute(Command::Owned {
            owner: Arc::from(owner),
        })? {
            Reply::Sessions(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }

    /// Destroys every session of `owner` ("log out everywhere"); returns how many.
    pub fn destroy_all(&self, owner: &str) -> Result<usize> {
        match self.execute(Command::DestroyOwned {
            owner: Arc::from(owner),
        })? {
            Reply::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }

    /// One page of the live sessions' ids (not expired, not destroyed, not an id rotated
    /// away), like Redis's `SCAN`: start with `cursor` 0 and call again with the returned
    /// cursor until it is 0. Every session alive for the whole scan is listed at least
    /// once; a session created, destroyed or expiring during the scan may or may not be,
    /// and on Redis an id may come twice. `count` (at least 1) is a hint of the page size:
    /// a page may hold fewer ids, even none, before the scan is done, or more.
    ///
    /// ```
    /// # use sessync::{Store, SessionData, SessionId, WriteOpts};
    /// let store = Store::open("mem://").unwrap();
    /// let id = SessionId::generate();
    /// store.write(&id, SessionData::new(), WriteOpts::default()).unwrap();
    /// let (mut all, mut cursor) = (Vec::new(), 0);
    /// loop {
    ///     let (ids, next) = store.list(cursor, 100).unwrap();
    ///     all.extend(ids);
    ///     if next == 0 { break; }
    ///     cursor = next;
    /// }
    /// assert_eq!(all, vec![id]);
    /// ```
    pub fn list(&self, cursor: u64, count: usize) -> Result<(Vec<SessionId>, u64)> {
        check_count(count)?;
        match self.execute(Command::List { cursor, count })? {
            Reply::Page { ids, next } => Ok((ids, next)),
            other => Err(unexpected(other)),
        }
    }

    /// Destroys every session, as [`Store::destroy`] does each (tombstones refuse late
    /// writes with `Destroyed`); returns how many live sessions there were. Not one atomic
    /// step across sessions: a session created while it runs may survive it.
    pub fn clear(&self) -> Result<usize> {
        match self.execute(Command::Clear)? {
            Reply::Count(n) => Ok(n),
            other => Err(unexpected(other)),
        }
    }
}

/// A session TTL in ms, checked.
pub(crate) fn ttl_ms(ttl: Duration) -> Result<u64> {
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    // Under a millisecond rounds down to 0, which is refused.
    check_ttl(Some(ms))?;
    Ok(ms)
}

/// Checks a lock's lease and wait against their limits.
pub(crate) fn check_lock_args(lease: Duration, wait: Duration) -> Result<()> {
    if lease.is_zero() || lease > MAX_LEASE {
        return Err(Error::invalid(format!(
            "lock lease must be between 1 ms and {} s",
            MAX_LEASE.as_secs()
        )));
    }
    if wait > MAX_WAIT {
        return Err(Error::invalid(format!(
            "lock wait must be at most {} s",
            MAX_WAIT.as_secs()
        )));
    }
    Ok(())
}

fn unexpected(r: Reply) -> Error {
    Error::Backend(format!("unexpected reply from the backend: {r:?}"))
}
