//! The operations on sessions that are one call of the code (or, on a Cluster, a few):
//! fetch, write, patch, touch, destroy, rotate, and the owner's sessions.

use ::redis::Value;

use super::{
    Redis,
    codec::{data_args, flag, int, items, ms, ops_args, opt_num, record, redirect, text},
};
use crate::{
    backend::MAX_HOPS,
    command::{PatchOp, Patched, Reply, Touched, WriteOpts, check_ttl},
    error::{Error, Result},
    session::{SessionData, SessionId, check_owner},
};

impl Redis {
    pub(super) fn fetch(&self, id: SessionId, touch: bool) -> Result<Reply> {
        if let Some(record) = self.fetch_live(&id, touch)? {
            return Ok(Reply::Record {
                record: Some(record),
                touched: false,
            });
        }
        let mut id = id;
        for _ in 0..MAX_HOPS {
            let v = self.on("fetch", &id, &[flag(touch)])?;
            if let Some(to) = redirect(&v) {
                id = to;
                continue;
            }
            if v == Value::Nil {
                return Ok(Reply::Record {
                    record: None,
                    touched: false,
                });
            }
            let mut a = items(v)?;
            if a.len() != 2 {
                return Err(Error::Backend("redis: a fetch reply has 2 items".into()));
            }
            let rec = a.pop().unwrap_or_default();
            let touched = int(&a[0])? != 0;
            if touched {
                self.accessed(&id)?;
            }
            return Ok(Reply::Record {
                record: Some(record(id, rec)?),
                touched,
            });
        }
        Ok(Reply::Record {
            record: None,
            touched: false,
        })
    }

    /// Writes the whole data (compare-and-swap with `opts.expected_version`).
    pub(super) fn write(
        &self,
        id: SessionId,
        data: &SessionData,
        opts: WriteOpts,
        ttl_ms: Option<u64>,
    ) -> Result<Reply> {
        check_ttl(ttl_ms)?;
        let n = data.byte_len();
        if n > self.store.max_session_bytes {
            return Err(Error::TooLarge(format!(
                "session data of {n} bytes exceeds max_session_bytes={}",
                self.store.max_session_bytes
            )));
        }
        let mut args = Vec::with_capacity(4 + 2 * data.len());
        args.extend([
            opt_num(opts.expected_version),
            opt_num(opts.token),
            flag(opts.release),
            opt_num(ttl_ms),
        ]);
        data_args(data, &mut args)?;
        self.reserve(&id)?;
        let v = int(&self.on("write", &id, &args)?)? as u64;
        self.accessed(&id)?;
        Ok(Reply::Version(v))
    }

    pub(super) fn patch(
        &self,
        id: SessionId,
        ops: &[PatchOp],
        opts: WriteOpts,
        ttl_ms: Option<u64>,
    ) -> Result<Reply> {
        check_ttl(ttl_ms)?;
        // The increment's path uses the store's TTL: not with a TTL given here (and the
        // code gives up on a record with one of its own).
        if let [PatchOp::Incr(k, by)] = ops {
            if opts.expected_version.is_none() && !opts.release && ttl_ms.is_none() {
                if let Some(p) = self.fast_incr(&id, k, *by, opts.token)? {
                    self.accessed(&id)?;
                    return Ok(Reply::Patched(p));
                }
            }
        }
        let mut args = vec![
            opt_num(opts.expected_version),
            opt_num(opts.token),
            flag(opts.create),
            flag(opts.release),
            opt_num(ttl_ms),
        ];
        ops_args(ops, &mut args)?;
        if self.opts.cluster {
            let bound = self.clock.now_ms() + ms(self.store.absolute_ttl);
            for op in ops {
                if let PatchOp::SetOwner(Some(o)) = op {
                    self.index_add(o, &id, bound)?;
                }
            }
        }
        if opts.create {
            self.reserve(&id)?;
        }
        let a = items(self.on("patch", &id, &args)?)?;
        self.accessed(&id)?;
        let version = a.first().map(int).transpose()?.unwrap_or(0) as u64;
        let values = match a.get(1) {
            Some(Value::Array(xs)) => xs.iter().map(int).collect::<Result<Vec<_>>>()?,
            _ => Vec::new(),
        };
        Ok(Reply::Patched(Patched { version, values }))
    }

    /// Records an access now (with `ttl_ms`, the session's own TTL from now on).
    pub(super) fn touch(&self, id: SessionId, ttl_ms: Option<u64>) -> Result<Reply> {
        check_ttl(ttl_ms)?;
        let a = items(self.on("touch", &id, &[opt_num(ttl_ms)])?)?;
        let written = a.first().map(int).transpose()?.unwrap_or(0) != 0;
        let expires_at = a.get(1).map(int).transpose()?.unwrap_or(0) as u64;
        if written {
            self.accessed(&id)?;
        }
        Ok(Reply::Touched(Touched {
            written,
            expires_at,
        }))
    }

    /// Destroys the session, following a rotated id to its successor (and on).
    pub(super) fn destroy(&self, mut id: SessionId) -> Result<Reply> {
        for _ in 0..MAX_HOPS {
            let v = self.on("destroy", &id, &[])?;
            self.uncount(&id);
            match redirect(&v) {
                Some(to) => id = to,
                None => return Ok(Reply::Destroyed(int(&v)? != 0)),
            }
        }
        Ok(Reply::Destroyed(false))
    }

    pub(super) fn rotate(&self, id: SessionId, token: Option<u64>) -> Result<Reply> {
        if !self.opts.cluster {
            let to = SessionId::generate();
            let mut keys = self.keys(id.as_str());
            keys.extend(self.keys(to.as_str()));
            self.invoke(
                "rotate",
                &keys,
                (id.as_str(), to.as_str()),
                &[opt_num(token)],
            )?;
            return Ok(Reply::Rotated(to));
        }
        self.rotate_cluster(id, token)
    }

    pub(super) fn owned(&self, owner: &str, kill: bool) -> Result<Reply> {
        check_owner(owner)?;
        let okey = self.owner_key(owner);
        if !self.opts.cluster {
            let v = self.invoke("owned", &[okey], ("", ""), &[owner.to_string(), flag(kill)])?;
            if kill {
                return Ok(Reply::Count(int(&v)? as usize));
            }
            let mut ids = items(v)?
                .iter()
                .map(|x| text(x).and_then(|t| SessionId::parse(&t)))
                .collect::<Result<Vec<_>>>()?;
            ids.sort();
            return Ok(Reply::Sessions(ids));
        }
        self.owned_cluster(owner, okey, kill)
    }
}
