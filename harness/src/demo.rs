//! `claimlink-harness demo`: the whole flow on the embedded emulator and simulated devices — the real
//! SDK provisions N devices over the simulated BLE link, with live progress and a summary.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use claimlink_core::DeviceCredentials;
use claimlink_core::ThingName;
use claimlink_core::WifiCredentials;
use claimlink_core::{FailureReport, SupportReport};
use claimlink_core::{
    ProvisionError, ProvisionOptions, ProvisionedDevice, ProvisioningEvent, ProvisioningListener,
    ProvisioningSession, Stage,
};
use serde_json::{json, Value};

use crate::device::SimDevice;
use crate::world::{World, WorldOptions};

/// A Wi-Fi mistake to make on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WifiFault {
    /// The installer types a wrong passphrase first, then the right one.
    Auth,
    /// The installer picks a network the device cannot see.
    NotFound,
}

/// Options of `demo`.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// How many devices, provisioned concurrently.
    pub devices: u8,
    /// The negotiated ATT MTU.
    pub mtu: u16,
    /// Time per ATT round trip.
    pub interval: Duration,
    /// A Wi-Fi mistake to make.
    pub wifi_fault: Option<WifiFault>,
    /// The phone's clock error, in seconds.
    pub clock_skew_secs: i64,
    /// How long claims are valid.
    pub claim_validity: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            devices: 1,
            mtu: 185,
            interval: Duration::from_millis(30),
            wifi_fault: None,
            clock_skew_secs: 0,
            claim_validity: Duration::from_secs(300),
        }
    }
}

/// What happened to one device.
#[derive(Clone, Debug)]
pub struct DeviceReport {
    /// Its BLE name.
    pub name: String,
    /// `Ok(thing name)` or the error.
    pub outcome: Result<String, String>,
    /// The permanent certificate id.
    pub certificate_id: Option<String>,
    /// Time left on the claim at hand-over.
    pub claim_time_left_at_handover: Option<Duration>,
    /// Every event, in order.
    pub events: Vec<ProvisioningEvent>,
    /// Total time.
    pub total: Duration,
    /// The session's support report (JSON), or the failed connection's.
    pub support_report: String,
}

/// Something that wants to hear about progress (the CLI's bars or lines).
pub trait Progress: Send + Sync {
    /// `device` reached a stage.
    fn event(&self, device: &str, event: &ProvisioningEvent);
    /// `device` finished.
    fn finished(&self, device: &str, outcome: &Result<String, String>);
}

struct Listener {
    name: String,
    progress: Arc<dyn Progress>,
    events: Mutex<Vec<ProvisioningEvent>>,
}

impl ProvisioningListener for Listener {
    fn on_event(&self, event: ProvisioningEvent) {
        self.progress.event(&self.name, &event);
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }
}

/// Runs the demo.
pub async fn run(
    options: &DemoOptions,
    progress: Arc<dyn Progress>,
) -> Result<Vec<DeviceReport>, String> {
    let world = Arc::new(
        World::start(WorldOptions {
            claim_validity: options.claim_validity,
            clock_skew_secs: options.clock_skew_secs,
            poll_interval: Duration::from_millis(250),
            safety_margin: Duration::from_secs(60).min(options.claim_validity / 3),
        })
        .await?,
    );
    let mut runs = Vec::new();
    for i in 0..options.devices {
        let world = world.clone();
        let progress = progress.clone();
        let options = options.clone();
        runs.push(tokio::spawn(async move {
            one_device(&world, i, &options, progress).await
        }));
    }
    let mut reports = Vec::new();
    for r in runs {
        reports.push(r.await.map_err(|e| e.to_string())?);
    }
    Ok(reports)
}

async fn one_device(
    world: &World,
    index: u8,
    options: &DemoOptions,
    progress: Arc<dyn Progress>,
) -> DeviceReport {
    let device: Arc<SimDevice> = world.device(index);
    let name = device.config().name.clone();
    let listener = Listener {
        name: name.clone(),
        progress: progress.clone(),
        events: Mutex::new(Vec::new()),
    };
    let start = Instant::now();
    let serial = format!("claimlink-demo-{index:03}");
    let mut support_report = String::new();
    let result = async {
        let link = World::ble(&device, options.mtu, options.interval);
        let connected = world
            .provisioner
            .connect(
                link.clone(),
                DeviceCredentials::password("abcd1234"),
                &listener,
            )
            .await;
        let session = match connected {
            Ok(session) => session,
            Err(e) => {
                let failure = FailureReport::from_error(&e);
                support_report = SupportReport::without_session(failure, Some(&*link)).to_json();
                return Err(e.to_string());
            }
        };
        let outcome = run_on(&session, &name, &serial, options, &listener).await;
        support_report = session.support_report().await.to_json();
        outcome
    }
    .await;
    let outcome = result
        .as_ref()
        .map(|d| d.thing_name.clone())
        .map_err(Clone::clone);
    progress.finished(&name, &outcome);
    DeviceReport {
        name,
        certificate_id: result.as_ref().ok().and_then(|d| d.certificate_id.clone()),
        claim_time_left_at_handover: result.as_ref().ok().map(|d| d.claim_time_left_at_handover),
        outcome,
        events: listener
            .events
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
        total: start.elapsed(),
        support_report,
    }
}

/// Scans, then provisions (correcting the Wi-Fi mistake the options ask for).
async fn run_on(
    session: &ProvisioningSession,
    name: &str,
    serial: &str,
    options: &DemoOptions,
    listener: &Listener,
) -> Result<ProvisionedDevice, String> {
    let networks = session.scan_wifi().await.map_err(|e| e.to_string())?;
    let lab = networks.first().map(|n| n.ssid.clone()).unwrap_or_default();
    let good = WifiCredentials::new(lab.clone(), "correct horse battery".into())
        .map_err(|e| e.to_string())?;
    let opts = ProvisionOptions {
        template_parameters: BTreeMap::from([("SerialNumber".to_owned(), serial.to_owned())]),
        expected_thing_name: ThingName::new(serial.to_owned()).ok(),
        device_hint: Some(name.to_owned()),
    };
    let first = match options.wifi_fault {
        Some(WifiFault::Auth) => {
            WifiCredentials::new(lab, "a wrong passphrase".into()).map_err(|e| e.to_string())?
        }
        Some(WifiFault::NotFound) => WifiCredentials::new("not-in-range", "whatever-123".into())
            .map_err(|e| e.to_string())?,
        None => good.clone(),
    };
    match session.provision(&first, &opts, listener).await {
        // The installer corrects the passphrase: same session, same claim.
        Err(ProvisionError::WifiAuthFailed) if options.wifi_fault == Some(WifiFault::Auth) => {
            session
                .provision(&good, &opts, listener)
                .await
                .map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// Writes `report` to `path`, when there is one.
pub fn write_report(path: Option<&std::path::Path>, report: &str) -> Result<(), String> {
    match path {
        Some(path) => std::fs::write(path, report)
            .map_err(|e| format!("cannot write the support report to {}: {e}", path.display())),
        None => Ok(()),
    }
}

/// Writes the devices' support reports to `path` (`--report`): the report itself for one device, an
/// array of them for several.
pub fn write_device_reports(
    path: Option<&std::path::Path>,
    reports: &[DeviceReport],
) -> Result<(), String> {
    let text = match reports {
        // One device: its report as the SDK wrote it (fields in the SDK's order).
        [one] => one.support_report.clone(),
        many => {
            let parsed: Vec<Value> = many
                .iter()
                .map(|r| serde_json::from_str(&r.support_report).unwrap_or(Value::Null))
                .collect();
            serde_json::to_string_pretty(&parsed).map_err(|e| e.to_string())?
        }
    };
    write_report(path, &text)
}

/// The machine-readable summary (`--json`).
pub fn json_summary(reports: &[DeviceReport], options: &DemoOptions) -> Value {
    json!({
        "devices": reports.iter().map(|r| json!({
            "device": r.name,
            "outcome": match &r.outcome { Ok(_) => "provisioned".to_owned(), Err(e) => format!("failed: {e}") },
            "thing_name": r.outcome.as_ref().ok(),
            "certificate_id": r.certificate_id,
            "claim_time_left_at_handover_ms": r.claim_time_left_at_handover.map(|d| d.as_millis() as u64),
            "total_ms": r.total.as_millis() as u64,
            "stages": r.events.iter().map(|e| json!({
                "stage": format!("{:?}", e.stage),
                "at_ms": e.elapsed.as_millis() as u64,
                "claim_time_left_ms": e.claim_time_left.map(|d| d.as_millis() as u64),
                "detail": e.detail,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "settings": {
            "mtu": options.mtu,
            "interval_ms": options.interval.as_millis() as u64,
            "claim_validity_s": options.claim_validity.as_secs(),
            "clock_skew_s": options.clock_skew_secs,
        },
    })
}

/// A picture of each device's stages against the claim's window, as SVG.
pub fn timeline_svg(reports: &[DeviceReport], window: Duration) -> String {
    let width = 900.0;
    let left = 120.0;
    let row = 34.0;
    let height = 60.0 + row * reports.len() as f64;
    let span = window.as_secs_f64().max(1.0);
    let x = |d: Duration| left + (width - left - 20.0) * (d.as_secs_f64() / span).min(1.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <text x=\"{left}\" y=\"16\">claim window: {} s (each row: one device; dots: stages)</text>\n",
        window.as_secs()
    );
    for (i, r) in reports.iter().enumerate() {
        let y = 40.0 + row * i as f64;
        let handover = r
            .events
            .iter()
            .find(|e| e.stage == Stage::ClaimSent)
            .map(|e| e.elapsed)
            .unwrap_or_default();
        let end = r.events.last().map(|e| e.elapsed).unwrap_or_default();
        let color = if r.outcome.is_ok() {
            "#2a9d4b"
        } else {
            "#c0392b"
        };
        svg.push_str(&format!(
            "<text x=\"6\" y=\"{}\">{}</text>\n",
            y + 4.0,
            r.name
        ));
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\" stroke-width=\"8\"/>\n",
            width - 20.0
        ));
        svg.push_str(&format!(
            "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"8\"/>\n",
            x(handover),
            x(end).max(x(handover) + 1.0)
        ));
        for e in &r.events {
            svg.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"3\" fill=\"#222\"><title>{:?} at {:.2} s</title></circle>\n",
                x(e.elapsed),
                e.stage,
                e.elapsed.as_secs_f64()
            ));
        }
    }
    svg.push_str("</svg>\n");
    svg
}
