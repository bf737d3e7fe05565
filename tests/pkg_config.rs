//! `scripts/install.sh` installs a library that `cc app.c $(pkg-config --cflags --libs
//! sessync)` builds against.

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

    let app = work.join("app.c");
    fs::write(
        &app,
        r#"#include <sessync.h>
#include <stdio.h>
int main(void) {
    sessync_store *store = NULL;
    if (sessync_store_open("mem://", NULL, &store)) return 1;
    sessync_session *s = NULL;
    if (sessync_session_begin(store, NULL, 0, SESSYNC_BEGIN_LOCK, &s)) return 2;
    int64_t n = 0;
    if (sessync_session_incr(s, "n", 41, &n) || n != 41) return 3;
    sessync_buf cookie = {0};
    if (sessync_session_commit(s, &cookie)) return 4;
    printf("%s %u\n", (const char *)cookie.data, sessync_version_number());
    sessync_buf_free(&cookie);
    sessync_store_free(store);
    return 0;
}
"#,
    )
    .unwrap();
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
    assert!(text.starts_with("sync_sess="), "{text}");
    assert!(text.trim_end().ends_with(" 1000"), "{text}");
}
