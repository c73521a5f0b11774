//! Fuzz target: `claimlink_fuzz::cloud::claim_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| claimlink_fuzz::cloud::claim_answer(input));
