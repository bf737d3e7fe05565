//! The interop harness at work: the Express app (express-session + connect-redis) on a
//! real redis-server counts a visitor's visits across requests, and the session is the
//! `sess:<id>` key connect-redis writes, under the id that sessync's express cookie
//! format reads from the app's cookie.

mod interop;

use interop::{ExpressApp, Redis, cookie_pair, http};
use serde_json::Value;
use sessync::cookie::CookieConfig;

const SECRET: &str = "the interop test's express secret";

#[test]
fn the_express_app_counts_visits_in_redis() {
    let redis = Redis::start();
    let app = ExpressApp::start(&redis, &[SECRET], Some(60_000));

    let first = http(app.port, "GET", "/visits", None);
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.json()["visits"], 1);
    let set_cookie = first
        .set_cookie("connect.sid")
        .expect("a new session sets connect.sid");
    assert!(set_cookie.contains("; Path=/"), "{set_cookie}");
    assert!(set_cookie.contains("; HttpOnly"), "{set_cookie}");
    let cookie = cookie_pair(set_cookie);

    let second = http(app.port, "GET", "/visits", Some(&format!("a=1; {cookie}")));
    assert_eq!(second.status, 200, "{}", second.body);
    let body = second.json();
    assert_eq!(body["visits"], 2);
    assert_eq!(body["session"]["visits"], 2);

    // sessync reads the id from the app's cookie, and the session is connect-redis's key.
    let express = CookieConfig::express(vec![SECRET.as_bytes().to_vec()]);
    let ids = express.session_ids(&cookie);
    assert_eq!(ids.len(), 1, "sessync reads the app's cookie: {cookie}");
    let stored = redis
        .get(&format!("sess:{}", ids[0]))
        .expect("connect-redis stored sess:<id>");
    let stored: Value = serde_json::from_str(&stored).expect("the stored session is JSON");
    assert_eq!(stored["visits"], 2, "{stored}");
    assert!(stored["cookie"].is_object(), "{stored}");
    // express-session computes originalMaxAge as `expires - Date.now()` a moment after it
    // set `expires`, so it can be a millisecond or two short of the configured maxAge.
    let original = stored["cookie"]["originalMaxAge"].as_u64().unwrap_or(0);
    assert!((59_000..=60_000).contains(&original), "{stored}");
    let ttl: u64 = redis
        .cli(&["TTL", &format!("sess:{}", ids[0])])
        .parse()
        .expect("TTL is a number");
    assert!(
        (1..=60).contains(&ttl),
        "connect-redis set the TTL from maxAge: {ttl}"
    );

    // /show and /set: the session as it is, then with a string key.
    let shown = http(app.port, "GET", "/show", Some(&cookie)).json();
    assert_eq!(shown["visits"], 2);
    let set = http(app.port, "POST", "/set?key=name&value=ada", Some(&cookie));
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.json()["name"], "ada");
    let refused = http(app.port, "POST", "/set?key=cookie&value=x", Some(&cookie));
    assert_eq!(refused.status, 400, "{}", refused.body);
    let stored: Value =
        serde_json::from_str(&redis.get(&format!("sess:{}", ids[0])).unwrap()).unwrap();
    assert_eq!(
        (&stored["name"], &stored["visits"]),
        (&"ada".into(), &2.into())
    );

    // A visitor with a forged cookie gets a fresh session.
    let forged = http(
        app.port,
        "GET",
        "/visits",
        Some("connect.sid=s%3Aforged.sig"),
    );
    assert_eq!(forged.json()["visits"], 1);

    let status = app.stop();
    assert!(
        status.success(),
        "the app exits cleanly on SIGTERM: {status}"
    );
}
