//! Building the C example server against the `libsessync.a` of this test run.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The libraries the Rust standard library needs beside `libsessync.a` (Linux, glibc), as
/// printed by `cargo rustc --lib -- --print native-static-libs`.
pub const NATIVE_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// The flags every C file of the project compiles cleanly with.
pub const C_FLAGS: &[&str] = &["-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// `target/<profile>/deps`, where this test's executable and, under `cargo test`, the
/// crate's staticlib live.
pub fn deps_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .expect("tests run from target/<profile>/deps")
        .to_path_buf()
}

/// The `libsessync.a` cargo built for this run: `libsessync.a` in `deps/` (or the newest
/// `libsessync-<hash>.a`), else the one in `target/<profile>/`.
pub fn static_lib(deps: &Path) -> PathBuf {
    let exact = deps.join("libsessync.a");
    if exact.is_file() {
        return exact;
    }
    let newest = std::fs::read_dir(deps)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("libsessync-") && name.ends_with(".a")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p);
    if let Some(p) = newest {
        return p;
    }
    let beside = deps.parent().map(|p| p.join("libsessync.a"));
    match beside {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "no libsessync.a in {} (run through cargo test)",
            deps.display()
        ),
    }
}

/// Compiles `examples/c/server.c` into `target/c-example/<profile>/<name>`.
pub fn build_server(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deps = deps_dir();
    let profile_dir = deps.parent().expect("deps has a parent");
    let profile = profile_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "debug".into());
    let target = profile_dir.parent().expect("the profile dir has a parent");
    let out_dir = target.join("c-example").join(&profile);
    std::fs::create_dir_all(&out_dir).expect("target/c-example is writable");
    let bin = out_dir.join(name);

    // CC may carry arguments ("ccache gcc").
    let cc = std::env::var("CC").unwrap_or_default();
    let mut cc = cc.split_whitespace();
    let mut cmd = Command::new(cc.next().unwrap_or("cc"));
    cmd.args(cc)
        .args(C_FLAGS)
        .args(["-O1", "-g"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join("examples/c/server.c"))
        .arg(static_lib(&deps))
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&bin);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler ({e}); set CC"));
    assert!(
        out.status.success(),
        "compiling examples/c/server.c failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}
