//! Fuzz target: `claimlink_fuzz::device::claim_bundle` (the device simulator).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| claimlink_fuzz::device::claim_bundle(input));
