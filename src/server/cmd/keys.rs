//! The plain key commands (`GET`, `SET`, `MGET`, `DEL`, `EXISTS`, `EXPIRE`, `PEXPIRE`,
//! `TTL`, `PTTL`, `SCAN`) on the daemon's key map, as Redis answers them.

use super::{Conn, Fail, Res, upper};
use crate::server::kv;

impl Conn {
    /// The plain key commands. Takes the arguments so that `SET` keeps its value buffer.
    pub(super) fn keys(&mut self, name: &str, mut args: Vec<Vec<u8>>) -> Res {
        let a: &[Vec<u8>] = &args;
        let kv = &self.shared.kv;
        let now = self.shared.store.now_ms();
        let wrong = || {
            Fail(format!(
                "ERR wrong number of arguments for '{}' command",
                name.to_lowercase()
            ))
        };
        let int = |b: &[u8]| -> Result<i64, Fail> {
            std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Fail("ERR value is not an integer or out of range".into()))
        };
        let o = &mut self.out;
        match name {
            "GET" => {
                let [k] = a else { return Err(wrong()) };
                if kv.with(k, now, |v| o.bulk(v)).is_none() {
                    o.null();
                }
            }
            "MGET" => {
                if a.is_empty() {
                    return Err(wrong());
                }
                o.array(a.len());
                for k in a {
                    if kv.with(k, now, |v| o.bulk(v)).is_none() {
                        o.null();
                    }
                }
            }
            "SET" => {
                if a.len() < 2 {
                    return Err(wrong());
                }
                let (mut cond, mut ttl, mut get) = (kv::Cond::Always, kv::Ttl::Clear, false);
                let mut i = 2;
                while i < a.len() {
                    let opt = upper(&a[i]);
                    let arg =
                        |i: usize| a.get(i + 1).ok_or_else(|| Fail("ERR syntax error".into()));
                    let positive = |n: i64| -> Result<u64, Fail> {
                        if n <= 0 {
                            Err(Fail("ERR invalid expire time in 'set' command".into()))
                        } else {
                            Ok(n as u64)
                        }
                    };
                    match opt.as_str() {
                        "NX" => cond = kv::Cond::IfAbsent,
                        "XX" => cond = kv::Cond::IfPresent,
                        "GET" => get = true,
                        "KEEPTTL" => ttl = kv::Ttl::Keep,
                        "EX" => {
                            ttl = kv::Ttl::At(
                                now.saturating_add(positive(int(arg(i)?)?)?.saturating_mul(1000)),
                            );
                            i += 1;
                        }
                        "PX" => {
                            ttl = kv::Ttl::At(now.saturating_add(positive(int(arg(i)?)?)?));
                            i += 1;
                        }
                        "EXAT" => {
                            ttl = kv::Ttl::At(positive(int(arg(i)?)?)?.saturating_mul(1000));
                            i += 1;
                        }
                        "PXAT" => {
                            ttl = kv::Ttl::At(positive(int(arg(i)?)?)?);
                            i += 1;
                        }
                        _ => return Err(Fail("ERR syntax error".into())),
                    }
                    i += 1;
                }
                let value = std::mem::take(&mut args[1]);
                let r = kv.set(&args[0], value, cond, ttl, get, now).map_err(Fail)?;
                if get {
                    match r.old {
                        Some(v) => o.bulk(&v),
                        None => o.null(),
                    }
                } else if r.written {
                    o.simple("OK");
                } else {
                    o.null();
                }
            }
            "DEL" | "EXISTS" => {
                if a.is_empty() {
                    return Err(wrong());
                }
                let n = a
                    .iter()
                    .filter(|k| {
                        if name == "DEL" {
                            kv.del(k, now)
                        } else {
                            kv.exists(k, now)
                        }
                    })
                    .count();
                o.int(n as i64);
            }
            "EXPIRE" | "PEXPIRE" => {
                let [k, t] = a else { return Err(wrong()) };
                let n = int(t)?;
                let ms = if name == "EXPIRE" {
                    n.saturating_mul(1000)
                } else {
                    n
                };
                let done = if ms <= 0 {
                    kv.del(k, now)
                } else {
                    kv.expire_at(k, now.saturating_add(ms as u64), now)
                };
                o.int(i64::from(done));
            }
            "TTL" | "PTTL" => {
                let [k] = a else { return Err(wrong()) };
                o.int(match kv.ttl(k, now) {
                    None => -2,
                    Some(None) => -1,
                    Some(Some(ms)) if name == "TTL" => (ms.div_ceil(1000)) as i64,
                    Some(Some(ms)) => ms as i64,
                });
            }
            "SCAN" => {
                let Some(c) = a.first() else {
                    return Err(wrong());
                };
                let cursor = int(c)?;
                let mut pattern = None;
                let mut i = 1;
                while i + 1 < a.len() + 1 && i < a.len() {
                    match upper(&a[i]).as_str() {
                        "MATCH" if i + 1 < a.len() => pattern = Some(a[i + 1].as_slice()),
                        "COUNT" if i + 1 < a.len() => {
                            int(&a[i + 1])?;
                        }
                        _ => return Err(Fail("ERR syntax error".into())),
                    }
                    i += 2;
                }
                let (next, keys) = kv.scan(cursor.max(0) as usize, pattern, now);
                o.array(2);
                o.bulk(next.to_string().as_bytes());
                o.array(keys.len());
                for k in keys {
                    o.bulk(&k);
                }
            }
            _ => return Err(wrong()),
        }
        Ok(())
    }
}
