//! Orchestrator benchmarks (run with `cargo bench -p claimlink --bench provision`):
//!
//! * claim issued → claim held by the device, over the simulated BLE link at MTU 185 with a 30 ms
//!   connection interval (slept for real), target ≤ 1.5 s;
//! * 100 devices provisioned concurrently (MTU 185, 30 ms): all must succeed within their claim's
//!   deadline; CPU time and peak memory of the whole process (SDK + device simulators + emulator, which
//!   generates one RSA-2048 key per claim), per device.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use claimlink_core::DeviceCredentials;
use claimlink_core::WifiCredentials;
use claimlink_core::{
    NoListener, ProvisionOptions, ProvisioningEvent, ProvisioningListener, Stage,
};
use claimlink_harness::world::{World, WorldOptions};

#[derive(Default)]
struct Recorder(Mutex<Vec<ProvisioningEvent>>);

impl ProvisioningListener for Recorder {
    fn on_event(&self, event: ProvisioningEvent) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event);
        }
    }
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

fn wifi() -> WifiCredentials {
    WifiCredentials::new("claimlink-lab", "correct horse battery".into()).expect("wifi")
}

fn options(serial: String) -> ProvisionOptions {
    ProvisionOptions {
        template_parameters: BTreeMap::from([("SerialNumber".to_owned(), serial)]),
        ..ProvisionOptions::default()
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let world = Arc::new(World::start(WorldOptions::default()).await.expect("world"));

        // Claim issued → claim held, MTU 185, 30 ms.
        let mut samples = Vec::new();
        for i in 0..10u8 {
            let device = world.device(i);
            let link = World::ble(&device, 185, Duration::from_millis(30));
            let events = Recorder::default();
            let session = world.provisioner.connect(link, DeviceCredentials::password("abcd1234"), &events).await.expect("session");
            session.provision(&wifi(), &options(format!("bench-{i}")), &events).await.expect("provisioned");
            let events = events.0.lock().expect("lock").clone();
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
                let device = world.device(100u8.wrapping_add(i));
                let link = World::ble(&device, 185, Duration::from_millis(30));
                let session = world.provisioner.connect(link, DeviceCredentials::password("abcd1234"), &NoListener).await?;
                let started = Instant::now();
                let done = session.provision(&wifi(), &options(format!("fleet-{i:03}")), &NoListener).await?;
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
