//! Fuzz target: `claimlink_fuzz::cloud::cloud_answers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| claimlink_fuzz::cloud::cloud_answers(input));
