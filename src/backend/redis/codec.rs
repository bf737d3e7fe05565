//! The codec: how a session lies in Redis and how it comes back. Key names (the record
//! hash, tombstone and alias under the hash tag `{<id>}`, an owner's index), a data
//! member as a hash field (named by the key as a JSON string), patch ops as the code's
//! argument list, and the replies of the code and of `HGETALL` read back as a [`Record`].

use std::{sync::Arc, time::Duration};

use ::redis::Value;
use serde_json::{Map, Value as Json};

use super::{
    Redis, backend,
    schema::{
        ACCESSED, ALIAS, CREATED, EXPIRES, MEMBER_MARK, META_HASH, OWN_TTL, OWNER, OWNER_TAG,
        TOMBSTONE, VERSION,
    },
};
use crate::{
    command::PatchOp,
    config::RedisLayout,
    error::{Error, Result},
    session::{Record, SessionData, SessionId, check_key, check_owner},
};

pub(super) fn int(v: &Value) -> Result<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        other => Err(Error::Backend(format!(
            "redis: expected an integer, got {other:?}"
        ))),
    }
}

pub(super) fn text(v: &Value) -> Result<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(backend),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Okay => Ok("OK".into()),
        other => Err(Error::Backend(format!(
            "redis: expected a string, got {other:?}"
        ))),
    }
}

pub(super) fn items(v: Value) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(Error::Backend(format!(
            "redis: expected an array, got {other:?}"
        ))),
    }
}

/// `{'->', id}`: the id was rotated to this one.
pub(super) fn redirect(v: &Value) -> Option<SessionId> {
    let Value::Array(a) = v else { return None };
    match (a.first(), a.get(1)) {
        (Some(Value::BulkString(m)), Some(to)) if m == b"->" => {
            text(to).ok().and_then(|t| SessionId::parse(&t).ok())
        }
        _ => None,
    }
}

pub(super) fn record(id: SessionId, v: Value) -> Result<Record> {
    let a = items(v)?;
    if a.len() != 7 {
        return Err(Error::Backend(format!(
            "redis: a record has 7 items, got {}",
            a.len()
        )));
    }
    Ok(Record {
        id,
        data: Arc::new(SessionData::from_json(&text(&a[0])?)?),
        version: int(&a[1])? as u64,
        created: int(&a[2])? as u64,
        last_access: int(&a[3])? as u64,
        expires_at: int(&a[4])? as u64,
        owner: match &a[5] {
            Value::Nil => None,
            other => Some(Arc::from(text(other)?.as_str())),
        },
        // 0: none (the store's TTL).
        ttl_ms: Some(int(&a[6])? as u64).filter(|&t| t > 0),
    })
}

/// A member's value as the script stores it: an object in serde_json's form (its keys
/// escaped one way, so that a later merge patch finds them), anything else as it is.
pub(super) fn canonical(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        if let Ok(v) = serde_json::from_str::<Json>(raw) {
            return v.to_string();
        }
    }
    raw.to_string()
}

pub(super) fn key_json(k: &str) -> Result<String> {
    check_key(k)?;
    serde_json::to_string(k).map_err(backend)
}

/// A merge patch as changes at paths (see `at_path` in the script): null deletes, an
/// object makes sure an object is there and recurses, anything else is set.
pub(super) fn flatten(
    m: &Map<String, Json>,
    path: &mut Vec<String>,
    out: &mut Vec<String>,
) -> Result<()> {
    for (k, v) in m {
        path.push(serde_json::to_string(k).map_err(backend)?);
        let head = |op: &str, out: &mut Vec<String>| {
            out.push(op.into());
            out.push(path.len().to_string());
            out.extend(path.iter().cloned());
        };
        match v {
            Json::Null => head("D", out),
            Json::Object(o) => {
                head("O", out);
                flatten(o, path, out)?;
            }
            other => {
                head("P", out);
                out.push(other.to_string());
            }
        }
        path.pop();
    }
    Ok(())
}

pub(super) fn ops_args(ops: &[PatchOp], out: &mut Vec<String>) -> Result<()> {
    for op in ops {
        match op {
            PatchOp::Set(k, v) => {
                out.extend(["P".into(), "1".into(), key_json(k)?]);
                out.push(canonical(v.as_str()));
            }
            PatchOp::Remove(k) => out.extend(["D".into(), "1".into(), key_json(k)?]),
            PatchOp::Incr(k, by) => out.extend(["I".into(), key_json(k)?, by.to_string()]),
            PatchOp::Merge(m) => {
                for k in m.keys() {
                    check_key(k)?;
                }
                if m.is_empty() {
                    // Nothing to change, but a change all the same (a new version).
                    out.push("N".into());
                }
                flatten(m, &mut Vec::new(), out)?;
            }
            PatchOp::SetOwner(Some(o)) => {
                check_owner(o)?;
                out.extend(["W".into(), "1".into(), o.to_string()]);
            }
            PatchOp::SetOwner(None) => out.extend(["W".into(), "0".into(), String::new()]),
        }
    }
    Ok(())
}

pub(super) fn opt_num(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

pub(super) fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.into()
}

pub(super) fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// The data of `data` as the code's arguments: each member's key (as a JSON string) and
/// its value (see [`canonical`]).
pub(super) fn data_args(data: &SessionData, out: &mut Vec<String>) -> Result<()> {
    for (k, v) in data.iter() {
        out.push(serde_json::to_string(&k).map_err(backend)?);
        out.push(canonical(v.as_str()));
    }
    Ok(())
}

/// A native record's hash as `HGETALL` gives it, read the way the code writes it: the
/// meta fields by name, the members (the fields named by a JSON string) joined into the
/// data's JSON text, as the code's `text_of` joins them.
pub(super) struct HashRecord {
    /// The data's JSON text, not parsed yet.
    pub(super) text: String,
    pub(super) version: u64,
    pub(super) created: u64,
    pub(super) last_access: u64,
    pub(super) expires_at: u64,
    pub(super) owner: Option<Arc<str>>,
    /// The session's own TTL (`tt`), when it has one.
    pub(super) own_ttl: Option<u64>,
}

impl HashRecord {
    /// Reads an `HGETALL` reply; `None` when a field does not read as the code writes it
    /// or a meta field is missing (no record, or not a native one).
    pub(super) fn read(items: &[Value]) -> Option<HashRecord> {
        let (mut v, mut c, mut a, mut e, mut owner) = (None, None, None, None, None);
        let mut own_ttl = None;
        let num = |x: &[u8]| std::str::from_utf8(x).ok()?.parse::<u64>().ok();
        let mut text = String::with_capacity(
            items
                .iter()
                .map(|i| match i {
                    Value::BulkString(b) => b.len() + 1,
                    _ => 0,
                })
                .sum::<usize>()
                + 2,
        );
        text.push('{');
        for pair in items.chunks(2) {
            let [Value::BulkString(f), Value::BulkString(x)] = pair else {
                return None;
            };
            let Ok(f) = std::str::from_utf8(f) else {
                return None;
            };
            if f.as_bytes().first() == Some(&MEMBER_MARK) {
                let Ok(x) = std::str::from_utf8(x) else {
                    return None;
                };
                if text.len() > 1 {
                    text.push(',');
                }
                text.push_str(f);
                text.push(':');
                text.push_str(x);
                continue;
            }
            match f {
                VERSION => v = num(x),
                CREATED => c = num(x),
                ACCESSED => a = num(x),
                EXPIRES => e = num(x),
                OWNER => owner = std::str::from_utf8(x).ok().map(Arc::from),
                OWN_TTL => match num(x) {
                    Some(t) => own_ttl = Some(t).filter(|&t| t > 0),
                    None => return None,
                },
                _ => {}
            }
        }
        text.push('}');
        let (Some(version), Some(created), Some(last_access), Some(expires_at)) = (v, c, a, e)
        else {
            return None;
        };
        Some(HashRecord {
            text,
            version,
            created,
            last_access,
            expires_at,
            owner,
            own_ttl,
        })
    }

    /// The record of `id`, its data parsed.
    pub(super) fn into_record(self, id: SessionId) -> Result<Record> {
        Ok(Record {
            id,
            data: Arc::new(SessionData::from_json(&self.text)?),
            version: self.version,
            created: self.created,
            last_access: self.last_access,
            expires_at: self.expires_at,
            owner: self.owner,
            ttl_ms: self.own_ttl,
        })
    }
}

impl Redis {
    /// Session keys: record, tombstone, alias. (In connect-redis layout the data key
    /// `<prefix><id>` hashes to the same slot as the hash tag `{<prefix><id>}`.)
    pub(super) fn keys(&self, id: &str) -> Vec<String> {
        let p = &self.opts.prefix;
        let m = match self.opts.layout {
            RedisLayout::Native => self.record_key(id),
            RedisLayout::ConnectRedis => format!("{{{p}{id}}}{META_HASH}"),
        };
        let base = m.strip_suffix(META_HASH).unwrap_or(&m).to_string();
        vec![m, format!("{base}{TOMBSTONE}"), format!("{base}{ALIAS}")]
    }

    /// The record's key in the native layout: `<prefix>{<id>}`.
    pub(super) fn record_key(&self, id: &str) -> String {
        format!("{}{{{id}}}", self.opts.prefix)
    }

    pub(super) fn owner_key(&self, owner: &str) -> String {
        format!("{}{{{OWNER_TAG}{owner}}}", self.opts.prefix)
    }
}
