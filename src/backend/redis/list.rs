//! Listing and clearing: `SCAN … MATCH` of the keys that name sessions (on a Cluster,
//! one primary at a time), the ids found checked live in one pipeline, and `clear` as
//! one `destroy` per listed session.

use std::sync::atomic::Ordering;

use ::redis::Value;

use super::{
    Redis,
    cluster::split_cursor,
    codec::{int, items, text},
    pool::Conn,
};
use crate::{
    command::Reply,
    config::RedisLayout,
    error::{Error, Result},
    session::SessionId,
};

/// Text made literal for a `SCAN … MATCH` pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Redis {
    /// The `SCAN … MATCH` pattern of the keys that name sessions: the record hashes
    /// (`<prefix>{<id>}`), or in connect-redis layout the data keys (`<prefix><id>`).
    /// It also matches a few other keys (an owner index, the live set), which do not
    /// read as ids and are skipped.
    pub(super) fn list_pattern(&self) -> String {
        let p = glob_escape(&self.opts.prefix);
        match self.opts.layout {
            RedisLayout::Native => format!("{p}{{*}}"),
            RedisLayout::ConnectRedis => format!("{p}*"),
        }
    }

    /// The session id a listed key names, if it names one.
    pub(super) fn id_of_key(&self, key: &[u8]) -> Option<SessionId> {
        let k = std::str::from_utf8(key).ok()?;
        let rest = k.strip_prefix(self.opts.prefix.as_str())?;
        let id = match self.opts.layout {
            RedisLayout::Native => rest.strip_prefix('{')?.strip_suffix('}')?,
            RedisLayout::ConnectRedis => rest,
        };
        SessionId::parse(id).ok()
    }

    /// `Command::List`: one `SCAN` step (on a Cluster, on one primary: the cursor carries
    pub(super) fn list(&self, cursor: u64, count: usize) -> Result<(Vec<SessionId>, u64)> {
        let mut scan = ::redis::cmd("SCAN");
        let pattern = self.list_pattern();
        let (node_cursor, slot) = if self.opts.cluster {
            let (c, slot) = split_cursor(cursor)?;
            (c, Some(slot))
        } else {
            (cursor, None)
        };
        scan.arg(node_cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(count);
        let reply = match slot {
            None => self.plain(&scan)?,
            Some(slot) => self.scan_on(slot, &scan)?,
        };
        let mut a = items(reply)?;
        if a.len() != 2 {
            return Err(Error::Backend("redis: a SCAN reply has 2 items".into()));
        }
        let keys = items(a.pop().unwrap_or_default())?;
        let node_next: u64 = text(&a[0])?
            .parse()
            .map_err(|_| Error::Backend("redis: a SCAN cursor is not a number".into()))?;
        let next = match slot {
            None => node_next,
            Some(slot) => self.next_cursor(slot, node_next)?,
        };
        let mut ids: Vec<SessionId> = Vec::with_capacity(keys.len());
        for k in &keys {
            if let Value::BulkString(b) = k {
                if let Some(id) = self.id_of_key(b) {
                    ids.push(id);
                }
            }
        }
        Ok((self.live_ones(ids)?, next))
    }

    /// Those of `ids` whose sessions are live now: a native record's `e` read (one
    /// pipeline), else the code's `alive` for each.
    pub(super) fn live_ones(&self, ids: Vec<SessionId>) -> Result<Vec<SessionId>> {
        if ids.is_empty() {
            return Ok(ids);
        }
        if self.opts.layout != RedisLayout::Native {
            let mut live = Vec::with_capacity(ids.len());
            for id in ids {
                if int(&self.on("alive", &id, &[])?)? == 1 {
                    live.push(id);
                }
            }
            return Ok(live);
        }
        let (now, _) = self.now();
        self.ops.fetch_add(1, Ordering::Relaxed);
        let ends: Vec<Value> = self.pooled(|conn| match conn {
            Conn::One(c) => {
                let mut p = ::redis::pipe();
                for id in &ids {
                    p.cmd("HGET").arg(self.record_key(id.as_str())).arg("e");
                }
                p.query::<Vec<Value>>(c).map_err(|e| self.failed(e))
            }
            Conn::Cluster(c) => {
                let mut p = ::redis::cluster::cluster_pipe();
                for id in &ids {
                    p.cmd("HGET").arg(self.record_key(id.as_str())).arg("e");
                }
                p.query::<Vec<Value>>(c).map_err(|e| self.failed(e))
            }
        })?;
        Ok(ids
            .into_iter()
            .zip(ends)
            .filter(|(_, e)| {
                text(e)
                    .ok()
                    .and_then(|t| t.parse::<u64>().ok())
                    .is_some_and(|e| e > now)
            })
            .map(|(id, _)| id)
            .collect())
    }

    /// `Command::Clear`: every listed session destroyed by the code's `destroy`, one
    /// atomic call each (not one atomic step across sessions).
    pub(super) fn clear(&self) -> Result<Reply> {
        let (mut n, mut cursor) = (0, 0);
        loop {
            let (ids, next) = self.list(cursor, 500)?;
            for id in ids {
                if let Reply::Destroyed(true) = self.destroy(id)? {
                    n += 1;
                }
            }
            if next == 0 {
                return Ok(Reply::Count(n));
            }
            cursor = next;
        }
    }
}
