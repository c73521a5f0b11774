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
    ProvisioningSession,
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
    /// How many devices, provisioned concurrently (up to 65,535).
    pub devices: u16,
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
    /// Devices start this many a second (as installers arrive), or all at once when 0.
    pub arrivals_per_sec: u32,
    /// The devices' firmware for the claim extension and the cloud half: a program speaking the
    /// pipe protocol (the C component's host), or `None` for the simulator's own.
    pub firmware: Option<std::path::PathBuf>,
    /// Claims through claimlink's reference backend (this binary of `claimlink-backend`, run as a
    /// child process: [`crate::reference_backend`]) instead of the emulator's built-in contract.
    pub reference_backend: Option<std::path::PathBuf>,
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
            arrivals_per_sec: 0,
            firmware: None,
            reference_backend: None,
        }
    }
}

/// What happened to one device (its times are counted from its own start).
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
    /// Something about the whole run (a line for a person).
    fn note(&self, _text: &str) {}
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
    run_on(options, progress, None).await
}

/// Runs the demo with the emulator on `emulator_runtime` when given ([`World::start_on`]).
pub async fn run_on(
    options: &DemoOptions,
    progress: Arc<dyn Progress>,
    emulator_runtime: Option<&tokio::runtime::Handle>,
) -> Result<Vec<DeviceReport>, String> {
    let mut world = World::start_on(
        WorldOptions {
            claim_validity: options.claim_validity,
            clock_skew_secs: options.clock_skew_secs,
            poll_interval: Duration::from_millis(250),
            safety_margin: Duration::from_secs(60).min(options.claim_validity / 3),
        },
        emulator_runtime,
    )
    .await?;
    // Kept until the run ends: dropping it stops the backend.
    let _backend = match &options.reference_backend {
        Some(binary) => Some(through_reference_backend(&mut world, binary, options).await?),
        None => None,
    };
    let world = Arc::new(world);
    // Every device fetches one claim: the emulator generates their keys ahead, and the devices start
    // once they are ready (AWS makes a claim's key in hardware in no time; here each costs ~70 ms of
    // CPU, which a thousand devices at once would otherwise wait for, timing out).
    let keys = usize::from(options.devices);
    world.emulator.reserve_keys(keys);
    if keys > 1 {
        progress.note(&format!(
            "the emulator generates {keys} RSA-2048 claim keys ahead (AWS does it in hardware)…"
        ));
        let started = Instant::now();
        world
            .emulator
            .wait_for_keys(keys)
            .await
            .map_err(|e| e.to_string())?;
        progress.note(&format!(
            "{keys} claim keys ready in {:.1} s; the devices start",
            started.elapsed().as_secs_f64()
        ));
    }
    let mut runs = Vec::new();
    let started = Instant::now();
    for i in 0..options.devices {
        if options.arrivals_per_sec > 0 {
            let due = Duration::from_secs_f64(f64::from(i) / f64::from(options.arrivals_per_sec));
            tokio::time::sleep_until((started + due).into()).await;
        }
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

/// Starts the reference backend for `world`'s emulator and points the world's provisioner at it.
async fn through_reference_backend(
    world: &mut World,
    binary: &std::path::Path,
    options: &DemoOptions,
) -> Result<crate::reference_backend::ReferenceBackend, String> {
    use claimlink_core::{Clock, SkewedClock, SystemClock};
    let template = world.provisioner.config().template.to_string();
    let backend =
        crate::reference_backend::start(binary, &world.emulator, &template, options.devices)
            .await?;
    let clock: Arc<dyn Clock> = if options.clock_skew_secs == 0 {
        Arc::new(SystemClock)
    } else {
        Arc::new(SkewedClock::new(options.clock_skew_secs))
    };
    let tokens = Arc::new(crate::providers::TokenSequence::new(vec![backend
        .token
        .clone()]));
    // Plain HTTP on 127.0.0.1 between the demo's phone and its backend, both in this machine.
    let source = claimlink_core::BackendClaimSource::builder(backend.base_url.clone(), tokens)
        .clock(clock)
        .danger_allow_plain_http(true)
        .build()
        .map_err(|e| e.to_string())?;
    world.provisioner =
        claimlink_core::Provisioner::new(Arc::new(source), world.provisioner.config().clone());
    Ok(backend)
}

async fn one_device(
    world: &World,
    index: u16,
    options: &DemoOptions,
    progress: Arc<dyn Progress>,
) -> DeviceReport {
    let mut config = world.device_config(index);
    config.external_firmware = options.firmware.clone();
    let device = Arc::new(SimDevice::new(config));
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
        let outcome = scan_and_provision(&session, &name, &serial, options, &listener).await;
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
async fn scan_and_provision(
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
        // The reference backend binds the claim to the serial it is given as the hint.
        device_hint: Some(
            if options.reference_backend.is_some() {
                serial
            } else {
                name
            }
            .to_owned(),
        ),
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
        "summary": crate::demo_summary::json(reports),
        "settings": {
            "mtu": options.mtu,
            "interval_ms": options.interval.as_millis() as u64,
            "claim_validity_s": options.claim_validity.as_secs(),
            "clock_skew_s": options.clock_skew_secs,
        },
    })
}
