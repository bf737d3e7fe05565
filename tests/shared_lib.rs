//! The shared library as bindings load it: its SONAME, and `dlopen("libsessync.so.0")`
//! from a prefix that `scripts/install.sh` filled (README, "Loading the library at run
//! time"). Needs a C compiler and readelf (binutils); a missing tool fails the test.

mod cbuild;

use std::{path::Path, process::Command};

/// `libsessync.so.<major>`, the name programs and loaders ask for.
fn soname() -> String {
    format!("libsessync.so.{}", env!("CARGO_PKG_VERSION_MAJOR"))
}

#[test]
fn shared_library_soname_is_libsessync_so_0() {
    assert_eq!(
        soname(),
        "libsessync.so.0",
        "the SONAME follows Cargo.toml's major"
    );
    let built = cbuild::shared_lib(&cbuild::deps_dir());
    let dynamic = cbuild::readelf_dynamic(&built);
    assert_eq!(
        cbuild::dynamic_entries(&dynamic, "SONAME"),
        [soname()],
        "{}:\n{dynamic}",
        built.display()
    );

    // The installed file carries it too, under its full version, with the two symlinks.
    let tmp = cbuild::TempDir::new("soname");
    let prefix = tmp.path().join("prefix");
    cbuild::install(&prefix);
    let lib = prefix.join("lib");
    let full = format!("libsessync.so.{}", env!("CARGO_PKG_VERSION"));
    let dynamic = cbuild::readelf_dynamic(&lib.join(&full));
    assert_eq!(cbuild::dynamic_entries(&dynamic, "SONAME"), [soname()]);
    let link = |name: &str| {
        std::fs::read_link(lib.join(name))
            .unwrap_or_else(|e| panic!("{name} is a symlink: {e}"))
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(link(&soname()), full);
    assert_eq!(link("libsessync.so"), soname());
}

#[test]
fn installed_library_loads_by_soname_with_dlopen() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = cbuild::TempDir::new("dlopen");
    let prefix = tmp.path().join("prefix");
    cbuild::install(&prefix);

    // Compiled against the installed header only, and not linked against sessync.
    let exe = tmp.path().join("dlopen_soname");
    cbuild::run_ok(
        cbuild::cc()
            .args(cbuild::C_FLAGS)
            .arg("-I")
            .arg(prefix.join("include"))
            .arg(root.join("tests/c/dlopen_soname.c"))
            .arg("-ldl")
            .arg("-o")
            .arg(&exe),
    );
    let needed = cbuild::dynamic_entries(&cbuild::readelf_dynamic(&exe), "NEEDED");
    assert!(
        !needed.iter().any(|n| n.starts_with("libsessync")),
        "the program must load sessync itself, not link it: {needed:?}"
    );

    let lib = prefix.join("lib");
    let out = cbuild::run_ok(
        Command::new(&exe)
            .env("LD_LIBRARY_PATH", &lib)
            .env_remove("LD_PRELOAD"),
    );
    let loaded = out
        .lines()
        .find_map(|l| l.strip_prefix("loaded: "))
        .unwrap_or_else(|| panic!("no 'loaded:' line in:\n{out}"));
    assert!(
        Path::new(loaded).starts_with(&lib),
        "loaded {loaded}, not the library installed in {}",
        lib.display()
    );
    let number = env!("CARGO_PKG_VERSION_MAJOR").parse::<u32>().unwrap() * 1_000_000
        + env!("CARGO_PKG_VERSION_MINOR").parse::<u32>().unwrap() * 1_000
        + env!("CARGO_PKG_VERSION_PATCH").parse::<u32>().unwrap();
    assert!(out.contains(&format!("\nversion: {number}\n")), "{out}");
}
