//! Session data: a JSON object kept as one validated JSON text per key.
//!
//! A session is read far more often than it is written, and a write usually changes one
//! key. Keeping each value as its own already-validated JSON text means a fetch hands out
//! a shared snapshot (an `Arc`, no copy, no parse), a one-key change re-encodes that one
//! value only, and the whole-object JSON is built by concatenation (and cached) when
//! somebody asks for it. Nothing re-parses or re-serializes the whole session.

use std::{collections::BTreeMap, fmt, sync::Arc};

use once_cell::sync::OnceCell;
use serde_json::{Map, Value, value::RawValue};

use crate::error::{Error, Result};

/// Longest key of a session object, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// One JSON value, validated once and kept as compact text.
#[derive(Clone, PartialEq, Eq)]
pub struct RawJson(Arc<str>);

impl RawJson {
    /// Validates `text` as one JSON value (surrounding whitespace is dropped).
    pub fn parse(text: &str) -> Result<RawJson> {
        let text = text.trim_matches(|c| c == ' ' || c == '\t' || c == '\n' || c == '\r');
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| Error::InvalidJson(e.to_string()))?;
        Ok(RawJson(Arc::from(text)))
    }

    /// Encodes a `serde_json::Value`.
    pub fn from_value(v: &Value) -> RawJson {
        RawJson(Arc::from(v.to_string()))
    }

    /// Encodes any serializable value directly, without an intermediate `Value`.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(v: &T) -> Result<RawJson> {
        let text = serde_json::to_string(v).map_err(|e| Error::InvalidJson(e.to_string()))?;
        Ok(RawJson(Arc::from(text)))
    }

    /// Encodes an integer.
    pub fn from_i64(n: i64) -> RawJson {
        // Formatted on the stack: one allocation, for the `Arc` itself.
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        let mut m = n.unsigned_abs();
        loop {
            i -= 1;
            buf[i] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        let digits = std::str::from_utf8(&buf[i..]).unwrap_or("0");
        if n < 0 {
            RawJson(Arc::from(format!("-{digits}")))
        } else {
            RawJson(Arc::from(digits))
        }
    }

    fn from_raw(raw: &RawValue) -> RawJson {
        RawJson(Arc::from(raw.get()))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes into a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        // The text was validated when this value was made.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The value as an `i64`, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        let t = self.as_str();
        // Fast path: a plain decimal integer, the common shape of a counter.
        if !t.is_empty()
            && t.bytes()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == b'-'))
        {
            return t.parse().ok();
        }
        serde_json::from_str::<Value>(t).ok()?.as_i64()
    }

    /// Decodes into any deserializable type.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.0).map_err(|e| Error::InvalidJson(e.to_string()))
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bytes that `key` takes once written as a JSON string, quotes included.
fn escaped_len(key: &str) -> usize {
    2 + key
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// The data of a session: a JSON object, each value kept as validated JSON text.
///
/// Immutable once shared: the store hands out `Arc<SessionData>` snapshots, and a change
/// builds a new object that shares every untouched key and value with the old one.
#[derive(Default)]
pub struct SessionData {
    map: BTreeMap<Arc<str>, RawJson>,
    /// Exact length of [`SessionData::to_json`], kept up to date by every change.
    bytes: usize,
    /// The whole-object JSON, built on first request.
    json: OnceCell<Arc<str>>,
}

impl Clone for SessionData {
    fn clone(&self) -> Self {
        SessionData {
            map: self.map.clone(),
            bytes: self.bytes,
            json: OnceCell::new(),
        }
    }
}

impl PartialEq for SessionData {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

impl SessionData {
    /// An empty object.
    pub fn new() -> SessionData {
        SessionData::default()
    }

    /// Parses a JSON object. Anything else (an array, a number, junk) is an error.
    pub fn from_json(text: &str) -> Result<SessionData> {
        let parsed: Value =
            serde_json::from_str(text).map_err(|e| Error::InvalidJson(e.to_string()))?;
        if !parsed.is_object() {
            return Err(Error::InvalidJson(
                "session data must be a JSON object".into(),
            ));
        }
        // Parse again keeping each value as raw text (cheaper than re-encoding each one).
        let raw: BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(text).map_err(|e| Error::InvalidJson(e.to_string()))?;
        let mut data = SessionData::new();
        for (k, v) in raw {
            data.insert_checked(&k, RawJson::from_raw(&v))?;
        }
        Ok(data)
    }

    /// Builds from a `serde_json::Value`, which must be an object.
    pub fn from_value(v: &Value) -> Result<SessionData> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::InvalidJson("session data must be a JSON object".into()))?;
        let mut data = SessionData::new();
        for (k, v) in obj {
            data.insert_checked(k, RawJson::from_value(v))?;
        }
        Ok(data)
    }

    fn insert_checked(&mut self, key: &str, value: RawJson) -> Result<()> {
        check_key(key)?;
        self.set(key, value);
        Ok(())
    }

    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<&RawJson> {
        self.map.get(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when the object has no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The keys and values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawJson)> {
        self.map.iter().map(|(k, v)| (&**k, v))
    }

    /// Size of the object as JSON text, in bytes.
    pub fn byte_len(&self) -> usize {
        if self.map.is_empty() {
            2
        } else {
            self.bytes + 1
        }
    }

    /// The object as compact JSON text. Built by concatenation on first call, then cached.
    pub fn to_json(&self) -> Arc<str> {
        self.json
            .get_or_init(|| {
                let mut out = String::with_capacity(self.byte_len());
                out.push('{');
                for (i, (k, v)) in self.map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_string(&mut out, k);
                    out.push(':');
                    out.push_str(v.as_str());
                }
                out.push('}');
                Arc::from(out)
            })
            .clone()
    }

    /// Decodes the whole object.
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.map
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_value()))
                .collect(),
        )
    }

    /// Sets `key` to `value` (replacing, never merging).
    pub(crate) fn set(&mut self, key: &str, value: RawJson) {
        self.json = OnceCell::new();
        let new_len = value.as_str().len();
        // An existing key keeps its allocation; only the value changes.
        if let Some(slot) = self.map.get_mut(key) {
            self.bytes = self.bytes - slot.as_str().len() + new_len;
            *slot = value;
            return;
        }
        self.bytes += escaped_len(key) + 1 + new_len + 1;
        self.map.insert(Arc::from(key), value);
    }

    /// Removes `key`; true if it was there.
    pub(crate) fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some(old) => {
                self.json = OnceCell::new();
                self.bytes -= escaped_len(key) + 1 + old.as_str().len() + 1;
                true
            }
            None => false,
        }
    }

    /// Adds `by` to the integer at `key` (a missing key counts as 0) and returns the sum.
    pub(crate) fn incr(&mut self, key: &str, by: i64) -> Result<i64> {
        check_key(key)?;
        let cur = match self.map.get(key) {
            None => 0,
            Some(v) => v.as_i64().ok_or_else(|| {
                Error::NotANumber(format!(
                    "key {key:?} holds {}, not an integer",
                    truncate(v.as_str())
                ))
            })?,
        };
        let next = cur
            .checked_add(by)
            .ok_or_else(|| Error::NotANumber(format!("incrementing key {key:?} overflows i64")))?;
        self.set(key, RawJson::from_i64(next));
        Ok(next)
    }

    /// Applies an RFC 7396 merge patch whose top level is an object. Only the keys the
    /// patch names are decoded and re-encoded.
    pub(crate) fn merge(&mut self, patch: &Map<String, Value>) -> Result<()> {
        for (k, pv) in patch {
            check_key(k)?;
            match pv {
                Value::Null => {
                    self.remove(k);
                }
                Value::Object(_) => {
                    let mut target = match self.map.get(k.as_str()) {
                        Some(v) if v.as_str().starts_with('{') => v.to_value(),
                        _ => Value::Object(Map::new()),
                    };
                    merge_patch(&mut target, pv);
                    self.set(k, RawJson::from_value(&target));
                }
                other => self.set(k, RawJson::from_value(other)),
            }
        }
        Ok(())
    }
}

/// Checks a key against [`MAX_KEY_LEN`].
pub(crate) fn check_key(key: &str) -> Result<()> {
    if key.len() > MAX_KEY_LEN {
        return Err(Error::TooLarge(format!(
            "key of {} bytes exceeds the limit of {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_string()).to_string());
    }
}

/// RFC 7396 JSON Merge Patch: applies `patch` to `target` in place.
///
/// A patch that is not an object replaces the target; in an object patch, `null` deletes
/// the key and every other member is merged recursively.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip_and_byte_len() {
        let d = SessionData::from_json(r#"{"b": [1, 2], "a": "x\"y", "c\n": null}"#).unwrap();
        let j = d.to_json();
        assert_eq!(&*j, r#"{"a":"x\"y","b":[1, 2],"c\n":null}"#);
        assert_eq!(d.byte_len(), j.len());
        assert_eq!(
            SessionData::new().byte_len(),
            SessionData::new().to_json().len()
        );
    }

    #[test]
    fn rejects_non_objects_and_junk() {
        assert!(matches!(
            SessionData::from_json("[1]"),
            Err(Error::InvalidJson(_))
        ));
        assert!(matches!(
            SessionData::from_json("{"),
            Err(Error::InvalidJson(_))
        ));
        assert!(matches!(
            SessionData::from_json("{} x"),
            Err(Error::InvalidJson(_))
        ));
    }

    #[test]
    fn merge_follows_rfc7396_examples() {
        // The examples of RFC 7396, appendix A, whose target and result are objects.
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut d = SessionData::from_value(&target).unwrap();
            d.merge(patch.as_object().unwrap()).unwrap();
            assert_eq!(d.to_value(), want, "patch {patch}");
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, want);
            assert_eq!(d.byte_len(), d.to_json().len());
        }
    }

    #[test]
    fn incr_counts_and_refuses_non_integers() {
        let mut d = SessionData::from_json(r#"{"n":41,"s":"x","f":1.5}"#).unwrap();
        assert_eq!(d.incr("n", 1).unwrap(), 42);
        assert_eq!(d.incr("new", -3).unwrap(), -3);
        assert!(matches!(d.incr("s", 1), Err(Error::NotANumber(_))));
        assert!(matches!(d.incr("f", 1), Err(Error::NotANumber(_))));
        d.set("big", RawJson::parse(&i64::MAX.to_string()).unwrap());
        assert!(matches!(d.incr("big", 1), Err(Error::NotANumber(_))));
        assert_eq!(d.byte_len(), d.to_json().len());
        for n in [0, 7, -7, 10, -1234567890, i64::MAX, i64::MIN] {
            assert_eq!(RawJson::from_i64(n).as_str(), n.to_string());
        }
    }
}
