//! Numbers outside the range of an `f64` (`1e400`), refused where JSON text is stored.
//!
//! Session values are validated once and kept as text. `serde_json` validates text
//! without decoding it (`IgnoredAny`, `RawValue`) by its grammar alone, which admits
//! `1e400`; decoding the same text later (`Json::to_value`, a merge patch into it,
//! `get_as`) fails with "number out of range". A value stored but never readable would be
//! lost silently by the next merge patch of its key, so the text is refused up front.
//! Found by the `merge_patch` fuzz target (`fuzz/corpus/merge_patch/`).

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};

/// Refuses JSON text holding a number that does not fit an `f64`. `text` is already
/// known to be valid JSON: most texts are cleared by a scan of their bytes, and only those
/// with an exponent or a very long run of digits are decoded (without allocating).
pub(crate) fn check_numbers(text: &str) -> Result<()> {
    if !may_overflow(text.as_bytes()) {
        return Ok(());
    }
    serde_json::from_str::<Finite>(text)
        .map(|_| ())
        .map_err(|e| Error::InvalidJson(e.to_string()))
}

/// Whether `text` may hold a number past `f64::MAX` (about 1.8e308): only one with an
/// exponent (a digit then `e` or `E`) or with over 300 digits can be. Strings may match
/// too, which only costs the full check.
fn may_overflow(text: &[u8]) -> bool {
    let mut digits = 0usize;
    for &b in text {
        if b.is_ascii_digit() {
            digits += 1;
            if digits > 300 {
                return true;
            }
        } else if (b == b'e' || b == b'E') && digits > 0 {
            return true;
        } else if b != b'.' {
            digits = 0;
        }
    }
    false
}

/// Any JSON value, decoded only as far as needed for `serde_json` to check each number's
/// range; nothing is kept.
struct Finite;

impl<'de> Deserialize<'de> for Finite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Finite, D::Error> {
        d.deserialize_any(FiniteVisitor)
    }
}

struct FiniteVisitor;

impl<'de> Visitor<'de> for FiniteVisitor {
    type Value = Finite;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> std::result::Result<Finite, E> {
        Ok(Finite)
    }

    fn visit_i64<E>(self, _: i64) -> std::result::Result<Finite, E> {
        Ok(Finite)
    }

    fn visit_u64<E>(self, _: u64) -> std::result::Result<Finite, E> {
        Ok(Finite)
    }

    fn visit_f64<E>(self, _: f64) -> std::result::Result<Finite, E> {
        Ok(Finite)
    }

    fn visit_str<E>(self, _: &str) -> std::result::Result<Finite, E> {
        Ok(Finite)
    }

    fn visit_unit<E>(self) -> std::result::Result<Finite, E> {
        Ok(Finite)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Finite, A::Error> {
        while seq.next_element::<Finite>()?.is_some() {}
        Ok(Finite)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Finite, A::Error> {
        while map.next_entry::<IgnoredAny, Finite>()?.is_some() {}
        Ok(Finite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{RawJson, SessionData};

    #[test]
    fn numbers_past_f64_are_refused_where_values_are_stored() {
        // The input the merge_patch fuzz target found: stored, then unreadable.
        for text in [
            r#"{"n":{"x":1e400}}"#,
            r#"{"n":[-1E309]}"#,
            r#"{"n":1.5e+999}"#,
        ] {
            assert!(
                matches!(SessionData::from_json(text), Err(Error::InvalidJson(_))),
                "{text}"
            );
        }
        assert!(matches!(
            RawJson::parse("1e400"),
            Err(Error::InvalidJson(_))
        ));
        let digits = "9".repeat(400);
        assert!(matches!(
            RawJson::parse(&digits),
            Err(Error::InvalidJson(_))
        ));
    }

    #[test]
    fn numbers_in_range_and_look_alikes_are_kept() {
        let big = format!("{}.5", "9".repeat(250));
        for text in [
            "1e308",
            "-1.7976931348623157e308",
            "1e-400",
            "123456789012345678901234567890",
            r#""1e400""#,
            r#"{"1e400":"9e999","a":[0.5e1,2E-3]}"#,
            big.as_str(),
        ] {
            assert!(RawJson::parse(text).is_ok(), "{text}");
        }
        let d = SessionData::from_json(r#"{"e":"1e400","n":1e300}"#).unwrap();
        assert_eq!(d.get("n").unwrap().to_value(), serde_json::json!(1e300));
    }

    #[test]
    fn floats_keep_their_exact_value_through_a_merge_patch() {
        // Found by the merge_patch fuzz target: without serde_json's `float_roundtrip`,
        // decoding 1.125768914697962194 and encoding it gave text that decoded to another
        // f64, so a float written by a patch read back one unit in the last place off.
        let store = crate::Store::open("mem://").unwrap();
        let id = crate::SessionId::generate();
        let opts = crate::WriteOpts {
            create: true,
            ..Default::default()
        };
        for text in [
            "1.125768914697962194",
            "0.1",
            "2.2250738585072014e-308",
            "1e308",
        ] {
            let patch = format!(r#"{{"n":{text},"o":{{"m":{text}}}}}"#);
            store.patch(&id, &patch, opts).unwrap();
            let want: serde_json::Value = serde_json::from_str(&patch).unwrap();
            let got = store.fetch(&id).unwrap().unwrap().data.to_value();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn the_scan_only_flags_exponents_and_long_digit_runs() {
        assert!(!may_overflow(br#"{"a":[1,2.5,-3],"b":"text e"}"#));
        assert!(may_overflow(b"1e5"));
        assert!(may_overflow(b"2.E5"));
        assert!(may_overflow("1".repeat(301).as_bytes()));
        assert!(!may_overflow("1".repeat(300).as_bytes()));
    }
}
