//! One chaos run: the world set up for its fault, one simulated device provisioned through the SDK,
//! and the invariants checked on the result, the registry and the device.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use claimlink_core::{BleConfig, BleLink, TemplateName, WifiCredentials};
use claimlink_core::{DeviceCredentials, DeviceLink};
use claimlink_core::{
    NoListener, ProvisionError, ProvisionOptions, Provisioner, ProvisioningListener, Stage,
};

use super::inject::HostileGatt;
use super::inject::{AnswerFault, Corrupting, RebootAfterHandover};
use super::report::{expected, outcome_kind};
use super::{DoneLie, Fault, RunRecord};
use crate::device::ble::{BleLinkConfig, SimBleLink};
use crate::device::gatt::{FakeGatt, FakeGattConfig, SERVICE};
use crate::device::security::DeviceSecurity;
use crate::device::SimDevice;
use crate::emulator::{Api, Fault as ApiFault};
use crate::testing::RecordingLink;
use crate::world::World;

/// The certificate a pre-existing thing already has (not a real one: only its id matters).
const OLD_CERTIFICATE: &str = "00000000000000000000000000000000000000000000000000000000000000aa";

/// The device's password (Security 2), and the PoP of an impostor that cracked it (Security 1).
const PASSWORD: &str = "abcd1234";

/// The exchange timeout of the SDK's BLE link in a run with an oversize or slow answer (production:
/// 10 s; 2 s leaves room for the handshake's SRP on a loaded machine).
const HOSTILE_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);
/// How late a slow answer comes: far beyond the exchange timeout (as far as the phone can tell,
/// never).
const LATE_ANSWER: Duration = Duration::from_secs(30);

/// The SDK's request timeout in a run with backend timeouts: the answers that are held never come, and
/// the others (a claim whose key was generated ahead: a signature and a TLS handshake) come well
/// within it even with every core busy.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a held answer is held: for ever, as far as a client with [`BACKEND_TIMEOUT`] can tell.
const NEVER: Duration = Duration::from_secs(3600);

/// A thing provisioned honestly once per campaign, with an ACTIVE certificate: the one a lying
/// device names.
pub(super) struct OtherThing {
    /// Its name.
    pub(super) name: String,
    /// Its ACTIVE certificate's id.
    pub(super) certificate_id: String,
}

/// Provisions the campaign's [`OtherThing`] with an honest device.
pub(super) async fn provision_other(world: &World, seed: u64) -> Result<OtherThing, String> {
    let name = format!("chaos-{seed}-other");
    let device = Arc::new(SimDevice::new(world.device_config(250)));
    let link = device.ble_link(185, Duration::from_millis(1));
    let options = ProvisionOptions {
        template_parameters: BTreeMap::from([("SerialNumber".to_owned(), name.clone())]),
        expected_thing_name: claimlink_core::ThingName::new(name.clone()).ok(),
        device_hint: None,
    };
    let wifi = WifiCredentials::new("claimlink-lab", "correct horse battery".into())
        .map_err(|e| e.to_string())?;
    let session = world
        .provisioner
        .connect(link, DeviceCredentials::password(PASSWORD), &NoListener)
        .await
        .map_err(|e| e.to_string())?;
    let done = session
        .provision(&wifi, &options, &NoListener)
        .await
        .map_err(|e| e.to_string())?;
    let certificate_id = done
        .certificate_id
        .ok_or("the other thing was provisioned without a certificate id")?;
    Ok(OtherThing {
        name,
        certificate_id,
    })
}

pub(super) async fn one_run(
    world: &World,
    index: usize,
    seed: u64,
    fault: Fault,
    other: &OtherThing,
) -> RunRecord {
    let e = &world.emulator;
    let serial = match fault {
        // The expected thing is the one whose old certificate the device names.
        Fault::LyingDone(DoneLie::WithOldCertificate) => other.name.clone(),
        _ => format!("chaos-{seed}-{index}"),
    };
    let mut config = world.device_config((index % 250) as u16);
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
                e.script(Api::Backend, ApiFault::Delay(NEVER));
            }
        }
        Fault::MqttDropMidFlow => e.drop_mqtt_at_next_claim_request(),
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
        Fault::ImpostorSec1 { allow_sec1 } => {
            config.security = DeviceSecurity::Sec1 {
                pop: Some(PASSWORD.into()),
            };
            provisioner_config.security.allow_sec1 = *allow_sec1;
        }
        Fault::LyingDone(_) => {
            config.cloud = None;
            config.danger_lie_done_as(&other.name, &other.certificate_id);
            // The cloud will never show it: give up on the confirmation quickly.
            provisioner_config.cloud_timeout = Duration::from_secs(1);
        }
        Fault::OversizeAnswer(_) | Fault::SlowAnswer(_) => {
            provisioner_config.overall_timeout = Duration::from_secs(30);
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
    // What was ACTIVE on the expected thing before the run: never a success's certificate.
    let active_before: Vec<String> = e
        .thing(&serial)
        .map(|t| {
            t.principals
                .into_iter()
                .filter(|c| e.certificate_status(c).as_deref() == Some("ACTIVE"))
                .collect()
        })
        .unwrap_or_default();
    let claims_before = e.issued_claims().len();
    let overall_timeout = provisioner_config.overall_timeout;
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
    let mut recording = None;
    let mut hostile = None;
    let link: Arc<dyn DeviceLink> = match fault {
        Fault::BadFrame(how, at) => Arc::new(Corrupting {
            inner: ble,
            how,
            at,
            seen: std::sync::atomic::AtomicUsize::new(0),
            previous: std::sync::Mutex::new(Vec::new()),
        }),
        Fault::ImpostorSec1 { .. } => {
            let link = RecordingLink::new(ble);
            recording = Some(link.clone());
            link
        }
        Fault::OversizeAnswer(at) | Fault::SlowAnswer(at) => {
            let how = match fault {
                Fault::OversizeAnswer(_) => AnswerFault::Oversize,
                _ => AnswerFault::Late(LATE_ANSWER),
            };
            match hostile_link(device.clone(), how, at).await {
                Ok(link) => {
                    hostile = Some(link.clone());
                    link
                }
                Err(why) => {
                    return RunRecord {
                        index,
                        fault,
                        outcome: "no-link".into(),
                        violations: vec![format!("the link did not open: {why}")],
                        took: Duration::ZERO,
                    }
                }
            }
        }
        _ => ble,
    };
    let claims: Arc<claimlink_core::BackendClaimSource> = match fault {
        Fault::BackendTimeout(_) => match e
            .backend_source()
            .http_config(claimlink_core::HttpConfig {
                request_timeout: BACKEND_TIMEOUT,
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
    let listener: &dyn ProvisioningListener = match fault {
        Fault::DeviceReboot => &reboot,
        _ => &NoListener,
    };
    let start = Instant::now();
    let good = WifiCredentials::new("claimlink-lab", "correct horse battery".into());
    let run = async {
        let session = provisioner
            .connect(link, DeviceCredentials::password(PASSWORD), listener)
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
    if took > overall_timeout + Duration::from_secs(5) {
        violations.push(format!(
            "took {took:?}, beyond the overall timeout {overall_timeout:?} + 5 s"
        ));
    }
    if !expected(&fault, &outcome) {
        violations.push(format!("unexpected outcome {outcome:?} for {fault:?}"));
    }
    if let Some(link) = &hostile {
        if !link.peripheral().fired() && outcome != "provisioned" {
            violations.push(format!(
                "the hostile answer was never given, yet the run ended {outcome:?}"
            ));
        }
    }
    if let Some(link) = &recording {
        // The impostor got nothing but the `proto-ver` request: no handshake command, no
        // passphrase, no claim; and no claim was even requested.
        let sent = link.sent_to();
        if sent != ["proto-ver"] {
            violations.push(format!("the impostor received requests on {sent:?}"));
        }
        if device.received_claim().is_some() {
            violations.push("the impostor received a claim".into());
        }
        let issued = e.issued_claims().len().saturating_sub(claims_before);
        if issued != 0 {
            violations.push(format!("{issued} claim(s) issued for an impostor"));
        }
    }
    let thing = e.thing(&serial);
    match &result {
        Ok(done) => {
            // The success names the expected thing and a certificate that was not ACTIVE on it
            // before the run, now attached and ACTIVE.
            let confirmed = done.thing_name == serial
                && done.certificate_id.as_ref().is_some_and(|id| {
                    *id != OLD_CERTIFICATE
                        && !active_before.contains(id)
                        && thing.as_ref().is_some_and(|t| t.principals.contains(id))
                        && e.certificate_status(id).as_deref() == Some("ACTIVE")
                });
            if !confirmed {
                violations.push(format!("false success: the registry does not show the expected thing {serial:?} with the reported certificate {:?} newly ACTIVE (reported thing {:?})", done.certificate_id, done.thing_name));
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
                        && !active_before.contains(c)
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

/// The SDK's production `BleLink` over the device's GATT table with one hostile answer, opened, with
/// a short exchange timeout.
async fn hostile_link(
    device: Arc<SimDevice>,
    how: AnswerFault,
    at: u64,
) -> Result<Arc<BleLink<HostileGatt>>, claimlink_core::LinkError> {
    let gatt = FakeGatt::new(
        device,
        FakeGattConfig {
            mtu: 185,
            interval: Duration::from_millis(1),
            ..FakeGattConfig::default()
        },
    );
    let config = BleConfig {
        service: Some(SERVICE),
        retry_backoff: Duration::from_millis(20),
        exchange_timeout: HOSTILE_EXCHANGE_TIMEOUT,
        ..BleConfig::default()
    };
    Ok(Arc::new(
        BleLink::open(HostileGatt::new(gatt, how, at), config).await?,
    ))
}
