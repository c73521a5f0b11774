//! How long the emulator takes to issue one claim (an RSA-2048 key and its certificate), in the
//! build profile the demo runs in: `cargo run -p claimlink-harness --example keygen [-- N]`.
//! Prints the median, 95th percentile and maximum over N claims (default 40).

use std::time::{Duration, Instant, SystemTime};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(40)
        .max(1);
    let pki = claimlink_harness::emulator::pki::Pki::generate().expect("the emulator's CAs");
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let claim = pki
            .issue_claim(SystemTime::now(), Duration::from_secs(300))
            .expect("a claim");
        samples.push(start.elapsed());
        std::hint::black_box(claim);
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "emulator: issue one RSA-2048 claim  n={runs}  median {:.1?}  p95 {:.1?}  max {:.1?}",
        pick(0.5),
        pick(0.95),
        pick(1.0)
    );
}
