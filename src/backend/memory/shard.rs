//! One shard of the in-process store: the state machine that owns its sessions.
//!
//! Everything here runs under the shard's mutex, so every command is atomic. Commands
//! that touch one id are applied here whole; the few that span shards (rotation, the
//! owner index, eviction) are composed by the parent module from the primitives below.

use std::{
    cmp::Reverse,
    collections::{BTreeSet, BinaryHeap, HashMap, VecDeque},
    num::NonZeroU64,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use parking_lot::Mutex;

use super::persist::{Saved, State};
use crate::{
    clock::Parker,
    command::{PatchOp, Patched, Reply, Touched, WriteOpts},
    config::{Eviction, SESSION_OVERHEAD, StoreOptions},
    error::{Error, Result},
    session::{IdHash, Record, SessionData, SessionId, check_key, check_owner},
};

/// Timers that only reclaim memory fire on this grid, so one actor pass handles many.
/// Correctness never waits for them: every access checks the deadline itself.
const SWEEP_GRID_MS: u64 = 1000;

/// How far a session's fencing counter jumps at a restore. Under `everysec` or `no` the
/// log may lack the last grants before a crash; their holders got tokens the restored
/// counter has not reached. No session is granted its lock a million times in the second
/// such a policy can lose, so after the jump every new token exceeds every token issued
/// before the crash, and a holder from before it is stale once its lease is taken over.
pub(super) const FENCE_GAP: u64 = 1 << 20;

/// Per-operation context: the time, the limits, and the way to the actor.
pub(super) struct Ctx<'a> {
    pub now: u64,
    pub opts: &'a StoreOptions,
    pub touch_interval: u64,
    pub live: &'a AtomicUsize,
    /// What the sessions count for `max_memory` (see `cost`).
    pub bytes: &'a AtomicU64,
    pub wake: &'a Wake,
}

impl Ctx<'_> {
    fn ms(d: std::time::Duration) -> u64 {
        d.as_millis() as u64
    }
    /// The expiry of an access now: `now + ttl` (the session's own, else the store's),
    /// capped by `created + absolute_ttl`.
    fn expiry(&self, created: u64, own_ttl: Option<u64>) -> u64 {
        let ttl = own_ttl.unwrap_or_else(|| Self::ms(self.opts.ttl));
        let idle = self.now.saturating_add(ttl);
        idle.min(created.saturating_add(Self::ms(self.opts.absolute_ttl)))
    }
    /// The touch interval of a session with this own TTL.
    fn interval(&self, own_ttl: Option<u64>) -> u64 {
        match own_ttl {
            Some(t) => self.opts.touch_interval_for(t),
            None => self.touch_interval,
        }
    }
}

/// How shards reach the actor: the time of its next planned wake-up, and its parker.
pub(super) struct Wake {
    pub parker: Arc<Parker>,
    /// `u64::MAX` while the actor is scanning (then every new timer wakes it).
    pub next: AtomicU64,
}

/// How a waiter is woken: a thread's parker, or an async task's waker.
pub(super) type WakeFn = Box<dyn Fn() + Send + Sync>;

/// A caller waiting for a session's lock (a blocked thread or an async task).
pub(super) struct Waiter {
    pub lease_ms: u64,
    /// When the store itself ends the wait with `LockTimeout` (a `Timer::Wait` of the
    /// actor): set for async waiters, which have no thread to watch their deadline.
    deadline: Option<u64>,
    wake: WakeFn,
    /// Set under the shard lock when the wait ends: the grant, or why it failed.
    pub outcome: Mutex<Option<Result<(u64, Record)>>>,
}

impl Waiter {
    pub fn new(lease_ms: u64, deadline: Option<u64>, wake: WakeFn) -> Arc<Waiter> {
        Arc::new(Waiter {
            lease_ms,
            deadline,
            wake,
            outcome: Mutex::new(None),
        })
    }

    fn finish(&self, outcome: Result<(u64, Record)>) {
        *self.outcome.lock() = Some(outcome);
        (self.wake)();
    }
}

/// The callers waiting for a session's lock, in order. Boxed, and only while someone
/// waits: most sessions never have a waiter, and each would hold the memory of an empty
/// queue otherwise (an entry's size counts a million times over).
#[derive(Default)]
#[allow(
    clippy::box_collection,
    reason = "the box is the point: 8 bytes in every entry instead of a 32-byte empty queue"
)]
struct Waiters(Option<Box<VecDeque<Arc<Waiter>>>>);

impl Waiters {
    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|q| q.is_empty())
    }
    fn push_back(&mut self, w: Arc<Waiter>) {
        self.0.get_or_insert_default().push_back(w);
    }
    fn pop_front(&mut self) -> Option<Arc<Waiter>> {
        let q = self.0.as_mut()?;
        let w = q.pop_front();
        if q.is_empty() {
            self.0 = None;
        }
        w
    }
    fn retain(&mut self, keep: impl FnMut(&Arc<Waiter>) -> bool) {
        if let Some(q) = self.0.as_mut() {
            q.retain(keep);
            if q.is_empty() {
                self.0 = None;
            }
        }
    }
    /// Takes every waiter out.
    fn take(&mut self) -> VecDeque<Arc<Waiter>> {
        self.0.take().map(|q| *q).unwrap_or_default()
    }
}

/// A timer deadline in ms (never 0: times are ms since the Unix epoch).
fn slot(at: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(at)
}

#[derive(Clone, Copy)]
struct Held {
    token: u64,
    until: u64,
}

/// A live session.
pub(super) struct Entry {
    data: Arc<SessionData>,
    version: u64,
    created: u64,
    last_access: u64,
    expires_at: u64,
    owner: Option<Arc<str>>,
    /// The session's own idle TTL in ms (0: the store's; see `ttl()`).
    own_ttl: u64,
    /// The last fencing token issued for this session.
    fence: u64,
    lock: Option<Held>,
    waiters: Waiters,
    /// The deadline of this session's pending expiry timer, if one is queued.
    expiry_timer: Option<NonZeroU64>,
    /// The deadline of this session's pending lease timer, if one is queued.
    lease_timer: Option<NonZeroU64>,
}

impl Entry {
    /// The session's own idle TTL in ms, if it has one (else the store's applies).
    fn ttl(&self) -> Option<u64> {
        (self.own_ttl != 0).then_some(self.own_ttl)
    }

    /// Gives the session its own idle TTL (`None`: keeps the one it has).
    fn set_ttl(&mut self, ttl: Option<u64>) {
        if let Some(t) = ttl {
            self.own_ttl = t;
        }
    }

    /// The session's owner.
    pub(super) fn owner(&self) -> Option<Arc<str>> {
        self.owner.clone()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Timer {
    Lease,
    Expire,
    Tombstone,
    Alias,
    /// The end of an async lock wait (see `Waiter::deadline`).
    Wait,
}

/// What a single-shard step leads to.
pub(super) enum Step {
    Done(Result<Reply>),
    /// The id is an alias of a rotated session: continue with this id.
    Redirect(SessionId),
    /// The caller must wait for the lock.
    Queued(Arc<Waiter>),
}

/// Why a session leaves the store.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Gone {
    Expired,
    Evicted,
    Destroyed,
}

/// Counters, summed over shards by `stats()`.
#[derive(Default, Clone, Copy)]
pub(super) struct Counters {
    pub ops: u64,
    pub lock_waits: u64,
    pub lock_timeouts: u64,
    pub expirations: u64,
    pub evictions: u64,
}

/// A change of a session's owner: (id, old owner, new owner).
pub(super) type OwnerChange = (SessionId, Option<Arc<str>>, Option<Arc<str>>);

/// Everything of a shard besides the session map, so both can be borrowed at once.
#[derive(Default)]
pub(super) struct Index {
    tombstones: HashMap<SessionId, u64, IdHash>,
    aliases: HashMap<SessionId, (SessionId, u64), IdHash>,
    timers: BinaryHeap<Reverse<(u64, Timer, SessionId)>>,
    /// (last access, id) of every session, when LRU eviction is on.
    lru: BTreeSet<(u64, SessionId)>,
    /// Owner changes not yet applied to the store's owner index: (id, old, new).
    pub owner_changes: Vec<OwnerChange>,
    /// The timer count past which `tidy_timers` drops the timers nothing waits for.
    timer_limit: usize,
    /// Ids whose state changed since the parent last logged them; `None` when the
    /// store does not persist (nothing is collected then).
    pub dirty: Option<Vec<SessionId>>,
    pub counters: Counters,
}

/// One shard: its sessions and their bookkeeping.
#[derive(Default)]
pub(super) struct Shard {
    sessions: HashMap<SessionId, Entry, IdHash>,
    pub idx: Index,
}

enum Found {
    Live,
    Alias(SessionId),
    Tomb,
    Absent,
}

fn record(id: SessionId, e: &Entry) -> Record {
    Record {
        id,
        data: e.data.clone(),
        version: e.version,
        created: e.created,
        last_access: e.last_access,
        expires_at: e.expires_at,
        owner: e.owner.clone(),
        ttl_ms: e.ttl(),
    }
}

/// The session whose pending timer (in the slot `which` picks) is the one firing at `at`,
/// with that slot cleared; `None` for a timer that a later one superseded.
fn due<'a>(
    sessions: &'a mut HashMap<SessionId, Entry, IdHash>,
    id: &SessionId,
    at: u64,
    which: fn(&mut Entry) -> &mut Option<NonZeroU64>,
) -> Option<&'a mut Entry> {
    let e = sessions.get_mut(id)?;
    let pending = which(e);
    if *pending != slot(at) {
        return None;
    }
    *pending = None;
    Some(e)
}

fn grid(at: u64) -> u64 {
    at.div_ceil(SWEEP_GRID_MS).saturating_mul(SWEEP_GRID_MS)
}

impl Index {
    /// Notes that `id`'s state changed (for the persistence log).
    fn mark(&mut self, id: SessionId) {
        if let Some(d) = &mut self.dirty {
            d.push(id);
        }
    }

    fn schedule(&mut self, at: u64, kind: Timer, id: SessionId, ctx: &Ctx) {
        self.timers.push(Reverse((at, kind, id)));
        if at < ctx.wake.next.load(Ordering::Acquire) {
            ctx.wake.parker.unpark();
        }
    }

    fn lru_move(&mut self, ctx: &Ctx, id: SessionId, from: Option<u64>, to: Option<u64>) {
        if ctx.opts.eviction != Eviction::Lru {
            return;
        }
        if let Some(f) = from {
            self.lru.remove(&(f, id));
        }
        if let Some(t) = to {
            self.lru.insert((t, id));
        }
    }

    /// Records an access: extends the idle expiry.
    fn access(&mut self, e: &mut Entry, id: SessionId, ctx: &Ctx) {
        self.mark(id);
        self.lru_move(ctx, id, Some(e.last_access), Some(ctx.now));
        e.last_access = ctx.now;
        e.expires_at = ctx.expiry(e.created, e.ttl());
        if e.expiry_timer.is_none() {
            let at = grid(e.expires_at);
            e.expiry_timer = slot(at);
            self.schedule(at, Timer::Expire, id, ctx);
        }
    }

    fn touch_if_due(&mut self, e: &mut Entry, id: SessionId, ctx: &Ctx) -> bool {
        if ctx.now.saturating_sub(e.last_access) >= ctx.interval(e.ttl()) && ctx.now > e.last_access
        {
            self.access(e, id, ctx);
            true
        } else {
            false
        }
    }

    fn grant(&mut self, e: &mut Entry, id: SessionId, lease_ms: u64, ctx: &Ctx) -> (u64, Record) {
        self.mark(id);
        e.fence += 1;
        let until = ctx.now.saturating_add(lease_ms);
        e.lock = Some(Held {
            token: e.fence,
            until,
        });
        if e.lease_timer.is_none_or(|t| t.get() > until) {
            e.lease_timer = slot(until);
            self.schedule(until, Timer::Lease, id, ctx);
        }
        self.touch_if_due(e, id, ctx);
        (e.fence, record(id, e))
    }

    /// Frees the lock and hands it to the first waiter, if any.
    fn release(&mut self, e: &mut Entry, id: SessionId, ctx: &Ctx) {
        self.mark(id);
        e.lock = None;
        if let Some(w) = e.waiters.pop_front() {
            let grant = self.grant(e, id, w.lease_ms, ctx);
            w.finish(Ok(grant));
        }
    }

    /// Ends a lease whose time has passed.
    fn expire_lease(&mut self, e: &mut Entry, id: SessionId, ctx: &Ctx) {
        if e.lock.is_some_and(|h| h.until <= ctx.now) {
            self.release(e, id, ctx);
        }
    }

    /// Checks a writer's token against the lock.
    fn check_token(
        &mut self,
        e: &mut Entry,
        id: SessionId,
        token: Option<u64>,
        ctx: &Ctx,
    ) -> Result<()> {
        self.expire_lease(e, id, ctx);
        match (e.lock, token) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(Error::Locked),
            (Some(h), Some(t)) if h.token == t => Ok(()),
            (_, Some(_)) => Err(Error::StaleToken),
        }
    }

    /// Leaves a tombstone until `until`; one that lasts longer already (a rotation's,
    /// which covers the grace period too) is kept as it is.
    fn tombstone(&mut self, id: SessionId, until: u64, ctx: &Ctx) {
        self.mark(id);
        let prev = self.tombstones.get(&id).copied();
        if prev.is_none_or(|p| p < until) {
            self.tombstones.insert(id, until);
            self.schedule(grid(until), Timer::Tombstone, id, ctx);
        }
    }
}

/// Reserves room for one more session.
fn reserve(ctx: &Ctx) -> Result<()> {
    let max = ctx.opts.max_sessions;
    if max == 0 {
        ctx.live.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    ctx.live
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .map(|_| ())
        .map_err(|_| Error::Full)
}

/// What a session counts for `max_memory`.
pub(super) fn cost(data: &SessionData) -> u64 {
    data.byte_len() as u64 + SESSION_OVERHEAD
}

/// Charges `add - sub` bytes against `max_memory`: refused (`Full`, nothing charged)
/// when it would pass the cap; a decrease always goes through.
fn charge(ctx: &Ctx, add: u64, sub: u64) -> Result<()> {
    if add <= sub {
        ctx.bytes.fetch_sub(sub - add, Ordering::Relaxed);
        return Ok(());
    }
    let delta = add - sub;
    let max = ctx.opts.max_memory;
    if max == 0 {
        ctx.bytes.fetch_add(delta, Ordering::Relaxed);
        return Ok(());
    }
    if delta > max {
        // It would not fit in an empty store: refused before anything is evicted for it.
        return Err(Error::TooLarge(format!(
            "a session taking {delta} more bytes does not fit in max_memory={max}"
        )));
    }
    ctx.bytes
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            n.checked_add(delta).filter(|&m| m <= max)
        })
        .map(|_| ())
        .map_err(|_| Error::Full)
}

fn check_size(data: &SessionData, ctx: &Ctx) -> Result<()> {
    let n = data.byte_len();
    if n > ctx.opts.max_session_bytes {
        return Err(Error::TooLarge(format!(
            "session data of {n} bytes exceeds max_session_bytes={}",
            ctx.opts.max_session_bytes
        )));
    }
    Ok(())
}

fn check_expected(expected: Option<u64>, actual: u64) -> Result<()> {
    match expected {
        Some(v) if v != actual => Err(Error::Conflict {
            expected: v,
            actual,
        }),
        _ => Ok(()),
    }
}

/// Applies `ops` to `data`, giving the new data, owner and increment results. `data` is
/// never changed; on error nothing is.
fn apply_ops(
    data: &SessionData,
    owner: &Option<Arc<str>>,
    ops: &[PatchOp],
) -> Result<(SessionData, Option<Arc<str>>, Vec<i64>)> {
    let mut edit = data.edit();
    let mut owner = owner.clone();
    let mut values = Vec::new();
    for op in ops {
        match op {
            PatchOp::Set(k, v) => edit.set(k, v.clone())?,
            PatchOp::Remove(k) => {
                check_key(k)?;
                edit.remove(k);
            }
            PatchOp::Incr(k, by) => values.push(edit.incr(k, *by)?),
            PatchOp::Merge(m) => edit.merge(m)?,
            PatchOp::SetOwner(o) => {
                if let Some(o) = o {
                    check_owner(o)?;
                }
                owner = o.clone();
            }
        }
    }
    Ok((edit.finish()?, owner, values))
}

impl Shard {
    /// Classifies `id`, dropping it first if it expired.
    fn find(&mut self, id: &SessionId, ctx: &Ctx) -> Found {
        if let Some(e) = self.sessions.get(id) {
            if e.expires_at > ctx.now {
                return Found::Live;
            }
            self.remove(id, Gone::Expired, ctx);
        }
        if let Some(&(to, until)) = self.idx.aliases.get(id) {
            if until > ctx.now {
                return Found::Alias(to);
            }
        }
        if self.idx.tombstones.get(id).is_some_and(|&t| t > ctx.now) {
            return Found::Tomb;
        }
        Found::Absent
    }

    /// Removes a live session and tells its waiters why.
    pub(super) fn remove(&mut self, id: &SessionId, why: Gone, ctx: &Ctx) -> bool {
        let Some(mut e) = self.sessions.remove(id) else {
            return false;
        };
        ctx.live.fetch_sub(1, Ordering::Relaxed);
        ctx.bytes.fetch_sub(cost(&e.data), Ordering::Relaxed);
        if why != Gone::Expired {
            // An expiry needs no record: every record carries its end, and a restore
            // drops what has ended.
            self.idx.mark(*id);
        }
        self.idx.lru_move(ctx, *id, Some(e.last_access), None);
        if e.owner.is_some() {
            self.idx.owner_changes.push((*id, e.owner.take(), None));
        }
        let err = match why {
            Gone::Destroyed => Error::Destroyed,
            Gone::Expired | Gone::Evicted => Error::NotFound,
        };
        for w in e.waiters.take() {
            w.finish(Err(err.clone()));
        }
        match why {
            Gone::Expired => self.idx.counters.expirations += 1,
            Gone::Evicted => self.idx.counters.evictions += 1,
            Gone::Destroyed => {}
        }
        true
    }

    fn create(
        &mut self,
        id: SessionId,
        data: SessionData,
        owner: Option<Arc<str>>,
        ttl: Option<u64>,
        ctx: &Ctx,
    ) -> Result<u64> {
        reserve(ctx)?;
        if let Err(e) = charge(ctx, cost(&data), 0) {
            ctx.live.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
        let mut e = Entry {
            data: Arc::new(data),
            version: 1,
            created: ctx.now,
            last_access: ctx.now,
            expires_at: ctx.expiry(ctx.now, ttl),
            owner: owner.clone(),
            own_ttl: ttl.unwrap_or(0),
            fence: 0,
            lock: None,
            waiters: Waiters::default(),
            expiry_timer: None,
            lease_timer: None,
        };
        self.idx.lru_move(ctx, id, None, Some(ctx.now));
        e.last_access = ctx.now;
        let at = grid(e.expires_at);
        e.expiry_timer = slot(at);
        self.idx.schedule(at, Timer::Expire, id, ctx);
        if owner.is_some() {
            self.idx.owner_changes.push((id, None, owner));
        }
        self.idx.mark(id);
        self.sessions.insert(id, e);
        Ok(1)
    }

    /// `Fetch`.
    pub(super) fn fetch(&mut self, id: SessionId, touch: bool, ctx: &Ctx) -> Step {
        // The hot path: one lookup for a live session.
        if let Some(e) = self.sessions.get_mut(&id) {
            if e.expires_at > ctx.now {
                let touched = touch && self.idx.touch_if_due(e, id, ctx);
                return Step::Done(Ok(Reply::Record {
                    record: Some(record(id, e)),
                    touched,
                }));
            }
        }
        match self.find(&id, ctx) {
            Found::Live => {
                let Some(e) = self.sessions.get_mut(&id) else {
                    return Step::Done(Err(Error::NotFound));
                };
                let touched = touch && self.idx.touch_if_due(e, id, ctx);
                Step::Done(Ok(Reply::Record {
                    record: Some(record(id, e)),
                    touched,
                }))
            }
            Found::Alias(to) => Step::Redirect(to),
            Found::Tomb | Found::Absent => Step::Done(Ok(Reply::Record {
                record: None,
                touched: false,
            })),
        }
    }

    /// `Write`.
    pub(super) fn write(
        &mut self,
        id: SessionId,
        data: Arc<SessionData>,
        opts: WriteOpts,
        ttl: Option<u64>,
        ctx: &Ctx,
    ) -> Result<Reply> {
        check_size(&data, ctx)?;
        match self.find(&id, ctx) {
            Found::Alias(to) => Err(Error::Rotated { to }),
            Found::Tomb => Err(Error::Destroyed),
            Found::Absent => {
                if opts.token.is_some() {
                    return Err(Error::StaleToken);
                }
                check_expected(opts.expected_version, 0)?;
                let data = Arc::try_unwrap(data).unwrap_or_else(|d| (*d).clone());
                self.create(id, data, None, ttl, ctx).map(Reply::Version)
            }
            Found::Live => {
                let Some(e) = self.sessions.get_mut(&id) else {
                    return Err(Error::NotFound);
                };
                self.idx.check_token(e, id, opts.token, ctx)?;
                check_expected(opts.expected_version, e.version)?;
                charge(ctx, data.byte_len() as u64, e.data.byte_len() as u64)?;
                e.data = data;
                e.version += 1;
                e.set_ttl(ttl);
                self.idx.access(e, id, ctx);
                if opts.release && opts.token.is_some() {
                    self.idx.release(e, id, ctx);
                }
                Ok(Reply::Version(e.version))
            }
        }
    }

    /// `Patch`.
    pub(super) fn patch(
        &mut self,
        id: SessionId,
        ops: &[PatchOp],
        opts: WriteOpts,
        ttl: Option<u64>,
        ctx: &Ctx,
    ) -> Result<Reply> {
        match self.find(&id, ctx) {
            Found::Alias(to) => Err(Error::Rotated { to }),
            Found::Tomb => Err(Error::Destroyed),
            Found::Absent => {
                if !opts.create {
                    return Err(Error::NotFound);
                }
                if opts.token.is_some() {
                    return Err(Error::StaleToken);
                }
                check_expected(opts.expected_version, 0)?;
                let (data, owner, values) = apply_ops(&SessionData::new(), &None, ops)?;
                check_size(&data, ctx)?;
                let version = self.create(id, data, owner, ttl, ctx)?;
                Ok(Reply::Patched(Patched { version, values }))
            }
            Found::Live => {
                let Some(e) = self.sessions.get_mut(&id) else {
                    return Err(Error::NotFound);
                };
                self.idx.check_token(e, id, opts.token, ctx)?;
                check_expected(opts.expected_version, e.version)?;
                let (data, owner, values) = apply_ops(&e.data, &e.owner, ops)?;
                check_size(&data, ctx)?;
                if !ops.is_empty() {
                    charge(ctx, data.byte_len() as u64, e.data.byte_len() as u64)?;
                    if owner != e.owner {
                        self.idx
                            .owner_changes
                            .push((id, e.owner.clone(), owner.clone()));
                        e.owner = owner;
                    }
                    e.data = Arc::new(data);
                    e.version += 1;
                }
                e.set_ttl(ttl);
                self.idx.access(e, id, ctx);
                if opts.release && opts.token.is_some() {
                    self.idx.release(e, id, ctx);
                }
                Ok(Reply::Patched(Patched {
                    version: e.version,
                    values,
                }))
            }
        }
    }

    /// `Lock`: grants at once, fails at once, or queues a waiter woken by `wake()`. With
    /// `timed`, the store ends the wait itself at its deadline (the actor's
    /// `Timer::Wait`); without, the waiter watches its deadline (a parked thread).
    pub(super) fn lock(
        &mut self,
        id: SessionId,
        lease_ms: u64,
        wait_ms: u64,
        timed: bool,
        wake: impl FnOnce() -> WakeFn,
        ctx: &Ctx,
    ) -> Step {
        match self.find(&id, ctx) {
            Found::Alias(to) => Step::Done(Err(Error::Rotated { to })),
            Found::Tomb => Step::Done(Err(Error::Destroyed)),
            Found::Absent => Step::Done(Err(Error::NotFound)),
            Found::Live => {
                let Some(e) = self.sessions.get_mut(&id) else {
                    return Step::Done(Err(Error::NotFound));
                };
                self.idx.expire_lease(e, id, ctx);
                if e.lock.is_none() && e.waiters.is_empty() {
                    let (token, record) = self.idx.grant(e, id, lease_ms, ctx);
                    return Step::Done(Ok(Reply::Locked { token, record }));
                }
                self.idx.counters.lock_waits += 1;
                if wait_ms == 0 {
                    self.idx.counters.lock_timeouts += 1;
                    return Step::Done(Err(Error::LockTimeout));
                }
                let deadline = timed.then(|| ctx.now.saturating_add(wait_ms));
                let w = Waiter::new(lease_ms, deadline, wake());
                e.waiters.push_back(w.clone());
                if let Some(at) = deadline {
                    self.idx.schedule(at, Timer::Wait, id, ctx);
                }
                Step::Queued(w)
            }
        }
    }

    /// Gives up a wait that timed out (unless the lock was granted meanwhile).
    pub(super) fn cancel_wait(&mut self, id: SessionId, w: &Arc<Waiter>) {
        if let Some(e) = self.sessions.get_mut(&id) {
            e.waiters.retain(|x| !Arc::ptr_eq(x, w));
        }
        self.idx.counters.lock_timeouts += 1;
    }

    /// `Unlock`.
    pub(super) fn unlock(&mut self, id: SessionId, token: u64, ctx: &Ctx) -> Result<Reply> {
        match self.find(&id, ctx) {
            Found::Alias(to) => Err(Error::Rotated { to }),
            Found::Tomb => Err(Error::Destroyed),
            Found::Absent => Err(Error::NotFound),
            Found::Live => {
                let Some(e) = self.sessions.get_mut(&id) else {
                    return Err(Error::NotFound);
                };
                self.idx.expire_lease(e, id, ctx);
                match e.lock {
                    Some(h) if h.token == token => {
                        self.idx.release(e, id, ctx);
                        Ok(Reply::Unlocked)
                    }
                    _ => Err(Error::StaleToken),
                }
            }
        }
    }

    /// `Touch`.
    pub(super) fn touch(&mut self, id: SessionId, ttl: Option<u64>, ctx: &Ctx) -> Result<Reply> {
        match self.find(&id, ctx) {
            Found::Alias(to) => Err(Error::Rotated { to }),
            Found::Tomb => Err(Error::Destroyed),
            Found::Absent => Err(Error::NotFound),
            Found::Live => {
                let Some(e) = self.sessions.get_mut(&id) else {
                    return Err(Error::NotFound);
                };
                let written = match ttl {
                    Some(t) => {
                        e.set_ttl(Some(t));
                        self.idx.access(e, id, ctx);
                        true
                    }
                    None => self.idx.touch_if_due(e, id, ctx),
                };
                Ok(Reply::Touched(Touched {
                    written,
                    expires_at: e.expires_at,
                }))
            }
        }
    }

    /// `Destroy`. An alias is removed too, and its target is returned to be destroyed.
    pub(super) fn destroy(&mut self, id: SessionId, ctx: &Ctx) -> Step {
        let until = ctx.now.saturating_add(Ctx::ms(ctx.opts.tombstone_ttl));
        let found = self.find(&id, ctx);
        self.idx.tombstone(id, until, ctx);
        match found {
            Found::Live => Step::Done(Ok(Reply::Destroyed(self.remove(&id, Gone::Destroyed, ctx)))),
            Found::Alias(to) => {
                self.idx.mark(id);
                self.idx.aliases.remove(&id);
                Step::Redirect(to)
            }
            Found::Tomb | Found::Absent => Step::Done(Ok(Reply::Destroyed(false))),
        }
    }

    /// First half of a rotation: takes the session out of this shard, leaving an alias
    /// (for the grace period) and a tombstone behind. Fails, changing nothing, unless the
    /// session lives and `token` (if given) is the holder's.
    pub(super) fn take_for_rotation(
        &mut self,
        id: SessionId,
        to: SessionId,
        token: Option<u64>,
        ctx: &Ctx,
    ) -> Result<Entry> {
        match self.find(&id, ctx) {
            Found::Alias(to) => return Err(Error::Rotated { to }),
            Found::Tomb => return Err(Error::Destroyed),
            Found::Absent => return Err(Error::NotFound),
            Found::Live => {}
        }
        let Some(e) = self.sessions.get_mut(&id) else {
            return Err(Error::NotFound);
        };
        if token.is_some() {
            self.idx.check_token(e, id, token, ctx)?;
        }
        let Some(mut e) = self.sessions.remove(&id) else {
            return Err(Error::NotFound);
        };
        self.idx.lru_move(ctx, id, Some(e.last_access), None);
        for w in e.waiters.take() {
            w.finish(Err(Error::Rotated { to }));
        }
        e.expiry_timer = None;
        e.lease_timer = None;
        let grace = Ctx::ms(ctx.opts.rotate_grace);
        if grace > 0 {
            let until = ctx.now.saturating_add(grace);
            self.idx.mark(id);
            self.idx.aliases.insert(id, (to, until));
            self.idx.schedule(grid(until), Timer::Alias, id, ctx);
        }
        let tomb = ctx
            .now
            .saturating_add(grace)
            .saturating_add(Ctx::ms(ctx.opts.tombstone_ttl));
        self.idx.tombstone(id, tomb, ctx);
        Ok(e)
    }

    /// Second half of a rotation: the session arrives under its new id.
    pub(super) fn put_rotated(&mut self, id: SessionId, mut e: Entry, ctx: &Ctx) {
        self.idx.mark(id);
        self.idx.lru_move(ctx, id, None, Some(e.last_access));
        let at = grid(e.expires_at);
        e.expiry_timer = slot(at);
        self.idx.schedule(at, Timer::Expire, id, ctx);
        if let Some(h) = e.lock {
            e.lease_timer = slot(h.until);
            self.idx.schedule(h.until, Timer::Lease, id, ctx);
        }
        self.sessions.insert(id, e);
    }

    /// The owner of a live session.
    pub(super) fn owner_of(&mut self, id: &SessionId, ctx: &Ctx) -> Option<Arc<str>> {
        match self.find(id, ctx) {
            Found::Live => self.sessions.get(id).and_then(|e| e.owner.clone()),
            _ => None,
        }
    }

    /// Adds to `out` the live sessions whose list key (see `Memory::list`) is in
    /// `from..to`, with their keys.
    pub(super) fn page(
        &self,
        key: impl Fn(&SessionId) -> u64,
        from: u64,
        to: u128,
        now: u64,
        out: &mut Vec<(u64, SessionId)>,
    ) {
        for (id, e) in &self.sessions {
            let k = key(id);
            if e.expires_at > now && k >= from && u128::from(k) < to {
                out.push((k, *id));
            }
        }
    }

    /// The ids of this shard's live sessions.
    pub(super) fn live_ids(&self, now: u64) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, e)| e.expires_at > now)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The least recently used session of this shard, for eviction.
    pub(super) fn lru_head(&self, keep: &SessionId) -> Option<(u64, SessionId)> {
        self.idx
            .lru
            .iter()
            .take(2)
            .find(|(_, id)| id != keep)
            .copied()
    }

    /// Runs every timer due at `ctx.now`; returns the next deadline, if any.
    pub(super) fn run_timers(&mut self, ctx: &Ctx) -> Option<u64> {
        while let Some(&Reverse((at, kind, id))) = self.idx.timers.peek() {
            if at > ctx.now {
                return Some(at);
            }
            self.idx.timers.pop();
            match kind {
                Timer::Expire => {
                    let Some(e) = due(&mut self.sessions, &id, at, |e| &mut e.expiry_timer) else {
                        continue;
                    };
                    if e.expires_at <= ctx.now {
                        self.remove(&id, Gone::Expired, ctx);
                    } else {
                        let next = grid(e.expires_at);
                        e.expiry_timer = slot(next);
                        self.idx.schedule(next, Timer::Expire, id, ctx);
                    }
                }
                Timer::Lease => {
                    let Some(e) = due(&mut self.sessions, &id, at, |e| &mut e.lease_timer) else {
                        continue;
                    };
                    self.idx.expire_lease(e, id, ctx);
                    if let Some(h) = e.lock {
                        if e.lease_timer.is_none() {
                            e.lease_timer = slot(h.until);
                            self.idx.schedule(h.until, Timer::Lease, id, ctx);
                        }
                    }
                }
                Timer::Tombstone => {
                    if self.idx.tombstones.get(&id).is_some_and(|&t| t <= ctx.now) {
                        self.idx.tombstones.remove(&id);
                    }
                }
                Timer::Wait => {
                    let Some(e) = self.sessions.get_mut(&id) else {
                        continue;
                    };
                    let now = ctx.now;
                    let mut ended = Vec::new();
                    e.waiters.retain(|w| {
                        let due = w.deadline.is_some_and(|d| d <= now);
                        if due {
                            ended.push(w.clone());
                        }
                        !due
                    });
                    for w in ended {
                        self.idx.counters.lock_timeouts += 1;
                        w.finish(Err(Error::LockTimeout));
                    }
                }
                Timer::Alias => {
                    if self
                        .idx
                        .aliases
                        .get(&id)
                        .is_some_and(|&(_, t)| t <= ctx.now)
                    {
                        self.idx.aliases.remove(&id);
                    }
                }
            }
        }
        None
    }

    /// What the log keeps of `id` now.
    pub(super) fn state_of(&self, id: &SessionId) -> State {
        match self.sessions.get(id) {
            Some(e) => State::Live(Saved {
                data: e.data.clone(),
                version: e.version,
                created: e.created,
                last_access: e.last_access,
                expires_at: e.expires_at,
                owner: e.owner.clone(),
                ttl: e.ttl(),
                fence: e.fence,
                lock: e.lock.map(|h| (h.token, h.until)),
            }),
            None => State::Dead {
                tomb: self.idx.tombstones.get(id).copied(),
                alias: self.idx.aliases.get(id).copied(),
            },
        }
    }

    /// Every id this shard knows (sessions, tombstones, aliases), for a snapshot.
    pub(super) fn ids(&self) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        ids.extend(self.idx.tombstones.keys().copied());
        ids.extend(
            self.idx
                .aliases
                .keys()
                .filter(|id| !self.idx.tombstones.contains_key(id))
                .copied(),
        );
        ids
    }

    /// Puts back an id's state read from the log at the start (states that ended
    /// before `ctx.now` are skipped by the caller). The shard must not know `id` yet.
    pub(super) fn restore(&mut self, id: SessionId, st: State, ctx: &Ctx) {
        match st {
            State::Live(s) => {
                ctx.live.fetch_add(1, Ordering::Relaxed);
                ctx.bytes.fetch_add(cost(&s.data), Ordering::Relaxed);
                let lock = s
                    .lock
                    .filter(|&(_, until)| until > ctx.now)
                    .map(|(token, until)| Held { token, until });
                let e = Entry {
                    data: s.data,
                    version: s.version,
                    created: s.created,
                    last_access: s.last_access,
                    expires_at: s.expires_at,
                    owner: s.owner.clone(),
                    own_ttl: s.ttl.unwrap_or(0),
                    fence: s.fence.saturating_add(FENCE_GAP),
                    lock,
                    waiters: Waiters::default(),
                    expiry_timer: None,
                    lease_timer: None,
                };
                if s.owner.is_some() {
                    self.idx.owner_changes.push((id, None, s.owner));
                }
                self.put_rotated(id, e, ctx);
            }
            State::Dead { tomb, alias } => {
                if let Some(until) = tomb.filter(|&t| t > ctx.now) {
                    self.idx.tombstone(id, until, ctx);
                }
                if let Some((to, until)) = alias.filter(|&(_, t)| t > ctx.now) {
                    self.idx.aliases.insert(id, (to, until));
                    self.idx.schedule(grid(until), Timer::Alias, id, ctx);
                }
            }
        }
    }

    /// Drops the queued timers that nothing waits for any more, once there are twice as
    /// many as after the last tidy (at least 1,024). A session destroyed, rotated or
    /// written with a new deadline leaves its old timer queued until it falls due, which
    /// with long TTLs is long: under churn the heap grew without bound for the length of
    /// a TTL. Called after every step; amortized O(1).
    pub(super) fn tidy_timers(&mut self) {
        if self.idx.timers.len() <= self.idx.timer_limit.max(1024) {
            return;
        }
        let (sessions, idx) = (&self.sessions, &mut self.idx);
        let (tombstones, aliases) = (&idx.tombstones, &idx.aliases);
        idx.timers.retain(|Reverse((at, kind, id))| match kind {
            Timer::Expire => sessions
                .get(id)
                .is_some_and(|e| e.expiry_timer == slot(*at)),
            Timer::Lease => sessions.get(id).is_some_and(|e| e.lease_timer == slot(*at)),
            Timer::Tombstone => tombstones.contains_key(id),
            Timer::Alias => aliases.contains_key(id),
            // A lock wait's deadline: kept while the session has anyone waiting.
            Timer::Wait => sessions.get(id).is_some_and(|e| !e.waiters.is_empty()),
        });
        idx.timer_limit = 2 * idx.timers.len();
    }

    /// Sizes of the maps, for stats: (sessions, tombstones, aliases, timers).
    pub(super) fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.sessions.len(),
            self.idx.tombstones.len(),
            self.idx.aliases.len(),
            self.idx.timers.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    /// An entry's size counts once per session (a million times in a big store), plus
    /// the map's slack: what is rarely used (a lock's waiters) is boxed, optional times
    /// use their niche. 168 bytes before this was measured (docs/benchmarks.md).
    #[test]
    fn an_entry_stays_small() {
        let n = std::mem::size_of::<super::Entry>();
        assert!(n <= 120, "Entry is {n} bytes");
    }
}
