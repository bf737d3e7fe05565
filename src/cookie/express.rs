//! express-session's cookie value, so that a Node app using `express-session` and a
//! sessync server can share their visitors' sessions.
//!
//! express-session writes `s:<id>.<sig>` (the `cookie-signature` package's `sign`: `sig`
//! is the standard base64 HMAC-SHA256 of the id under the first secret, with the trailing
//! `=` removed), and the `cookie` package serializes it with `encodeURIComponent`, so the
//! browser holds `s%3A<id>.<sig>` with `+` written `%2B` and `/` written `%2F`. Reading,
//! express-session percent-decodes the value, requires the `s:` prefix, splits at the last
//! `.` and accepts the id if one of its secrets signs it.

use super::sign::{self, Alphabet};
use crate::session::{MAX_ID_LEN, SessionId};

/// The prefix express-session puts before a signed value.
const PREFIX: &str = "s:";

/// Longest decoded value a valid cookie can have: the prefix, the longest id, the dot and
/// the signature.
const MAX_DECODED_LEN: usize = PREFIX.len() + MAX_ID_LEN + 1 + sign::SIG_CHARS;

/// Longest raw cookie value [`decode`] looks at: every decoded byte written as `%XX`.
pub(crate) const MAX_ENCODED_LEN: usize = 3 * MAX_DECODED_LEN;

/// The cookie value express-session writes for `id`, signed with `key`, URL-encoded; or
/// `None` if the MAC cannot be keyed (never, with the `hmac` crate).
pub(crate) fn encode(key: &[u8], id: &SessionId) -> Option<String> {
    let sig = sign::signature_in(Alphabet::Standard, key, id)?;
    let plain = format!("{PREFIX}{}{}{sig}", id.as_str(), sign::SEPARATOR);
    Some(encode_uri_component(&plain))
}

/// The id in an express-session cookie value, if it is signed by one of `keys` and the id
/// is one [`SessionId::parse`] accepts; `None` for anything else (an unsigned value, a bad
/// percent-escape, a wrong signature, a value too long to be one).
pub(crate) fn decode(keys: &[Vec<u8>], value: &str) -> Option<SessionId> {
    if value.len() > MAX_ENCODED_LEN || keys.is_empty() {
        return None;
    }
    let plain = percent_decode(value)?;
    let signed = plain.strip_prefix(PREFIX)?;
    let (id, sig) = signed.rsplit_once(sign::SEPARATOR)?;
    let id = SessionId::parse(id).ok()?;
    sign::verify_in(Alphabet::Standard, keys, &id, sig).then_some(id)
}

/// Whether JavaScript's `encodeURIComponent` leaves `b` as it is: ASCII letters, digits
/// and `- _ . ! ~ * ' ( )`.
fn is_uri_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// `encodeURIComponent`: every UTF-8 byte outside [`is_uri_unreserved`] as `%XX`, with
/// upper-case hex digits.
fn encode_uri_component(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + 16);
    for &b in s.as_bytes() {
        if is_uri_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// The value of one hex digit, either case.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `decodeURIComponent`, strictly: each `%` must start a two-hex-digit escape, and the
/// result must be UTF-8; `None` otherwise. `+` stays `+` (it is not form encoding).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex_value(*b.get(i + 1)?)?;
            let lo = hex_value(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef";

    fn id() -> SessionId {
        SessionId::parse("abcdefghijklmnop-_0123456789ABCD").unwrap()
    }

    #[test]
    fn encodes_like_express_session() {
        // The signature (standard base64) is 7npFBWbWTn2jG8UPmY+dpStsHhPqg+wb004lwxMThl0
        // (see sign.rs); `:` and `+` are percent-encoded, `-`, `_` and `.` are not.
        assert_eq!(
            encode(KEY, &id()).unwrap(),
            "s%3Aabcdefghijklmnop-_0123456789ABCD.7npFBWbWTn2jG8UPmY%2BdpStsHhPqg%2Bwb004lwxMThl0"
        );
    }

    #[test]
    fn decodes_what_it_encodes_and_the_unencoded_spelling() {
        let keys = [KEY.to_vec()];
        let value = encode(KEY, &id()).unwrap();
        assert_eq!(decode(&keys, &value), Some(id()));
        // decodeURIComponent also accepts lower-case escapes and characters left as they
        // are: all spell the same `s:<id>.<sig>`.
        let plain = percent_decode(&value).unwrap();
        assert!(plain.starts_with("s:"));
        assert_eq!(decode(&keys, &plain), Some(id()));
        assert_eq!(decode(&keys, &value.replace("%2B", "%2b")), Some(id()));
        assert_eq!(decode(&keys, &value.replace("%3A", "%3a")), Some(id()));
    }

    #[test]
    fn any_key_verifies_the_first_signs() {
        let old = b"an older secret, still accepted".to_vec();
        let value = encode(&old, &id()).unwrap();
        assert_eq!(decode(&[KEY.to_vec(), old.clone()], &value), Some(id()));
        assert_eq!(decode(&[KEY.to_vec()], &value), None);
        assert_eq!(decode(&[], &value), None);
    }

    #[test]
    fn refuses_unsigned_malformed_and_tampered_values() {
        let keys = [KEY.to_vec()];
        let value = encode(KEY, &id()).unwrap();
        let plain = percent_decode(&value).unwrap();
        let sig = plain.rsplit_once('.').unwrap().1.to_string();
        let bad = [
            String::new(),
            id().to_string(),
            format!("{}.{sig}", id()),                       // no s: prefix
            format!("S:{}.{sig}", id()),                     // the prefix is case-sensitive
            format!("s:{}", id()),                           // no signature
            format!("s:{}.", id()),                          // empty signature
            format!("s:{}.{sig}=", id()),                    // padded
            format!("s:{}.{}", id(), &sig[1..]),             // truncated
            format!("s:{}x.{sig}", id()),                    // another id
            format!("s:{}.{sig}", &id().as_str()[..15]),     // an id too short for SessionId
            format!("s:{}.x.{sig}", id()),                   // the id part has a dot
            format!("s:{}.{}", id(), sig.replace('+', "-")), // base64url, not standard
            value.replacen("%2B", "%2", 1),                  // broken escape
            value.replacen("%2B", "%G0", 1),                 // not hex
            format!("{value}%"),
            format!("{value}%ff"), // not UTF-8 once decoded
            "s%3A".repeat(100),
        ];
        for v in &bad {
            assert_eq!(decode(&keys, v), None, "{v:?}");
        }
        // A valid value made longer than any valid one is refused before any work.
        assert_eq!(
            decode(&keys, &format!("{value}{}", "%41".repeat(100))),
            None
        );
    }

    #[test]
    fn uri_component_encoding() {
        assert_eq!(encode_uri_component("aZ09-_.!~*'()"), "aZ09-_.!~*'()");
        assert_eq!(encode_uri_component("s:+/= ;%"), "s%3A%2B%2F%3D%20%3B%25");
        assert_eq!(encode_uri_component("é"), "%C3%A9");
        for s in ["", "s:abc.d+e/f", "é ü", "%%41"] {
            assert_eq!(percent_decode(&encode_uri_component(s)).as_deref(), Some(s));
        }
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%c3"), None);
    }
}
