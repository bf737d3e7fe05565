//! When to try connecting again after a connect failed: exponential backoff with jitter.
//!
//! The decisions take the current time and the random draw as arguments, so a unit test
//! drives them without sleeping and without a real clock.

use std::time::{Duration, Instant};

/// The first delay after a failure.
pub(super) const FIRST: Duration = Duration::from_millis(50);
/// The longest delay.
pub(super) const CAP: Duration = Duration::from_secs(2);

/// The backoff state of one daemon address.
#[derive(Debug, Default)]
pub(super) struct Backoff {
    /// Connect failures in a row.
    failures: u32,
    /// No connect is tried before this instant.
    until: Option<Instant>,
    /// What the last failure said, for the error of the calls refused meanwhile.
    last_error: String,
}

/// The delay after `failures` failures in a row (1 or more), before jitter: 50 ms,
/// doubling, at most 2 s.
pub(super) fn delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST.saturating_mul(1 << doublings).min(CAP)
}

/// "Equal jitter": half the delay, plus a share of the other half chosen by `draw`, so
/// that clients which lost the daemon together do not all come back at once, and none
/// comes back sooner than half the delay.
pub(super) fn jittered(d: Duration, draw: u64) -> Duration {
    let half = d / 2;
    let extra = half.as_nanos() as u64;
    let extra = if extra == 0 { 0 } else { draw % (extra + 1) };
    half + Duration::from_nanos(extra)
}

impl Backoff {
    /// `Err(wait, last error)` if a connect must not be tried at `now`.
    pub(super) fn check(&self, now: Instant) -> Result<(), (Duration, &str)> {
        match self.until {
            Some(t) if now < t => Err((t - now, &self.last_error)),
            _ => Ok(()),
        }
    }

    /// Records a failed connect at `now`; returns the delay before the next attempt.
    pub(super) fn failed(&mut self, now: Instant, draw: u64, error: String) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let d = jittered(delay(self.failures), draw);
        self.until = Some(now + d);
        self.last_error = error;
        d
    }

    /// Records a successful connect: the next failure starts again from the first delay.
    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
        self.until = None;
        self.last_error.clear();
    }
}

/// A cheap random draw for the jitter (not for anything secret).
pub(super) fn draw() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Jitter only spreads reconnects; without the OS generator, the clock will do.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return u64::from(t) ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_50ms_to_a_2s_cap() {
        let ms: Vec<u128> = (1..=8).map(|n| delay(n).as_millis()).collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(delay(u32::MAX), CAP);
    }

    #[test]
    fn jitter_stays_between_half_and_the_whole_delay() {
        let d = Duration::from_millis(400);
        assert_eq!(jittered(d, 0), Duration::from_millis(200));
        assert_eq!(jittered(d, 200_000_000), d);
        for draw in [1, 12345, u64::MAX, 987_654_321_012] {
            let j = jittered(d, draw);
            assert!(j >= d / 2 && j <= d, "{j:?}");
        }
        assert_eq!(jittered(Duration::ZERO, 7), Duration::ZERO);
    }

    #[test]
    fn calls_in_the_window_are_refused_and_a_success_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.check(t0).is_ok());
        // Draw 0: exactly half of each delay.
        assert_eq!(b.failed(t0, 0, "refused".into()), Duration::from_millis(25));
        let (wait, why) = b.check(t0 + Duration::from_millis(10)).unwrap_err();
        assert_eq!((wait, why), (Duration::from_millis(15), "refused"));
        assert!(b.check(t0 + Duration::from_millis(25)).is_ok());
        let t1 = t0 + Duration::from_millis(30);
        assert_eq!(b.failed(t1, 0, "again".into()), Duration::from_millis(50));
        for _ in 0..10 {
            b.failed(t1, 0, "again".into());
        }
        assert_eq!(
            b.check(t1).unwrap_err().0,
            CAP / 2,
            "capped at 2 s before jitter"
        );
        b.succeeded();
        assert!(b.check(t1).is_ok());
        assert_eq!(b.failed(t1, 0, "x".into()), Duration::from_millis(25));
    }
}
