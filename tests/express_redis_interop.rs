//! An Express app (express, express-session and connect-redis 8 from the npm registry)
//! and the C example server (sessync through its C ABI, `layout=connect-redis`, the
//! express cookie format) on one real redis-server share their visitors' sessions, in
//! both directions: each reads and updates what the other created.

#![cfg(feature = "redis")]

mod cbuild;
mod interop;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use interop::{ExpressApp, Redis, cookie_pair, http};

const SECRET: &str = "the interop test's express secret";

/// The C example server on the connect-redis layout; killed on drop.
struct CServer {
    child: Child,
    port: u16,
}

impl Drop for CServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn c_server(redis: &Redis) -> CServer {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| cbuild::build_server("c-server-interop"));
    let store = format!("{}/?layout=connect-redis&ttl=1h", redis.url());
    let mut child = Command::new(bin)
        .args(["--port", "0", "--workers", "2", "--store", &store])
        .args(["--option", "cookie_format=express"])
        .args(["--option", "cookie_name=connect.sid"])
        .args(["--signing-key", SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the C example server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut server = CServer { child, port: 0 };
    server.port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    server
}

/// The count on the C server's page ("… served you; visits: N").
fn c_visits(body: &str) -> i64 {
    body.trim()
        .rsplit("visits: ")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {body:?}"))
}

#[test]
fn a_session_the_express_app_created_is_read_and_updated_through_the_c_abi() {
    let redis = Redis::start();
    let app = ExpressApp::start(&redis, &[SECRET], Some(600_000));
    let c = c_server(&redis);

    let first = http(app.port, "GET", "/visits", None);
    assert_eq!(first.json()["visits"], 1);
    let cookie = cookie_pair(
        first
            .set_cookie("connect.sid")
            .expect("express sets its cookie"),
    );

    // The C server reads the Express session from the same cookie and counts on.
    let r = http(c.port, "GET", "/", Some(&cookie));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c_visits(&r.body), 2);
    assert!(
        r.set_cookie("connect.sid").is_none(),
        "the id was kept, not replaced"
    );
    let r = http(c.port, "GET", "/", Some(&cookie));
    assert_eq!(c_visits(&r.body), 3);

    // And the Express app sees the C server's updates.
    let back = http(app.port, "GET", "/visits", Some(&cookie));
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(back.json()["visits"], 4);
    let show = http(app.port, "GET", "/show", Some(&cookie));
    assert_eq!(show.json()["visits"], 4);
}

#[test]
fn a_session_sessync_created_is_read_and_updated_by_the_express_app() {
    let redis = Redis::start();
    let app = ExpressApp::start(&redis, &[SECRET], Some(600_000));
    let c = c_server(&redis);

    let first = http(c.port, "GET", "/", None);
    assert_eq!(c_visits(&first.body), 1);
    let set_cookie = first
        .set_cookie("connect.sid")
        .expect("sessync sets connect.sid");
    assert!(set_cookie.contains("connect.sid=s%3A"), "{set_cookie}");
    let cookie = cookie_pair(set_cookie);

    // express-session accepts sessync's signed cookie and finds the session in Redis.
    let r = http(app.port, "GET", "/visits", Some(&cookie));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["visits"], 2);
    assert!(
        r.set_cookie("connect.sid")
            .is_none_or(|s| cookie_pair(s) == cookie),
        "express kept the session id"
    );
    let r = http(app.port, "GET", "/visits", Some(&cookie));
    assert_eq!(r.json()["visits"], 3);

    let back = http(c.port, "GET", "/", Some(&cookie));
    assert_eq!(c_visits(&back.body), 4);

    // A forged cookie is adopted by neither: both start a fresh session.
    let forged = cookie.replace("s%3A", "s%3AX");
    assert_eq!(c_visits(&http(c.port, "GET", "/", Some(&forged)).body), 1);
    assert_eq!(
        http(app.port, "GET", "/visits", Some(&forged)).json()["visits"],
        1
    );
}
