#![no_main]
//! `sessync::fuzzing::merge_patch`: its invariants are documented there.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sessync::fuzzing::merge_patch(data));
