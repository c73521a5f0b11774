//! `claimlink-harness bench`: N devices provisioned concurrently in one run (the demo's flow: BLE at
//! MTU 185 and 30 ms a round trip, real TLS, real RSA claims), timed. Each size runs in a process of
//! its own (the command starts itself again with `--one N`), so that its peak memory is its own.
//!
//! Reported per size: devices provisioned, devices whose certificate was issued before their claim
//! expired, wall time, CPU per device split into SDK / simulator / emulator ([`crate::cpu_time`]),
//! peak RSS per device (the process's peak minus what it held before the run, over N), and the
//! demo's summary (time to online, least claim time left).

use std::sync::Arc;
use std::time::{Duration, Instant};

use claimlink_core::Stage;
use serde_json::{json, Value};

use crate::cpu_time;
use crate::demo::{self, DemoOptions, DeviceReport, Progress};
use crate::demo_summary;

/// One size's figures.
#[derive(Clone, Debug)]
pub struct BenchRow {
    /// Devices in the run.
    pub devices: u16,
    /// Devices provisioned.
    pub provisioned: usize,
    /// Devices whose certificate was issued with claim time left.
    pub deadlines_met: usize,
    /// Devices started per second (0: all at once).
    pub arrivals_per_sec: u32,
    /// Wall time of the run (the emulator's start and its keys generated ahead included).
    pub wall: Duration,
    /// Of which: until the first device started (the emulator's start and its keys).
    pub preparation: Duration,
    /// CPU time of the SDK (the process minus the other two).
    pub cpu_sdk: Duration,
    /// CPU time of the simulated devices.
    pub cpu_simulator: Duration,
    /// CPU time of the emulator (its runtime and key threads).
    pub cpu_emulator: Duration,
    /// Peak resident memory of the process, minus what it held before the run.
    pub peak_rss_growth: u64,
    /// The demo's summary, as JSON.
    pub summary: Value,
}

impl BenchRow {
    /// The row as JSON (what `--one` prints).
    pub fn to_json(&self) -> Value {
        json!({
            "devices": self.devices,
            "provisioned": self.provisioned,
            "deadlines_met": self.deadlines_met,
            "arrivals_per_sec": self.arrivals_per_sec,
            "wall_ms": self.wall.as_millis() as u64,
            "preparation_ms": self.preparation.as_millis() as u64,
            "cpu_sdk_ms": self.cpu_sdk.as_millis() as u64,
            "cpu_simulator_ms": self.cpu_simulator.as_millis() as u64,
            "cpu_emulator_ms": self.cpu_emulator.as_millis() as u64,
            "peak_rss_growth_bytes": self.peak_rss_growth,
            "summary": self.summary,
        })
    }

    /// A row back from its JSON.
    pub fn from_json(v: &Value) -> Option<Self> {
        let ms = |k: &str| v[k].as_u64().map(Duration::from_millis);
        Some(Self {
            devices: u16::try_from(v["devices"].as_u64()?).ok()?,
            provisioned: usize::try_from(v["provisioned"].as_u64()?).ok()?,
            deadlines_met: usize::try_from(v["deadlines_met"].as_u64()?).ok()?,
            arrivals_per_sec: u32::try_from(v["arrivals_per_sec"].as_u64()?).ok()?,
            wall: ms("wall_ms")?,
            preparation: ms("preparation_ms")?,
            cpu_sdk: ms("cpu_sdk_ms")?,
            cpu_simulator: ms("cpu_simulator_ms")?,
            cpu_emulator: ms("cpu_emulator_ms")?,
            peak_rss_growth: v["peak_rss_growth_bytes"].as_u64()?,
            summary: v["summary"].clone(),
        })
    }
}

/// No live progress (the benchmark prints its table at the end); notes when the first device
/// started, after the emulator's start and its keys generated ahead.
struct Silent {
    first_event: std::sync::OnceLock<Instant>,
}

impl Progress for Silent {
    fn event(&self, _: &str, _: &claimlink_core::ProvisioningEvent) {
        let _ = self.first_event.set(Instant::now());
    }
    fn finished(&self, _: &str, _: &Result<String, String>) {}
}

fn met_deadline(report: &DeviceReport) -> bool {
    report
        .events
        .iter()
        .find(|e| e.stage == Stage::CertificateIssued)
        .and_then(|e| e.claim_time_left)
        .is_some_and(|left| !left.is_zero())
}

/// Runs `devices` devices in this process and measures them. Starts its own runtimes: call it from
/// plain (non-async) code.
pub fn run_one(devices: u16, arrivals_per_sec: u32) -> Result<BenchRow, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // The emulator's own runtime; its idle blocking threads are kept, so their CPU time stays
    // readable until the end.
    let emulator_runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("emulator-rt")
        .thread_keep_alive(Duration::from_secs(3600))
        .build()
        .map_err(|e| e.to_string())?;
    let rss_before = current_rss();
    let cpu_before = cpu_time::process();
    let sim_before = cpu_time::simulator();
    cpu_time::enable(true);
    let options = DemoOptions {
        devices,
        arrivals_per_sec,
        ..DemoOptions::default()
    };
    let start = Instant::now();
    let silent = Arc::new(Silent {
        first_event: std::sync::OnceLock::new(),
    });
    let reports = runtime.block_on(demo::run_on(
        &options,
        silent.clone(),
        Some(emulator_runtime.handle()),
    ))?;
    let wall = start.elapsed();
    let preparation = silent
        .first_event
        .get()
        .map_or(Duration::ZERO, |t| t.duration_since(start));
    cpu_time::enable(false);
    let cpu_emulator = cpu_time::threads_named("emulator");
    let cpu_simulator = cpu_time::simulator().saturating_sub(sim_before);
    let cpu_total = cpu_time::process().saturating_sub(cpu_before);
    let peak_rss_growth = cpu_time::peak_rss().saturating_sub(rss_before);
    let row = BenchRow {
        devices,
        provisioned: reports.iter().filter(|r| r.outcome.is_ok()).count(),
        deadlines_met: reports.iter().filter(|r| met_deadline(r)).count(),
        arrivals_per_sec,
        wall,
        preparation,
        cpu_sdk: cpu_total
            .saturating_sub(cpu_emulator)
            .saturating_sub(cpu_simulator),
        cpu_simulator,
        cpu_emulator,
        peak_rss_growth,
        summary: demo_summary::json(&reports),
    };
    runtime.shutdown_background();
    emulator_runtime.shutdown_background();
    Ok(row)
}

/// The process's resident set now (`VmRSS`), in bytes.
fn current_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The table of rows.
pub fn table(rows: &[BenchRow]) -> String {
    let per = |d: Duration, n: u16| d.as_secs_f64() * 1000.0 / f64::from(n.max(1));
    let mut out = format!(
        "{:>7} {:>6} {:>11} {:>9} {:>8} {:>7} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10}\n",
        "devices",
        "arr/s",
        "provisioned",
        "deadline",
        "wall s",
        "prep s",
        "SDK ms/dev",
        "sim ms/dev",
        "emu ms/dev",
        "RSS KiB/dev",
        "online p95",
        "least left"
    );
    for r in rows {
        let p95 = r.summary["time_to_online_ms"]["p95"].as_u64().unwrap_or(0);
        let left = r.summary["least_claim_time_left_at_certificate_ms"]
            .as_u64()
            .map_or("-".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0));
        out.push_str(&format!(
            "{:>7} {:>6} {:>11} {:>9} {:>8.1} {:>7.1} {:>12.1} {:>12.1} {:>12.1} {:>12.0} {:>8.1} s {:>10}\n",
            r.devices,
            if r.arrivals_per_sec == 0 { "all".to_owned() } else { r.arrivals_per_sec.to_string() },
            format!("{}/{}", r.provisioned, r.devices),
            format!("{}/{}", r.deadlines_met, r.devices),
            r.wall.as_secs_f64(),
            r.preparation.as_secs_f64(),
            per(r.cpu_sdk, r.devices),
            per(r.cpu_simulator, r.devices),
            per(r.cpu_emulator, r.devices),
            r.peak_rss_growth as f64 / 1024.0 / f64::from(r.devices.max(1)),
            p95 as f64 / 1000.0,
            left,
        ));
    }
    out
}
