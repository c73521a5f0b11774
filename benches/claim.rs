//! Claim benchmarks: parsing a claim certificate, and a whole claim round trip (HTTPS + SigV4 or bearer
//! token + checks) against the harness's emulator on 127.0.0.1. Run with `cargo bench -p claimlink`.
//!
//! A plain harness (no extra framework): each figure is measured over many iterations and printed as
//! median and 95th percentile. With and without the library's wiping allocator:
//! `cargo bench -p claimlink --bench claim` and the same with `--features danger-no-wipe-on-free`.

use std::time::{Duration, Instant};

use claimlink_core::{
    ClaimCertificate, ClaimRequest, ClaimSource, TemplateName, ThingDirectory, ThingName,
};
// Linked for its global allocator, as the apps get it: freed heap is wiped (src/lib.rs). Built with
// `--features danger-no-wipe-on-free`, the same bench runs on the system allocator alone, for the cost.
use claimlink as _;
use claimlink_harness::testing;

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<40} n={:<5} median {:>10.3?}  p95 {:>10.3?}",
        samples.len(),
        pick(0.5),
        pick(0.95)
    );
}

fn main() {
    let runtime = testing::multi_thread_runtime();
    runtime.block_on(async {
        let emulator = testing::emulator().await;
        let backend = emulator.backend_source().build().expect("backend");
        let aws = testing::fresh_aws_source(&emulator);
        let request = ClaimRequest::new(TemplateName::new(testing::TEMPLATE).expect("name"));

        // Warm up, then measure. Each round trip includes the emulator's RSA-2048 key generation, so
        // the SDK's own share is printed separately below, and a TCP + TLS handshake: the connection
        // that carried a claim key is closed, not pooled (docs/architecture.md, "Secrets in memory").
        for source in [&backend as &dyn ClaimSource, &aws] {
            source.request_claim(&request).await.expect("warm-up");
        }
        for (name, source) in [
            ("claim round trip, backend", &backend as &dyn ClaimSource),
            ("claim round trip, AWS SigV4", &aws),
        ] {
            let mut samples = Vec::new();
            for _ in 0..30 {
                let t = Instant::now();
                source.request_claim(&request).await.expect("claim");
                samples.push(t.elapsed());
            }
            report(name, samples);
        }

        // What closing the claim's connection costs: a round trip on a pooled connection against one
        // on a new connection (TCP + TLS handshake), both a thing look-up (no key generation).
        let thing = ThingName::new("SN-BENCH").expect("name");
        let mut pooled = Vec::new();
        let mut fresh = Vec::new();
        for _ in 0..100 {
            let t = Instant::now();
            backend.describe_thing(&thing).await.expect("look-up");
            pooled.push(t.elapsed());
            let source = emulator.backend_source().build().expect("backend");
            let t = Instant::now();
            source.describe_thing(&thing).await.expect("look-up");
            fresh.push(t.elapsed());
        }
        report("thing look-up, pooled connection", pooled);
        report("thing look-up, new connection", fresh);

        let pem = emulator
            .issued_claims()
            .last()
            .expect("a claim")
            .certificate_pem
            .clone();
        let mut samples = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            let cert = ClaimCertificate::from_pem(&pem).expect("parses");
            std::hint::black_box(cert);
            samples.push(t.elapsed());
        }
        report("ClaimCertificate::from_pem", samples);

        // What the wiping allocator adds: one `memset` per freed block, so the cost grows with the
        // block. Compare with `--features danger-no-wipe-on-free`.
        for size in [64usize, 4096, 65536] {
            let mut samples = Vec::new();
            for _ in 0..2000 {
                let t = Instant::now();
                for _ in 0..100 {
                    drop(std::hint::black_box(vec![1u8; size]));
                }
                samples.push(t.elapsed() / 100);
            }
            report(&format!("heap: fill and free {size} bytes"), samples);
        }

        // The emulator's part of a round trip: an RSA-2048 key and a signed certificate.
        let pki = claimlink_harness::emulator::pki::Pki::generate().expect("pki");
        let mut samples = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            std::hint::black_box(
                pki.issue_claim(std::time::SystemTime::now(), Duration::from_secs(300))
                    .expect("claim"),
            );
            samples.push(t.elapsed());
        }
        report("emulator: issue one RSA-2048 claim", samples);
    });
}
