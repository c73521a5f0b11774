//! Fuzz target: `claimlink_fuzz::cloud::proto_ver`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| claimlink_fuzz::cloud::proto_ver(input));
