//! `mem://`: the store inside the process.
//!
//! The sessions live in shards chosen by a hash of the id, each behind its own mutex. A
//! caller applies its command directly to the owning shard under that mutex — no thread
//! hop, no channel — so threads working on different sessions never wait for each other.
//! The actor role of the seed (one owner that serializes what must be serialized) is a
//! background thread that runs the shards' timers: session expiry, tombstone and alias
//! clean-up, and lock leases that ran out. It sleeps until the earliest deadline, is woken
//! when an earlier one is added, and does work proportional to what is due.

#[cfg(test)]
mod lock_async_tests;
pub(crate) mod persist;
#[cfg(test)]
mod persist_tests;
mod shard;

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, Hash, RandomState},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Poll, Waker},
    thread::JoinHandle,
};

use parking_lot::{Mutex, MutexGuard};

use self::{
    persist::{Journal, SnapshotWriter, State},
    shard::{Ctx, Gone, Shard, Step, Waiter, Wake, WakeFn},
};
use super::{Backend, BoxFuture, CommandCounts, Stats};
use crate::{
    clock::{Clock, Parker},
    command::{Command, Reply, check_count, check_ttl},
    config::{Eviction, StoreOptions},
    error::{Error, Result},
    session::{IdHash, SessionId, check_owner},
};

pub use crate::session::MAX_OWNER_LEN;
pub use persist::{FORMAT_VERSION, Fsync, PersistStats, Persistence};

/// Most passes of `DestroyOwned` over an owner's sessions (new ones may arrive meanwhile).
const MAX_OWNER_PASSES: usize = 8;
/// Most evictions tried to make room for one write (a session growing under
/// `max_memory` may need many small ones gone).
const MAX_EVICTION_TRIES: usize = 1024;

type OwnerIndex = HashMap<Arc<str>, HashSet<SessionId, IdHash>>;

/// Per-kind command counters, one set per shard on lines of their own, so that threads
/// working on sessions of different shards do not share a counter's cache line.
#[repr(align(128))]
#[derive(Default)]
struct Tally([AtomicU64; 9]);

/// A shard's mutex on cache lines of its own, so threads working in neighbouring shards
/// do not slow each other down by writing to one line.
#[repr(align(128))]
struct Padded(Mutex<Shard>);

impl std::ops::Deref for Padded {
    type Target = Mutex<Shard>;
    fn deref(&self) -> &Mutex<Shard> {
        &self.0
    }
}

struct Inner {
    shards: Box<[Padded]>,
    owners: Box<[Mutex<OwnerIndex>]>,
    hasher: RandomState,
    opts: StoreOptions,
    touch_interval: u64,
    clock: Arc<dyn Clock>,
    live: AtomicUsize,
    /// What the sessions count for `max_memory`.
    bytes: AtomicU64,
    /// Commands by kind, by the shard of their id.
    tally: Box<[Tally]>,
    wake: Wake,
    shutdown: AtomicBool,
    /// The persistence log, when the store keeps one.
    journal: Option<Arc<Journal>>,
}

/// The in-process backend. Dropping it stops its actor thread.
pub struct Memory {
    inner: Arc<Inner>,
    actor: Option<JoinHandle<()>>,
    /// The persistence threads: the log writer (`everysec`, `no`) and the compactor.
    helpers: Vec<JoinHandle<()>>,
    /// The process that started the actor: a copy in a forked child has no actor thread.
    pid: u32,
}

impl Memory {
    /// Opens an empty store with these options, reading time from `clock`.
    pub fn new(opts: StoreOptions, clock: Arc<dyn Clock>) -> Result<Memory> {
        Memory::with_journal(opts, clock, None)
    }

    /// Opens a store that keeps its sessions in `p.dir` across restarts: restores the
    /// snapshot and the log found there (truncating a torn tail of the log, see the
    /// `persist` module), then logs every change. Only one process may use a directory.
    pub fn open_persistent(
        opts: StoreOptions,
        clock: Arc<dyn Clock>,
        p: &Persistence,
    ) -> Result<Memory> {
        opts.validate()?;
        let lock = persist::lock_dir(&p.dir)?;
        let restored = persist::restore(&p.dir)?;
        let journal = Arc::new(Journal::open(p, lock, &restored)?);
        let mut m = Memory::with_journal(opts, clock, Some(journal.clone()))?;
        let inner = &m.inner;
        let ctx = inner.ctx();
        let mut n = 0u64;
        for (id, st) in restored.states {
            if !st.alive_at(ctx.now) {
                continue;
            }
            n += u64::from(matches!(st, State::Live(_)));
            let mut s = inner.shard(&id);
            s.restore(id, st, &ctx);
            inner.sync_owners(&mut s);
        }
        for s in inner.shards.iter() {
            s.lock().idx.dirty = Some(Vec::new());
        }
        journal.set_restored(n);
        if restored.truncated_bytes > 0 || n > 0 {
            tracing::info!(
                "persistence: restored {n} sessions from {} ({} bytes of torn log cut)",
                p.dir.display(),
                restored.truncated_bytes
            );
        }
        // Everything restored goes into the first snapshot, so that the old log can go.
        m.inner.compact()?;
        {
            let j = journal.clone();
            m.helpers.push(
                std::thread::Builder::new()
                    .name("sessync-log".into())
                    .spawn(move || j.run_writer())
                    .map_err(|e| Error::Backend(format!("cannot start the log writer: {e}")))?,
            );
        }
        let weak = Arc::downgrade(&m.inner);
        m.helpers.push(
            std::thread::Builder::new()
                .name("sessync-compact".into())
                .spawn(move || {
                    while journal.wait_compaction() {
                        let Some(inner) = weak.upgrade() else { return };
                        let _ = inner.compact();
                    }
                })
                .map_err(|e| Error::Backend(format!("cannot start the compactor: {e}")))?,
        );
        Ok(m)
    }

    /// Writes a new snapshot now and drops the log it covers (the store serves
    /// meanwhile). Fails on a store without persistence.
    pub fn compact(&self) -> Result<()> {
        self.inner.compact()
    }

    fn with_journal(
        opts: StoreOptions,
        clock: Arc<dyn Clock>,
        journal: Option<Arc<Journal>>,
    ) -> Result<Memory> {
        opts.validate()?;
        let shards = opts.shards;
        let inner = Arc::new(Inner {
            shards: (0..opts.shards)
                .map(|_| Padded(Mutex::new(Shard::default())))
                .collect(),
            owners: (0..opts.shards)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            hasher: RandomState::new(),
            touch_interval: opts.touch_interval_ms(),
            opts,
            clock,
            live: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            tally: (0..shards).map(|_| Tally::default()).collect(),
            wake: Wake {
                parker: Arc::new(Parker::new()),
                next: AtomicU64::new(u64::MAX),
            },
            shutdown: AtomicBool::new(false),
            journal,
        });
        let weak = Arc::downgrade(&inner);
        let parker = inner.wake.parker.clone();
        let clock = inner.clock.clone();
        let actor = std::thread::Builder::new()
            .name("sessync-expiry".into())
            .spawn(move || actor(weak, parker, clock))
            .map_err(|e| Error::Backend(format!("cannot start the expiry thread: {e}")))?;
        Ok(Memory {
            inner,
            actor: Some(actor),
            helpers: Vec::new(),
            pid: std::process::id(),
        })
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            // A forked child's copy: the actor thread stayed in the parent, and whatever
            // it held at the fork stays held. Waking or joining it would hang.
            std::mem::forget(self.actor.take());
            return;
        }
        self.inner.shutdown.store(true, Ordering::Release);
        self.inner.wake.parker.unpark();
        if let Some(t) = self.actor.take() {
            let _ = t.join();
        }
        if let Some(j) = &self.inner.journal {
            j.stop();
        }
        for t in self.helpers.drain(..) {
            let _ = t.join();
        }
    }
}

/// The actor: runs due timers in every shard, then sleeps until the next deadline.
fn actor(inner: std::sync::Weak<Inner>, parker: Arc<Parker>, clock: Arc<dyn Clock>) {
    loop {
        let next = {
            let Some(inner) = inner.upgrade() else { return };
            if inner.shutdown.load(Ordering::Acquire) {
                return;
            }
            inner.wake.next.store(u64::MAX, Ordering::Release);
            let mut next = u64::MAX;
            for i in 0..inner.shards.len() {
                let mut s = inner.shards[i].lock();
                let ctx = inner.ctx();
                if let Some(at) = s.run_timers(&ctx) {
                    next = next.min(at);
                }
                inner.settle(&mut s);
            }
            inner.wake.next.store(next, Ordering::Release);
            next
        };
        clock.park(&parker, (next != u64::MAX).then_some(next));
    }
}

impl Inner {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            now: self.clock.now_ms(),
            opts: &self.opts,
            touch_interval: self.touch_interval,
            live: &self.live,
            bytes: &self.bytes,
            wake: &self.wake,
        }
    }

    fn slot(&self, id: &SessionId) -> usize {
        // Bits 32.. of the id's hash: the maps inside a shard index by the low bits and
        // tag by the top seven, so the shard choice stays independent of both.
        ((id.hash64() >> 32) as usize) & (self.shards.len() - 1)
    }

    fn shard(&self, id: &SessionId) -> MutexGuard<'_, Shard> {
        self.shards[self.slot(id)].lock()
    }

    fn owner_slot(&self, owner: &str) -> usize {
        let mut h = self.hasher.build_hasher();
        owner.hash(&mut h);
        (std::hash::Hasher::finish(&h) as usize) & (self.owners.len() - 1)
    }

    /// Applies the owner changes a shard step recorded. Called with the shard locked, so
    /// the index never disagrees with the sessions for longer than one operation.
    fn sync_owners(&self, s: &mut Shard) {
        for (id, old, new) in s.idx.owner_changes.drain(..) {
            if let Some(o) = old {
                let mut idx = self.owners[self.owner_slot(&o)].lock();
                if let Some(set) = idx.get_mut(&o) {
                    set.remove(&id);
                    if set.is_empty() {
                        idx.remove(&o);
                    }
                }
            }
            if let Some(n) = new {
                let mut idx = self.owners[self.owner_slot(&n)].lock();
                idx.entry(n).or_default().insert(id);
            }
        }
    }

    /// After a step, with the shard still locked: brings the owner index up to date and
    /// logs the new state of every id the step changed.
    fn settle(&self, s: &mut Shard) {
        s.tidy_timers();
        if !s.idx.owner_changes.is_empty() {
            self.sync_owners(s);
        }
        let Some(j) = &self.journal else { return };
        let Some(dirty) = s.idx.dirty.as_mut() else {
            return;
        };
        if dirty.is_empty() {
            return;
        }
        let mut ids = std::mem::take(dirty);
        ids.sort_unstable();
        ids.dedup();
        for id in &ids {
            j.append(id, &s.state_of(id));
        }
        ids.clear();
        s.idx.dirty = Some(ids);
    }

    /// Writes a snapshot of every shard, one shard locked at a time, while the log goes
    /// on in a new segment. Records of that segment that the snapshot already holds are
    /// replayed over it harmlessly: each is a whole state, and the last one wins.
    fn compact(&self) -> Result<()> {
        let Some(j) = &self.journal else {
            return Err(Error::invalid("this store keeps no log to compact"));
        };
        let first = j.begin_compaction()?;
        let written = (|| {
            let mut w = SnapshotWriter::create(&j.dir, first)?;
            let now = self.clock.now_ms();
            for shard in self.shards.iter() {
                let states: Vec<(SessionId, State)> = {
                    let s = shard.lock();
                    s.ids()
                        .into_iter()
                        .map(|id| (id, s.state_of(&id)))
                        .collect()
                };
                for (id, st) in &states {
                    if st.alive_at(now) {
                        w.add(id, st)?;
                    }
                }
            }
            w.finish(&j.dir)
        })();
        j.end_compaction(first, written)
    }

    /// Runs a single-shard step on `id`'s shard, keeping the owner index in sync.
    fn on_shard<T>(&self, id: &SessionId, f: impl FnOnce(&mut Shard, &Ctx) -> T) -> T {
        let mut s = self.shard(id);
        let ctx = self.ctx();
        s.idx.counters.ops += 1;
        let out = f(&mut s, &ctx);
        self.settle(&mut s);
        out
    }

    /// Runs a step that may create a session; makes room by eviction when configured.
    fn creating(
        &self,
        id: &SessionId,
        f: impl Fn(&mut Shard, &Ctx) -> Result<Reply>,
    ) -> Result<Reply> {
        let mut tries = 0;
        loop {
            match self.on_shard(id, &f) {
                Err(Error::Full)
                    if self.opts.eviction == Eviction::Lru && tries < MAX_EVICTION_TRIES =>
                {
                    tries += 1;
                    if !self.evict_one(id) {
                        return Err(Error::Full);
                    }
                }
                other => return other,
            }
        }
    }

    /// Evicts the session with the oldest recorded access across all shards, but for
    /// `keep` (the one being written, which is making room for itself).
    fn evict_one(&self, keep: &SessionId) -> bool {
        let mut best: Option<(u64, SessionId, usize)> = None;
        for (i, s) in self.shards.iter().enumerate() {
            if let Some((at, id)) = s.lock().lru_head(keep) {
                if best.is_none_or(|(b, _, _)| at < b) {
                    best = Some((at, id, i));
                }
            }
        }
        if let Some((at, id, i)) = best {
            let mut s = self.shards[i].lock();
            let ctx = self.ctx();
            if s.lru_head(keep) == Some((at, id)) {
                s.remove(&id, Gone::Evicted, &ctx);
            }
            self.settle(&mut s);
            // Also when another writer changed the head meanwhile: the next try sees it.
            return true;
        }
        false
    }

    /// `Fetch`; a rotated-away id answers `Rotated` (the store follows it).
    fn fetch(&self, id: SessionId, touch: bool) -> Result<Reply> {
        match self.on_shard(&id, |s, ctx| s.fetch(id, touch, ctx)) {
            Step::Done(r) => r,
            Step::Redirect(to) => Err(Error::Rotated { to }),
            Step::Queued(_) => Err(Error::Backend("a fetch cannot queue".into())),
        }
    }

    /// Asks for the lock: decided at once (granted, or refused), or queued with the
    /// waiter woken by `wake` and the deadline of its wait (which the store enforces
    /// itself when `timed`).
    fn ask_lock(
        &self,
        id: SessionId,
        lease_ms: u64,
        wait_ms: u64,
        timed: bool,
        wake: impl FnOnce() -> WakeFn,
    ) -> Result<Asked> {
        if lease_ms == 0 {
            return Err(Error::invalid("lock lease must be greater than 0"));
        }
        let (step, deadline) = self.on_shard(&id, |s, ctx| {
            (
                s.lock(id, lease_ms, wait_ms, timed, wake, ctx),
                ctx.now.saturating_add(wait_ms),
            )
        });
        match step {
            Step::Done(r) => r.map(Asked::Decided),
            Step::Redirect(to) => Err(Error::Rotated { to }),
            Step::Queued(w) => Ok(Asked::Queued(w, deadline)),
        }
    }

    fn lock(&self, id: SessionId, lease_ms: u64, wait_ms: u64) -> Result<Reply> {
        let parker = Arc::new(Parker::new());
        let wake = || -> WakeFn {
            let p = parker.clone();
            Box::new(move || p.unpark())
        };
        let (w, deadline) = match self.ask_lock(id, lease_ms, wait_ms, false, wake)? {
            Asked::Decided(r) => return Ok(r),
            Asked::Queued(w, deadline) => (w, deadline),
        };
        loop {
            self.clock.park(&parker, Some(deadline));
            let mut s = self.shard(&id);
            if let Some(out) = w.outcome.lock().take() {
                return out.map(|(token, record)| Reply::Locked { token, record });
            }
            if self.clock.now_ms() >= deadline {
                s.cancel_wait(id, &w);
                return Err(Error::LockTimeout);
            }
        }
    }

    /// The lock, waited for by an async task instead of a blocked thread, on any
    /// executor: the task is woken through its `Waker` by whoever ends the wait (the
    /// holder's release, the session's end, or the actor thread at the deadline), so no
    /// runtime timer is needed. Dropping the future (the client went away) leaves the
    /// queue, and gives back a lock that was granted in the meantime.
    async fn lock_async(&self, id: SessionId, lease_ms: u64, wait_ms: u64) -> Result<Reply> {
        let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
        let wake = || -> WakeFn {
            let slot = slot.clone();
            Box::new(move || {
                let waker = slot.lock().take();
                if let Some(w) = waker {
                    w.wake();
                }
            })
        };
        let (w, deadline) = match self.ask_lock(id, lease_ms, wait_ms, true, wake)? {
            Asked::Decided(r) => return Ok(r),
            Asked::Queued(w, deadline) => (w, deadline),
        };
        let mut guard = WaitGuard {
            inner: self,
            id,
            waiter: Some(w.clone()),
        };
        std::future::poll_fn(|cx| {
            // The waker is in place before the outcome is read: a wake-up in between
            // finds it, so none is lost.
            *slot.lock() = Some(cx.waker().clone());
            let mut s = self.shard(&id);
            if let Some(out) = w.outcome.lock().take() {
                guard.waiter = None;
                return Poll::Ready(out.map(|(token, record)| Reply::Locked { token, record }));
            }
            if self.clock.now_ms() >= deadline {
                s.cancel_wait(id, &w);
                guard.waiter = None;
                return Poll::Ready(Err(Error::LockTimeout));
            }
            Poll::Pending
        })
        .await
    }

    /// `Destroy`; on a rotated-away id, removes the alias and answers `Rotated` so that
    /// the store destroys the successor too.
    fn destroy(&self, id: SessionId) -> Result<Reply> {
        match self.on_shard(&id, |s, ctx| s.destroy(id, ctx)) {
            Step::Done(r) => r,
            Step::Redirect(to) => Err(Error::Rotated { to }),
            Step::Queued(_) => Err(Error::Backend("a destroy cannot queue".into())),
        }
    }

    fn rotate(&self, id: SessionId, token: Option<u64>) -> Result<Reply> {
        let to = SessionId::generate();
        let (a, b) = (self.slot(&id), self.slot(&to));
        // Both shards are held for the move, always in index order, so no reader ever sees
        // the session under neither id (or both).
        let (mut first, mut second) = if a == b {
            (self.shards[a].lock(), None)
        } else if a < b {
            let x = self.shards[a].lock();
            (x, Some(self.shards[b].lock()))
        } else {
            let y = self.shards[b].lock();
            (self.shards[a].lock(), Some(y))
        };
        let ctx = self.ctx();
        first.idx.counters.ops += 1;
        let entry = match first.take_for_rotation(id, to, token, &ctx) {
            Ok(e) => e,
            Err(e) => {
                // A refusal may still have changed state (a lease that ran out passed the
                // lock on): logged before the answer, as for every step.
                self.settle(&mut first);
                return Err(e);
            }
        };
        let owner = entry.owner();
        match second.as_mut() {
            Some(s) => s.put_rotated(to, entry, &ctx),
            None => first.put_rotated(to, entry, &ctx),
        }
        if let Some(o) = owner {
            let mut idx = self.owners[self.owner_slot(&o)].lock();
            if let Some(set) = idx.get_mut(&o) {
                set.remove(&id);
                set.insert(to);
            }
        }
        // The new id's record first, then the old id's alias: a log cut between the two
        // then holds the session under its new id rather than an alias to nothing. (Both
        // settle: sessions found expired on the way may have left owner changes.)
        match second.as_mut() {
            Some(s) => {
                self.settle(s);
                self.settle(&mut first);
            }
            None => self.settle(&mut first),
        }
        Ok(Reply::Rotated(to))
    }

    fn sessions_of(&self, owner: &str) -> Vec<SessionId> {
        let ids: Vec<SessionId> = self.owners[self.owner_slot(owner)]
            .lock()
            .get(owner)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let mut live: Vec<SessionId> = ids
            .into_iter()
            .filter(|id| {
                self.on_shard(id, |s, ctx| s.owner_of(id, ctx))
                    .is_some_and(|o| &*o == owner)
            })
            .collect();
        live.sort();
        live
    }

    fn destroy_owned(&self, owner: &str) -> usize {
        let mut n = 0;
        // Sessions can gain this owner while we work; go again until none is left, with a
        // bound so a writer that keeps adding cannot hold us here forever.
        for _ in 0..MAX_OWNER_PASSES {
            let ids = self.sessions_of(owner);
            if ids.is_empty() {
                break;
            }
            for id in ids {
                let gone = self.on_shard(&id, |s, ctx| {
                    if s.owner_of(&id, ctx).is_some_and(|o| &*o == owner) {
                        matches!(s.destroy(id, ctx), Step::Done(Ok(Reply::Destroyed(true))))
                    } else {
                        false
                    }
                });
                n += usize::from(gone);
            }
        }
        n
    }

    /// A session's place in the list order: its hash with the bits that choose its shard
    /// moved to the top, so that each shard's sessions are one run of keys and a cursor
    /// (the next key) names both the shard and the place in it. The order does not
    /// depend on the maps' layout, so a session alive for the whole scan is never skipped.
    fn list_key(id: &SessionId) -> u64 {
        id.hash64().rotate_right(32).reverse_bits()
    }

    /// One page of `Command::List`: the live sessions with the smallest keys from
    /// `cursor` on (at least `count` of them when there are, plus any sharing the last
    /// one's key), and the key after the last.
    fn list(&self, cursor: u64, count: usize) -> (Vec<SessionId>, u64) {
        let bits = self.shards.len().trailing_zeros();
        let mut out: Vec<SessionId> = Vec::new();
        let mut from = cursor;
        loop {
            // The run of keys of the shard `from` is in.
            let run = if bits == 0 { 0 } else { from >> (64 - bits) };
            let to: u128 = (u128::from(run) + 1) << (64 - bits);
            let slot = (from.reverse_bits() as usize) & (self.shards.len() - 1);
            let mut found = Vec::new();
            {
                let s = self.shards[slot].lock();
                let now = self.clock.now_ms();
                s.page(Inner::list_key, from, to, now, &mut found);
            }
            let want = count - out.len();
            if found.len() > want {
                found.sort_unstable();
                let last = found[want - 1].0;
                out.extend(found.iter().take_while(|(k, _)| *k <= last).map(|x| x.1));
                return (out, last.checked_add(1).unwrap_or(0));
            }
            out.extend(found.into_iter().map(|x| x.1));
            match u64::try_from(to) {
                Ok(next) => from = next,
                Err(_) => return (out, 0),
            }
            if out.len() >= count {
                return (out, from);
            }
        }
    }

    /// `Command::Clear`: destroys every session, shard by shard.
    fn clear(&self) -> usize {
        let mut n = 0;
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            let ctx = self.ctx();
            s.idx.counters.ops += 1;
            // Live sessions only: an expired one is gone already and gets no tombstone,
            // as on every backend.
            for id in s.live_ids(ctx.now) {
                if let Step::Done(Ok(Reply::Destroyed(true))) = s.destroy(id, &ctx) {
                    n += 1;
                }
            }
            self.settle(&mut s);
        }
        n
    }
}

/// The first answer to a lock request.
enum Asked {
    Decided(Reply),
    Queued(Arc<Waiter>, u64),
}

/// Ends an async wait whose future was dropped: out of the queue, or, if the lock was
/// granted meanwhile, unlocked for the next in line.
struct WaitGuard<'a> {
    inner: &'a Inner,
    id: SessionId,
    waiter: Option<Arc<Waiter>>,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else { return };
        let mut s = self.inner.shard(&self.id);
        let ctx = self.inner.ctx();
        match w.outcome.lock().take() {
            Some(Ok((token, _))) => {
                let _ = s.unlock(self.id, token, &ctx);
            }
            Some(Err(_)) => {}
            None => s.cancel_wait(self.id, &w),
        }
        self.inner.settle(&mut s);
    }
}

impl Memory {
    fn apply(&self, cmd: Command) -> Result<Reply> {
        let inner = &*self.inner;
        match cmd {
            Command::Fetch { id, touch } => inner.fetch(id, touch),
            Command::Write {
                id,
                data,
                opts,
                ttl_ms,
            } => {
                check_ttl(ttl_ms)?;
                inner.creating(&id, |s, ctx| s.write(id, data.clone(), opts, ttl_ms, ctx))
            }
            Command::Patch {
                id,
                ops,
                opts,
                ttl_ms,
            } => {
                check_ttl(ttl_ms)?;
                inner.creating(&id, |s, ctx| s.patch(id, &ops, opts, ttl_ms, ctx))
            }
            Command::Lock {
                id,
                lease_ms,
                wait_ms,
            } => inner.lock(id, lease_ms, wait_ms),
            Command::Unlock { id, token } => inner.on_shard(&id, |s, ctx| s.unlock(id, token, ctx)),
            Command::Touch { id, ttl_ms } => {
                check_ttl(ttl_ms)?;
                inner.on_shard(&id, |s, ctx| s.touch(id, ttl_ms, ctx))
            }
            Command::Destroy { id } => inner.destroy(id),
            Command::Rotate { id, token } => inner.rotate(id, token),
            Command::Owned { owner } => {
                check_owner(&owner)?;
                Ok(Reply::Sessions(inner.sessions_of(&owner)))
            }
            Command::DestroyOwned { owner } => {
                check_owner(&owner)?;
                Ok(Reply::Count(inner.destroy_owned(&owner)))
            }
            Command::List { cursor, count } => {
                check_count(count)?;
                let (ids, next) = inner.list(cursor, count);
                Ok(Reply::Page { ids, next })
            }
            Command::Clear => Ok(Reply::Count(inner.clear())),
        }
    }
}

/// Whether a command can change the store (and so, with persistence, is refused once
/// the log failed and answers only once its change is durable).
fn changes(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::Fetch { .. } | Command::Owned { .. } | Command::List { .. }
    )
}

impl Memory {
    fn count(&self, cmd: &Command) {
        let slot = match cmd {
            Command::Fetch { id, .. }
            | Command::Write { id, .. }
            | Command::Patch { id, .. }
            | Command::Lock { id, .. }
            | Command::Unlock { id, .. }
            | Command::Touch { id, .. }
            | Command::Destroy { id }
            | Command::Rotate { id, .. } => self.inner.slot(id),
            _ => 0,
        };
        self.inner.tally[slot].0[CommandCounts::index(cmd)].fetch_add(1, Ordering::Relaxed);
    }
}

impl Backend for Memory {
    fn execute(&self, cmd: Command) -> Result<Reply> {
        self.count(&cmd);
        let Some(j) = &self.inner.journal else {
            return self.apply(cmd);
        };
        if !changes(&cmd) {
            return self.apply(cmd);
        }
        j.check()?;
        let r = self.apply(cmd);
        j.commit()?;
        r
    }

    fn lock_async(&self, id: SessionId, lease_ms: u64, wait_ms: u64) -> BoxFuture<'_> {
        self.inner.tally[self.inner.slot(&id)].0[3].fetch_add(1, Ordering::Relaxed);
        Box::pin(async move {
            if let Some(j) = &self.inner.journal {
                j.check()?;
            }
            let r = self.inner.lock_async(id, lease_ms, wait_ms).await;
            if let Some(j) = &self.inner.journal {
                j.commit()?;
            }
            r
        })
    }

    fn compact(&self) -> Result<()> {
        self.inner.compact()
    }

    fn waits_without_thread(&self) -> bool {
        true
    }

    fn stats(&self) -> Stats {
        let mut st = Stats::default();
        for s in self.inner.shards.iter() {
            let s = s.lock();
            let c = s.idx.counters;
            let (sessions, tombstones, aliases, timers) = s.sizes();
            st.sessions += sessions as u64;
            st.tombstones += tombstones as u64;
            st.aliases += aliases as u64;
            st.timers += timers as u64;
            st.operations += c.ops;
            st.lock_waits += c.lock_waits;
            st.lock_timeouts += c.lock_timeouts;
            st.expirations += c.expirations;
            st.evictions += c.evictions;
        }
        st.memory = self.inner.bytes.load(Ordering::Relaxed);
        let mut by_kind = [0u64; 9];
        for t in self.inner.tally.iter() {
            for (sum, c) in by_kind.iter_mut().zip(&t.0) {
                *sum += c.load(Ordering::Relaxed);
            }
        }
        st.commands = CommandCounts::from_array(by_kind);
        if let Some(j) = &self.inner.journal {
            st.persistence = j.stats();
        }
        st
    }
}
