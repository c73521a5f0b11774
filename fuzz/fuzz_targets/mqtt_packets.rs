//! Fuzz target: `claimlink_fuzz::cloud::mqtt_packets`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| claimlink_fuzz::cloud::mqtt_packets(input));
