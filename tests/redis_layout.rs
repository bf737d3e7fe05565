//! The connect-redis layout on a real redis-server: sessions are the JSON that
//! connect-redis keeps under `sess:<id>` (express-session's `cookie` object inside,
//! `SET … EX` with the cookie's TTL), read and written by both sides.

#![cfg(feature = "redis")]

mod redis;

use serde_json::Value;
use sessync::{SessionData, SessionId, Store, WriteOpts};

fn get_json(port: u16, key: &str) -> Value {
    let raw = redis::command(port, &["GET", key]).expect("redis answers");
    serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{key} holds {raw:?}: {e}"))
}

#[test]
fn sessions_written_by_sessync_look_like_connect_redis_ones() {
    let server = redis::Server::start(&[]);
    let store = Store::open(&server.url("layout=connect-redis&ttl=1h")).unwrap();
    let id = SessionId::generate();
    store
        .write(
            &id,
            SessionData::from_json(r#"{"visits":1,"user":{"name":"ada"}}"#).unwrap(),
            WriteOpts::default(),
        )
        .unwrap();
    assert_eq!(
        store.incr(&id, "visits", 1, WriteOpts::default()).unwrap(),
        2
    );
    let key = format!("sess:{id}");
    let v = get_json(server.port, &key);
    assert_eq!(v["visits"], 2);
    assert_eq!(v["user"]["name"], "ada");
    assert_eq!(v["cookie"]["originalMaxAge"], 3_600_000);
    assert_eq!(v["cookie"]["path"], "/");
    assert_eq!(v["cookie"]["httpOnly"], true);
    let expires = v["cookie"]["expires"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == 24, "{expires}");
    let ttl: i64 = redis::command(server.port, &["TTL", &key])
        .unwrap()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");
    // sessync's own view has no cookie object in it.
    let rec = store.fetch(&id).unwrap().unwrap();
    assert!(rec.data.get("cookie").is_none());
    assert_eq!(rec.data.get("visits").unwrap().as_i64(), Some(2));
}

#[test]
fn sessions_written_the_connect_redis_way_are_read_and_updated() {
    let server = redis::Server::start(&[]);
    let store = Store::open(&server.url("layout=connect-redis&ttl=1h")).unwrap();
    let id = SessionId::generate();
    let key = format!("sess:{id}");
    // What connect-redis writes for express-session.
    let json = r#"{"cookie":{"originalMaxAge":600000,"expires":"2030-01-01T00:00:00.000Z","secure":false,"httpOnly":true,"path":"/","sameSite":"lax"},"visits":7,"cart":[1,2]}"#;
    assert_eq!(
        redis::command(server.port, &["SET", &key, json, "EX", "600"]).as_deref(),
        Some("+OK")
    );
    let rec = store
        .fetch(&id)
        .unwrap()
        .expect("the Express session is seen");
    assert_eq!(
        rec.data.to_json(),
        SessionData::from_json(r#"{"visits":7,"cart":[1,2]}"#)
            .unwrap()
            .to_json()
    );
    let v1 = rec.version;
    assert_eq!(
        store.incr(&id, "visits", 1, WriteOpts::default()).unwrap(),
        8
    );
    store
        .patch(&id, r#"{"cart":null,"flag":true}"#, WriteOpts::default())
        .unwrap();
    let v = get_json(server.port, &key);
    assert_eq!(v["visits"], 8);
    assert_eq!(v["flag"], true);
    assert!(v.get("cart").is_none());
    // The cookie object is kept (its attributes), with the expiry brought up to date.
    assert_eq!(v["cookie"]["sameSite"], "lax");
    assert_eq!(v["cookie"]["secure"], false);
    assert_ne!(v["cookie"]["expires"], "2030-01-01T00:00:00.000Z");
    // Express writes again (last write wins, as connect-redis does): sessync sees it,
    // as a new version.
    let json2 = r#"{"cookie":{"originalMaxAge":600000,"expires":"2030-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"visits":100}"#;
    redis::command(server.port, &["SET", &key, json2, "EX", "600"]);
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!(rec.data.get("visits").unwrap().as_i64(), Some(100));
    assert!(rec.version > v1 + 2);
    // A destroy removes the key, as express-session's destroy does.
    assert!(store.destroy(&id).unwrap());
    assert_eq!(
        redis::command(server.port, &["EXISTS", &key]).as_deref(),
        Some(":0")
    );
}

#[test]
fn a_merge_patch_finds_nested_keys_however_they_were_escaped() {
    let server = redis::Server::start(&[]);
    for layout in ["sessync", "connect-redis"] {
        let store = Store::open(&server.url(&format!("layout={layout}"))).unwrap();
        let id = SessionId::generate();
        store
            .write(
                &id,
                SessionData::from_json(r#"{"obj": {"\u0061": 1, "b" : [ 1, 2 ] }}"#).unwrap(),
                WriteOpts::default(),
            )
            .unwrap();
        store
            .patch(
                &id,
                r#"{"obj":{"a":2,"b":null,"c":{"d":1}}}"#,
                WriteOpts::default(),
            )
            .unwrap();
        let rec = store.fetch(&id).unwrap().unwrap();
        let v: Value = serde_json::from_str(rec.data.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"obj": {"a": 2, "c": {"d": 1}}}),
            "{layout}"
        );
    }
}
