#![no_main]
//! `sessync::fuzzing::cookie`: its invariants are documented there.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sessync::fuzzing::cookie(data));
