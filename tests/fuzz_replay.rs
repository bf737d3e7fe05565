//! Replays the fuzz corpora on stable Rust, without libFuzzer: every file of every
//! `fuzz/corpus/<target>/` goes through `sessync::fuzzing::<target>`, which panics when one
//! of the target's invariants breaks. A corpus holds the seeds, what fuzzing found
//! interesting (minimized with `cargo fuzz cmin`) and every input that once failed, so each
//! fixed bug stays fixed. A missing or empty corpus fails the test: it would otherwise
//! pass by checking nothing. See `docs/security.md`.

#![cfg(feature = "daemon")]

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// The function that checks one input of a target.
type Check = fn(&[u8]);

/// Every fuzz target with a corpus, and the function that checks one input.
const TARGETS: &[(&str, Check)] = &[
    ("resp", sessync::fuzzing::resp),
    ("cookie", sessync::fuzzing::cookie),
    ("merge_patch", sessync::fuzzing::merge_patch),
    ("c_abi", sessync::fuzzing::c_abi),
    ("log", sessync::fuzzing::log),
];

/// A corpus must replay within this; the four run in parallel, well under 30 s in all.
const BUDGET: Duration = Duration::from_secs(20);

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable corpus directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

fn replay(target: &str) {
    let check = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .expect("a known target");
    let files = corpus(target);
    let started = Instant::now();
    for file in &files {
        let data = std::fs::read(file).expect("a readable corpus file");
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
            std::panic::resume_unwind(Box::new(format!(
                "fuzz/corpus/{target}/{name} breaks an invariant: {}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )));
        }
    }
    let took = started.elapsed();
    eprintln!("{target}: {} inputs in {took:?}", files.len());
    assert!(took < BUDGET, "{target}: replay took {took:?}");
}

#[test]
fn resp() {
    replay("resp");
}

#[test]
fn cookie() {
    replay("cookie");
}

#[test]
fn merge_patch() {
    replay("merge_patch");
}

#[test]
fn c_abi() {
    replay("c_abi");
}

#[test]
fn log() {
    replay("log");
}

/// Every directory of `fuzz/corpus` has a replay above, and every fuzz target a corpus
/// (a target added without either would go unchecked).
#[test]
fn every_target_is_replayed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let names = |dir: &str, strip: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("fuzz/{dir} is missing: {e}"))
            .map(|e| e.expect("a readable directory").file_name())
            .map(|n| n.to_string_lossy().trim_end_matches(strip).to_string())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        v
    };
    let mut known: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(names("corpus", ""), known, "fuzz/corpus/*");
    assert_eq!(
        names("fuzz_targets", ".rs"),
        known,
        "fuzz/fuzz_targets/*.rs"
    );
}
