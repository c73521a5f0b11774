//! The seeded fault campaign: every run draws a fault from the seed, provisions one simulated device
//! through the real SDK against the emulator, and checks the invariants an installer relies on —
//! no panic; the run ends by its claim's deadline + 5 s; the error is the specific one the fault
//! causes; no false success (the registry shows the thing with the reported certificate ACTIVE); a
//! failure leaves no ACTIVE certificate on the thing; the device holds no claim after a failure.
//! Any failing run is reproducible with the same seed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use claimlink_core::TemplateName;
use claimlink_core::WifiCredentials;
use claimlink_core::{DeviceCredentials, ProtocolError};
use claimlink_core::{DeviceLink, LinkError};
use claimlink_core::{
    NoListener, ProvisionError, ProvisionOptions, ProvisionedDevice, Provisioner,
    ProvisioningEvent, ProvisioningListener, Stage,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::device::ble::{BleLinkConfig, SimBleLink};
use crate::device::SimDevice;
use crate::emulator::{Api, Fault as ApiFault, PreProvisioningHook, Template};
use crate::world::{World, WorldOptions};

/// What goes wrong in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// The BLE connection drops when this exchange starts.
    BleDisconnect(u64),
    /// The device's answer number N (after the handshake) arrives damaged: a flipped bit, cut short,
    /// the previous answer again (a late duplicate), or with its pieces out of order.
    BadFrame(FrameFault, usize),
    /// The backend takes longer than the SDK's request timeout this many times (4: every attempt).
    BackendTimeout(u8),
    /// The pre-provisioning hook never answers (the emulator gives up after 1 s, as AWS after 5 s).
    HookTimeout,
    /// The MQTT broker drops the device's connection once it is connected with the claim (and refuses
    /// new ones).
    MqttDropMidFlow,
    /// The backend answers 503 this many times first.
    Backend5xx(u8),
    /// The backend's claim answer is not JSON.
    BackendMalformed,
    /// The installer types a wrong passphrase first.
    WrongPassphrase,
    /// The chosen network is not in range.
    NetworkNotFound,
    /// The template's RegisterThing is rejected (a thing group is missing).
    TemplateRejection,
    /// The pre-provisioning hook denies.
    HookDenied,
    /// The claim expires while the device is still getting online.
    ClaimExpires,
    /// The device reboots right after the claim was handed over.
    DeviceReboot,
    /// The MQTT endpoint is down.
    MqttDown,
    /// The phone's clock is off by this many seconds.
    ClockSkew(i64),
    /// The backend answers slowly (2 s).
    BackendSlow,
    /// The network's DHCP server never answers.
    DhcpTimeout,
    /// The credentials provider refuses the new certificate (no such role alias).
    CredentialsRefused,
    /// The thing already exists with an ACTIVE certificate (provisioned before, or a reused serial),
    /// and the device goes quiet on BLE right after it gets its address; if `device_fails`, it then
    /// cannot reach AWS IoT either.
    PreExistingThing {
        /// The device never gets its own certificate.
        device_fails: bool,
    },
}

/// How a frame from the device is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFault {
    /// One bit flipped.
    Flipped,
    /// The last bytes missing.
    Truncated,
    /// The previous answer delivered again instead.
    Duplicated,
    /// The two halves swapped (pieces of a long read delivered out of order).
    Reordered,
}

impl Fault {
    fn draw(rng: &mut ChaCha20Rng) -> Self {
        match rng.gen_range(0..20) {
            0 => Fault::None,
            1 => Fault::BleDisconnect(rng.gen_range(1..=14)),
            2 => Fault::BadFrame(
                [
                    FrameFault::Flipped,
                    FrameFault::Truncated,
                    FrameFault::Duplicated,
                    FrameFault::Reordered,
                ][rng.gen_range(0..4)],
                rng.gen_range(4..=9),
            ),
            16 => Fault::BackendTimeout([1, 4][rng.gen_range(0..2)]),
            17 => Fault::HookTimeout,
            18 => Fault::MqttDropMidFlow,
            19 => Fault::PreExistingThing {
                device_fails: rng.gen_bool(0.5),
            },
            3 => Fault::Backend5xx(rng.gen_range(1..=2)),
            4 => Fault::BackendMalformed,
            5 => Fault::WrongPassphrase,
            6 => Fault::NetworkNotFound,
            7 => Fault::TemplateRejection,
            8 => Fault::HookDenied,
            9 => Fault::ClaimExpires,
            10 => Fault::DeviceReboot,
            11 => Fault::MqttDown,
            12 => Fault::ClockSkew(rng.gen_range(-600..=600)),
            13 => Fault::BackendSlow,
            14 => Fault::DhcpTimeout,
            _ => Fault::CredentialsRefused,
        }
    }

    /// A short name for the table.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::BleDisconnect(_) => "ble-disconnect",
            Fault::BadFrame(FrameFault::Flipped, _) => "frame-flipped",
            Fault::BadFrame(FrameFault::Truncated, _) => "frame-truncated",
            Fault::BadFrame(FrameFault::Duplicated, _) => "frame-duplicated",
            Fault::BadFrame(FrameFault::Reordered, _) => "frame-reordered",
            Fault::BackendTimeout(_) => "backend-timeout",
            Fault::HookTimeout => "hook-timeout",
            Fault::MqttDropMidFlow => "mqtt-drop-mid-flow",
            Fault::Backend5xx(_) => "backend-5xx",
            Fault::BackendMalformed => "backend-malformed",
            Fault::WrongPassphrase => "wrong-passphrase",
            Fault::NetworkNotFound => "network-not-found",
            Fault::TemplateRejection => "template-rejection",
            Fault::HookDenied => "hook-denied",
            Fault::ClaimExpires => "claim-expires",
            Fault::DeviceReboot => "device-reboot",
            Fault::MqttDown => "mqtt-down",
            Fault::ClockSkew(_) => "clock-skew",
            Fault::BackendSlow => "backend-slow",
            Fault::DhcpTimeout => "dhcp-timeout",
            Fault::CredentialsRefused => "credentials-refused",
            Fault::PreExistingThing {
                device_fails: false,
            } => "thing-exists",
            Fault::PreExistingThing { device_fails: true } => "thing-exists-device-fails",
        }
    }
}

/// One run.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// Its index.
    pub index: usize,
    /// The fault drawn.
    pub fault: Fault,
    /// `provisioned` or the error's kind.
    pub outcome: String,
    /// Broken invariants (empty: fine).
    pub violations: Vec<String>,
    /// How long it took.
    pub took: Duration,
}

/// A campaign's result.
#[derive(Clone, Debug)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Every run.
    pub runs: Vec<RunRecord>,
    /// Wall time.
    pub took: Duration,
}

impl Report {
    /// Runs with a broken invariant.
    pub fn violations(&self) -> Vec<&RunRecord> {
        self.runs
            .iter()
            .filter(|r| !r.violations.is_empty())
            .collect()
    }

    /// Counts per (fault, outcome).
    pub fn table(&self) -> BTreeMap<(String, String), usize> {
        let mut t = BTreeMap::new();
        for r in &self.runs {
            *t.entry((r.fault.kind().to_owned(), r.outcome.clone()))
                .or_insert(0) += 1;
        }
        t
    }
}

fn outcome_kind(result: &Result<ProvisionedDevice, ProvisionError>) -> String {
    match result {
        Ok(_) => "provisioned".into(),
        Err(ProvisionError::Protocol(ProtocolError::Link(LinkError::Disconnected))) => {
            "link-disconnected".into()
        }
        Err(ProvisionError::Protocol(ProtocolError::Link(LinkError::DeviceError(_)))) => {
            "device-refused".into()
        }
        Err(ProvisionError::Protocol(ProtocolError::Tampered)) => "tampered".into(),
        Err(ProvisionError::Protocol(e)) => format!("protocol: {e}"),
        Err(ProvisionError::Claim(claimlink_core::ClaimError::Malformed { .. })) => {
            "claim-malformed".into()
        }
        Err(ProvisionError::Claim(claimlink_core::ClaimError::Network {
            timed_out: true, ..
        })) => "claim-timeout".into(),
        Err(ProvisionError::Claim(e)) => format!("claim: {e}"),
        Err(ProvisionError::WifiAuthFailed) => "wifi-auth".into(),
        Err(ProvisionError::WifiNetworkNotFound) => "wifi-not-found".into(),
        Err(ProvisionError::WifiTimeout) => "wifi-timeout".into(),
        Err(ProvisionError::NotConfirmed { .. }) => "not-confirmed".into(),
        Err(ProvisionError::DeadlineMissed { .. }) => "deadline-missed".into(),
        Err(ProvisionError::CloudRejected {
            kind, error_code, ..
        }) => format!("cloud-rejected {kind:?} {error_code}"),
        Err(e) => format!("other: {e}"),
    }
}

/// The outcomes a fault may lead to (typed, specific).
fn expected(fault: &Fault, outcome: &str) -> bool {
    match fault {
        Fault::None
        | Fault::Backend5xx(_)
        | Fault::WrongPassphrase
        | Fault::ClockSkew(_)
        | Fault::BackendSlow => outcome == "provisioned",
        Fault::DhcpTimeout => outcome == "wifi-timeout",
        Fault::CredentialsRefused => outcome.starts_with("cloud-rejected CredentialsProvider"),
        // Early drops fail the run; a drop after Wi-Fi is applied is confirmed through the cloud.
        Fault::BleDisconnect(_) => outcome == "provisioned" || outcome == "link-disconnected",
        Fault::BadFrame(..) => outcome == "tampered",
        Fault::BackendTimeout(n) if *n < 4 => outcome == "provisioned",
        Fault::BackendTimeout(_) => outcome == "claim-timeout",
        Fault::HookTimeout => outcome == "cloud-rejected RegisterThingRejected ACCESS_DENIED",
        // Depending on where the device was when the broker went away: it had finished, or it
        // names the step that failed (never a generic error).
        Fault::MqttDropMidFlow => {
            outcome == "provisioned"
                || [
                    "MqttRejected",
                    "TlsRejected",
                    "CertificateRejected",
                    "RegisterThingRejected",
                    "ReconnectFailed",
                ]
                .iter()
                .any(|step| outcome.starts_with(&format!("cloud-rejected {step}")))
        }
        Fault::BackendMalformed => outcome == "claim-malformed",
        Fault::NetworkNotFound => outcome == "wifi-not-found",
        Fault::TemplateRejection => {
            outcome == "cloud-rejected RegisterThingRejected InvalidParameters"
        }
        Fault::HookDenied => outcome == "cloud-rejected RegisterThingRejected ACCESS_DENIED",
        Fault::ClaimExpires => outcome == "deadline-missed",
        Fault::DeviceReboot => outcome == "device-refused",
        Fault::MqttDown => outcome.starts_with("cloud-rejected TlsRejected"),
        Fault::PreExistingThing { device_fails } => {
            outcome
                == if *device_fails {
                    "not-confirmed"
                } else {
                    "provisioned"
                }
        }
    }
}

/// The certificate a pre-existing thing already has (not a real one: only its id matters).
const OLD_CERTIFICATE: &str = "00000000000000000000000000000000000000000000000000000000000000aa";

/// Damages the Nth answer.
#[derive(Debug)]
struct Corrupting {
    inner: Arc<SimBleLink>,
    how: FrameFault,
    at: usize,
    seen: std::sync::atomic::AtomicUsize,
    previous: std::sync::Mutex<Vec<u8>>,
}

#[async_trait]
impl DeviceLink for Corrupting {
    async fn connect(&self) -> Result<(), LinkError> {
        self.inner.connect().await
    }
    async fn exchange(&self, endpoint: &str, request: &[u8]) -> Result<Vec<u8>, LinkError> {
        let mut answer = self.inner.exchange(endpoint, request).await?;
        let n = self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let previous = std::mem::replace(
            &mut *self.previous.lock().unwrap_or_else(|p| p.into_inner()),
            answer.clone(),
        );
        if n == self.at {
            match self.how {
                FrameFault::Flipped => {
                    if let Some(b) = answer.first_mut() {
                        *b ^= 0x40;
                    }
                }
                FrameFault::Truncated => answer.truncate(answer.len() / 2),
                FrameFault::Duplicated => answer = previous,
                FrameFault::Reordered => {
                    let half = answer.len() / 2;
                    answer.rotate_left(half);
                }
            }
        }
        Ok(answer)
    }
    async fn disconnect(&self) {
        self.inner.disconnect().await
    }
    async fn disconnected(&self) {
        self.inner.disconnected().await
    }
    fn describe(&self) -> String {
        format!("corrupting {}", self.inner.describe())
    }
}

/// Reboots the device once the claim is on it.
struct RebootAfterHandover(Arc<SimDevice>);

impl ProvisioningListener for RebootAfterHandover {
    fn on_event(&self, event: ProvisioningEvent) {
        if event.stage == Stage::ClaimSent {
            self.0.reboot();
        }
    }
}

/// Takes the broker down once the device is connected with the claim.
struct DropMqttMidFlow<'a>(&'a crate::emulator::Emulator);

impl ProvisioningListener for DropMqttMidFlow<'_> {
    fn on_event(&self, event: ProvisioningEvent) {
        if event.stage == Stage::MqttConnectedWithClaim {
            self.0.set_mqtt_down(true);
        }
    }
}

/// A pre-provisioning hook endpoint that accepts connections and never answers.
async fn silent_hook() -> Result<(String, tokio::task::JoinHandle<()>), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok((format!("https://{addr}/hook"), task))
}

/// Runs `runs` runs drawn from `seed`.
pub async fn campaign(runs: usize, seed: u64) -> Result<Report, String> {
    let world = World::start(WorldOptions {
        poll_interval: Duration::from_millis(50),
        ..WorldOptions::default()
    })
    .await?;
    let e = &world.emulator;
    e.put_template(Template {
        name: "chaos-reject".into(),
        body: serde_json::json!({
            "Parameters": {"SerialNumber": {"Type": "String"}},
            "Resources": {
                "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}, "ThingGroups": ["never-created"]}},
                "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
            }
        }),
        enabled: true,
    });
    e.put_template(Template::simple("chaos-hook"));
    e.put_template(Template::simple("chaos-hook-silent"));
    let (silent_url, silent_task) = silent_hook().await?;
    e.set_pre_provisioning_hook(
        "chaos-hook-silent",
        Some(PreProvisioningHook::Url(silent_url)),
    );
    e.set_hook_timeout(Duration::from_secs(1));
    e.set_pre_provisioning_hook(
        "chaos-hook",
        Some(PreProvisioningHook::Rule(Arc::new(|_| {
            Ok(serde_json::json!({"allowProvisioning": false}))
        }))),
    );
    let started = Instant::now();
    let mut records = Vec::new();
    for index in 0..runs {
        let mut rng =
            ChaCha20Rng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let fault = Fault::draw(&mut rng);
        let record = one_run(&world, index, seed, fault).await;
        records.push(record);
    }
    silent_task.abort();
    Ok(Report {
        seed,
        runs: records,
        took: started.elapsed(),
    })
}

async fn one_run(world: &World, index: usize, seed: u64, fault: Fault) -> RunRecord {
    let e = &world.emulator;
    let serial = format!("chaos-{seed}-{index}");
    let mut config = world.device_config((index % 250) as u8);
    config.seed = seed.wrapping_add(index as u64);
    let mut validity = Duration::from_secs(300);
    let mut provisioner_config = world.provisioner.config().clone();
    provisioner_config.wifi_timeout = Duration::from_secs(5);
    provisioner_config.cloud_timeout = Duration::from_secs(10);
    match &fault {
        Fault::TemplateRejection => {
            provisioner_config.template = TemplateName::new("chaos-reject")
                .unwrap_or_else(|_| provisioner_config.template.clone())
        }
        Fault::HookDenied => {
            provisioner_config.template = TemplateName::new("chaos-hook")
                .unwrap_or_else(|_| provisioner_config.template.clone())
        }
        Fault::ClaimExpires => {
            validity = Duration::from_secs(3);
            provisioner_config.safety_margin = Duration::from_secs(1);
            if let Some(cloud) = config.cloud.as_mut() {
                cloud.time_sync = Duration::from_secs(5);
            }
        }
        Fault::Backend5xx(n) => {
            for _ in 0..*n {
                e.script(Api::Backend, ApiFault::Status(503));
            }
        }
        Fault::BackendMalformed => e.script(Api::Backend, ApiFault::MalformedJson),
        Fault::MqttDown => e.set_mqtt_down(true),
        Fault::BackendSlow => e.script(Api::Backend, ApiFault::Delay(Duration::from_secs(2))),
        Fault::BackendTimeout(n) => {
            for _ in 0..*n {
                e.script(Api::Backend, ApiFault::Delay(Duration::from_millis(1500)));
            }
        }
        Fault::HookTimeout => {
            provisioner_config.template = TemplateName::new("chaos-hook-silent")
                .unwrap_or_else(|_| provisioner_config.template.clone())
        }
        Fault::DhcpTimeout => config.world.networks.push(crate::device::wifi::SimNetwork {
            dhcp_times_out: true,
            ..crate::device::wifi::SimNetwork::wpa2("claimlink-lab", "correct horse battery")
        }),
        Fault::PreExistingThing { device_fails } => {
            e.register_thing(
                &serial,
                OLD_CERTIFICATE,
                "-----BEGIN CERTIFICATE-----",
                "ACTIVE",
            );
            config.goes_quiet_after_joining(Duration::from_millis(300));
            if *device_fails {
                e.set_mqtt_down(true);
            }
        }
        Fault::CredentialsRefused => {
            if let Some(cloud) = config.cloud.as_mut() {
                cloud.credentials = Some((
                    e.credentials_addr().to_string(),
                    "no-such-role-alias".into(),
                ));
            }
        }
        _ => {}
    }
    if fault == Fault::DhcpTimeout {
        // The lab network (first in the list) now never gives an address.
        config
            .world
            .networks
            .retain(|n| n.ssid != "claimlink-lab" || n.dhcp_times_out);
    }
    e.set_claim_validity(validity);
    let device = Arc::new(SimDevice::new(config));
    let ble = Arc::new(SimBleLink::connect(
        device.clone(),
        BleLinkConfig {
            mtu: 185,
            interval: Duration::from_millis(1),
            disconnect_at_exchange: match fault {
                Fault::BleDisconnect(k) => Some(k),
                _ => None,
            },
            ..BleLinkConfig::default()
        },
    ));
    let link: Arc<dyn DeviceLink> = match fault {
        Fault::BadFrame(how, at) => Arc::new(Corrupting {
            inner: ble,
            how,
            at,
            seen: std::sync::atomic::AtomicUsize::new(0),
            previous: std::sync::Mutex::new(Vec::new()),
        }),
        _ => ble,
    };
    let claims: Arc<claimlink_core::BackendClaimSource> = match fault {
        Fault::BackendTimeout(_) => match e
            .backend_source()
            .http_config(claimlink_core::HttpConfig {
                request_timeout: Duration::from_millis(600),
                ..e.http_config()
            })
            .retry_policy(claimlink_core::RetryPolicy {
                max_attempts: 4,
                base_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(200),
            })
            .build()
        {
            Ok(source) => Arc::new(source),
            Err(_) => world.claims.clone(),
        },
        Fault::ClockSkew(skew) => match e
            .backend_source()
            .clock(Arc::new(claimlink_core::SkewedClock::new(skew)))
            .build()
        {
            Ok(source) => Arc::new(source),
            Err(_) => world.claims.clone(),
        },
        _ => world.claims.clone(),
    };
    let provisioner = Provisioner::new(claims, provisioner_config);
    let options = ProvisionOptions {
        template_parameters: BTreeMap::from([("SerialNumber".to_owned(), serial.clone())]),
        expected_thing_name: claimlink_core::ThingName::new(serial.clone()).ok(),
        device_hint: None,
    };
    let reboot = RebootAfterHandover(device.clone());
    let mqtt_drop = DropMqttMidFlow(e);
    let listener: &dyn ProvisioningListener = match fault {
        Fault::DeviceReboot => &reboot,
        Fault::MqttDropMidFlow => &mqtt_drop,
        _ => &NoListener,
    };
    let start = Instant::now();
    let good = WifiCredentials::new("claimlink-lab", "correct horse battery".into());
    let run = async {
        let session = provisioner
            .connect(link, DeviceCredentials::password("abcd1234"), listener)
            .await?;
        let good = good.map_err(ProvisionError::from)?;
        let first = match fault {
            Fault::WrongPassphrase => {
                WifiCredentials::new("claimlink-lab", "wrong horse battery".into())?
            }
            Fault::NetworkNotFound => WifiCredentials::new("out-of-range", "whatever-123".into())?,
            _ => good.clone(),
        };
        match session.provision(&first, &options, listener).await {
            Err(ProvisionError::WifiAuthFailed) if fault == Fault::WrongPassphrase => {
                session.provision(&good, &options, listener).await
            }
            other => other,
        }
    };
    let result = tokio::time::timeout(validity + Duration::from_secs(30), run).await;
    let took = start.elapsed();
    // Put the world back for the next run.
    e.set_mqtt_down(false);
    e.set_claim_validity(Duration::from_secs(300));
    let mut violations = Vec::new();
    let result = match result {
        Ok(r) => r,
        Err(_) => {
            violations.push(format!("the run did not end ({took:?})"));
            Err(ProvisionError::StageTimeout {
                stage: Stage::Connecting,
            })
        }
    };
    let outcome = outcome_kind(&result);
    if took > validity + Duration::from_secs(5) {
        violations.push(format!("took {took:?}, beyond the claim's deadline + 5 s"));
    }
    if !expected(&fault, &outcome) {
        violations.push(format!("unexpected outcome {outcome:?} for {fault:?}"));
    }
    let thing = e.thing(&serial);
    match &result {
        Ok(done) => {
            // The reported certificate is this run's (never one the thing had before), attached and
            // ACTIVE.
            let confirmed = done.certificate_id.as_ref().is_some_and(|id| {
                *id != OLD_CERTIFICATE
                    && thing.as_ref().is_some_and(|t| t.principals.contains(id))
                    && e.certificate_status(id).as_deref() == Some("ACTIVE")
            });
            if !confirmed {
                violations.push(format!("false success: the registry does not show the thing with the reported certificate {:?} ACTIVE", done.certificate_id));
            }
        }
        Err(_) => {
            // An ACTIVE certificate is acceptable only if the error told the app about it.
            let told = match &result {
                Err(ProvisionError::CloudRejected {
                    certificate_id: Some(id),
                    ..
                }) => Some(id.clone()),
                _ => None,
            };
            let active = thing.as_ref().is_some_and(|t| {
                t.principals.iter().any(|c| {
                    e.certificate_status(c).as_deref() == Some("ACTIVE")
                        && told.as_deref() != Some(c.as_str())
                        && *c != OLD_CERTIFICATE
                })
            });
            if active {
                violations
                    .push("a failure left an ACTIVE certificate the app was not told about".into());
            }
            // The abort after a failure may run in the background: give it a moment.
            let mut holds = device.holds_claim();
            for _ in 0..60 {
                if !holds {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                holds = device.holds_claim();
            }
            if holds {
                violations.push("the device still holds the claim after a failure".into());
            }
        }
    }
    RunRecord {
        index,
        fault,
        outcome,
        violations,
        took,
    }
}
