//! Building C programs against the libraries of this test run (`libsessync.a`, and the
//! cdylib `libsessync.so`), installing them into temporary prefixes, and reading ELF
//! dynamic sections.

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

/// The cdylib cargo built for this run: `libsessync.so` in `deps/` (cargo builds every
/// crate type of the library for integration tests), else the one in `target/<profile>/`.
pub fn shared_lib(deps: &Path) -> PathBuf {
    let candidates = [
        Some(deps.join("libsessync.so")),
        deps.parent().map(|p| p.join("libsessync.so")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no libsessync.so in {} (run through cargo test)",
                deps.display()
            )
        })
}

/// A directory under `target/<profile>/` for one test, removed when dropped (also when
/// the test panics).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `target/<profile>/tmp-<name>-<pid>`, emptied first if a killed run left it.
    pub fn new(name: &str) -> TempDir {
        let profile_dir = deps_dir()
            .parent()
            .expect("deps has a parent")
            .to_path_buf();
        let dir = profile_dir.join(format!("tmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd` and returns its stdout; panics with its output when it cannot start or
/// fails (a missing tool is a failure, never a skip).
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} ({e}): scripts/setup.sh installs it",
            cmd.get_program()
        )
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Installs this run's `libsessync.a` and `libsessync.so` into `prefix` with
/// `scripts/install.sh` (through `SESSYNC_STATIC_LIB` and `SESSYNC_SHARED_LIB`, so no
/// release build).
pub fn install(prefix: &Path) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deps = deps_dir();
    run_ok(
        Command::new(root.join("scripts/install.sh"))
            .arg(prefix)
            .env("SESSYNC_STATIC_LIB", static_lib(&deps))
            .env("SESSYNC_SHARED_LIB", shared_lib(&deps))
            .env_remove("SESSYNC_LIB"),
    );
}

/// `readelf -d <file>`: the ELF dynamic section (binutils).
pub fn readelf_dynamic(file: &Path) -> String {
    run_ok(Command::new("readelf").arg("-d").arg(file))
}

/// The names an ELF dynamic section lists under `tag` (`NEEDED`, `SONAME`): the text in
/// brackets of `readelf -d`'s lines for it.
pub fn dynamic_entries(readelf: &str, tag: &str) -> Vec<String> {
    let tag = format!("({tag})");
    readelf
        .lines()
        .filter(|l| l.contains(&tag))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_string()))
        .collect()
}

/// The C compiler: `$CC` (which may carry arguments, e.g. `ccache gcc`), else `cc`.
pub fn cc() -> Command {
    let cc = std::env::var("CC").unwrap_or_default();
    let mut words = cc.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap_or("cc"));
    cmd.args(words);
    cmd
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
