//! Fuzz target: the SDK client against a Sec2 device whose answers are the input (`claimlink_fuzz::client`).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    claimlink_fuzz::client::session(claimlink_core::SecurityScheme::Sec2, input)
});
