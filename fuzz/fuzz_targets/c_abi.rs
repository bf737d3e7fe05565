#![no_main]
//! `sessync::fuzzing::c_abi`: its invariants are documented there.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sessync::fuzzing::c_abi(data));
