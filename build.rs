//! Writes `OUT_DIR/version.rs` with the crate version split into its parts, so that the
//! library (and later the C ABI) reports the same version as `Cargo.toml`, and gives the
//! shared library (the cdylib) its SONAME, `libsessync.so.<major>`, on ELF targets. It
//! never runs cbindgen and never writes into the source tree.

use std::{env, fs, path::Path};

fn main() {
    let part = |name: &str| -> u32 {
        env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (major, minor, patch) = (
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    );
    let out = env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let number = major * 1_000_000 + minor * 1_000 + patch;
    let text = format!(
        "/// Major version of this build.\npub const VERSION_MAJOR: u32 = {major};\n\
         /// Minor version of this build.\npub const VERSION_MINOR: u32 = {minor};\n\
         /// Patch version of this build.\npub const VERSION_PATCH: u32 = {patch};\n\
         /// `major * 1_000_000 + minor * 1_000 + patch`, the packing of the C header's macros.\n\
         pub const VERSION_NUMBER: u32 = {number};\n"
    );
    fs::write(Path::new(&out).join("version.rs"), text).expect("OUT_DIR is writable");
    // The dynamic loader finds the library by this name (`dlopen("libsessync.so.0")`),
    // and programs linked with `-lsessync` record it as their NEEDED entry, so that
    // `scripts/install.sh`'s `libsessync.so.<major>` symlink is what they load.
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let elf = matches!(
        os.as_str(),
        "linux"
            | "android"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "dragonfly"
            | "illumos"
            | "solaris"
    );
    if elf {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsessync.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.toml");
}
