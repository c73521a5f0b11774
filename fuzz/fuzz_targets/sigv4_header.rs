//! Fuzz target: `claimlink_fuzz::cloud::sigv4_header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| claimlink_fuzz::cloud::sigv4_header(input));
