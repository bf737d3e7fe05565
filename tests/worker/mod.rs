//! The worker process of the multi-process tests: `examples/remote_counter`, built once
//! per test binary with the test's profile.

use std::{path::PathBuf, process::Command, sync::OnceLock};

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
