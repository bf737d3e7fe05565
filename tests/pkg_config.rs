//! `scripts/install.sh` installs a library that `cc app.c $(pkg-config --cflags --libs
//! sessync)` builds against; the app is the README's C example.

use std::{fs, path::PathBuf, process::Command};

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps")
        .to_path_buf()
}

#[test]
fn installed_library_builds_with_pkg_config() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let lib = profile_dir().join("deps").join("libsessync.a");
    assert!(lib.exists(), "cargo test builds {}", lib.display());
    let work = profile_dir().join("pkg-config-test");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let prefix = work.join("prefix");
    let st = Command::new(root.join("scripts/install.sh"))
        .arg(&prefix)
        .env("SESSYNC_LIB", &lib)
        .status()
        .expect("install.sh runs");
    assert!(st.success());

    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "sessync"])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("pkg-config is installed (apt-get install pkg-config)");
    assert!(
        flags.status.success(),
        "{}",
        String::from_utf8_lossy(&flags.stderr)
    );
    let flags = String::from_utf8(flags.stdout).unwrap();

    // The README's C example, so that it stays true.
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let code = readme
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a C example");
    let app = work.join("app.c");
    fs::write(&app, code).unwrap();
    let bin = work.join("app");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut args = vec![
        "-std=c11".to_string(),
        "-Wall".into(),
        "-Werror".into(),
        app.display().to_string(),
        "-o".into(),
        bin.display().to_string(),
    ];
    args.extend(flags.split_whitespace().map(String::from));
    let out = Command::new(&cc)
        .args(&args)
        .output()
        .expect("a C compiler");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&bin).output().unwrap();
    assert!(run.status.success(), "exit {:?}", run.status);
    let text = String::from_utf8(run.stdout).unwrap();
    assert!(text.starts_with("Set-Cookie: sync_sess="), "{text}");
    assert!(text.contains("\nvisits: 1\n"), "{text}");
}
