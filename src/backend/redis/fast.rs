//! The fast paths: calls that skip the general code where its rules cannot change the
//! answer. A live fetch is one plain `HGETALL`, no script; an increment takes the code's
//! own short path (`fast_incr` there). Each gives up (`None`) wherever the general path
//! must decide.

use std::sync::atomic::Ordering;

use ::redis::Value;

use super::{
    Redis,
    codec::{HashRecord, key_json, ms},
};
use crate::{
    command::Patched,
    config::RedisLayout,
    error::{Error, Result},
    session::{Record, SessionId},
};

impl Redis {
    /// The common fetch, without a script: one `HGETALL` of a native record, which is
    /// all of it when it is live and needs no touch (a read changes nothing then, and one
    /// command is atomic on its own). `None` for everything else (absent, expired, a
    /// touch due, a field that does not read as the code writes it, the connect-redis
    /// layout), which the store's `fetch` decides: aliases, tombstones, touches.
    pub(super) fn fetch_live(&self, id: &SessionId, touch: bool) -> Result<Option<Record>> {
        if self.opts.layout != RedisLayout::Native {
            return Ok(None);
        }
        let key = self.record_key(id.as_str());
        let Value::Array(items) = self.plain(::redis::cmd("HGETALL").arg(&key))? else {
            return Ok(None);
        };
        let (now, _) = self.now();
        let Some(h) = HashRecord::read(&items) else {
            return Ok(None);
        };
        // A session with a TTL of its own is touched by the code (with its own TTL).
        let touch_due = touch
            && (h.own_ttl.is_some()
                || (now > h.last_access && now - h.last_access >= self.store.touch_interval_ms()));
        if h.expires_at <= now || touch_due {
            return Ok(None);
        }
        h.into_record(*id).map(Some)
    }

    /// The increment's own path in the code (see `fast_incr` there): the new version and
    /// value, or `None` where the general `patch` must decide.
    pub(super) fn fast_incr(
        &self,
        id: &SessionId,
        key: &str,
        by: i64,
        token: Option<u64>,
    ) -> Result<Option<Patched>> {
        const LOW: u64 = 1_000_000_000_000;
        const HIGH: u64 = 10_000_000_000_000;
        let (now, _) = self.now();
        let end = now.saturating_add(ms(self.store.ttl));
        if self.opts.layout != RedisLayout::Native || now < LOW || end >= HIGH {
            return Ok(None);
        }
        let low = end.saturating_sub(ms(self.store.absolute_ttl));
        let key = key_json(key)?;
        let record = self.record_key(id.as_str());
        // 13 digits, zero-padded (text order is number order).
        let low = format!("{low:013}");
        let reply = if self.function.load(Ordering::Relaxed) {
            // Built straight into the command: the numbers go as redis-rs writes them.
            let mut c = ::redis::cmd("FCALL");
            c.arg(&self.name)
                .arg(1)
                .arg(&record)
                .arg("+")
                .arg(now)
                .arg(end);
            c.arg(&low).arg(&key).arg(by);
            if let Some(t) = token {
                c.arg(t);
            }
            self.fcall(&c)?
        } else {
            let mut args = vec![key, by.to_string()];
            if let Some(t) = token {
                args.push(t.to_string());
            }
            let (now, end) = (now.to_string(), end.to_string());
            self.call(&[record], &["+", &now, &end, &low], &args)?
        };
        // "version value" when done; 0 when the general path must do it.
        let Value::BulkString(b) = reply else {
            return Ok(None);
        };
        let parsed = std::str::from_utf8(&b).ok().and_then(|t| {
            let (v, n) = t.split_once(' ')?;
            Some((v.parse::<u64>().ok()?, n.parse::<i64>().ok()?))
        });
        match parsed {
            Some((version, n)) => Ok(Some(Patched {
                version,
                values: vec![n],
            })),
            None => Err(Error::Backend(format!(
                "redis: unexpected reply to an increment: {:?}",
                String::from_utf8_lossy(&b)
            ))),
        }
    }
}
