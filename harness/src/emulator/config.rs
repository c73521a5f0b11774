//! What tests configure: how the emulator starts ([`EmulatorConfig`]), the provisioning
//! [`Template`]s it knows, their pre-provisioning hooks, and the [`Fault`]s scripted for an [`Api`].

use std::sync::Arc;
use std::time::Duration;

/// Which API a scripted fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    /// The app-backend contract (`/v1/...`).
    Backend,
    /// AWS IoT's SigV4 API.
    Aws,
}

/// A scripted misbehaviour, applied to the next request of an [`Api`] (first in, first out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and the API's usual error body.
    Status(u16),
    /// Throttle: 429 on the backend, 400 `ThrottlingException` on AWS.
    Throttle,
    /// 200 with a body that is not JSON.
    MalformedJson,
    /// 200 with a claim answer lacking this field (`certificateId`, `certificatePem`, `keyPair`,
    /// `expiration`).
    MissingField(&'static str),
    /// 200 with a `certificatePem` that is not a certificate.
    GarbageCertificate,
    /// 200 with a private key that belongs to another certificate.
    WrongKey,
    /// 200 with a `certificateId` that is not the certificate's hash.
    WrongCertificateId,
    /// Wait this long, then answer normally.
    Delay(Duration),
}

/// A provisioning template known to the emulator.
#[derive(Clone, Debug)]
pub struct Template {
    /// Its name.
    pub name: String,
    /// The template body (JSON).
    pub body: serde_json::Value,
    /// Disabled templates issue no claims.
    pub enabled: bool,
}

impl Template {
    /// An enabled template with a minimal body that creates a thing named by the `SerialNumber`
    /// parameter.
    pub fn simple(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            body: serde_json::json!({
                "Parameters": {"SerialNumber": {"Type": "String"}},
                "Resources": {
                    "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}}},
                    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
                        "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
                }
            }),
            enabled: true,
        }
    }

    /// Like [`simple`](Self::simple), and attaches the existing policy `policy` to the certificate.
    pub fn simple_with_policy(name: &str, policy: &str) -> Self {
        let mut t = Self::simple(name);
        t.body["Resources"]["policy"] =
            serde_json::json!({"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": policy}});
        t
    }
}

/// An in-process pre-provisioning hook: AWS's hook input in, the hook's answer (or a failure) out.
pub type HookRule =
    Arc<dyn Fn(&serde_json::Value) -> Result<serde_json::Value, String> + Send + Sync>;

/// A template's pre-provisioning hook: an HTTP(S) endpoint on 127.0.0.1 (standing in for AWS Lambda)
/// or an in-process rule. It receives AWS's input (`claimCertificateId`, `certificateId`,
/// `certificatePem`, `templateArn`, `clientId`, `parameters`) and answers `{"allowProvisioning": bool,
/// "parameterOverrides": {...}}`.
#[derive(Clone)]
pub enum PreProvisioningHook {
    /// POST the input as JSON to this URL.
    Url(String),
    /// Call this function.
    Rule(HookRule),
}

impl std::fmt::Debug for PreProvisioningHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PreProvisioningHook::Url(u) => write!(f, "PreProvisioningHook::Url({u})"),
            PreProvisioningHook::Rule(_) => f.write_str("PreProvisioningHook::Rule(..)"),
        }
    }
}

/// How the emulator starts.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The AWS region it pretends to be.
    pub region: String,
    /// The AWS account id in ARNs.
    pub account_id: String,
    /// How long claims are valid (AWS: 5 minutes).
    pub claim_validity: Duration,
    /// Templates present at start.
    pub templates: Vec<Template>,
    /// Where the device-facing servers (MQTT, the credentials provider) listen: 127.0.0.1 by
    /// default; an address on the LAN (or 0.0.0.0) for a real device. The control plane (the app
    /// backend and the AWS API) stays on 127.0.0.1.
    pub device_bind: std::net::IpAddr,
    /// Names (host names or IP addresses) added to the server certificates besides `localhost` and
    /// 127.0.0.1: the name a real device is told to reach the emulator by.
    pub device_host_names: Vec<String>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            account_id: "123456789012".to_owned(),
            claim_validity: Duration::from_secs(300),
            templates: vec![Template::simple("claimlink-demo")],
            device_bind: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            device_host_names: Vec::new(),
        }
    }
}
