//! The request flow: cookies in, atomic patches out, no fixation, no lost writes.

use std::{
    sync::{Arc, Barrier},
    thread,
    time::Duration,
};

use sessync::{
    Error, FlowOptions, ManualClock, SessionData, SessionId, Sessions, Store, WriteOpts,
    cookie::CookieConfig,
};

fn flow(url: &str) -> Sessions {
    Sessions::new(Store::open(url).unwrap(), FlowOptions::default()).unwrap()
}

fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[test]
fn a_new_visitor_gets_a_cookie_only_once_something_is_saved() {
    let f = flow("mem://");
    let s = f.begin(None, false).unwrap();
    assert!(s.is_new());
    let c = s.commit().unwrap();
    assert_eq!(c.set_cookie, None, "nothing saved, no cookie");
    assert_eq!(f.store().stats().sessions, 0);

    let mut s = f.begin(Some("other=1"), false).unwrap();
    s.set("n", &1).unwrap();
    let c = s.commit().unwrap();
    let sc = c.set_cookie.unwrap();
    assert_eq!(
        sc,
        format!("sync_sess={}; Path=/; HttpOnly; SameSite=Lax", c.id)
    );

    let s = f
        .begin(Some(&format!("a=b; {}; c=d", cookie_of(&sc))), false)
        .unwrap();
    assert!(!s.is_new());
    assert_eq!(s.id(), c.id);
    assert_eq!(s.get_as::<i64>("n").unwrap(), Some(1));
    assert_eq!(
        s.commit().unwrap().set_cookie,
        None,
        "nothing new to tell the browser"
    );
}

#[test]
fn ids_the_client_invents_are_never_adopted() {
    let f = flow("mem://");
    for header in [
        "sync_sess=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sync_sess=short",
        "sync_sess=<script>",
        "sync_sess=\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
        "sync_sess=",
        ";;;=;sync_sess",
    ] {
        let mut s = f.begin(Some(header), false).unwrap();
        assert!(s.is_new(), "{header}");
        s.set("x", &true).unwrap();
        let c = s.commit().unwrap();
        assert!(!header.contains(c.id.as_str()), "{header} was adopted");
        assert!(c.set_cookie.is_some());
    }
}

#[test]
fn an_expired_or_destroyed_session_is_not_revived_by_its_cookie() {
    let clock = ManualClock::new(1_000_000);
    let store = Store::open_with_clock("mem://?ttl=60s", clock.clone()).unwrap();
    let f = Sessions::new(store, FlowOptions::default()).unwrap();
    let mut s = f.begin(None, false).unwrap();
    s.set("user", &"ann").unwrap();
    let old = s.commit().unwrap();
    let header = cookie_of(&old.set_cookie.unwrap());
    clock.advance(Duration::from_secs(61));
    let s = f.begin(Some(&header), false).unwrap();
    assert!(s.is_new());
    assert_ne!(s.id(), old.id);
    assert_eq!(s.get("user"), None);
    drop(s);

    let mut s = f.begin(None, false).unwrap();
    s.set("user", &"bob").unwrap();
    let live = s.commit().unwrap();
    f.store().destroy(&live.id).unwrap();
    let s = f
        .begin(Some(&cookie_of(&live.set_cookie.unwrap())), false)
        .unwrap();
    assert!(s.is_new());
}

#[test]
fn signed_cookies_refuse_unsigned_values_and_verify_older_keys() {
    let store = Store::open("mem://").unwrap();
    let old_key = b"the key of last month, 32 bytes!".to_vec();
    let new_key = b"the key of this month, 32 bytes!".to_vec();
    let signed = |keys: Vec<Vec<u8>>| {
        Sessions::new(
            store.clone(),
            FlowOptions {
                cookie: CookieConfig {
                    keys,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap()
    };
    let before = signed(vec![old_key.clone()]);
    let mut s = before.begin(None, false).unwrap();
    s.set("k", &1).unwrap();
    let c = s.commit().unwrap();
    let sc = c.set_cookie.unwrap();
    assert!(sc.starts_with(&format!("sync_sess={}.", c.id)));

    let after = signed(vec![new_key, old_key]);
    let s = after.begin(Some(&cookie_of(&sc)), false).unwrap();
    assert_eq!(s.id(), c.id, "the older key still verifies");
    drop(s);
    let s = after
        .begin(Some(&format!("sync_sess={}", c.id)), false)
        .unwrap();
    assert!(
        s.is_new(),
        "an unsigned id of a live session is not adopted"
    );
    drop(s);
    let tampered = format!("{}x", cookie_of(&sc));
    assert!(after.begin(Some(&tampered), false).unwrap().is_new());
}

#[test]
fn destroy_sends_a_removal_cookie_and_removes_the_session() {
    let f = flow("mem://");
    let mut s = f.begin(None, false).unwrap();
    s.set("user", &"ann").unwrap();
    let c = s.commit().unwrap();
    let mut s = f
        .begin(Some(&cookie_of(&c.set_cookie.unwrap())), true)
        .unwrap();
    s.destroy();
    let out = s.commit().unwrap();
    let rm = out.set_cookie.unwrap();
    assert!(rm.starts_with("sync_sess=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"));
    assert_eq!(f.store().fetch(&c.id).unwrap(), None);
}

#[test]
fn a_commit_racing_a_destroy_leaves_the_session_destroyed() {
    let f = flow("mem://");
    // In sequence: the request in flight commits after the logout.
    let mut s = f.begin(None, false).unwrap();
    s.set("user", &"ann").unwrap();
    let c = s.commit().unwrap();
    let header = cookie_of(&c.set_cookie.unwrap());
    let mut in_flight = f.begin(Some(&header), false).unwrap();
    in_flight.set("cart", &[1, 2]).unwrap();
    in_flight.incr("views", 1).unwrap();
    let mut logout = f.begin(Some(&header), false).unwrap();
    logout.destroy();
    logout.commit().unwrap();
    assert_eq!(in_flight.commit().unwrap_err(), Error::Destroyed);
    assert_eq!(f.store().fetch(&c.id).unwrap(), None);

    // Truly concurrent, many times: whichever runs first, the session ends destroyed.
    for _ in 0..200 {
        let mut s = f.begin(None, false).unwrap();
        s.set("user", &"ann").unwrap();
        let c = s.commit().unwrap();
        let header = cookie_of(&c.set_cookie.unwrap());
        let barrier = Arc::new(Barrier::new(2));
        let (f1, h1, b1) = (f.clone(), header.clone(), barrier.clone());
        let writer = thread::spawn(move || {
            let mut s = f1.begin(Some(&h1), false).unwrap();
            s.set("cart", &"full").unwrap();
            b1.wait();
            let _ = s.commit();
        });
        let mut s = f.begin(Some(&header), false).unwrap();
        s.destroy();
        barrier.wait();
        s.commit().unwrap();
        writer.join().unwrap();
        assert_eq!(f.store().fetch(&c.id).unwrap(), None);
    }
}

#[test]
fn a_rotation_during_an_in_flight_request_loses_nothing() {
    let f = flow("mem://");
    let mut s = f.begin(None, false).unwrap();
    s.set("cart", &[1]).unwrap();
    let c = s.commit().unwrap();
    let old_cookie = cookie_of(&c.set_cookie.unwrap());

    let mut in_flight = f.begin(Some(&old_cookie), false).unwrap();
    in_flight.set("seen", &true).unwrap();
    in_flight.incr("n", 1).unwrap();

    let mut login = f.begin(Some(&old_cookie), true).unwrap();
    login.rotate().unwrap();
    login.set("user", &"ann").unwrap();
    login.set_owner(Some("ann")).unwrap();
    let l = login.commit().unwrap();
    assert_ne!(l.id, c.id);
    assert_eq!(
        l.set_cookie.as_deref().map(cookie_of),
        Some(format!("sync_sess={}", l.id))
    );

    let done = in_flight.commit().unwrap();
    assert_eq!(done.id, l.id, "the late commit followed the rotation");
    let rec = f.store().fetch(&l.id).unwrap().unwrap();
    assert_eq!(
        rec.data.to_value(),
        serde_json::json!({"cart":[1],"seen":true,"n":1,"user":"ann"})
    );
    assert_eq!(f.store().sessions_of("ann").unwrap(), vec![l.id]);

    // The late commit's response does not hand the new id out: only the login's does.
    assert_eq!(done.set_cookie, None);

    // A request that begins with the old cookie, even within the grace period, is not
    // handed the new id nor the data (whoever planted the old id must not get the login's
    // session): it starts afresh, with or without the lock.
    for lock in [false, true] {
        let mut s = f.begin(Some(&old_cookie), lock).unwrap();
        assert!(s.is_new());
        assert_ne!(s.id(), l.id);
        assert_ne!(s.id(), c.id);
        assert_eq!(s.get("user"), None);
        s.set("x", &1).unwrap();
        let fresh = s.commit().unwrap();
        assert_eq!(
            fresh.set_cookie.as_deref().map(cookie_of),
            Some(format!("sync_sess={}", fresh.id))
        );
    }
    // Nor is a request that names the old id itself.
    let mut s = f.begin_id(c.id, true, Duration::ZERO).unwrap();
    assert!(s.is_new());
    assert_eq!(s.get("user"), None);
    s.set("x", &1).unwrap();
    assert_eq!(s.commit().unwrap_err().kind(), "invalid_argument");
    let rec = f.store().fetch(&l.id).unwrap().unwrap();
    assert_eq!(rec.data.get("x"), None, "nothing landed in the new session");
}

#[test]
fn values_are_checked_and_increments_read_back() {
    let f = flow("mem://?max_session_bytes=100");
    let mut s = f.begin(None, false).unwrap();
    assert!(matches!(
        s.set_json("a", "{nope"),
        Err(Error::InvalidJson(_))
    ));
    assert!(matches!(
        s.set("a", &"x".repeat(200)),
        Err(Error::TooLarge(_))
    ));
    s.set("s", &"text").unwrap();
    assert!(matches!(s.incr("s", 1), Err(Error::NotANumber(_))));
    assert_eq!(s.incr("n", 2).unwrap(), 2);
    assert_eq!(s.incr("n", 3).unwrap(), 5);
    s.remove("s").unwrap();
    assert_eq!(s.get("s"), None);
    assert_eq!(s.to_json(), r#"{"n":5}"#);
    let id = s.commit().unwrap().id;
    // A commit that would break the limit is refused whole.
    let mut s = f.begin(Some(&format!("sync_sess={id}")), false).unwrap();
    s.set("a", &"y".repeat(60)).unwrap();
    s.set("b", &"z".repeat(60)).unwrap();
    assert!(matches!(s.commit(), Err(Error::TooLarge(_))));
    let rec = f.store().fetch(&id).unwrap().unwrap();
    assert_eq!(rec.data.to_json(), r#"{"n":5}"#);
}

#[test]
fn dropping_a_locked_session_releases_the_lock() {
    let f = flow("mem://");
    let id = SessionId::generate();
    f.store()
        .write(&id, SessionData::new(), WriteOpts::default())
        .unwrap();
    let header = format!("sync_sess={id}");
    let s = f.begin(Some(&header), true).unwrap();
    assert!(s.token().is_some());
    drop(s);
    let s = f.begin(Some(&header), true).unwrap();
    s.abort().unwrap();
    let (t, _) = f
        .store()
        .lock(&id, Duration::from_secs(1), Duration::ZERO)
        .unwrap();
    f.store().unlock(&id, t).unwrap();
}

#[test]
fn flow_settings_are_checked() {
    let store = Store::open("mem://").unwrap();
    let bad = |opts: FlowOptions| Sessions::new(store.clone(), opts).unwrap_err();
    assert!(
        bad(FlowOptions {
            lock_lease: Duration::ZERO,
            ..Default::default()
        })
        .to_string()
        .contains("lock_lease")
    );
    assert!(
        bad(FlowOptions {
            lock_wait: Duration::from_secs(7200),
            ..Default::default()
        })
        .to_string()
        .contains("lock_wait")
    );
    let cookie = CookieConfig {
        name: "bad name".into(),
        ..Default::default()
    };
    assert!(matches!(
        bad(FlowOptions {
            cookie,
            ..Default::default()
        }),
        Error::InvalidArgument(_)
    ));
}

#[test]
fn express_format_cookies_go_through_the_flow() {
    let cookie = CookieConfig::express(vec![b"the express app's secret".to_vec()]);
    let f = Sessions::new(
        Store::open("mem://").unwrap(),
        FlowOptions {
            cookie: cookie.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let mut s = f.begin(None, false).unwrap();
    s.set("n", &1).unwrap();
    let c = s.commit().unwrap();
    let sc = c.set_cookie.unwrap();
    assert!(
        sc.starts_with(&format!("connect.sid=s%3A{}.", c.id)),
        "{sc}"
    );
    let s = f.begin(Some(&cookie_of(&sc)), true).unwrap();
    assert!(!s.is_new());
    assert_eq!(s.id(), c.id);
    s.abort().unwrap();
    // The bare id, a sessync-format value and a wrongly signed one are never adopted.
    let sessync = CookieConfig {
        keys: cookie.keys.clone(),
        ..Default::default()
    };
    let other = CookieConfig::express(vec![b"another app's secret....".to_vec()]);
    for value in [
        c.id.to_string(),
        format!("s:{}", c.id),
        sessync.encode_value(&c.id),
        other.encode_value(&c.id),
    ] {
        let s = f
            .begin(Some(&format!("connect.sid={value}")), false)
            .unwrap();
        assert!(s.is_new(), "{value}");
        assert_ne!(s.id(), c.id);
    }
    // Without a secret the express format is refused at start-up.
    let err = Sessions::new(
        Store::open("mem://").unwrap(),
        FlowOptions {
            cookie: CookieConfig::express(Vec::new()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("express"), "{err}");
}

#[test]
fn a_session_named_by_the_caller_sends_no_cookie_and_starts_under_that_id() {
    let f = flow("mem://");
    let id = SessionId::parse("framework-issued-id-000001").unwrap();
    let mut s = f.begin_id(id, true, Duration::ZERO).unwrap();
    assert!(s.is_new());
    assert_eq!(s.id(), id);
    assert_eq!(s.token(), None, "nothing to lock yet");
    assert!(!s.is_changed());
    s.set("user", &"ann").unwrap();
    assert!(s.is_changed());
    let c = s.commit().unwrap();
    assert_eq!(c.set_cookie, None);
    assert_eq!(c.id, id);

    let s = f.begin_id(id, true, Duration::ZERO).unwrap();
    assert!(!s.is_new());
    assert!(s.token().is_some());
    // Held: a second request with no wait gives up at once.
    assert_eq!(
        f.begin_id(id, true, Duration::ZERO).unwrap_err(),
        Error::LockTimeout
    );
    let mut s = s;
    s.destroy();
    assert_eq!(
        s.commit().unwrap().set_cookie,
        None,
        "no removal cookie either"
    );
}

#[test]
fn bytes_round_trip_as_json_strings_or_base64() {
    let f = flow("mem://");
    let id = SessionId::parse("framework-issued-id-000002").unwrap();
    let mut s = f.begin_id(id, false, Duration::ZERO).unwrap();
    s.set_bytes("text", "a|s:1:\"b\";".as_bytes()).unwrap();
    s.set_bytes("blob", &[0, 255, 1]).unwrap();
    s.set("n", &3).unwrap();
    s.commit().unwrap();
    let rec = f.store().fetch(&id).unwrap().unwrap();
    assert_eq!(
        rec.data.to_json(),
        r#"{"blob":{"$base64":"AP8B"},"n":3,"text":"a|s:1:\"b\";"}"#
    );
    let s = f.begin_id(id, false, Duration::ZERO).unwrap();
    assert_eq!(s.get_bytes("blob").unwrap().unwrap(), vec![0, 255, 1]);
    assert_eq!(s.get_bytes("text").unwrap().unwrap(), b"a|s:1:\"b\";");
    assert_eq!(s.get_bytes("absent").unwrap(), None);
    assert!(matches!(s.get_bytes("n"), Err(Error::InvalidJson(_))));
}

#[tokio::test]
async fn an_async_begin_waits_for_the_lock_without_a_thread() {
    let f = flow("mem://");
    assert!(f.store().waits_without_thread());
    let mut first = f.begin(None, true).unwrap();
    first.incr("n", 1).unwrap();
    let c = first.commit().unwrap();
    let header = cookie_of(&c.set_cookie.unwrap());
    let held = f.begin(Some(&header), true).unwrap();
    let f2 = f.clone();
    let h2 = header.clone();
    let waiter = tokio::spawn(async move {
        f2.begin_async(Some(&h2), true, Duration::from_secs(60))
            .await
    });
    while f.store().stats().lock_waits < 1 {
        tokio::task::yield_now().await;
    }
    let mut held = held;
    held.incr("n", 10).unwrap();
    held.commit().unwrap();
    let s = waiter.await.unwrap().unwrap();
    assert_eq!(s.get("n").unwrap().as_i64(), Some(11));
    assert!(s.token().is_some());
    assert_eq!(
        f.begin_with(Some(&header), true, Duration::from_secs(3601))
            .unwrap_err()
            .kind(),
        "invalid_argument"
    );
}

#[test]
fn a_commit_that_fails_releases_the_lock() {
    let f = flow("mem://?max_session_bytes=100");
    let mut s = f.begin(None, false).unwrap();
    s.set("n", &1).unwrap();
    let header = cookie_of(&s.commit().unwrap().set_cookie.unwrap());
    let mut s = f.begin(Some(&header), true).unwrap();
    assert!(s.token().is_some());
    // Each value fits; together they do not.
    s.set("a", &"x".repeat(50)).unwrap();
    s.set("b", &"y".repeat(50)).unwrap();
    assert!(matches!(s.commit(), Err(Error::TooLarge(_))));
    // The lock is free at once, and nothing was written.
    let s = f.begin_with(Some(&header), true, Duration::ZERO).unwrap();
    assert_eq!(s.get("a"), None);
    s.abort().unwrap();

    // The same for a commit that only touches with a new TTL of a session gone meanwhile.
    let mut s = f.begin(Some(&header), true).unwrap();
    s.set_ttl(Duration::from_secs(60)).unwrap();
    let id = s.id();
    f.store().destroy(&id).unwrap();
    assert!(s.commit().is_err());
}
