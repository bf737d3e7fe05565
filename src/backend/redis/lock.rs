//! Lock tickets and waits: a locker that must wait takes a ticket in the session's queue
//! and blocks in `BLPOP` on its own wake-up list, for at most the time left of its wait,
//! of the holder's lease and of a heartbeat; whatever frees the lock pushes to the list
//! of the first waiter still alive, so waiters are served in arrival order.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use ::redis::Value;

use super::{
    Redis, backend,
    codec::{flag, int, items, record},
    pool::Failed,
    schema::WAKE,
};
use crate::{
    command::Reply,
    error::{Error, Result},
    session::SessionId,
};

/// How often a waiting locker checks in (its place in the queue lives 3× this long).
const HEARTBEAT_MS: u64 = 1000;

impl Redis {
    pub(super) fn lock(&self, id: SessionId, lease_ms: u64, wait_ms: u64) -> Result<Reply> {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let ticket = if wait_ms == 0 {
            String::new()
        } else {
            let mut b = [0u8; 12];
            getrandom::fill(&mut b).map_err(backend)?;
            b.iter().map(|x| format!("{x:02x}")).collect()
        };
        let keys = self.keys(id.as_str());
        let wake_key = format!("{}{WAKE}{ticket}", keys[0]);
        let mut conn = self.take()?;
        let mut waited = false;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let args = [
                lease_ms.to_string(),
                flag(!left.is_zero()),
                ticket.clone(),
                HEARTBEAT_MS.to_string(),
            ];
            let v = match self.invoke_on(&mut conn, "lock", &keys, (id.as_str(), ""), &args) {
                Ok(v) => v,
                Err(f) => break Err(f),
            };
            let a = match items(v) {
                Ok(a) => a,
                Err(err) => break Err(Failed { err, broken: false }),
            };
            let token = a.first().map(int).transpose();
            match (token, a.get(1)) {
                (Ok(Some(t)), Some(rec)) if t > 0 => {
                    break record(id, rec.clone())
                        .map(|record| Reply::Locked {
                            token: t as u64,
                            record,
                        })
                        .map_err(|err| Failed { err, broken: false });
                }
                (Ok(Some(0)), Some(lease_left)) => {
                    if !waited {
                        waited = true;
                        self.lock_waits.fetch_add(1, Ordering::Relaxed);
                    }
                    let lease_left = int(lease_left).unwrap_or(0).max(0) as u64;
                    let mut block = left.min(Duration::from_millis(HEARTBEAT_MS));
                    if lease_left > 0 {
                        block = block.min(Duration::from_millis(lease_left + 1));
                    }
                    if block < Duration::from_millis(1) {
                        continue;
                    }
                    conn.set_read_timeout(block + self.opts.timeout);
                    let r = ::redis::cmd("BLPOP")
                        .arg(&wake_key)
                        .arg(format!("{:.3}", block.as_secs_f64()))
                        .query::<Value>(conn.like());
                    conn.set_read_timeout(self.opts.timeout);
                    if let Err(e) = r {
                        break Err(self.failed(e));
                    }
                }
                _ => {
                    break Err(Failed {
                        err: Error::Backend("redis: unexpected lock reply".into()),
                        broken: false,
                    });
                }
            }
        };
        match result {
            Ok(r) => {
                self.give_back(conn);
                Ok(r)
            }
            Err(f) => {
                if f.err == Error::LockTimeout {
                    self.lock_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                if f.broken && !ticket.is_empty() {
                    // Best effort: leave the queue now rather than when the place expires.
                    let _ = self.on("cancel", &id, &[ticket]);
                } else {
                    self.give_back(conn);
                }
                Err(f.err)
            }
        }
    }

    /// Releases the lock that `token` holds.
    pub(super) fn unlock(&self, id: SessionId, token: u64) -> Result<Reply> {
        self.on("unlock", &id, &[token.to_string()])?;
        Ok(Reply::Unlocked)
    }
}
