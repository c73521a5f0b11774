//! The bodies of claimlink's fuzz targets (`fuzz_targets/*.rs`, one per decoder of bytes claimlink
//! did not make) and the recorders that write their seed corpora (`examples/seeds.rs`). Each target
//! must never panic, whatever the input; libFuzzer (cargo fuzz) drives them, coverage-guided.
//!
//! fuzz/README.md has the commands, the corpora and the figures of the last long run.

#![forbid(unsafe_code)]

pub mod client;
pub mod cloud;
pub mod device;
pub mod framing;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A fuzz target's body: runs one input.
pub type Target = fn(&[u8]);

/// Every fuzz target (the binaries in fuzz_targets/ have the same names) and the function it runs.
pub const TARGETS: &[(&str, Target)] = &[
    ("proto_ver", cloud::proto_ver),
    ("qr", cloud::qr),
    ("claim_certificate", cloud::claim_certificate),
    ("claim_answer", cloud::claim_answer),
    ("cloud_answers", cloud::cloud_answers),
    ("proto_messages", cloud::proto_messages),
    ("session_sec0", |input| {
        client::session(claimlink_core::SecurityScheme::Sec0, input)
    }),
    ("session_sec1", |input| {
        client::session(claimlink_core::SecurityScheme::Sec1, input)
    }),
    ("session_sec2", |input| {
        client::session(claimlink_core::SecurityScheme::Sec2, input)
    }),
    ("device_endpoints", device::endpoints),
    ("device_handshake", device::handshake),
    ("device_claim_bundle", device::claim_bundle),
    ("mqtt_packets", cloud::mqtt_packets),
    ("sigv4_header", cloud::sigv4_header),
    ("template", cloud::template),
];

/// The phone's clock in the claim targets (2026-11-30T00:00:00Z): the seed claims are valid then, so
/// the targets reach the checks after the expiry check on every run, whatever the day.
pub fn fuzz_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_996_800)
}

/// The claim (certificate PEM, then its RSA key PEM) of the claim_certificate seed, which the session
/// targets also send to the device: a complete, real claim made by the harness's PKI (rcgen).
pub const SEED_CLAIM: &str = include_str!("../seeds/claim_certificate/claim.pem");

/// One current-thread runtime per process for the async targets (the SDK's client, which never
/// sleeps in the protocol layer).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            // Not input-dependent: without a runtime no target can run at all.
            .unwrap_or_else(|e| panic!("the fuzz targets need a tokio runtime: {e}"))
    })
}

/// Splits a claim file (certificate PEM, then key PEM) after the certificate's END line; the key
/// starts at its BEGIN line.
pub fn split_claim(text: &str) -> (&str, &str) {
    const END: &str = "-----END CERTIFICATE-----";
    match text.find(END) {
        Some(at) => {
            let (certificate, key) = text.split_at(at + END.len());
            (certificate, key.trim_start())
        }
        None => (text, ""),
    }
}
