//! The demo's timeline as a person sees it: drawn from a real run (and, for the many-device view, from
//! a thousand devices' reports), checked for what a support engineer needs in it, then rendered to
//! PNG with headless Chromium (Debian's `chromium`) and kept under target/ (`target/tmp/timeline-*.png`)
//! to look at. Without Chromium the rendering is skipped with a note, unless
//! `CLAIMLINK_REQUIRE_CHROMIUM` is set (./scripts/test installs Chromium and sets it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{ProvisioningEvent, Stage};
use claimlink_harness::demo::{self, DemoOptions, DeviceReport, Progress, WifiFault};
use claimlink_harness::timeline;

struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: &str, _: &ProvisioningEvent) {}
    fn finished(&self, _: &str, _: &Result<String, String>) {}
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.get(..8)? != b"\x89PNG\r\n\x1a\n" || png.get(12..16)? != b"IHDR" {
        return None;
    }
    let word = |at: usize| Some(u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?));
    Some((word(16)?, word(20)?))
}

/// The SVG's height attribute.
fn svg_height(svg: &str) -> u32 {
    svg.split_once("height=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(h, _)| h.parse::<f64>().ok())
        .map_or(600, |h| h.ceil() as u32)
}

/// Renders `svg` to `target/tmp/<name>.png` with headless Chromium and checks the image.
fn render(svg: &str, name: &str) {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CLAIMLINK_REQUIRE_CHROMIUM").is_none(),
            "CLAIMLINK_REQUIRE_CHROMIUM is set but no chromium is on the PATH"
        );
        eprintln!("no chromium on the PATH: {name}.png not rendered (apt-get install chromium)");
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let source = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    std::fs::write(&source, svg).expect("SVG written");
    let _ = std::fs::remove_file(&png);
    let height = svg_height(svg);
    let out = Command::new("timeout")
        .arg("120")
        .arg(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--no-first-run",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.join(format!("{name}-chromium-profile")).display()
        ))
        .arg(format!("--window-size=1000,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", source.display()))
        .output()
        .expect("chromium runs");
    let image = std::fs::read(&png).unwrap_or_else(|_| {
        panic!(
            "chromium wrote no PNG: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(png_size(&image), Some((1000, height)), "{name}.png");
    // A blank page compresses to a few hundred bytes; the picture has text, bars and lines.
    assert!(
        image.len() > 15_000,
        "{name}.png is {} bytes: blank?",
        image.len()
    );
    eprintln!("rendered {}", png.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_of_a_run_names_every_device_stage_and_outcome_and_renders() {
    let options = DemoOptions {
        devices: 3,
        interval: Duration::from_millis(5),
        wifi_fault: Some(WifiFault::Auth),
        ..DemoOptions::default()
    };
    let mut reports = demo::run(&options, Arc::new(Quiet)).await.expect("demo");
    assert!(reports.iter().all(|r| r.outcome.is_ok()));
    // And a device that failed on its way to AWS IoT, as a ticket would show it.
    let mut failed = reports[0].clone();
    failed.name = "PROV_00FF".into();
    failed
        .events
        .retain(|e| (e.stage as usize) <= (Stage::MqttConnectedWithClaim as usize));
    failed.total =
        failed.events.last().map_or(failed.total, |e| e.elapsed) + Duration::from_secs(2);
    failed.outcome = Err("the device failed while connecting to AWS IoT with the claim (TlsRejected): timed out awaiting CONNACK (6 attempts over 31.0 s)".into());
    // Its total, as the row prints it (the run's own times depend on the machine's load).
    let failed_total = format!("✘ {:.1} s", failed.total.as_secs_f64());
    reports.push(failed);

    let svg = timeline::svg(&reports, Duration::from_secs(300));
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
    for needed in [
        "4 devices, 3 provisioned, 1 failed",
        "Claim window",
        "deadline: claim expires",
        "of the 300 s the claim is valid",
        "Legend",
        "secure session",
        "claim handed over",
        "left at hand-over",
        failed_total.as_str(),
        "the device failed while connecting to AWS IoT with the claim (TlsRejected): timed out",
        "WifiFailed at ",
        "ConfirmedByCloud at ",
        "0 s",
    ] {
        assert!(svg.contains(needed), "the timeline shows {needed:?}");
    }
    for r in &reports {
        assert!(svg.contains(&r.name), "a row for {}", r.name);
    }
    render(&svg, "timeline-rows");
}

/// A thousand devices' reports (made up: times spread over 20 to 80 s, 3 in 100 failed).
fn many_reports() -> Vec<DeviceReport> {
    (0..1000u64)
        .map(|i| {
            let online = Duration::from_millis(20_000 + (i * 7919) % 60_000);
            let event = |stage, at: Duration| ProvisioningEvent {
                stage,
                claim_time_left: Some(Duration::from_secs(300).saturating_sub(at)),
                elapsed: at,
                detail: None,
                device_ip: None,
                thing_name: None,
                certificate_id: None,
            };
            let events = vec![
                event(Stage::Connecting, Duration::ZERO),
                event(Stage::ClaimSent, online / 2),
                event(Stage::ReconnectedWithPermanent, online),
                event(Stage::ConfirmedByCloud, online + Duration::from_millis(300)),
            ];
            DeviceReport {
                name: format!("PROV_{i:04X}"),
                outcome: if i % 100 < 3 {
                    Err("could not reach the service (timed out)".into())
                } else {
                    Ok(format!("claimlink-demo-{i:03}"))
                },
                certificate_id: None,
                claim_time_left_at_handover: Some(Duration::from_secs(290)),
                events,
                total: online + Duration::from_millis(300),
                support_report: String::new(),
            }
        })
        .collect()
}

#[test]
fn many_devices_are_drawn_as_a_distribution_and_render() {
    let reports = many_reports();
    let svg = timeline::svg(&reports, Duration::from_secs(300));
    assert!(
        !svg.contains("PROV_0001"),
        "no row per device past a screenful"
    );
    for needed in [
        "1000 devices, 970 provisioned, 30 failed",
        "time to online",
        "p50 ",
        "p95 ",
        "max ",
        "Outcomes",
        ">970</text>",
        "provisioned<title>",
        ">30</text>",
        "failed: could not reach the service (timed out)",
        "Legend",
    ] {
        assert!(svg.contains(needed), "the distribution shows {needed:?}");
    }
    render(&svg, "timeline-distribution");
}
