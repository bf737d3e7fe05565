//! The plain key space of sessyncd: `GET`, `SET`, `DEL`, `EXPIRE`, `SCAN` …, as session
//! middlewares that already speak Redis use them (one key per session, a TTL).
//!
//! Keys live in shards; expired keys are dropped on access and, in the background, from
//! a deadline heap per shard, so a sweep costs what expires, never a scan of every key.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
};

use parking_lot::Mutex;

const SHARDS: usize = 16;

struct Entry {
    value: Vec<u8>,
    /// Absolute expiry in ms since the epoch; `None`: never.
    expires_at: Option<u64>,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Vec<u8>, Entry>,
    deadlines: BinaryHeap<Reverse<(u64, Vec<u8>)>>,
    /// Keys dropped on access since the count was last settled.
    dropped: usize,
}

/// The key space.
pub(crate) struct Kv {
    shards: Vec<Mutex<Shard>>,
    /// Most keys held; a `SET` of a new key beyond it is refused.
    max_keys: usize,
    count: std::sync::atomic::AtomicUsize,
}

/// How `SET` treats an existing key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cond {
    Always,
    IfAbsent,
    IfPresent,
}

/// What `SET` does to the TTL.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ttl {
    Clear,
    Keep,
    At(u64),
}

/// The outcome of `SET`.
pub(crate) struct SetResult {
    /// The value before (for `SET … GET`).
    pub old: Option<Vec<u8>>,
    /// Whether the value was written (`NX`/`XX` may refuse).
    pub written: bool,
}

fn shard_of(key: &[u8]) -> usize {
    // FNV-1a: cheap and good enough to spread keys over 16 locks.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h as usize) % SHARDS
}

impl Shard {
    fn live(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        let expired = self
            .map
            .get(key)
            .is_some_and(|e| e.expires_at.is_some_and(|t| t <= now));
        if expired {
            self.map.remove(key);
            self.dropped += 1;
            return None;
        }
        self.map.get_mut(key)
    }
}

/// A locked shard that settles the key count when released.
struct Guard<'a> {
    kv: &'a Kv,
    s: parking_lot::MutexGuard<'a, Shard>,
}

impl std::ops::Deref for Guard<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        &self.s
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        &mut self.s
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if self.s.dropped > 0 {
            self.kv
                .count
                .fetch_sub(self.s.dropped, std::sync::atomic::Ordering::Relaxed);
            self.s.dropped = 0;
        }
    }
}

impl Kv {
    pub(crate) fn new(max_keys: usize) -> Kv {
        Kv {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            max_keys,
            count: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> Guard<'_> {
        Guard {
            kv: self,
            s: self.shards[shard_of(key)].lock(),
        }
    }

    fn recount(&self) {
        let n = self.shards.iter().map(|s| s.lock().map.len()).sum();
        self.count.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Calls `f` with the live value of `key`, under its shard's lock (no copy is made
    /// here: `f` writes it where it goes). `None` if absent or expired.
    pub(crate) fn with<R>(&self, key: &[u8], now: u64, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.shard(key).live(key, now).map(|e| f(&e.value))
    }

    /// Whether `key` is live.
    pub(crate) fn exists(&self, key: &[u8], now: u64) -> bool {
        self.with(key, now, |_| ()).is_some()
    }

    /// `SET`. The old value is returned only when `want_old` (`SET … GET`), so a plain
    /// overwrite copies nothing; an existing key keeps its allocation for the key.
    pub(crate) fn set(
        &self,
        key: &[u8],
        value: Vec<u8>,
        cond: Cond,
        ttl: Ttl,
        want_old: bool,
        now: u64,
    ) -> Result<SetResult, String> {
        let mut s = self.shard(key);
        let s = &mut *s;
        let existing = s.live(key, now);
        let present = existing.is_some();
        let old = if want_old {
            existing.as_ref().map(|e| e.value.clone())
        } else {
            None
        };
        let allowed = match cond {
            Cond::Always => true,
            Cond::IfAbsent => !present,
            Cond::IfPresent => present,
        };
        if !allowed {
            return Ok(SetResult {
                old,
                written: false,
            });
        }
        if let Some(e) = existing {
            let expires_at = match ttl {
                Ttl::Clear => None,
                Ttl::Keep => e.expires_at,
                Ttl::At(t) => Some(t),
            };
            e.value = value;
            e.expires_at = expires_at;
            if let Some(t) = expires_at {
                s.deadlines.push(Reverse((t, key.to_vec())));
            }
            return Ok(SetResult { old, written: true });
        }
        if self.count.load(std::sync::atomic::Ordering::Relaxed) >= self.max_keys {
            return Err("ERR max keys reached (--max-keys)".into());
        }
        let expires_at = match ttl {
            Ttl::Clear | Ttl::Keep => None,
            Ttl::At(t) => Some(t),
        };
        if let Some(t) = expires_at {
            s.deadlines.push(Reverse((t, key.to_vec())));
        }
        s.map.insert(key.to_vec(), Entry { value, expires_at });
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(SetResult { old, written: true })
    }

    pub(crate) fn del(&self, key: &[u8], now: u64) -> bool {
        let mut s = self.shard(key);
        let was = s.live(key, now).is_some();
        if was {
            s.map.remove(key);
            self.count
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        was
    }

    /// Sets the expiry of a live key; false if there is none.
    pub(crate) fn expire_at(&self, key: &[u8], at: u64, now: u64) -> bool {
        let mut s = self.shard(key);
        let Some(e) = s.live(key, now) else {
            return false;
        };
        e.expires_at = Some(at);
        s.deadlines.push(Reverse((at, key.to_vec())));
        true
    }

    /// Remaining ms: `Some(None)` for no expiry, `None` for no key.
    pub(crate) fn ttl(&self, key: &[u8], now: u64) -> Option<Option<u64>> {
        let mut s = self.shard(key);
        s.live(key, now)
            .map(|e| e.expires_at.map(|t| t.saturating_sub(now)))
    }

    /// One step of `SCAN`: the live keys of shard `cursor` that match `pattern`; the next
    /// cursor (0 when done).
    pub(crate) fn scan(
        &self,
        cursor: usize,
        pattern: Option<&[u8]>,
        now: u64,
    ) -> (usize, Vec<Vec<u8>>) {
        if cursor >= SHARDS {
            return (0, Vec::new());
        }
        let s = self.shards[cursor].lock();
        let keys = s
            .map
            .iter()
            .filter(|(_, e)| e.expires_at.is_none_or(|t| t > now))
            .filter(|(k, _)| pattern.is_none_or(|p| glob(p, k)))
            .map(|(k, _)| k.clone())
            .collect();
        let next = if cursor + 1 >= SHARDS { 0 } else { cursor + 1 };
        (next, keys)
    }

    /// Drops keys whose deadline passed; returns the next deadline.
    pub(crate) fn sweep(&self, now: u64) -> Option<u64> {
        let mut next: Option<u64> = None;
        for sh in &self.shards {
            let mut s = sh.lock();
            while let Some(Reverse((t, _))) = s.deadlines.peek() {
                if *t > now {
                    next = Some(next.map_or(*t, |n| n.min(*t)));
                    break;
                }
                let Some(Reverse((t, key))) = s.deadlines.pop() else {
                    break;
                };
                if s.map.get(&key).is_some_and(|e| e.expires_at == Some(t)) {
                    s.map.remove(&key);
                }
            }
        }
        self.recount();
        next
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Redis's glob: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`.
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| glob(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && glob(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(&c) = s.first() else { return false };
            let mut i = 1;
            let neg = p.get(1) == Some(&b'^');
            if neg {
                i += 1;
            }
            let mut hit = false;
            while i < p.len() && p[i] != b']' {
                if p[i] == b'\\' && i + 1 < p.len() {
                    hit |= p[i + 1] == c;
                    i += 2;
                } else if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                    hit |= (p[i]..=p[i + 2]).contains(&c);
                    i += 3;
                } else {
                    hit |= p[i] == c;
                    i += 1;
                }
            }
            if i >= p.len() {
                // No closing bracket: a literal '['.
                return c == b'[' && glob(&p[1..], &s[1..]);
            }
            hit != neg && glob(&p[i + 1..], &s[1..])
        }
        Some(b'\\') if p.len() > 1 => s.first() == Some(&p[1]) && glob(&p[2..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && glob(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob(b"sess:*", b"sess:abc"));
        assert!(!glob(b"sess:*", b"other"));
        assert!(glob(b"h?llo", b"hello"));
        assert!(glob(b"h[ae]llo", b"hallo"));
        assert!(!glob(b"h[^e]llo", b"hello"));
        assert!(glob(b"h[a-f]llo", b"hello"));
        assert!(glob(b"a\\*b", b"a*b"));
        assert!(glob(b"*", b""));
    }

    #[test]
    fn set_get_ttl_and_sweep() {
        let kv = Kv::new(10);
        let r = kv
            .set(b"k", b"v".to_vec(), Cond::Always, Ttl::At(1_000), false, 0)
            .unwrap();
        assert!(r.written && r.old.is_none());
        assert_eq!(kv.with(b"k", 500, <[u8]>::to_vec), Some(b"v".to_vec()));
        assert_eq!(kv.ttl(b"k", 500), Some(Some(500)));
        let r = kv
            .set(b"k", b"w".to_vec(), Cond::IfAbsent, Ttl::Clear, true, 500)
            .unwrap();
        assert!(!r.written && r.old.as_deref() == Some(b"v".as_slice()));
        // An overwrite in place: the new value, the TTL cleared, no old value unless asked.
        let r = kv
            .set(b"k", b"u".to_vec(), Cond::IfPresent, Ttl::Keep, false, 600)
            .unwrap();
        assert!(r.written && r.old.is_none());
        assert_eq!(kv.ttl(b"k", 600), Some(Some(400)));
        assert_eq!(kv.with(b"k", 600, <[u8]>::to_vec), Some(b"u".to_vec()));
        assert!(!kv.exists(b"k", 1_000));
        assert!(
            kv.set(b"k2", b"x".to_vec(), Cond::Always, Ttl::At(2_000), false, 0)
                .unwrap()
                .written
        );
        assert_eq!(kv.sweep(1_500), Some(2_000));
        assert_eq!(kv.len(), 1);
        assert_eq!(kv.sweep(2_000), None);
        assert_eq!(kv.len(), 0);
    }
}
