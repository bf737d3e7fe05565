//! The `SESS.*` commands: each takes its arguments and writes one reply.
//!
//! They map one-to-one onto the store's [`Command`](crate::Command)s, so a
//! request flow's read-modify-write under the lock is one round trip each way. Their
//! wire syntax is in `docs/protocol.md`.

use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::{Conn, Fail, Io, Res};
use crate::{
    command::{PatchOp, WriteOpts},
    error::Error,
    protocol::{ops, record},
    server::resp::Out,
    session::{SessionData, SessionId},
    store::Store,
};

fn err(m: impl Into<String>) -> Fail {
    Fail(m.into())
}

/// The arguments of one command, consumed left to right.
pub(super) struct Args {
    name: String,
    items: std::vec::IntoIter<Vec<u8>>,
}

impl Args {
    pub(super) fn new(name: String, rest: Vec<Vec<u8>>) -> Args {
        Args {
            name,
            items: rest.into_iter(),
        }
    }

    fn wrong(&self) -> Fail {
        err(format!(
            "ERR wrong number of arguments for '{}' command",
            self.name.to_lowercase()
        ))
    }

    fn next_bytes(&mut self) -> Result<Vec<u8>, Fail> {
        self.items.next().ok_or_else(|| self.wrong())
    }

    fn next_str(&mut self) -> Result<String, Fail> {
        String::from_utf8(self.next_bytes()?).map_err(|_| err("ERR argument is not UTF-8"))
    }

    fn next_id(&mut self) -> Result<SessionId, Fail> {
        Ok(SessionId::parse(&self.next_str()?)?)
    }

    fn next_u64(&mut self) -> Result<u64, Fail> {
        self.next_str()?
            .parse()
            .map_err(|_| err("ERR value is not an integer or out of range"))
    }

    fn next_i64(&mut self) -> Result<i64, Fail> {
        self.next_str()?
            .parse()
            .map_err(|_| err("ERR value is not an integer or out of range"))
    }

    fn done(&mut self) -> Res {
        if self.items.len() == 0 {
            Ok(())
        } else {
            Err(self.wrong())
        }
    }

    /// Trailing options: `TOKEN t`, `VERSION v`, `CREATE`, `RELEASE`, `TOUCH`, `TTL ms`.
    fn options(&mut self, allowed: &[&str]) -> Result<(WriteOpts, bool), Fail> {
        Ok(self.options_ttl(allowed)?.0)
    }

    /// [`Args::options`], with the `TTL ms` option's value (or `None`).
    fn options_ttl(
        &mut self,
        allowed: &[&str],
    ) -> Result<((WriteOpts, bool), Option<Duration>), Fail> {
        let mut opts = WriteOpts::default();
        let mut touch = false;
        let mut ttl = None;
        while let Some(word) = self.items.next() {
            let w = String::from_utf8_lossy(&word).to_ascii_uppercase();
            if !allowed.contains(&w.as_str()) {
                return Err(err(format!("ERR syntax error: unexpected {w:?}")));
            }
            match w.as_str() {
                "TOKEN" => opts.token = Some(self.next_u64()?),
                "VERSION" => opts.expected_version = Some(self.next_u64()?),
                "CREATE" => opts.create = true,
                "RELEASE" => opts.release = true,
                "TOUCH" => touch = true,
                "TTL" => ttl = Some(Duration::from_millis(self.next_u64()?)),
                _ => {}
            }
        }
        Ok(((opts, touch), ttl))
    }
}

/// Session commands that complete at once (everything but `SESS.LOCK` with a wait).
pub(super) fn session(store: &Store, name: &str, mut a: Args, out: &mut Out) -> Res {
    match name {
        "SESS.FETCH" => {
            let id = a.next_id()?;
            let (_, touch) = a.options(&["TOUCH"])?;
            if touch {
                // With TOUCH: [touched (0/1), record], or null.
                match store.fetch_touch(&id)? {
                    (Some(r), touched) => record::write_pair(out, i64::from(touched), &r),
                    (None, _) => out.null(),
                }
            } else {
                match store.fetch(&id)? {
                    Some(r) => record::write(out, &r),
                    None => out.null(),
                }
            }
        }
        "SESS.WRITE" => {
            let id = a.next_id()?;
            let data = SessionData::from_json(&a.next_str()?)?;
            let ((opts, _), ttl) = a.options_ttl(&["TOKEN", "VERSION", "RELEASE", "TTL"])?;
            let v = match ttl {
                Some(t) => store.write_with_ttl(&id, data, opts, t)?,
                None => store.write(&id, data, opts)?,
            };
            out.int(v as i64);
        }
        "SESS.PATCH" => {
            let id = a.next_id()?;
            let patch = a.next_str()?;
            let ((opts, _), ttl) =
                a.options_ttl(&["TOKEN", "VERSION", "CREATE", "RELEASE", "TTL"])?;
            let v = match ttl {
                Some(t) => {
                    let p: Value = serde_json::from_str(&patch)
                        .map_err(|e| Error::InvalidJson(e.to_string()))?;
                    let Value::Object(m) = p else {
                        return Err(Error::InvalidJson(
                            "a merge patch of a session must be a JSON object".into(),
                        )
                        .into());
                    };
                    store
                        .apply_with_ttl(&id, vec![PatchOp::Merge(m)], opts, t)?
                        .version
                }
                None => store.patch(&id, &patch, opts)?,
            };
            out.int(v as i64);
        }
        "SESS.APPLY" => {
            let id = a.next_id()?;
            let list = ops::decode(&a.next_str()?).map_err(Fail)?;
            let ((opts, _), ttl) =
                a.options_ttl(&["TOKEN", "VERSION", "CREATE", "RELEASE", "TTL"])?;
            let p = match ttl {
                Some(t) => store.apply_with_ttl(&id, list, opts, t)?,
                None => store.apply(&id, list, opts)?,
            };
            out.array(2);
            out.int(p.version as i64);
            out.array(p.values.len());
            for v in p.values {
                out.int(v);
            }
        }
        "SESS.INCR" => {
            let id = a.next_id()?;
            let key = a.next_str()?;
            let by = a.next_i64()?;
            let ((opts, _), ttl) = a.options_ttl(&["TOKEN", "CREATE", "RELEASE", "TTL"])?;
            let n = match ttl {
                Some(t) => {
                    let p = store.apply_with_ttl(&id, vec![PatchOp::Incr(key, by)], opts, t)?;
                    p.values.first().copied().ok_or_else(|| {
                        Fail::from(Error::Backend("increment returned no value".into()))
                    })?
                }
                None => store.incr(&id, &key, by, opts)?,
            };
            out.int(n);
        }
        "SESS.UNLOCK" => {
            let id = a.next_id()?;
            let token = a.next_u64()?;
            a.done()?;
            store.unlock(&id, token)?;
            out.simple("OK");
        }
        "SESS.TOUCH" => {
            let id = a.next_id()?;
            let (_, ttl) = a.options_ttl(&["TTL"])?;
            let t = match ttl {
                Some(ttl) => store.touch_with_ttl(&id, ttl)?,
                None => store.touch(&id)?,
            };
            out.array(2);
            out.int(i64::from(t.written));
            out.int(t.expires_at as i64);
        }
        "SESS.DESTROY" => {
            let id = a.next_id()?;
            a.done()?;
            out.int(i64::from(store.destroy(&id)?));
        }
        "SESS.ROTATE" => {
            let id = a.next_id()?;
            let (opts, _) = a.options(&["TOKEN"])?;
            out.bulk(store.rotate(&id, opts.token)?.as_bytes());
        }
        "SESS.OWNER" => {
            let id = a.next_id()?;
            let owner = a.next_str()?;
            let (opts, _) = a.options(&["TOKEN", "VERSION"])?;
            let owner = (!owner.is_empty()).then_some(owner.as_str());
            out.int(store.set_owner(&id, owner, opts)? as i64);
        }
        "SESS.OWNED" => {
            let owner = a.next_str()?;
            a.done()?;
            let ids = store.sessions_of(&owner)?;
            out.array(ids.len());
            for id in ids {
                out.bulk(id.as_bytes());
            }
        }
        "SESS.DESTROYALL" => {
            let owner = a.next_str()?;
            a.done()?;
            out.int(store.destroy_all(&owner)? as i64);
        }
        "SESS.LIST" => {
            // SESS.LIST cursor [COUNT n] → [next cursor, [id …]], as SCAN answers.
            let cursor = a.next_u64()?;
            let mut count = 10;
            while let Some(word) = a.items.next() {
                let w = String::from_utf8_lossy(&word).to_ascii_uppercase();
                if w != "COUNT" {
                    return Err(err(format!("ERR syntax error: unexpected {w:?}")));
                }
                count = usize::try_from(a.next_u64()?)
                    .map_err(|_| err("ERR value is not an integer or out of range"))?;
            }
            let (ids, next) = store.list(cursor, count)?;
            out.array(2);
            out.bulk(next.to_string().as_bytes());
            out.array(ids.len());
            for id in ids {
                out.bulk(id.as_bytes());
            }
        }
        "SESS.CLEAR" => {
            a.done()?;
            out.int(store.clear()? as i64);
        }
        "SESS.STATS" => {
            a.done()?;
            let json = serde_json::to_string(&store.stats()).unwrap_or_default();
            out.bulk(json.as_bytes());
        }
        _ => {
            return Err(err(format!(
                "ERR unknown command '{}'",
                name.to_lowercase()
            )));
        }
    }
    Ok(())
}

/// The arguments of `SESS.LOCK id lease_ms wait_ms`.
fn lock_args(mut a: Args) -> Result<(SessionId, Duration, Duration), Fail> {
    let id = a.next_id()?;
    let lease = Duration::from_millis(a.next_u64()?);
    let wait = Duration::from_millis(a.next_u64()?);
    a.done()?;
    Ok((id, lease, wait))
}

impl Conn {
    /// `SESS.LOCK`: waits without blocking a thread, and gives up the wait when the client
    /// goes away (bytes it sends meanwhile are kept for after the reply).
    pub(super) async fn lock(&mut self, a: Args, io: &mut Io, buf: &mut Vec<u8>) -> Res {
        let (id, lease, wait) = lock_args(a)?;
        let store = self.shared.store.clone();
        let fut = store.lock_async(&id, lease, wait);
        tokio::pin!(fut);
        let max = self.shared.config.limits.max_bulk * 2;
        loop {
            tokio::select! {
                r = &mut fut => {
                    let (token, rec) = r?;
                    // The reply to a granted lock: `[token, record]`.
                    record::write_pair(&mut self.out, token as i64, &rec);
                    return Ok(());
                }
                n = io.read_buf(buf), if buf.len() < max => {
                    match n {
                        Ok(0) | Err(_) => return Err(Fail("ERR client went away".into())),
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}
