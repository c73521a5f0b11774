//! Orchestrator benchmarks (run with `cargo bench -p claimlink --bench provision`):
//!
//! * claim issued → claim held by the device, over the simulated BLE link at MTU 185 with a 30 ms
//!   connection interval (slept for real), target ≤ 1.5 s;
//! * 100 devices provisioned concurrently (MTU 185, 30 ms): all must succeed within their claim's
//!   deadline; CPU time and peak memory of the whole process (SDK + device simulators + emulator, which
//!   generates one RSA-2048 key per claim), per device.

use std::sync::Arc;
use std::time::{Duration, Instant};

use claimlink_core::DeviceCredentials;
// Linked for its global allocator, as the apps get it: freed heap is wiped (src/lib.rs).
use claimlink as _;
use claimlink_core::{NoListener, Stage};
use claimlink_harness::testing::DEVICE_PASSWORD;
use claimlink_harness::testing::{self, lab_wifi, serial_options, EventRecorder, SimDeviceBuilder};
use claimlink_harness::world::WorldOptions;

/// A phone at MTU 185 with a 30 ms connection interval.
fn phone_link(builder: SimDeviceBuilder) -> SimDeviceBuilder {
    builder.mtu(185).interval(Duration::from_millis(30))
}

/// User+system CPU seconds of this process (Linux `/proc/self/stat`, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// A `/proc/self/status` value in KiB.
fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let runtime = testing::multi_thread_runtime();
    runtime.block_on(async {
        let world = Arc::new(testing::start_world(WorldOptions::default()).await);

        // Claim issued → claim held, MTU 185, 30 ms.
        let mut samples = Vec::new();
        for i in 0..10u8 {
            let (_device, link) = phone_link(SimDeviceBuilder::in_world(&world, i)).build();
            let events = EventRecorder::new();
            let session = world.provisioner.connect(link, DeviceCredentials::password(DEVICE_PASSWORD), &events).await.expect("session");
            session.provision(&lab_wifi(), &serial_options(&format!("bench-{i}")), &events).await.expect("provisioned");
            let events = events.events();
            let at = |s: Stage| events.iter().find(|e| e.stage == s).map(|e| e.elapsed).unwrap_or_default();
            samples.push(at(Stage::ClaimSent) - at(Stage::ClaimIssued));
        }
        samples.sort();
        println!(
            "claim issued -> held by the device (MTU 185, 30 ms)   n=10  median {:>8.3?}  p95 {:>8.3?}  (target <= 1.5 s)",
            samples[5], samples[9]
        );

        // 100 devices at once.
        let baseline_rss = status_kib("VmRSS:");
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let mut runs = Vec::new();
        for i in 0..100u8 {
            let world = world.clone();
            runs.push(tokio::spawn(async move {
                let (_device, link) = phone_link(SimDeviceBuilder::in_world(&world, 100u8.wrapping_add(i))).build();
                let session = world.provisioner.connect(link, DeviceCredentials::password(DEVICE_PASSWORD), &NoListener).await?;
                let started = Instant::now();
                let done = session.provision(&lab_wifi(), &serial_options(&format!("fleet-{i:03}")), &NoListener).await?;
                Ok::<_, claimlink_core::ProvisionError>((done, started.elapsed()))
            }));
        }
        let mut ok = 0;
        let mut slowest = Duration::ZERO;
        let mut least_left = Duration::MAX;
        for r in runs {
            match r.await.expect("task") {
                Ok((done, took)) => {
                    ok += 1;
                    slowest = slowest.max(took);
                    least_left = least_left.min(done.claim_time_left_at_handover.saturating_sub(took));
                }
                Err(e) => println!("  a device failed: {e}"),
            }
        }
        let wall = t0.elapsed();
        let cpu = cpu_seconds() - cpu0;
        let peak = status_kib("VmHWM:");
        println!(
            "100 concurrent devices (MTU 185, 30 ms): {ok}/100 provisioned in {wall:.2?} wall, slowest {slowest:.2?}, least claim time left at confirmation {least_left:.1?}"
        );
        println!(
            "  CPU {:.2} s in all = {:.1} ms per device; peak RSS {} MiB (baseline {} MiB) = {:.0} KiB per device above baseline",
            cpu,
            cpu * 1000.0 / 100.0,
            peak / 1024,
            baseline_rss / 1024,
            (peak.saturating_sub(baseline_rss)) as f64 / 100.0
        );
    });
}
