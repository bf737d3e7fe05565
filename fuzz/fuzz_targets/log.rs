#![no_main]
//! `sessync::fuzzing::log`: its invariants are documented there.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sessync::fuzzing::log(data));
