//! sessync's express-format cookie against the real npm packages: express-session's own
//! `cookie` and `cookie-signature` accept the values sessync writes, and sessync accepts
//! the values they write, with key rotation; tampered values and wrong secrets are refused
//! on both sides. The packages are installed from the npm registry into
//! `target/interop-node` (see `tests/interop/mod.rs`).

mod interop;

use std::{io::Write, process::Stdio};

use serde_json::{Value, json};
use sessync::{
    SessionId,
    cookie::{CookieConfig, SameSite},
};

/// Secrets as an Express app would have them; one is not ASCII, to check that both sides
/// key the HMAC with the secret's UTF-8 bytes.
const FIRST: &str = "first secret, signs new cookies";
const SECOND: &str = "second secret, still verifies é";
const OTHER: &str = "a secret this server never had";

fn config(secrets: &[&str]) -> CookieConfig {
    let config = CookieConfig::express(secrets.iter().map(|s| s.as_bytes().to_vec()).collect());
    config.validate().expect("the test secrets are valid");
    config
}

/// Runs `tests/interop/express_cookie.js` on `request`, returns its answer.
fn node(request: &Value) -> Value {
    let mut child = interop::node()
        .arg(interop::interop_file("express_cookie.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed (apt-get install nodejs)");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(request.to_string().as_bytes())
        .expect("the request is written");
    let out = child.wait_with_output().expect("node runs");
    assert!(
        out.status.success(),
        "express_cookie.js failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("express_cookie.js answers JSON")
}

/// The `name=value` part of our `Set-Cookie`, as a browser sends it back, among others.
fn header_for(config: &CookieConfig, id: &SessionId) -> String {
    let set_cookie = config.set_cookie(id, 0);
    format!("theme=dark; {}; lang=en", interop::cookie_pair(&set_cookie))
}

/// Flips one character of the signature part of an encoded value, keeping it a cookie
/// value: the last character, which is never part of a `%XX` escape's `%`.
fn tamper(value: &str) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn node_accepts_the_cookies_sessync_writes() {
    let ids: Vec<SessionId> = (0..40).map(|_| SessionId::generate()).collect();
    let first = config(&[FIRST]);
    let rotated = config(&[FIRST, SECOND]);
    let before = config(&[SECOND]);
    let mut cases = Vec::new(); // (header, secrets for Node, the id Node must find or None)
    for id in &ids {
        cases.push((header_for(&first, id), vec![FIRST], Some(*id)));
        // An app rotated to [FIRST, SECOND] reads what a server still on SECOND wrote.
        cases.push((header_for(&before, id), vec![FIRST, SECOND], Some(*id)));
        cases.push((header_for(&rotated, id), vec![SECOND, FIRST], Some(*id)));
        // Wrong secrets, and a tampered signature, are refused by Node too.
        cases.push((header_for(&first, id), vec![OTHER], None));
        let tampered = tamper(&first.encode_value(id));
        cases.push((format!("connect.sid={tampered}"), vec![FIRST], None));
    }
    // Attributes do not get in the way: the same value with every knob set.
    let full = CookieConfig {
        max_age: Some(std::time::Duration::from_secs(3600)),
        secure: true,
        same_site: Some(SameSite::Strict),
        domain: Some("example.com".into()),
        ..config(&[FIRST])
    };
    cases.push((header_for(&full, &ids[0]), vec![FIRST], Some(ids[0])));
    let encoded: Vec<String> = ids.iter().map(|id| first.encode_value(id)).collect();
    assert!(
        encoded.iter().any(|v| v.contains("%2B")) && encoded.iter().any(|v| v.contains("%2F")),
        "the sample covers signatures with + and /"
    );

    let request = json!({
        "unsign": cases
            .iter()
            .map(|(header, secrets, _)| json!({ "header": header, "secrets": secrets }))
            .collect::<Vec<_>>(),
    });
    let answer = node(&request);
    let got = answer["unsign"].as_array().expect("an unsign list");
    assert_eq!(got.len(), cases.len());
    for ((header, secrets, want), got) in cases.iter().zip(got) {
        let want = want.map_or(json!(false), |id| json!(id.as_str()));
        assert_eq!(got, &want, "Node on {header:?} with {secrets:?}");
    }
}

#[test]
fn sessync_accepts_the_cookies_node_writes() {
    // Ids made the way express-session makes them (uid-safe, 24 bytes).
    let answer = node(&json!({ "ids": 40 }));
    let ids: Vec<String> = answer["ids"]
        .as_array()
        .expect("an id list")
        .iter()
        .map(|v| v.as_str().expect("ids are strings").to_string())
        .collect();
    for id in &ids {
        assert_eq!(
            id.len(),
            32,
            "express-session ids are 32 base64url characters"
        );
        SessionId::parse(id).expect("express-session's ids are valid sessync ids");
    }
    let mut sign = Vec::new();
    for id in &ids {
        for secret in [FIRST, SECOND, OTHER] {
            sign.push(json!({ "id": id, "secret": secret }));
        }
    }
    let answer = node(&json!({ "sign": sign }));
    let cookies: Vec<&str> = answer["sign"]
        .as_array()
        .expect("a sign list")
        .iter()
        .map(|v| v.as_str().expect("cookies are strings"))
        .collect();
    assert_eq!(cookies.len(), ids.len() * 3);

    let first = config(&[FIRST]);
    let rotated = config(&[FIRST, SECOND]);
    let second = config(&[SECOND]);
    let mut saw_escapes = (false, false);
    for (i, id) in ids.iter().enumerate() {
        let id = SessionId::parse(id).unwrap();
        let [by_first, by_second, by_other] = [0, 1, 2].map(|k| cookies[i * 3 + k]);
        let value = by_first
            .strip_prefix("connect.sid=")
            .expect("connect.sid=...");
        assert!(value.starts_with("s%3A"), "{value}");
        saw_escapes.0 |= value.contains("%2B");
        saw_escapes.1 |= value.contains("%2F");
        // Our encoding is byte for byte Node's.
        assert_eq!(first.encode_value(&id), value);

        assert_eq!(first.decode_value(value), Some(id));
        assert_eq!(first.session_ids(&format!("a=1; {by_first}")), [id]);
        // Key rotation: the second secret's value verifies where both are configured.
        assert_eq!(rotated.session_ids(by_second), [id]);
        assert_eq!(second.session_ids(by_second), [id]);
        assert_eq!(rotated.session_ids(by_first), [id]);
        // Wrong secrets are refused.
        assert_eq!(first.session_ids(by_second), []);
        assert_eq!(second.session_ids(by_first), []);
        assert_eq!(rotated.session_ids(by_other), []);
        // So are tampered values, unsigned ones and Node's value under sessync's own format.
        assert_eq!(first.decode_value(&tamper(value)), None);
        assert_eq!(first.decode_value(&format!("s%3A{id}")), None);
        assert_eq!(first.decode_value(id.as_str()), None);
        let sessync_format = CookieConfig {
            keys: first.keys.clone(),
            ..Default::default()
        };
        assert_eq!(sessync_format.decode_value(value), None);
    }
    assert_eq!(saw_escapes, (true, true), "the sample covers %2B and %2F");
}
