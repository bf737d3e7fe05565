//! `sessync_store`: a store opened from a URL, and the direct operations on it.

use parking_lot::Mutex;
use std::{
    ffi::c_char,
    panic::{AssertUnwindSafe, catch_unwind, resume_unwind},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use super::{
    buf::sessync_buf,
    error::sessync_error,
    guard::{Fail, fail, opt_str, put, status, try_id, try_mut, try_ref, try_str, try_utf8},
    options::sessync_options,
    status::sessync_status,
};
use crate::{
    command::{PatchOp, WriteOpts},
    flow::{FlowOptions, Sessions},
    session::{MAX_ID_LEN, SessionData},
    store::Store,
};

/// Flag of `sessync_store_patch` and `sessync_store_incr`: create the session if absent.
pub const SESSYNC_WRITE_CREATE: u32 = 1;
/// Flag of the write functions: release the lock named by `token` in the same step.
pub const SESSYNC_WRITE_RELEASE: u32 = 2;
/// Longest session id, in bytes (a buffer for one needs one more, for the NUL).
pub const SESSYNC_ID_MAX_LEN: usize = 48;
const _: () = assert!(SESSYNC_ID_MAX_LEN == MAX_ID_LEN);

/// A session store: in the process (`mem://`), or, later, a daemon or Redis.
///
/// Thread-safe: one handle may be shared and used concurrently by all threads.
/// Life cycle: `sessync_store_open` → any operations, from any threads →
/// `sessync_store_free`. Sessions begun on it keep the store alive until they end.
#[derive(Debug)]
pub struct sessync_store {
    pub(crate) sessions: Sessions,
    /// Set when a call on this handle panicked: later calls refuse with `PANIC`.
    poisoned: AtomicBool,
}

/// Counters and sizes of a store (`sessync_store_stats`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct sessync_stats {
    /// Sessions held (expired ones not yet swept included).
    pub sessions: u64,
    /// Tombstones of destroyed or rotated ids still refusing writes.
    pub tombstones: u64,
    /// Rotated ids still answering reads.
    pub aliases: u64,
    /// Operations applied.
    pub operations: u64,
    /// Lock requests that found the lock taken.
    pub lock_waits: u64,
    /// Lock requests that gave up.
    pub lock_timeouts: u64,
    /// Sessions removed because they expired.
    pub expirations: u64,
    /// Sessions evicted to make room.
    pub evictions: u64,
    /// What the sessions count against `max_memory` (in-process stores; 0 elsewhere).
    pub memory: u64,
    /// Commands applied by kind: fetches.
    pub ops_fetch: u64,
    /// Whole writes.
    pub ops_write: u64,
    /// Patches (set, remove, increment, merge patch, owner).
    pub ops_patch: u64,
    /// Lock requests.
    pub ops_lock: u64,
    /// Unlocks.
    pub ops_unlock: u64,
    /// Touches.
    pub ops_touch: u64,
    /// Destroys.
    pub ops_destroy: u64,
    /// Rotations.
    pub ops_rotate: u64,
    /// Owner queries, list pages and clears.
    pub ops_other: u64,
    /// 1 when the store keeps a persistence log (sessyncd with `--dir`), else 0.
    pub persist_enabled: u64,
    /// Records appended to the log since the start.
    pub persist_records: u64,
    /// Bytes of log written since the last snapshot.
    pub persist_log_bytes: u64,
    /// Size of the last snapshot.
    pub persist_snapshot_bytes: u64,
    /// Compactions finished since the start.
    pub persist_compactions: u64,
    /// `fdatasync` calls since the start.
    pub persist_fsyncs: u64,
    /// Records appended but not yet durable under the fsync policy.
    pub persist_pending: u64,
    /// 1 when writing the log failed (changes are then refused), else 0.
    pub persist_failed: u64,
    /// Sessions restored at the start.
    pub persist_restored: u64,
}

#[cfg(test)]
thread_local! {
    /// Makes the next store call on this thread panic inside its guard (tests only).
    pub(crate) static INJECT_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on the store behind `store`, poisoning the handle if `f` panics.
pub(crate) fn with_store(
    store: *const sessync_store,
    f: impl FnOnce(&sessync_store) -> Result<(), Fail>,
) -> sessync_status {
    status((|| {
        let h = try_ref(store, "store")?;
        if h.poisoned.load(Ordering::Acquire) {
            return Err(fail(
                sessync_status::Panic,
                "the store handle was poisoned by an earlier internal error; only sessync_store_free works",
            ));
        }
        match catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            if INJECT_PANIC.with(|p| p.replace(false)) {
                panic!("injected panic");
            }
            f(h)
        })) {
            Ok(r) => r,
            Err(p) => {
                h.poisoned.store(true, Ordering::Release);
                resume_unwind(p)
            }
        }
    })())
}

impl sessync_store {
    fn store(&self) -> &Store {
        self.sessions.store()
    }

    /// The record, or `NOT_FOUND` (absent or expired, or rotated away).
    ///
    /// The store answers a rotated-away id with its successor's record during
    /// `rotate_grace`; the C ABI does not: callers hand it ids that came from clients
    /// (express-session's store, PHP's handler), and answering an old id with the new
    /// session, or its id, would give a login's session to whoever planted the old id.
    pub(crate) fn fetch(
        &self,
        id: &crate::session::SessionId,
    ) -> Result<crate::session::Record, Fail> {
        match self.store().fetch(id)? {
            Some(rec) if rec.id == *id => Ok(rec),
            _ => Err(fail(
                sessync_status::NotFound,
                "session not found (or expired, or rotated away)",
            )),
        }
    }
}

fn write_opts(token: u64, flags: u32, allowed: u32) -> Result<WriteOpts, Fail> {
    if flags & !allowed != 0 {
        return Err(fail(
            sessync_status::InvalidArgument,
            &format!("unknown flags {:#x}", flags & !allowed),
        ));
    }
    Ok(WriteOpts {
        expected_version: None,
        token: (token != 0).then_some(token),
        create: flags & SESSYNC_WRITE_CREATE != 0,
        release: flags & SESSYNC_WRITE_RELEASE != 0,
    })
}

/// Opens a store from a URL such as `mem://?ttl=30m&max_sessions=100000`.
///
/// `options` may be NULL (all defaults); it is copied, and may be freed right after. Its
/// store options are added to the URL's (an option given in both is an error).
///
/// On `SESSYNC_STATUS_OK`, writes `*store_out`, which the caller frees with
/// `sessync_store_free`; otherwise leaves it unchanged. A malformed URL or option is
/// `SESSYNC_STATUS_INVALID_ARGUMENT`, with the last error naming the part that is wrong.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_open(
    url: *const c_char,
    options: *const sessync_options,
    store_out: *mut *mut sessync_store,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status((|| {
            let url = try_str(url, "url")?;
            let out = try_mut(store_out, "store_out")?;
            let (full, flow) = full_url(url, options);
            let sessions = Sessions::new(Store::open(&full)?, flow)?;
            *out = handle(sessions);
            Ok(())
        })())
    })
}

/// The URL with the options' store settings added to its query, and the flow settings.
fn full_url(url: &str, options: *const sessync_options) -> (String, FlowOptions) {
    // SAFETY: the header requires NULL or a live options object.
    let opts = unsafe { options.as_ref() };
    let mut full = url.to_string();
    let mut flow = FlowOptions::default();
    if let Some(o) = opts {
        flow = o.flow.clone();
        for (k, v) in &o.store_params {
            full.push(if full.contains('?') { '&' } else { '?' });
            full.push_str(k);
            full.push('=');
            full.extend(form_urlencoded::byte_serialize(v.as_bytes()));
        }
    }
    (full, flow)
}

fn handle(sessions: Sessions) -> *mut sessync_store {
    Box::into_raw(Box::new(sessync_store {
        sessions,
        poisoned: AtomicBool::new(false),
    }))
}

/// The stores `sessync_store_open_shared` keeps, and the process they belong to.
struct SharedStores {
    pid: u32,
    stores: Vec<(String, FlowOptions, Sessions)>,
    /// The stores of the processes this one was forked from: kept, never used or dropped
    /// (their threads are gone, and their connections belong to the parent).
    inherited: Vec<(String, FlowOptions, Sessions)>,
}

static SHARED: Mutex<SharedStores> = Mutex::new(SharedStores {
    pid: 0,
    stores: Vec::new(),
    inherited: Vec::new(),
});

fn same_flow(a: &FlowOptions, b: &FlowOptions) -> bool {
    a.cookie == b.cookie && a.lock_lease == b.lock_lease && a.lock_wait == b.lock_wait
}

/// Opens a store like `sessync_store_open`, but one per process for each URL and
/// options: the first call opens it, later calls with the same URL and the same options
/// get a new handle on the same store (its connections, its in-process sessions). For
/// runtimes that free everything at the end of each request, such as PHP under php-fpm,
/// where a worker would otherwise connect to sessyncd again on every request and `mem://`
/// would forget its sessions.
///
/// Each handle is freed with `sessync_store_free` as usual; the store itself lives until
/// the process ends. Fork-safe: in a process forked after the store was opened, the first
/// call opens a fresh store for that process (the parent's is left alone, never used nor
/// freed). On `SESSYNC_STATUS_OK`, writes `*store_out`; otherwise leaves it unchanged and
/// keeps nothing.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_open_shared(
    url: *const c_char,
    options: *const sessync_options,
    store_out: *mut *mut sessync_store,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        status((|| {
            let url = try_str(url, "url")?;
            let out = try_mut(store_out, "store_out")?;
            let (full, flow) = full_url(url, options);
            let pid = std::process::id();
            let lookup = |shared: &mut SharedStores| {
                if shared.pid != pid {
                    // Stores of the parent process: their threads did not survive the
                    // fork, so they are neither used nor dropped here.
                    let parents = std::mem::take(&mut shared.stores);
                    shared.inherited.extend(parents);
                    shared.pid = pid;
                }
                shared
                    .stores
                    .iter()
                    .find(|(u, f, _)| *u == full && same_flow(f, &flow))
                    .map(|(_, _, s)| s.clone())
            };
            let found = lookup(&mut SHARED.lock());
            let sessions = match found {
                Some(s) => s,
                None => {
                    // Opened without the lock held (a connect may take a while), then
                    // kept unless another thread kept one first.
                    let opened = Sessions::new(Store::open(&full)?, flow.clone())?;
                    let mut shared = SHARED.lock();
                    match lookup(&mut shared) {
                        Some(s) => s,
                        None => {
                            shared
                                .stores
                                .push((full.clone(), flow.clone(), opened.clone()));
                            opened
                        }
                    }
                }
            };
            *out = handle(sessions);
            Ok(())
        })())
    })
}

/// Releases the caller's handle. Sessions still open on the store keep it alive. NULL is
/// a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_free(store: *mut sessync_store) {
    ffi_guard!({
        if !store.is_null() {
            // SAFETY: not NULL; it came from `sessync_store_open` (Box::into_raw) and the
            // contract forbids freeing it twice or using it afterwards.
            drop(unsafe { Box::from_raw(store) });
        }
    })
}

/// Fetches a session's data as a JSON object.
///
/// On `SESSYNC_STATUS_OK`, writes `*json_out` (the caller frees it with
/// `sessync_buf_free`) and, if `version_out` is not NULL, `*version_out`; otherwise leaves
/// them unchanged. An absent or expired session is `SESSYNC_STATUS_NOT_FOUND`, and so is an
/// id rotated away: its successor is never answered for it (that would give a login's
/// session to whoever knew the old id).
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_fetch(
    store: *const sessync_store,
    id: *const c_char,
    json_out: *mut sessync_buf,
    version_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let out = try_mut(json_out, "json_out")?;
            let rec = h.fetch(&id)?;
            *out = sessync_buf::from_bytes(rec.data.to_json().as_bytes());
            put(version_out, rec.version);
            Ok(())
        })
    })
}

/// Fetches a session's whole record as JSON: `{"id","data","version","created",
/// "last_access","expires_at","owner","ttl"}` (times in ms since the Unix epoch; `owner`
/// is null when unset; `ttl` is the session's own idle TTL in ms, null when it follows the
/// store's).
///
/// On `SESSYNC_STATUS_OK`, writes `*json_out` (free it with `sessync_buf_free`);
/// otherwise leaves it unchanged. Absent or expired: `SESSYNC_STATUS_NOT_FOUND`.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_fetch_record(
    store: *const sessync_store,
    id: *const c_char,
    json_out: *mut sessync_buf,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let out = try_mut(json_out, "json_out")?;
            let r = h.fetch(&id)?;
            let owner = match &r.owner {
                Some(o) => serde_json::Value::String(o.to_string()).to_string(),
                None => "null".to_string(),
            };
            let ttl = r.ttl_ms.map_or("null".to_string(), |t| t.to_string());
            let text = format!(
                r#"{{"id":"{}","data":{},"version":{},"created":{},"last_access":{},"expires_at":{},"owner":{},"ttl":{}}}"#,
                r.id,
                r.data.to_json(),
                r.version,
                r.created,
                r.last_access,
                r.expires_at,
                owner,
                ttl
            );
            *out = sessync_buf::from_bytes(text.as_bytes());
            Ok(())
        })
    })
}

/// Replaces a session's data with the JSON object `json` (creating the session if absent).
///
/// `expected_version` may be NULL; otherwise the write is a compare-and-swap that fails
/// with `SESSYNC_STATUS_CONFLICT` unless the session has that version (0: does not exist).
/// `token` is the fencing token of the lock the caller holds, or 0. `flags` may be
/// `SESSYNC_WRITE_RELEASE` (and `SESSYNC_WRITE_CREATE`, which changes nothing: a write
/// always creates). On `SESSYNC_STATUS_OK`, writes `*version_out` if not NULL.
/// Invalid UTF-8, invalid JSON, a non-object, or an oversized session each get their own
/// status and change nothing.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_write(
    store: *const sessync_store,
    id: *const c_char,
    json: *const u8,
    json_len: usize,
    expected_version: *const u64,
    token: u64,
    flags: u32,
    version_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let text = try_utf8(json, json_len, "json")?;
            let mut opts = write_opts(token, flags, SESSYNC_WRITE_CREATE | SESSYNC_WRITE_RELEASE)?;
            // SAFETY: the header requires NULL or a readable uint64_t.
            opts.expected_version = unsafe { expected_version.as_ref() }.copied();
            let data = SessionData::from_json(text)?;
            let v = h.store().write(&id, data, opts)?;
            put(version_out, v);
            Ok(())
        })
    })
}

/// Applies an RFC 7396 JSON Merge Patch (a JSON object: `null` deletes a key, objects
/// merge) atomically.
///
/// `token`: the caller's fencing token or 0. `flags`: `SESSYNC_WRITE_CREATE` (create the
/// session if absent; otherwise absent is `SESSYNC_STATUS_NOT_FOUND`),
/// `SESSYNC_WRITE_RELEASE`. On `SESSYNC_STATUS_OK`, writes `*version_out` if not NULL.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_patch(
    store: *const sessync_store,
    id: *const c_char,
    json: *const u8,
    json_len: usize,
    token: u64,
    flags: u32,
    version_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let text = try_utf8(json, json_len, "json")?;
            let opts = write_opts(token, flags, SESSYNC_WRITE_CREATE | SESSYNC_WRITE_RELEASE)?;
            let v = h.store().patch(&id, text, opts)?;
            put(version_out, v);
            Ok(())
        })
    })
}

/// Adds `by` to the integer at `key` (absent counts as 0), atomically.
///
/// `token` and `flags` as for `sessync_store_patch`. On `SESSYNC_STATUS_OK`, writes the
/// sum to `*value_out` if not NULL. A value that is not an integer, or an overflow, is
/// `SESSYNC_STATUS_NOT_A_NUMBER` and changes nothing.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_incr(
    store: *const sessync_store,
    id: *const c_char,
    key: *const c_char,
    by: i64,
    token: u64,
    flags: u32,
    value_out: *mut i64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let key = try_str(key, "key")?;
            let opts = write_opts(token, flags, SESSYNC_WRITE_CREATE | SESSYNC_WRITE_RELEASE)?;
            let p = h
                .store()
                .apply(&id, vec![PatchOp::Incr(key.to_string(), by)], opts)?;
            put(value_out, p.values.first().copied().unwrap_or_default());
            Ok(())
        })
    })
}

/// Takes a session's lock for `lease_ms`, waiting up to `wait_ms` behind earlier callers
/// (0: fail at once with `SESSYNC_STATUS_LOCK_TIMEOUT` if it is taken).
///
/// On `SESSYNC_STATUS_OK`, writes the fencing token (greater than every earlier token of
/// this session) to `*token_out`. The lease ends by itself if the holder never unlocks;
/// writes presenting the old token are then refused with `SESSYNC_STATUS_STALE_TOKEN`.
/// Blocks the calling thread while it waits.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_lock(
    store: *const sessync_store,
    id: *const c_char,
    lease_ms: u64,
    wait_ms: u64,
    token_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let out = try_mut(token_out, "token_out")?;
            let (t, _) = h.store().lock(
                &id,
                Duration::from_millis(lease_ms),
                Duration::from_millis(wait_ms),
            )?;
            *out = t;
            Ok(())
        })
    })
}

/// Releases the lock held with `token`; the next waiter, if any, gets it.
/// A token that is not the holder's is `SESSYNC_STATUS_STALE_TOKEN`.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_unlock(
    store: *const sessync_store,
    id: *const c_char,
    token: u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            h.store().unlock(&id, token)?;
            Ok(())
        })
    })
}

/// Records an access (rolling idle expiry). Writes only when the last recorded access is
/// older than the store's touch interval; `*written_out` (if not NULL) says whether it did.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_touch(
    store: *const sessync_store,
    id: *const c_char,
    written_out: *mut bool,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let t = h.store().touch(&id)?;
            put(written_out, t.written);
            Ok(())
        })
    })
}

/// Touches a session and gives it its own idle TTL of `ttl_ms` (1 ms to one year) in the
/// same step: its expiry becomes now + `ttl_ms` (capped by the store's `absolute_ttl`),
/// and later writes and touches keep that TTL (express-session's `touch` with the
/// session's `cookie.maxAge`). Always written; `*written_out` (if not NULL) says so. An
/// absent session is `SESSYNC_STATUS_NOT_FOUND`; a TTL out of range is
/// `SESSYNC_STATUS_INVALID_ARGUMENT` and changes nothing.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_touch_ttl(
    store: *const sessync_store,
    id: *const c_char,
    ttl_ms: u64,
    written_out: *mut bool,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let t = h
                .store()
                .touch_with_ttl(&id, Duration::from_millis(ttl_ms))?;
            put(written_out, t.written);
            Ok(())
        })
    })
}

/// One page of the live sessions' ids, like Redis's `SCAN`: start with `cursor` 0, pass
/// back each `*next_cursor_out` until it is 0. Every session alive for the whole scan is
/// listed at least once (Redis may repeat one); `count` (at least 1) is a hint of the
/// page size. For express-session's `all`/`length`, admin pages, "who is logged in".
///
/// On `SESSYNC_STATUS_OK`, writes `*ids_out` (a JSON array of ids; free it with
/// `sessync_buf_free`) and `*next_cursor_out`; otherwise leaves them unchanged. A cursor
/// this store did not hand out may be `SESSYNC_STATUS_INVALID_ARGUMENT`.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_list(
    store: *const sessync_store,
    cursor: u64,
    count: usize,
    ids_out: *mut sessync_buf,
    next_cursor_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let out = try_mut(ids_out, "ids_out")?;
            let next_out = try_mut(next_cursor_out, "next_cursor_out")?;
            let (ids, next) = h.store().list(cursor, count)?;
            let list: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
            let text = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
            *out = sessync_buf::from_bytes(text.as_bytes());
            *next_out = next;
            Ok(())
        })
    })
}

/// Destroys every session of the store (tombstoned as `sessync_store_destroy` does, so
/// requests in flight cannot bring one back) and writes how many live sessions there were
/// to `*count_out` (if not NULL). On Redis, session by session: atomic per session, not
/// across them.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_clear(
    store: *const sessync_store,
    count_out: *mut usize,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let n = h.store().clear()?;
            put(count_out, n);
            Ok(())
        })
    })
}

/// Destroys a session and leaves a tombstone: writes for this id are refused with
/// `SESSYNC_STATUS_DESTROYED` for the store's `tombstone_ttl`. `*existed_out` (if not NULL)
/// says whether a live session was there.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_destroy(
    store: *const sessync_store,
    id: *const c_char,
    existed_out: *mut bool,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let existed = h.store().destroy(&id)?;
            put(existed_out, existed);
            Ok(())
        })
    })
}

/// Moves a session to a fresh id carrying the same data, owner and lock. For the store's
/// `rotate_grace`, requests in flight on the old id follow the session to the new one at
/// commit; no other call answers the old id with the new session (reads of it are
/// `SESSYNC_STATUS_NOT_FOUND`, writes `SESSYNC_STATUS_ROTATED`), and then it is gone.
///
/// `token`: the caller's fencing token or 0. The new id is written NUL-terminated into
/// `id_out` (`id_out_len` bytes; `SESSYNC_ID_MAX_LEN + 1` always suffice) and its length
/// into `*id_len_out` if that is not NULL. If `id_out` is NULL or `id_out_len` too small,
/// returns `SESSYNC_STATUS_INSUFFICIENT_SIZE` with the needed length (without the NUL) in
/// `*id_len_out` (if not NULL), before looking the session up: the rotation does not
/// happen.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_rotate(
    store: *const sessync_store,
    id: *const c_char,
    token: u64,
    id_out: *mut c_char,
    id_out_len: usize,
    id_len_out: *mut usize,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            // Refuse a short buffer before rotating.
            super::id::check_room(id_out, id_out_len, id_len_out)?;
            let new = h.store().rotate(&id, (token != 0).then_some(token))?;
            super::id::copy_id(&new, id_out, id_out_len, id_len_out)
        })
    })
}

/// Sets (`owner` not NULL) or clears (`owner` NULL) a session's owner, such as a user id,
/// for `sessync_store_sessions_of` and `sessync_store_destroy_all`. `token`: the caller's
/// fencing token or 0. On `SESSYNC_STATUS_OK`, writes `*version_out` if not NULL.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_set_owner(
    store: *const sessync_store,
    id: *const c_char,
    owner: *const c_char,
    token: u64,
    version_out: *mut u64,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let id = try_id(id, "id")?;
            let owner = opt_str(owner, "owner")?;
            let opts = write_opts(token, 0, 0)?;
            let v = h.store().set_owner(&id, owner, opts)?;
            put(version_out, v);
            Ok(())
        })
    })
}

/// The live sessions of `owner`, as a JSON array of ids (sorted).
/// On `SESSYNC_STATUS_OK`, writes `*json_out` (free it with `sessync_buf_free`).
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_sessions_of(
    store: *const sessync_store,
    owner: *const c_char,
    json_out: *mut sessync_buf,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let owner = try_str(owner, "owner")?;
            let out = try_mut(json_out, "json_out")?;
            let ids = h.store().sessions_of(owner)?;
            let list: Vec<&str> = ids.iter().map(|i| i.as_str()).collect();
            let text = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
            *out = sessync_buf::from_bytes(text.as_bytes());
            Ok(())
        })
    })
}

/// Destroys every session of `owner` ("log out everywhere"); writes how many to
/// `*count_out` if not NULL.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_destroy_all(
    store: *const sessync_store,
    owner: *const c_char,
    count_out: *mut usize,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            let owner = try_str(owner, "owner")?;
            let n = h.store().destroy_all(owner)?;
            put(count_out, n);
            Ok(())
        })
    })
}

/// Counters and sizes of the store.
///
/// `stats_size` is `sizeof(sessync_stats)` as the caller compiled it, so that the struct
/// can grow: the library writes the fields that fit in `stats_size` bytes and zeroes any
/// bytes after its own last field. A size smaller than the first field's is
/// `SESSYNC_STATUS_INVALID_ARGUMENT`. On `SESSYNC_STATUS_OK`, writes `*stats_out`;
/// otherwise leaves it unchanged.
#[must_use]
#[unsafe(no_mangle)]
pub extern "C" fn sessync_store_stats(
    store: *const sessync_store,
    stats_out: *mut sessync_stats,
    stats_size: usize,
    error: *mut sessync_error,
) -> sessync_status {
    ffi_guard!(error, {
        with_store(store, |h| {
            if stats_out.is_null() {
                return Err(fail(
                    sessync_status::NullArgument,
                    "argument `stats_out` is NULL",
                ));
            }
            if stats_size < std::mem::size_of::<u64>() {
                return Err(fail(
                    sessync_status::InvalidArgument,
                    &format!("stats_size {stats_size} is smaller than one field (8 bytes)"),
                ));
            }
            let s = h.store().stats();
            let ours = sessync_stats {
                sessions: s.sessions,
                tombstones: s.tombstones,
                aliases: s.aliases,
                operations: s.operations,
                lock_waits: s.lock_waits,
                lock_timeouts: s.lock_timeouts,
                expirations: s.expirations,
                evictions: s.evictions,
                memory: s.memory,
                ops_fetch: s.commands.fetch,
                ops_write: s.commands.write,
                ops_patch: s.commands.patch,
                ops_lock: s.commands.lock,
                ops_unlock: s.commands.unlock,
                ops_touch: s.commands.touch,
                ops_destroy: s.commands.destroy,
                ops_rotate: s.commands.rotate,
                ops_other: s.commands.other,
                persist_enabled: u64::from(s.persistence.enabled),
                persist_records: s.persistence.records,
                persist_log_bytes: s.persistence.log_bytes,
                persist_snapshot_bytes: s.persistence.snapshot_bytes,
                persist_compactions: s.persistence.compactions,
                persist_fsyncs: s.persistence.fsyncs,
                persist_pending: s.persistence.pending,
                persist_failed: u64::from(s.persistence.failed),
                persist_restored: s.persistence.restored,
            };
            let own = std::mem::size_of::<sessync_stats>();
            // Whole fields only: every field is a u64.
            let fit = stats_size.min(own) / 8 * 8;
            let dst = stats_out.cast::<u8>();
            // SAFETY: the header requires `stats_out` to point to `stats_size` writable
            // bytes; `fit <= own` bytes are read from `ours`, and the zeroed tail stays
            // within `stats_size`.
            unsafe {
                std::ptr::copy_nonoverlapping((&raw const ours).cast::<u8>(), dst, fit);
                if stats_size > own {
                    std::ptr::write_bytes(dst.add(own), 0, stats_size - own);
                }
            }
            Ok(())
        })
    })
}
