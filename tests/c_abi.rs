//! The C ABI as C sees it: builds each program of `tests/c` against `libsessync.a` and
//! runs it (STYLE.md section 8, second layer). One `#[test]` per program.
//!
//! * The static library is the one cargo built for this test run: it sits in
//!   `target/<profile>/deps/`, next to this test's executable.
//! * Programs are compiled with `${CC:-cc} -std=c11 -Wall -Wextra -Wpedantic -Werror`
//!   (`headertest.c` also with `${CXX:-c++} -std=c++17`), linked with the native libraries
//!   that `cargo rustc --lib -- --print native-static-libs` lists for Linux, and written to
//!   `target/c-tests/<profile>/`, never into the source tree.
//! * `SESSYNC_TEST_WRAPPER` (split on whitespace) runs each program under a tool, e.g.
//!   `valgrind --error-exitcode=99 --leak-check=full` (see `scripts/c-tests.sh`).
//! * `SESSYNC_TEST_SANITIZE=1` builds the C side with AddressSanitizer and UBSan instead,
//!   checks that the sanitizer is really in the binary, and runs the programs directly
//!   (it cannot be combined with a wrapper such as valgrind).
//!
//! A program passes when it exits with 0; otherwise the test fails and shows the
//! program's output, which names the failed check (see `tests/c/check.h`).

mod cbuild;

use std::{
    env,
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

/// Warnings are errors: the programs must compile cleanly as plain C11.
const C_FLAGS: &[&str] = &[
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-g",
];

/// The same for the C++17 build of `headertest.c` (`-x c++` reads the `.c` file as C++).
const CXX_FLAGS: &[&str] = &[
    "-std=c++17",
    "-x",
    "c++",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
    "-g",
];

/// AddressSanitizer and UBSan on the C side; every UBSan report is fatal.
const SANITIZE_FLAGS: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=all",
];

/// How long one program may run before it is killed (valgrind makes them far slower).
const TIMEOUT: Duration = Duration::from_secs(600);
const TIMEOUT_WRAPPED: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Lang {
    C,
    Cxx,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `libsessync.a` of this test run (found once; see `tests/cbuild`).
fn static_lib() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| cbuild::static_lib(&cbuild::deps_dir()))
}

fn env_flag(name: &str) -> bool {
    env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn sanitize() -> bool {
    env_flag("SESSYNC_TEST_SANITIZE")
}

/// The wrapper command, if `SESSYNC_TEST_WRAPPER` is set.
fn wrapper() -> Option<Vec<String>> {
    let words: Vec<String> = env::var("SESSYNC_TEST_WRAPPER")
        .ok()?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    (!words.is_empty()).then_some(words)
}

/// A compiler command from `var` (which may carry arguments, e.g. `ccache gcc`).
fn compiler(var: &str, default: &str) -> Command {
    let value = env::var(var).unwrap_or_default();
    let mut words = value.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap_or(default));
    cmd.args(words);
    cmd
}

/// `target/c-tests/<profile>[-sanitize]/`, created on first use.
fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let deps = cbuild::deps_dir();
        let profile_dir = deps.parent().expect("deps is inside the profile directory");
        let target = profile_dir
            .parent()
            .expect("the profile directory is inside the target directory");
        let profile = profile_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "debug".to_string());
        let mode = if sanitize() { "-sanitize" } else { "" };
        let dir = target.join("c-tests").join(format!("{profile}{mode}"));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        dir
    })
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Compiles `tests/c/<source>` into `<out_dir>/<exe>`; panics with the compiler's output.
fn compile(lang: Lang, source: &str, exe: &str) -> PathBuf {
    let out = out_dir().join(exe);
    let mut cmd = match lang {
        Lang::C => compiler("CC", "cc"),
        Lang::Cxx => compiler("CXX", "c++"),
    };
    cmd.args(match lang {
        Lang::C => C_FLAGS,
        Lang::Cxx => CXX_FLAGS,
    });
    if sanitize() {
        cmd.args(SANITIZE_FLAGS);
    }
    cmd.arg("-I")
        .arg(repo().join("include"))
        .arg("-I")
        .arg(repo().join("tests").join("c"))
        .arg(repo().join("tests").join("c").join(source));
    if lang == Lang::Cxx {
        // What follows is not C++ source: let the driver tell by the file names again.
        cmd.args(["-x", "none"]);
    }
    cmd.arg(static_lib())
        .args(cbuild::NATIVE_LIBS)
        .arg("-o")
        .arg(&out);
    let result = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the compiler ({}): {e}", show(&cmd)));
    if !result.status.success() {
        panic!(
            "compiling {source} failed ({}):\n$ {}\n{}{}",
            result.status,
            show(&cmd),
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    if sanitize() {
        check_sanitized(&out);
    }
    out
}

/// Fails unless the binary really carries AddressSanitizer (`nm prog | grep __asan_init`),
/// so that the sanitized run cannot pass without the sanitizer.
fn check_sanitized(exe: &Path) {
    let nm = Command::new("nm")
        .arg(exe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nm on {}: {e}", exe.display()));
    let symbols = String::from_utf8_lossy(&nm.stdout);
    assert!(
        nm.status.success() && symbols.contains("__asan_init"),
        "{} was built with {SANITIZE_FLAGS:?} but has no __asan_init symbol",
        exe.display()
    );
}

/// Runs the program (through the wrapper, if any) and panics with its output unless it
/// exits with 0.
fn run(exe: &Path) {
    let wrapper = wrapper();
    assert!(
        !(sanitize() && wrapper.is_some()),
        "SESSYNC_TEST_SANITIZE and SESSYNC_TEST_WRAPPER cannot be combined (ASan under \
         valgrind does not work): unset one"
    );
    let mut cmd = match &wrapper {
        Some(w) => {
            let mut c = Command::new(&w[0]);
            c.args(&w[1..]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    if sanitize() {
        cmd.env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
            .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0");
    }
    // Output goes to files, so a chatty program cannot block on a full pipe while the
    // harness waits for it.
    let log = |ext: &str| exe.with_extension(ext);
    let stdout = File::create(log("stdout")).expect("the output directory is writable");
    let stderr = File::create(log("stderr")).expect("the output directory is writable");
    cmd.current_dir(out_dir())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);

    let started = Instant::now();
    let limit = if wrapper.is_some() {
        TIMEOUT_WRAPPED
    } else {
        TIMEOUT
    };
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", show(&cmd)));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for {}: {e}", show(&cmd)),
        }
    };
    let out = fs::read_to_string(log("stdout")).unwrap_or_default();
    let err = fs::read_to_string(log("stderr")).unwrap_or_default();
    // Shown by `cargo test -- --nocapture`, or when the test fails.
    print!("$ {}\n{out}{err}", show(&cmd));
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "{} failed ({s}) after {:.1?}:\n--- stdout\n{out}--- stderr\n{err}",
            show(&cmd),
            started.elapsed()
        ),
        None => panic!(
            "{} did not finish within {limit:?} and was killed:\n--- stdout\n{out}--- \
             stderr\n{err}",
            show(&cmd)
        ),
    }
}

/// Builds and runs `tests/c/<name>.c`.
fn c_program(name: &str) {
    let exe = compile(Lang::C, &format!("{name}.c"), name);
    run(&exe);
}

#[test]
fn store_basic() {
    c_program("store_basic");
}

#[test]
fn session_flow() {
    c_program("session_flow");
}

#[test]
fn errors() {
    c_program("errors");
}

#[test]
fn locks_threads() {
    c_program("locks_threads");
}

#[test]
fn version() {
    c_program("version");
}

#[test]
fn headertest_c11() {
    c_program("headertest");
}

#[test]
fn headertest_cxx17() {
    let exe = compile(Lang::Cxx, "headertest.c", "headertest_cxx");
    run(&exe);
}

#[test]
fn for_bindings() {
    c_program("for_bindings");
}
