#![no_main]
//! `sessync::fuzzing::resp`: its invariants are documented there.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sessync::fuzzing::resp(data));
