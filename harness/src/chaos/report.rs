//! What a chaos run and a campaign record, how a run's result is named, and the outcomes each fault
//! may lead to (anything else is a broken invariant).

use std::collections::BTreeMap;
use std::time::Duration;

use claimlink_core::{LinkError, ProtocolError, ProvisionError, ProvisionedDevice, SecurityScheme};

use super::Fault;

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

pub(super) fn outcome_kind(result: &Result<ProvisionedDevice, ProvisionError>) -> String {
    match result {
        Ok(_) => "provisioned".into(),
        Err(ProvisionError::Protocol(ProtocolError::Link(LinkError::Disconnected))) => {
            "link-disconnected".into()
        }
        Err(ProvisionError::Protocol(ProtocolError::Link(LinkError::DeviceError(_)))) => {
            "device-refused".into()
        }
        Err(ProvisionError::Protocol(ProtocolError::Link(LinkError::TooLarge { .. }))) => {
            "link-too-large".into()
        }
        Err(ProvisionError::Protocol(ProtocolError::Link(LinkError::Timeout { .. }))) => {
            "link-timeout".into()
        }
        Err(ProvisionError::Protocol(ProtocolError::Tampered)) => "tampered".into(),
        Err(ProvisionError::Protocol(ProtocolError::UnexpectedSecurity {
            expected: SecurityScheme::Sec2,
            offered: SecurityScheme::Sec1,
        })) => "unexpected-security".into(),
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
        Err(ProvisionError::PhoneOffline { .. }) => "phone-offline".into(),
        Err(ProvisionError::DeadlineMissed { .. }) => "deadline-missed".into(),
        Err(ProvisionError::OverallTimeout { .. }) => "overall-timeout".into(),
        Err(ProvisionError::CloudRejected {
            kind, error_code, ..
        }) => format!("cloud-rejected {kind:?} {error_code}"),
        Err(e) => format!("other: {e}"),
    }
}

/// The outcomes a fault may lead to (typed, specific).
pub(super) fn expected(fault: &Fault, outcome: &str) -> bool {
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
        // Refused on its `proto-ver`, whatever the policy (run.rs checks nothing else was sent).
        Fault::ImpostorSec1 { .. } => outcome == "unexpected-security",
        // The cloud never shows the expected thing with a certificate it did not have before.
        Fault::LyingDone(_) => outcome == "not-confirmed",
        // The SDK's link refuses the answer or gives up waiting for it; once the device is on Wi-Fi
        // a lost link is confirmed through the cloud instead (run.rs checks an unfired fault
        // provisions).
        Fault::OversizeAnswer(_) => outcome == "link-too-large" || outcome == "provisioned",
        Fault::SlowAnswer(_) => outcome == "link-timeout" || outcome == "provisioned",
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
