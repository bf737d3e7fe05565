//! `scripts/install.sh` installs a library that the README's C example builds against
//! both ways pkg-config offers: `pkg-config --libs sessync` links the shared library,
//! `pkg-config --static --libs sessync` adds what the static archive needs (Libs.private).
//! Needs pkg-config, a C compiler and readelf; a missing tool fails the test.

mod cbuild;

use std::{fs, path::Path, process::Command};

/// `pkg-config <args> sessync` against the prefix's `.pc` file.
fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let out = cbuild::run_ok(
        Command::new("pkg-config")
            .args(args)
            .arg("sessync")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .env_remove("PKG_CONFIG_LIBDIR"),
    );
    out.split_whitespace().map(String::from).collect()
}

/// Installs into a temporary prefix, compiles the README's C example with `flags`, checks
/// the program's NEEDED libraries with `check_needed`, runs it with `env` and checks the
/// output.
fn build_and_run(
    name: &str,
    flags: impl Fn(&Path) -> Vec<String>,
    check_needed: impl Fn(&[String]),
    env: &[(&str, &str)],
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = cbuild::TempDir::new(name);
    let prefix = tmp.path().join("prefix");
    cbuild::install(&prefix);

    // The README's C example, so that it stays true.
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let code = readme
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the README has a C example");
    let app = tmp.path().join("app.c");
    fs::write(&app, code).unwrap();
    let bin = tmp.path().join("app");
    cbuild::run_ok(
        cbuild::cc()
            .args(["-std=c11", "-Wall", "-Werror"])
            .arg(&app)
            .arg("-o")
            .arg(&bin)
            .args(flags(&prefix)),
    );
    check_needed(&cbuild::dynamic_entries(
        &cbuild::readelf_dynamic(&bin),
        "NEEDED",
    ));

    let mut run = Command::new(&bin);
    for (k, v) in env {
        run.env(k, v.replace("{prefix}", &prefix.display().to_string()));
    }
    let text = cbuild::run_ok(&mut run);
    assert!(text.starts_with("Set-Cookie: sync_sess="), "{text}");
    assert!(text.contains("\nvisits: 1\n"), "{text}");
}

#[test]
fn pkg_config_libs_links_the_shared_library() {
    build_and_run(
        "pkg-config-shared",
        |prefix| {
            let flags = pkg_config(prefix, &["--cflags", "--libs"]);
            assert!(flags.contains(&"-lsessync".to_string()), "{flags:?}");
            assert!(
                !flags.contains(&"-lpthread".to_string()),
                "the archive's libraries are Libs.private, not Libs: {flags:?}"
            );
            flags
        },
        |needed| {
            assert!(
                needed.contains(&"libsessync.so.0".to_string()),
                "{needed:?}"
            )
        },
        &[("LD_LIBRARY_PATH", "{prefix}/lib")],
    );
}

#[test]
fn pkg_config_static_libs_links_the_archive() {
    build_and_run(
        "pkg-config-static",
        |prefix| {
            let flags = pkg_config(prefix, &["--cflags", "--static", "--libs"]);
            for lib in ["-lsessync", "-lpthread", "-ldl", "-lm"] {
                assert!(flags.contains(&lib.to_string()), "{lib} in {flags:?}");
            }
            // The README's way to take the archive although the shared library sits
            // beside it: -l:libsessync.a (GNU ld, lld) instead of -lsessync.
            flags
                .into_iter()
                .map(|f| {
                    if f == "-lsessync" {
                        "-l:libsessync.a".into()
                    } else {
                        f
                    }
                })
                .collect()
        },
        |needed| {
            assert!(
                !needed.iter().any(|n| n.starts_with("libsessync")),
                "linked statically, it needs no libsessync: {needed:?}"
            )
        },
        // No LD_LIBRARY_PATH: nothing of sessync is loaded at run time.
        &[],
    );
}
