//! The worker process of the multi-process tests: `examples/remote_counter`, built once
//! per test binary with the test's profile.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::{path::PathBuf, process::Command, sync::OnceLock};

use sessync::{SessionData, SessionId, Store, WriteOpts};

/// `target/<profile>/examples/remote_counter`.
pub fn remote_counter() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--example", "remote_counter"]);
            if dir.ends_with("release") {
                cmd.arg("--release");
            }
            assert!(cmd.status().unwrap().success());
            dir.join("examples").join("remote_counter")
        })
        .clone()
}

/// One worker process per URL, each doing 10,000 locked read-modify-writes of one
/// session's `n`; the count must end at exactly 10,000 per worker.
pub fn count_in_processes(urls: &[String]) {
    let store = Store::open(&urls[0]).unwrap();
    let id = SessionId::generate();
    store
        .write(
            &id,
            SessionData::from_json(r#"{"n":0}"#).unwrap(),
            WriteOpts::default(),
        )
        .unwrap();
    let children: Vec<_> = urls
        .iter()
        .map(|url| {
            Command::new(remote_counter())
                .args([url.as_str(), id.as_str(), "10000"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let rec = store.fetch(&id).unwrap().unwrap();
    assert_eq!(
        rec.data.get("n").unwrap().as_i64(),
        Some(10_000 * urls.len() as i64)
    );
}
