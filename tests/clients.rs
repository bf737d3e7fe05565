//! Real Redis client libraries connect to sessyncd unchanged: their handshakes (AUTH,
//! HELLO, CLIENT SETINFO, SELECT, INFO) succeed and they can run its commands.

#![cfg(feature = "daemon")]

mod daemon;

use std::{path::PathBuf, process::Command};

use daemon::{TOKEN, start};

const REDIS_PY: &str = r#"
import sys, redis
port, token = int(sys.argv[1]), sys.argv[2]
sid = "abcdefghijklmnopqrstuvwxyz012345"
for proto in (2, 3):
    r = redis.Redis(host="127.0.0.1", port=port, password=token, protocol=proto, db=0,
                    client_name="worker-%d" % proto, decode_responses=True)
    assert r.ping() is True
    assert r.set("sess:py", "v", ex=60) is True
    assert r.get("sess:py") == "v"
    assert r.ttl("sess:py") == 60
    assert r.execute_command("SESS.WRITE", sid, '{"n":%d}' % proto) >= 1
    rec = r.execute_command("SESS.FETCH", sid)
    assert rec[0] == sid and rec[1] == '{"n":%d}' % proto, rec
    assert r.execute_command("SESS.INCR", sid, "n", 1) == proto + 1
    assert "loading" in r.info()
    r.close()
try:
    redis.Redis(host="127.0.0.1", port=port, password="wrong").ping()
    raise SystemExit("a wrong token was accepted")
except redis.exceptions.AuthenticationError:
    pass
print("ok")
"#;

#[test]
fn redis_py_connects_with_resp2_and_resp3() {
    let d = start(&[]);
    let out = Command::new("python3")
        .args(["-c", REDIS_PY, &d.port.to_string(), TOKEN])
        .output()
        .expect("python3 runs (with redis-py: python3 -m pip install redis)");
    assert!(
        out.status.success(),
        "redis-py against sessyncd failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// `target/node-clients` with ioredis and node-redis installed from the npm registry.
fn node_clients() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe
        .parent()
        .and_then(|d| d.parent())
        .and_then(|d| d.parent())
        .unwrap()
        .to_path_buf();
    let dir = target.join("node-clients");
    if !dir.join("node_modules/ioredis").is_dir() || !dir.join("node_modules/redis").is_dir() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("package.json"),
            r#"{"name":"sessync-node-clients","private":true}"#,
        )
        .unwrap();
        let st = Command::new("npm")
            .args([
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "ioredis@5",
                "redis@4",
            ])
            .current_dir(&dir)
            .status()
            .expect("npm is installed (apt-get install nodejs npm)");
        assert!(st.success(), "npm install ioredis redis failed");
    }
    dir
}

#[test]
fn ioredis_and_node_redis_connect_unchanged() {
    let d = start(&[]);
    let dir = node_clients();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node_clients.js");
    let out = Command::new("node")
        .arg(script)
        .args([&d.port.to_string(), TOKEN])
        .env("NODE_PATH", dir.join("node_modules"))
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "ioredis / node-redis against sessyncd failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
