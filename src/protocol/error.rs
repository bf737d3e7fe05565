//! The error codes on the wire: the one table of which [`Error`] variant an error reply's
//! first word names, read in both directions. sessyncd writes them ([`reply`]); its
//! client and the Redis backend (whose `store.lua` raises the same codes) read them back
//! ([`parse`]).
//!
//! A reply is `CODE message`: the message is the error's text (`Display`), and the
//! variants with data put it first where it is needed to rebuild them: `ROTATED <id>`,
//! `CONFLICT <expected> <actual> message`. Errors without a code of their own
//! (`InvalidArgument`, `Backend`) go as `ERR message`; an `ERR invalid argument: …` is
//! read back as `InvalidArgument`, any other error reply as `Backend`.

use crate::{error::Error, session::SessionId};

/// Each code and the [`Error::kind`] of the variant it names.
const CODES: [(&str, &str); 11] = [
    ("NOTFOUND", "not_found"),
    ("LOCKTIMEOUT", "lock_timeout"),
    ("STALETOKEN", "stale_token"),
    ("LOCKED", "locked"),
    ("DESTROYED", "destroyed"),
    ("FULL", "full"),
    ("ROTATED", "rotated"),
    ("CONFLICT", "conflict"),
    ("TOOLARGE", "too_large"),
    ("INVALIDJSON", "invalid_json"),
    ("NOTANUMBER", "not_a_number"),
];

/// The code of an error reply for `e`: its own, or `ERR`.
pub(crate) fn code(e: &Error) -> &'static str {
    let kind = e.kind();
    CODES
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("ERR", |(c, _)| c)
}

/// The kind of the variant `code` names, if it is one of ours.
fn kind_of(code: &str) -> Option<&'static str> {
    CODES.iter().find(|(c, _)| *c == code).map(|(_, k)| *k)
}

/// The error reply (without RESP's `-`) that tells a client `e`.
pub(crate) fn reply(e: &Error) -> String {
    match e {
        Error::Rotated { to } => format!("{} {to}", code(e)),
        Error::Conflict { expected, actual } => {
            format!("{} {expected} {actual} {e}", code(e))
        }
        _ => format!("{} {e}", code(e)),
    }
}

/// Reads an error reply of sessyncd or of the Redis code (`NOTFOUND`, `CONFLICT 3 4`,
/// `ROTATED <id>`, …) back into its [`Error`]; `source` names the server in the others.
pub(crate) fn parse(e: &str, source: &str) -> Error {
    let strip = |s: &str, p: &str| s.strip_prefix(p).unwrap_or(s).to_string();
    // Redis puts `ERR` before a script's one-word error.
    if let Some(r) = e.strip_prefix("ERR ") {
        if kind_of(r.split(' ').next().unwrap_or("")).is_some() {
            return parse(r, source);
        }
    }
    let (code, rest) = e.split_once(' ').unwrap_or((e, ""));
    match kind_of(code) {
        Some("not_found") => Error::NotFound,
        Some("lock_timeout") => Error::LockTimeout,
        Some("stale_token") => Error::StaleToken,
        Some("locked") => Error::Locked,
        Some("destroyed") => Error::Destroyed,
        Some("full") => Error::Full,
        Some("rotated") => match rest.split(' ').next().map(SessionId::parse) {
            Some(Ok(to)) => Error::Rotated { to },
            _ => Error::Backend(format!("{source}: bad ROTATED reply: {e}")),
        },
        Some("conflict") => {
            let mut n = rest.split(' ').map(|x| x.parse::<u64>());
            match (n.next(), n.next()) {
                (Some(Ok(expected)), Some(Ok(actual))) => Error::Conflict { expected, actual },
                _ => Error::Backend(format!("{source}: bad CONFLICT reply: {e}")),
            }
        }
        Some("too_large") => Error::TooLarge(strip(rest, "too large: ")),
        Some("invalid_json") => Error::InvalidJson(strip(rest, "invalid JSON: ")),
        Some("not_a_number") => Error::NotANumber(strip(rest, "not a number: ")),
        _ if code == "ERR" && rest.starts_with("invalid argument: ") => {
            Error::InvalidArgument(strip(rest, "invalid argument: "))
        }
        _ => Error::Backend(format!("{source}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{CODES, code, kind_of, parse, reply};
    use crate::{error::Error, session::SessionId};

    /// One of each variant (every one that crosses the wire as itself, and `Backend`).
    fn every_variant() -> Vec<Error> {
        let id = SessionId::parse("abcdefghijklmnopqrstuvwx").expect("an id");
        vec![
            Error::NotFound,
            Error::Conflict {
                expected: 3,
                actual: 4,
            },
            Error::LockTimeout,
            Error::StaleToken,
            Error::Locked,
            Error::Destroyed,
            Error::Rotated { to: id },
            Error::Full,
            Error::TooLarge("session data of 9 bytes exceeds max_session_bytes=8".into()),
            Error::InvalidJson("expected value at line 1 column 1".into()),
            Error::NotANumber("key n holds \"x\", not an integer".into()),
            Error::InvalidArgument("owner must be 1 to 512 bytes, got 0".into()),
            Error::Backend("redis at h:1: broken pipe".into()),
        ]
    }

    #[test]
    fn every_error_that_crosses_the_wire_comes_back_as_itself() {
        for e in every_variant() {
            let wire = reply(&e);
            let back = parse(&wire, "sessyncd");
            if let Error::Backend(m) = &e {
                // The environment's errors are the server's, and say so.
                assert_eq!(
                    back,
                    Error::Backend(format!("sessyncd: ERR backend error: {m}"))
                );
            } else {
                assert_eq!(back, e, "{wire}");
            }
            // As Redis passes a script's error on: after `ERR `.
            if code(&e) != "ERR" {
                assert_eq!(parse(&format!("ERR {wire}"), "redis"), e, "{wire}");
            }
        }
    }

    #[test]
    fn the_table_names_each_variant_once() {
        let kinds: Vec<&str> = every_variant().iter().map(Error::kind).collect();
        for (i, (c, k)) in CODES.iter().enumerate() {
            assert!(kinds.contains(k), "{c} names no variant");
            assert!(CODES[i + 1..].iter().all(|(c2, k2)| c2 != c && k2 != k));
        }
    }

    #[test]
    fn every_code_of_the_redis_code_is_in_the_table() {
        let lua = include_str!("../backend/redis/store.lua");
        let mut seen = 0;
        for part in lua.split("fail('").skip(1) {
            let word: String = part.chars().take_while(char::is_ascii_uppercase).collect();
            if word == "ERR" {
                continue;
            }
            assert!(kind_of(&word).is_some(), "store.lua raises {word}");
            seen += 1;
        }
        assert!(seen > 10);
    }
}
