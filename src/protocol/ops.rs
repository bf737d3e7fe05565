//! The op list of `SESS.APPLY`, both halves: the client writes a patch's [`PatchOp`]s as
//! one JSON array ([`encode`]), the daemon reads it back ([`decode`]):
//! `[["set",k,v],["remove",k],["incr",k,n],["merge",{…}],["owner",o|null]]`.

use std::sync::Arc;

use serde_json::{Value, json};

use super::error;
use crate::{command::PatchOp, error::Error, session::RawJson};

/// The op list of `ops`.
pub(crate) fn encode(ops: &[PatchOp]) -> String {
    let list: Vec<Value> = ops
        .iter()
        .map(|op| match op {
            PatchOp::Set(k, v) => json!(["set", k, v.to_value()]),
            PatchOp::Remove(k) => json!(["remove", k]),
            PatchOp::Incr(k, by) => json!(["incr", k, by]),
            PatchOp::Merge(m) => json!(["merge", m]),
            PatchOp::SetOwner(o) => json!(["owner", o.as_deref()]),
        })
        .collect();
    Value::Array(list).to_string()
}

/// The ops of an op list; else the error reply to send (`INVALIDJSON op list: …`).
pub(crate) fn decode(json: &str) -> Result<Vec<PatchOp>, String> {
    let code = error::code(&Error::InvalidJson(String::new()));
    let bad = |m: &str| format!("{code} op list: {m}");
    let v: Value = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
    let list = v.as_array().ok_or_else(|| bad("not an array"))?;
    let mut out = Vec::with_capacity(list.len());
    for op in list {
        let a = op.as_array().ok_or_else(|| bad("an op is not an array"))?;
        let kind = a.first().and_then(Value::as_str).unwrap_or("");
        let key = || -> Result<String, String> {
            a.get(1)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad("an op's key is not a string"))
        };
        out.push(match (kind, a.len()) {
            ("set", 3) => PatchOp::Set(key()?, RawJson::from_value(&a[2])),
            ("remove", 2) => PatchOp::Remove(key()?),
            ("incr", 3) => PatchOp::Incr(
                key()?,
                a[2].as_i64().ok_or_else(|| bad("incr needs an integer"))?,
            ),
            ("merge", 2) => match &a[1] {
                Value::Object(m) => PatchOp::Merge(m.clone()),
                _ => return Err(bad("merge needs an object")),
            },
            ("owner", 2) => PatchOp::SetOwner(match &a[1] {
                Value::String(s) => Some(Arc::from(s.as_str())),
                Value::Null => None,
                _ => return Err(bad("owner needs a string or null")),
            }),
            _ => return Err(bad(&format!("unknown op {kind:?} or wrong arity"))),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::{decode, encode};
    use crate::{command::PatchOp, session::RawJson};

    #[test]
    fn every_op_comes_back_as_itself() {
        let Some(merge) = json!({"a": {"b": null}, "c": [1, "x"]})
            .as_object()
            .cloned()
        else {
            panic!("an object")
        };
        let ops = vec![
            PatchOp::Set("k".into(), RawJson::from_value(&json!({"x": [1.5, "é"]}))),
            PatchOp::Set("\"odd\" key".into(), RawJson::from_value(&json!(null))),
            PatchOp::Remove("gone".into()),
            PatchOp::Incr("n".into(), -3),
            PatchOp::Incr("m".into(), i64::MAX),
            PatchOp::Merge(merge),
            PatchOp::SetOwner(Some(Arc::from("user:1"))),
            PatchOp::SetOwner(None),
        ];
        let back = decode(&encode(&ops)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, ops);
    }

    #[test]
    fn a_bad_op_list_is_invalid_json() {
        for bad in [
            "{",
            "{}",
            "[1]",
            r#"[["incr","n","x"]]"#,
            r#"[["owner",1]]"#,
            r#"[["nope"]]"#,
        ] {
            let e = decode(bad).err().unwrap_or_default();
            assert!(e.starts_with("INVALIDJSON op list: "), "{bad}: {e}");
        }
    }
}
