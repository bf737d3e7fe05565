//! Session data: a JSON object kept as its own compact JSON text, with an index.
//!
//! A session is read far more often than it is written, and a write usually changes one
//! key. The object is stored once, as the JSON text a client would receive
//! (`{"a":1,"b":[2]}`, keys sorted), plus an index of where each key and value sit in it.
//! A fetch hands out a shared snapshot (an `Arc`: no copy, no parse); reading one key is
//! a binary search and a slice; the whole-object JSON is the text itself. A change is
//! collected in an [`Edit`] and then written out as one new text by copying the untouched
//! members' bytes as they are: only the values the change names are encoded, and nothing
//! re-parses or re-serializes the rest of the session. One session is three allocations
//! (the text, the index, the `Arc`), however many keys it has.

use std::{borrow::Cow, collections::BTreeMap, fmt, sync::Arc};

use serde_json::{Map, Value, value::RawValue};

use crate::error::{Error, Result};

/// Longest key of a session object, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// A borrowed JSON value: validated JSON text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Json<'a>(&'a str);

impl<'a> Json<'a> {
    /// The JSON text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// The value as an `i64`, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        let t = self.0;
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

    /// Decodes into a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        // The text was validated when it was stored.
        serde_json::from_str(self.0).unwrap_or(Value::Null)
    }

    /// Decodes into any deserializable type.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(self.0).map_err(|e| Error::InvalidJson(e.to_string()))
    }

    /// An owned copy.
    pub fn to_owned(&self) -> RawJson {
        RawJson(Arc::from(self.0))
    }
}

impl fmt::Debug for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One JSON value, validated once and kept as text. Cheap to clone (an `Arc`).
#[derive(Clone, PartialEq, Eq)]
pub struct RawJson(Arc<str>);

impl RawJson {
    /// Validates `text` as one JSON value (surrounding whitespace is dropped).
    pub fn parse(text: &str) -> Result<RawJson> {
        let text = text.trim_matches([' ', '\t', '\n', '\r']);
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| Error::InvalidJson(e.to_string()))?;
        super::check_numbers(text)?;
        Ok(RawJson(Arc::from(text)))
    }

    /// Encodes a `serde_json::Value`.
    pub fn from_value(v: &Value) -> RawJson {
        RawJson(Arc::from(v.to_string()))
    }

    /// Encodes any serializable value directly, without an intermediate `Value`.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(v: &T) -> Result<RawJson> {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        // Encoded into a per-thread buffer, then copied once into the `Arc`.
        BUF.with(|b| {
            let mut buf = b.try_borrow_mut().map_err(|_| {
                Error::InvalidJson("a value's Serialize impl serialized another value".into())
            })?;
            buf.clear();
            serde_json::to_writer(&mut *buf, v).map_err(|e| Error::InvalidJson(e.to_string()))?;
            let text = std::str::from_utf8(&buf).map_err(|e| Error::InvalidJson(e.to_string()))?;
            let out = RawJson(Arc::from(text));
            if buf.capacity() > 64 * 1024 {
                *buf = Vec::new();
            }
            Ok(out)
        })
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

    /// The value, borrowed.
    pub fn as_json(&self) -> Json<'_> {
        Json(&self.0)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes into a `serde_json::Value`.
    pub fn to_value(&self) -> Value {
        self.as_json().to_value()
    }

    /// The value as an `i64`, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        self.as_json().as_i64()
    }

    /// Decodes into any deserializable type.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        self.as_json().deserialize()
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

/// Where one member sits in the text: its key literal (quotes included) and its value.
#[derive(Clone, Copy, Debug)]
struct Member {
    /// The key's first eight bytes, big-endian, zero-padded: most comparisons end here,
    /// without reading the text.
    prefix: u64,
    key: (u32, u32),
    value: (u32, u32),
    /// The key literal has no escape, so its bytes between the quotes are the key.
    plain: bool,
}

/// The data of a session: a JSON object, kept as compact JSON text with an index.
///
/// Immutable: the store hands out `Arc<SessionData>` snapshots, and a change builds a new
/// object (see the module docs).
#[derive(Clone)]
pub struct SessionData {
    /// The object's JSON, then a NUL (not part of it); kept with the capacity it was built
    /// with: shrinking would copy it once more.
    text: String,
    members: Vec<Member>,
}

impl Default for SessionData {
    fn default() -> Self {
        SessionData {
            text: "{}\0".into(),
            members: Vec::new(),
        }
    }
}

impl PartialEq for SessionData {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Debug for SessionData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_json())
    }
}

/// Writes an object member by member, in key order.
struct Builder {
    text: String,
    members: Vec<Member>,
}

impl Builder {
    fn new(capacity: usize, count: usize) -> Builder {
        let mut text = String::with_capacity(capacity);
        text.push('{');
        Builder {
            text,
            members: Vec::with_capacity(count),
        }
    }

    fn pos(&self) -> u32 {
        self.text.len() as u32
    }

    /// Appends a member: its key literal is `key_parts` concatenated (already escaped).
    fn member(&mut self, prefix: u64, key_parts: &[&str], plain: bool, value: &str) {
        if !self.members.is_empty() {
            self.text.push(',');
        }
        let ks = self.pos();
        for part in key_parts {
            self.text.push_str(part);
        }
        let ke = self.pos();
        self.text.push(':');
        let vs = self.pos();
        self.text.push_str(value);
        let ve = self.pos();
        self.members.push(Member {
            prefix,
            key: (ks, ke),
            value: (vs, ve),
            plain,
        });
    }

    /// Appends a member copied from another object: its key literal and value as text.
    fn push_raw(&mut self, prefix: u64, key_literal: &str, plain: bool, value: &str) {
        self.member(prefix, &[key_literal], plain, value);
    }

    /// Appends a member whose key is given unescaped.
    fn push(&mut self, key: &str, value: &str) {
        if is_plain(key) {
            self.member(prefix(key), &["\"", key, "\""], true, value);
        } else {
            let literal = Value::String(key.to_string()).to_string();
            self.member(prefix(key), &[&literal], false, value);
        }
    }

    fn finish(mut self) -> Result<SessionData> {
        self.text.push('}');
        // A NUL after the object (not part of it), so C callers can borrow it as a string.
        self.text.push('\0');
        if self.text.len() > u32::MAX as usize {
            return Err(Error::TooLarge("session data over 4 GiB".into()));
        }
        Ok(SessionData {
            text: self.text,
            members: self.members,
        })
    }
}

/// The first eight bytes of `key`, big-endian, zero-padded. If two keys' prefixes
/// differ, they order as the keys do; if they tie, the keys must be compared whole.
fn prefix(key: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

/// A key that needs no escaping in JSON.
fn is_plain(key: &str) -> bool {
    key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

impl SessionData {
    /// An empty object.
    pub fn new() -> SessionData {
        SessionData::default()
    }

    /// Parses a JSON object. Anything else (an array, a number, junk) is an error.
    pub fn from_json(text: &str) -> Result<SessionData> {
        if !text.trim_start().starts_with('{') {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|e| Error::InvalidJson(e.to_string()))?;
            return Err(Error::InvalidJson(
                "session data must be a JSON object".into(),
            ));
        }
        // Keys decoded (and sorted, the last of a repeated key winning), values kept as
        // the text they were sent as.
        let raw: BTreeMap<String, &RawValue> =
            serde_json::from_str(text).map_err(|e| Error::InvalidJson(e.to_string()))?;
        super::check_numbers(text)?;
        // The text's length and the NUL: compact input is rebuilt into exactly that, and
        // one byte short would double the buffer.
        let mut b = Builder::new(text.len() + 1, raw.len());
        for (k, v) in &raw {
            check_key(k)?;
            b.push(k, v.get());
        }
        b.finish()
    }

    /// Builds from a `serde_json::Value`, which must be an object.
    pub fn from_value(v: &Value) -> Result<SessionData> {
        let obj = v
            .as_object()
            .ok_or_else(|| Error::InvalidJson("session data must be a JSON object".into()))?;
        let mut items: Vec<(&String, String)> =
            obj.iter().map(|(k, v)| (k, v.to_string())).collect();
        items.sort_by(|a, b| a.0.cmp(b.0));
        // Braces, NUL, and per member its quoted key, colon, value and comma (a key that
        // needs escaping may still grow it).
        let size = 3 + items
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
        let mut b = Builder::new(size, items.len());
        for (k, v) in &items {
            check_key(k)?;
            b.push(k, v);
        }
        b.finish()
    }

    fn slice(&self, r: (u32, u32)) -> &str {
        self.text.get(r.0 as usize..r.1 as usize).unwrap_or("")
    }

    fn key_of(&self, m: &Member) -> Cow<'_, str> {
        let lit = self.slice(m.key);
        if m.plain {
            Cow::Borrowed(lit.get(1..lit.len().saturating_sub(1)).unwrap_or(""))
        } else {
            Cow::Owned(serde_json::from_str::<String>(lit).unwrap_or_default())
        }
    }

    /// Orders member `m` against `key` (whose prefix is `p`).
    fn cmp_key(&self, m: &Member, key: &str, p: u64) -> std::cmp::Ordering {
        m.prefix
            .cmp(&p)
            .then_with(|| self.key_of(m).as_ref().cmp(key))
    }

    fn find(&self, key: &str) -> Option<&Member> {
        let p = prefix(key);
        self.members
            .binary_search_by(|m| self.cmp_key(m, key, p))
            .ok()
            .map(|i| &self.members[i])
    }

    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<Json<'_>> {
        self.find(key).map(|m| Json(self.slice(m.value)))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when the object has no key.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The keys and values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Json<'_>)> {
        self.members
            .iter()
            .map(|m| (self.key_of(m), Json(self.slice(m.value))))
    }

    /// Size of the object as JSON text, in bytes.
    pub fn byte_len(&self) -> usize {
        self.text.len() - 1
    }

    /// The object as compact JSON text (keys sorted). Free: it is how the data is kept.
    pub fn to_json(&self) -> &str {
        &self.text[..self.text.len() - 1]
    }

    /// The object's JSON text followed by a NUL byte, for C callers; valid as long as this
    /// `SessionData`.
    pub fn as_c_ptr(&self) -> *const std::ffi::c_char {
        self.text.as_ptr().cast()
    }

    /// Decodes the whole object.
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.iter()
                .map(|(k, v)| (k.into_owned(), v.to_value()))
                .collect(),
        )
    }

    /// Starts a change of this object; nothing happens to it until `Edit::finish`.
    pub(crate) fn edit<'k>(&'k self) -> Edit<'k> {
        Edit {
            base: self,
            overlay: Vec::new(),
        }
    }
}

/// A change in progress: the new values of the keys it names, over a base object. Keys
/// are borrowed from the operations that name them.
pub(crate) struct Edit<'a> {
    base: &'a SessionData,
    /// (key, new value or `None` for a removed key), sorted by key.
    overlay: Vec<(&'a str, Option<RawJson>)>,
}

impl<'a> Edit<'a> {
    fn current(&self, key: &str) -> Option<Json<'_>> {
        match self.overlay.binary_search_by(|(k, _)| (*k).cmp(key)) {
            Ok(i) => self.overlay[i].1.as_ref().map(|v| v.as_json()),
            Err(_) => self.base.get(key),
        }
    }

    fn put(&mut self, key: &'a str, value: Option<RawJson>) {
        match self.overlay.binary_search_by(|(k, _)| (*k).cmp(key)) {
            Ok(i) => self.overlay[i].1 = value,
            Err(i) => self.overlay.insert(i, (key, value)),
        }
    }

    /// Sets `key` to `value` (replacing, never merging).
    pub fn set(&mut self, key: &'a str, value: RawJson) -> Result<()> {
        check_key(key)?;
        self.put(key, Some(value));
        Ok(())
    }

    /// Removes `key` (absent is fine).
    pub fn remove(&mut self, key: &'a str) {
        self.put(key, None);
    }

    /// Adds `by` to the integer at `key` (a missing key counts as 0) and returns the sum.
    pub fn incr(&mut self, key: &'a str, by: i64) -> Result<i64> {
        check_key(key)?;
        let cur = match self.current(key) {
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
        self.put(key, Some(RawJson::from_i64(next)));
        Ok(next)
    }

    /// Applies an RFC 7396 merge patch whose top level is an object. Only the keys the
    /// patch names are decoded and re-encoded.
    pub fn merge(&mut self, patch: &'a Map<String, Value>) -> Result<()> {
        for (k, pv) in patch {
            check_key(k)?;
            let next = match pv {
                Value::Null => None,
                Value::Object(_) => {
                    let mut target = match self.current(k) {
                        Some(v) if v.as_str().starts_with('{') => v.to_value(),
                        _ => Value::Object(Map::new()),
                    };
                    merge_patch(&mut target, pv);
                    Some(RawJson::from_value(&target))
                }
                other => Some(RawJson::from_value(other)),
            };
            self.put(k, next);
        }
        Ok(())
    }

    /// Writes the new object: untouched members are copied as bytes, in key order.
    pub fn finish(self) -> Result<SessionData> {
        let base = self.base;
        let extra: usize = self
            .overlay
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.as_str().len()) + 4)
            .sum();
        let mut b = Builder::new(
            base.text.len() + extra,
            base.members.len() + self.overlay.len(),
        );
        let mut i = 0;
        let copy = |b: &mut Builder, m: &Member| {
            b.push_raw(m.prefix, base.slice(m.key), m.plain, base.slice(m.value));
        };
        for (k, v) in &self.overlay {
            while let Some(m) = base.members.get(i) {
                match base.cmp_key(m, k, prefix(k)) {
                    std::cmp::Ordering::Less => {
                        copy(&mut b, m);
                        i += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        i += 1;
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            if let Some(v) = v {
                b.push(k, v.as_str());
            }
        }
        for m in &base.members[i..] {
            copy(&mut b, m);
        }
        b.finish()
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

    /// A session keeps what its text needs, not the doubling of a buffer one byte short
    /// (a whole write used to keep 2 KiB for 1 KiB of JSON).
    #[test]
    fn the_text_is_built_without_spare_capacity() {
        let compact = format!(r#"{{"a":1,"pad":"{}"}}"#, "x".repeat(1000));
        let d = SessionData::from_json(&compact).unwrap();
        assert_eq!(d.text.capacity(), compact.len() + 1);
        let v: serde_json::Value = serde_json::from_str(&compact).unwrap();
        let d = SessionData::from_value(&v).unwrap();
        assert!(
            d.text.capacity() <= compact.len() + 16,
            "{}",
            d.text.capacity()
        );
    }

    #[test]
    fn json_round_trip_and_lookup() {
        let d =
            SessionData::from_json(r#"{"b": [1, 2], "a": "x\"y", "c\n": null, "a": 3}"#).unwrap();
        assert_eq!(d.to_json(), r#"{"a":3,"b":[1, 2],"c\n":null}"#);
        assert_eq!(d.get("a").unwrap().as_i64(), Some(3));
        assert_eq!(d.get("c\n").unwrap().as_str(), "null");
        assert_eq!(d.get("b").unwrap().as_str(), "[1, 2]");
        assert!(d.get("z").is_none());
        assert_eq!(d.len(), 3);
        assert_eq!(SessionData::new().to_json(), "{}");
    }

    #[test]
    fn rejects_non_objects_and_junk() {
        for bad in ["[1]", "{", "{} x", "\"s\"", "", "nul"] {
            assert!(
                matches!(SessionData::from_json(bad), Err(Error::InvalidJson(_))),
                "{bad}"
            );
        }
    }

    fn merged(target: &Value, patch: &Value) -> SessionData {
        let d = SessionData::from_value(target).unwrap();
        let mut e = d.edit();
        e.merge(patch.as_object().unwrap()).unwrap();
        e.finish().unwrap()
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
            let d = merged(&target, &patch);
            assert_eq!(d.to_value(), want, "patch {patch}");
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, want);
        }
    }

    #[test]
    fn edits_copy_untouched_members_and_keep_order() {
        let d = SessionData::from_json(r#"{"a":1,"c":[ 3 ],"e\"":5,"g":7}"#).unwrap();
        let mut e = d.edit();
        e.set("b", RawJson::parse("2").unwrap()).unwrap();
        e.remove("c");
        e.set("h", RawJson::parse("\"x\"").unwrap()).unwrap();
        e.set("a", RawJson::parse("10").unwrap()).unwrap();
        e.remove("zz");
        let n = e.finish().unwrap();
        assert_eq!(n.to_json(), r#"{"a":10,"b":2,"e\"":5,"g":7,"h":"x"}"#);
        assert_eq!(n.get("e\"").unwrap().as_i64(), Some(5));
        assert_eq!(
            d.to_json(),
            r#"{"a":1,"c":[ 3 ],"e\"":5,"g":7}"#,
            "the base is untouched"
        );
    }

    #[test]
    fn keys_sharing_a_prefix_are_found_and_kept_in_order() {
        let keys = [
            "abcdefgh2",
            "ab",
            "abcdefgh",
            "ab\\u0000",
            "abcdefgh1",
            "b",
            "ab\\u0000c",
        ];
        let json = format!(
            "{{{}}}",
            keys.iter()
                .enumerate()
                .map(|(i, k)| format!("\"{k}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let d = SessionData::from_json(&json).unwrap();
        let decoded: Vec<String> = keys
            .iter()
            .map(|k| serde_json::from_str(&format!("\"{k}\"")).unwrap())
            .collect();
        for (i, k) in decoded.iter().enumerate() {
            assert_eq!(d.get(k).unwrap().as_i64(), Some(i as i64), "{k:?}");
        }
        let mut sorted = decoded.clone();
        sorted.sort();
        let order: Vec<String> = d.iter().map(|(k, _)| k.into_owned()).collect();
        assert_eq!(order, sorted);
        let mut e = d.edit();
        e.set("abcdefgh", RawJson::parse("99").unwrap()).unwrap();
        e.remove("ab");
        let n = e.finish().unwrap();
        assert_eq!(n.get("abcdefgh").unwrap().as_i64(), Some(99));
        assert!(n.get("ab").is_none());
        assert_eq!(n.get("ab\0").unwrap().as_i64(), Some(3));
        assert_eq!(n.len(), keys.len() - 1);
    }

    #[test]
    fn incr_counts_and_refuses_non_integers() {
        let d = SessionData::from_json(r#"{"n":41,"s":"x","f":1.5,"big":9223372036854775807}"#)
            .unwrap();
        let mut e = d.edit();
        assert_eq!(e.incr("n", 1).unwrap(), 42);
        assert_eq!(e.incr("n", 1).unwrap(), 43);
        assert_eq!(e.incr("new", -3).unwrap(), -3);
        assert!(matches!(e.incr("s", 1), Err(Error::NotANumber(_))));
        assert!(matches!(e.incr("f", 1), Err(Error::NotANumber(_))));
        assert!(matches!(e.incr("big", 1), Err(Error::NotANumber(_))));
        let n = e.finish().unwrap();
        assert_eq!(n.get("n").unwrap().as_i64(), Some(43));
        for n in [0, 7, -7, 10, -1234567890, i64::MAX, i64::MIN] {
            assert_eq!(RawJson::from_i64(n).as_str(), n.to_string());
        }
    }
}
