//! What a provisioner and a run are configured with, and what a run produces.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::claim::{TemplateName, ThingName};
use crate::protocomm::SecurityPolicy;

use super::Stage;

/// How a [`Provisioner`](super::Provisioner) works.
#[derive(Clone, Debug)]
pub struct ProvisionerConfig {
    /// The fleet-provisioning template claims are requested for.
    pub template: TemplateName,
    /// The AWS IoT data endpoint devices connect to (`xxxx-ats.iot.<region>.amazonaws.com[:port]`).
    pub iot_endpoint: String,
    /// Device security the app accepts.
    pub security: SecurityPolicy,
    /// Never hand over a claim with less than this left (default 60 s).
    pub safety_margin: Duration,
    /// How often the device's status is read (≤ 1 s; default 500 ms).
    pub poll_interval: Duration,
    /// Time allowed from ApplyConfig to a Wi-Fi outcome (default 45 s).
    pub wifi_timeout: Duration,
    /// Time allowed for the cloud stages after the certificate is issued, and for the cloud's
    /// confirmation (default 60 s).
    pub cloud_timeout: Duration,
    /// Time allowed for a whole `provision` call (default 7 minutes: a claim's five, plus the cloud).
    pub overall_timeout: Duration,
    /// Over SoftAP, the time budgeted from [`prepare_claim`](super::Provisioner::prepare_claim) to the
    /// hand-over (joining the device's access point, opening the session): a prepared claim must have
    /// the safety margin plus this (default 30 s).
    pub ap_join_budget: Duration,
}

impl ProvisionerConfig {
    /// Defaults for `template` and `iot_endpoint`.
    pub fn new(template: TemplateName, iot_endpoint: impl Into<String>) -> Self {
        Self {
            template,
            iot_endpoint: iot_endpoint.into(),
            security: SecurityPolicy::default(),
            safety_margin: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
            wifi_timeout: Duration::from_secs(45),
            cloud_timeout: Duration::from_secs(60),
            overall_timeout: Duration::from_secs(420),
            ap_join_budget: Duration::from_secs(30),
        }
    }
}

/// Per-run choices.
#[derive(Clone, Debug, Default)]
pub struct ProvisionOptions {
    /// Parameters for the template's `RegisterThing`.
    pub template_parameters: BTreeMap<String, String>,
    /// The thing name the template will produce, when the app knows it: lets the SDK confirm through
    /// the cloud even if the device's BLE goes away before it reported the name.
    pub expected_thing_name: Option<ThingName>,
    /// Passed to the backend as `deviceHint`.
    pub device_hint: Option<String>,
}

/// A device brought onto AWS IoT, as the cloud confirmed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionedDevice {
    /// The thing.
    pub thing_name: String,
    /// Its permanent certificate (confirmed ACTIVE and attached), when known.
    pub certificate_id: Option<String>,
    /// Time left on the claim when it was handed over.
    pub claim_time_left_at_handover: Duration,
    /// When each stage was reached, from the start of `connect`.
    pub timings: Vec<(Stage, Duration)>,
}
