//! A record on the wire, both halves: sessyncd writes it ([`write`]) and its client reads
//! it ([`read`]), alone (`SESS.FETCH`) or after a number (`[token, record]` of
//! `SESS.LOCK`, `[touched, record]` of `SESS.FETCH … TOUCH`: [`write_pair`],
//! [`read_pair`]).
//!
//! `[id, data, version, created, last_access, expires_at, owner]`: the data as its JSON
//! text, the owner a null when there is none, and an eighth item, the session's own TTL
//! in ms, only when it has one.

use std::sync::Arc;

use crate::{
    backend::wire::link::Resp,
    error::{Error, Result},
    session::{Record, SessionData, SessionId},
};

#[cfg(feature = "daemon")]
use crate::server::resp::Out;

/// Writes `r`.
#[cfg(feature = "daemon")]
pub(crate) fn write(out: &mut Out, r: &Record) {
    out.array(if r.ttl_ms.is_some() { 8 } else { 7 });
    out.bulk(r.id.as_bytes());
    out.bulk(r.data.to_json().as_bytes());
    out.int(r.version as i64);
    out.int(r.created as i64);
    out.int(r.last_access as i64);
    out.int(r.expires_at as i64);
    match &r.owner {
        Some(o) => out.bulk(o.as_bytes()),
        None => out.null(),
    }
    if let Some(t) = r.ttl_ms {
        out.int(t as i64);
    }
}

/// Writes `[n, r]`.
#[cfg(feature = "daemon")]
pub(crate) fn write_pair(out: &mut Out, n: i64, r: &Record) {
    out.array(2);
    out.int(n);
    write(out, r);
}

/// Reads a record.
pub(crate) fn read(r: Resp) -> Result<Record> {
    let Resp::Array(v) = r else {
        return Err(unexpected(r));
    };
    if v.len() != 7 && v.len() != 8 {
        return Err(Error::Backend(format!(
            "a record has 7 or 8 items, got {}",
            v.len()
        )));
    }
    Ok(Record {
        id: SessionId::parse(&text(&v[0])?)?,
        data: Arc::new(SessionData::from_json(&text(&v[1])?)?),
        version: int(&v[2])? as u64,
        created: int(&v[3])? as u64,
        last_access: int(&v[4])? as u64,
        expires_at: int(&v[5])? as u64,
        owner: match &v[6] {
            Resp::Null => None,
            other => Some(Arc::from(text(other)?.as_str())),
        },
        ttl_ms: match v.get(7) {
            None | Some(Resp::Null) => None,
            Some(t) => Some(int(t)? as u64),
        },
    })
}

/// Reads `[n, record]`; `what` names the reply in the error when it has not 2 items.
pub(crate) fn read_pair(r: Resp, what: &str) -> Result<(i64, Record)> {
    let Resp::Array(mut v) = r else {
        return Err(unexpected(r));
    };
    if v.len() != 2 {
        return Err(Error::Backend(format!("{what} has 2 items")));
    }
    let rec = read(v.pop().ok_or_else(|| Error::Backend("empty".into()))?)?;
    Ok((int(&v[0])?, rec))
}

/// A reply of another shape than the request's.
pub(crate) fn unexpected(r: Resp) -> Error {
    Error::Backend(format!("unexpected reply from sessyncd: {r:?}"))
}

/// An integer reply.
pub(crate) fn int(r: &Resp) -> Result<i64> {
    match r {
        Resp::Int(n) => Ok(*n),
        _ => Err(Error::Backend(format!("expected an integer, got {r:?}"))),
    }
}

/// A string reply (bulk or simple).
pub(crate) fn text(r: &Resp) -> Result<String> {
    match r {
        Resp::Bulk(b) => String::from_utf8(b.clone()).map_err(|e| Error::Backend(e.to_string())),
        Resp::Simple(s) => Ok(s.clone()),
        _ => Err(Error::Backend(format!("expected a string, got {r:?}"))),
    }
}

#[cfg(all(test, feature = "daemon"))]
mod tests {
    use std::sync::Arc;

    use super::{read, read_pair, write, write_pair};
    use crate::{
        backend::wire::link::reply_of,
        server::resp::Out,
        session::{Record, SessionData, SessionId},
    };

    fn record(owner: Option<&str>, ttl_ms: Option<u64>) -> Record {
        Record {
            id: SessionId::parse("abcdefghijklmnopqrstuvwx").expect("an id"),
            data: Arc::new(
                SessionData::from_json(r#"{"n":1,"s":"é\r\n","o":{"a":[]}}"#).expect("JSON"),
            ),
            version: 7,
            created: 1_700_000_000_000,
            last_access: 1_700_000_001_000,
            expires_at: 1_700_001_801_000,
            owner: owner.map(Arc::from),
            ttl_ms,
        }
    }

    #[test]
    fn a_record_written_by_the_daemon_reads_back_the_same_in_both_protocols() {
        for resp3 in [false, true] {
            for r in [
                record(None, None),
                record(Some("user:1"), None),
                record(Some("user:1"), Some(60_000)),
                record(None, Some(1)),
            ] {
                let mut out = Out {
                    resp3,
                    ..Out::default()
                };
                write(&mut out, &r);
                assert_eq!(
                    read(reply_of(&out.buf).expect("a reply")).expect("a record"),
                    r
                );
                let mut out = Out {
                    resp3,
                    ..Out::default()
                };
                write_pair(&mut out, 42, &r);
                let (n, back) =
                    read_pair(reply_of(&out.buf).expect("a reply"), "a pair").expect("a pair");
                assert_eq!((n, back), (42, r));
            }
        }
    }
}
