//! Fuzz target: `claimlink_fuzz::cloud::qr`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| claimlink_fuzz::cloud::qr(input));
