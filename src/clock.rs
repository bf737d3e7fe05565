//! Time, injected: every expiry decision of the in-process store reads a [`Clock`].
//!
//! [`SystemClock`] is the wall clock. [`ManualClock`] only moves when a test calls
//! [`ManualClock::advance`], and wakes everything parked on it when it does, so expiry,
//! lease and wait-timeout tests decide their results by the clock they set, never by how
//! long a sleep happened to last.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use parking_lot::{Condvar, Mutex};

/// Something a thread can park on until it is unparked or a deadline passes.
///
/// An unpark that comes before the park is remembered, so a wake-up is never lost.
#[derive(Default, Debug)]
pub struct Parker {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    /// A new parker, not yet unparked.
    pub fn new() -> Parker {
        Parker::default()
    }

    /// Wakes the thread parked here (or makes its next park return at once).
    pub fn unpark(&self) {
        *self.woken.lock() = true;
        self.cv.notify_one();
    }
}

/// A source of time for the store.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Blocks until `parker` is unparked or, if given, `deadline_ms` has passed on this
    /// clock. May return early; callers re-check their condition in a loop.
    fn park(&self, parker: &Arc<Parker>, deadline_ms: Option<u64>);

    /// True for the operating system's wall clock. A backend with a clock of its own (the
    /// Redis server's) then uses that one; any other clock (a test's) is followed.
    fn is_wall_clock(&self) -> bool {
        false
    }
}

/// The operating system's wall clock.
///
/// On Linux it reads `CLOCK_REALTIME_COARSE`: a few nanoseconds instead of tens, at the
/// resolution of the kernel tick (1–4 ms), which is ample for TTLs and leases measured in
/// seconds and is read on every operation.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn is_wall_clock(&self) -> bool {
        true
    }

    #[cfg(target_os = "linux")]
    fn now_ms(&self) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
        if rc == 0 {
            (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
        } else {
            system_ms()
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn now_ms(&self) -> u64 {
        system_ms()
    }

    fn park(&self, parker: &Arc<Parker>, deadline_ms: Option<u64>) {
        let mut woken = parker.woken.lock();
        if !*woken {
            match deadline_ms {
                None => parker.cv.wait(&mut woken),
                Some(d) => {
                    let left = d.saturating_sub(self.now_ms());
                    if left > 0 {
                        let until = Instant::now() + Duration::from_millis(left);
                        parker.cv.wait_until(&mut woken, until);
                    }
                }
            }
        }
        *woken = false;
    }
}

fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A clock that moves only when told to. For tests.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicU64,
    parked: Mutex<Vec<Arc<Parker>>>,
}

impl ManualClock {
    /// A clock that reads `start_ms`.
    pub fn new(start_ms: u64) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            now: AtomicU64::new(start_ms),
            parked: Mutex::new(Vec::new()),
        })
    }

    /// Moves the clock forward and wakes every thread parked on it, so that they look at
    /// their deadlines again.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        for p in self.parked.lock().iter() {
            p.unpark();
        }
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn park(&self, parker: &Arc<Parker>, deadline_ms: Option<u64>) {
        if deadline_ms.is_some_and(|d| d <= self.now_ms()) {
            return;
        }
        self.parked.lock().push(parker.clone());
        // Re-check after registering: an advance between the check and the push would
        // otherwise go unnoticed.
        if deadline_ms.is_none_or(|d| d > self.now_ms()) {
            let mut woken = parker.woken.lock();
            if !*woken {
                parker.cv.wait(&mut woken);
            }
            *woken = false;
        }
        self.parked.lock().retain(|p| !Arc::ptr_eq(p, parker));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpark_before_park_is_not_lost() {
        let p = Arc::new(Parker::new());
        p.unpark();
        SystemClock.park(&p, None);
    }

    #[test]
    fn manual_clock_wakes_parked_thread_on_advance() {
        let clock = ManualClock::new(1_000);
        let p = Arc::new(Parker::new());
        let c2 = clock.clone();
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            while c2.now_ms() < 2_000 {
                c2.park(&p2, Some(2_000));
            }
        });
        clock.advance(Duration::from_secs(1));
        t.join().unwrap();
    }
}
