//! The `cloud` case (`check-device --cloud`): one whole provisioning through the SDK's own
//! [`Provisioner`] against the embedded AWS IoT emulator. The emulator's backend hands out a claim,
//! the SDK sends it with the Wi-Fi credentials over the checker's link, the device joins, runs fleet
//! provisioning against the emulator's MQTT broker, and the SDK confirms the thing through the
//! backend. The case passes only when the SDK reports the device provisioned **and** the emulator
//! shows the thing with that certificate attached and `ACTIVE`.
//!
//! The device must trust the emulator's CA, which [`CloudOptions::ca_file`] receives before the
//! provisioning starts (the simulator: `serve-device --trust-ca FILE`, read when its cloud half
//! starts). A production device trusts Amazon's roots only and cannot pass this case.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use claimlink_core::{
    DeviceLink, ProvisionError, ProvisionOptions, Provisioner, ProvisionerConfig,
    ProvisioningEvent, ProvisioningListener, SecurityPolicy, TemplateName, WifiCredentials,
    MAX_MESSAGE_BYTES,
};

use super::{CappedLink, CaseResult, Checker};
use crate::emulator::{Emulator, EmulatorConfig};

/// The template the emulator knows from the start ([`EmulatorConfig::default`]).
const TEMPLATE: &str = "claimlink-demo";

/// Where the emulator listens for the device and how the device trusts it.
#[derive(Clone, Debug)]
pub struct CloudOptions {
    /// The network the device joins to reach the emulator.
    pub wifi: WifiCredentials,
    /// The address the emulator's MQTT broker (and credentials provider) listen on: 127.0.0.1 for the
    /// simulator, an address of this machine on the device's LAN (or 0.0.0.0) for a real device.
    pub bind: IpAddr,
    /// The host name or IP the claim names as the AWS IoT endpoint (what the device connects to; also
    /// put in the emulator's server certificate). `None`: the bind address.
    pub host: Option<String>,
    /// Where the emulator's CA certificate (PEM) is written before the provisioning starts.
    pub ca_file: PathBuf,
}

impl CloudOptions {
    /// The host the device is told to reach: the named one, else the bind address (which must then
    /// be a specific one).
    fn device_host(&self) -> Result<String, String> {
        match &self.host {
            Some(h) => Ok(h.clone()),
            None if self.bind.is_unspecified() => Err(format!(
                "the emulator listens on {}: give the host name or address the device reaches it by (--cloud-host)",
                self.bind
            )),
            None => Ok(self.bind.to_string()),
        }
    }
}

/// Ignores the SDK's progress events (the case's line says how it ended).
struct Quiet;

impl ProvisioningListener for Quiet {
    fn on_event(&self, _event: ProvisioningEvent) {}
}

/// The name of `e`'s variant (`CloudRejected`, `WifiAuthFailed`…): the SDK's typed error.
fn variant(e: &ProvisionError) -> String {
    format!("{e:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

impl Checker {
    /// The whole flow through the SDK against a fresh emulator.
    pub(super) async fn cloud(&self, options: &CloudOptions) -> CaseResult {
        let host = options.device_host()?;
        let emulator = Emulator::start(EmulatorConfig {
            device_bind: options.bind,
            device_host_names: vec![host.clone()],
            ..EmulatorConfig::default()
        })
        .await
        .map_err(|e| format!("cannot start the emulator on {}: {e}", options.bind))?;
        if let Some(dir) = options
            .ca_file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(&options.ca_file, emulator.ca_pem()).map_err(|e| {
            format!(
                "cannot write the emulator's CA to {}: {e}",
                options.ca_file.display()
            )
        })?;
        let claims = Arc::new(
            emulator
                .backend_source()
                .build()
                .map_err(|e| format!("the SDK's backend claim source: {e}"))?,
        );
        let template = TemplateName::new(TEMPLATE).map_err(|e| e.to_string())?;
        let endpoint = format!("{host}:{}", emulator.mqtt_addr().port());
        let mut config = ProvisionerConfig::new(template, endpoint.clone());
        // Which schemes claimlink accepts is `proto-ver`'s case; here the flow is checked.
        config.security = SecurityPolicy {
            allow_sec1: true,
            ..SecurityPolicy::default()
        };
        let provisioner = Provisioner::new(claims, config);
        let link = self
            .opener
            .open()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let link: Arc<dyn DeviceLink> = Arc::new(CappedLink::new(link, MAX_MESSAGE_BYTES));
        let serial = format!("check-device-{:08x}", rand::random::<u32>());
        let provisioned = async {
            let session = provisioner
                .connect(link, self.credentials.clone(), &Quiet)
                .await?;
            let provision_options = ProvisionOptions {
                template_parameters: BTreeMap::from([("SerialNumber".to_owned(), serial)]),
                ..ProvisionOptions::default()
            };
            session
                .provision(&options.wifi, &provision_options, &Quiet)
                .await
        }
        .await
        .map_err(|e| {
            format!(
                "the SDK reported {} against the emulator at {endpoint}: {e}",
                variant(&e)
            )
        })?;
        let thing = emulator.thing(&provisioned.thing_name).ok_or_else(|| {
            format!(
                "the SDK reported {} provisioned, but the emulator has no such thing",
                provisioned.thing_name
            )
        })?;
        let certificate = provisioned.certificate_id.as_deref().ok_or_else(|| {
            format!(
                "the SDK reported {} provisioned without a certificate id",
                provisioned.thing_name
            )
        })?;
        let status = emulator.certificate_status(certificate);
        if status.as_deref() != Some("ACTIVE") || !thing.principals.iter().any(|p| p == certificate)
        {
            return Err(format!(
                "certificate {certificate} of {} is {status:?} and attached to {:?} (expected ACTIVE and attached)",
                thing.name, thing.principals
            ));
        }
        Ok(format!(
            "provisioned as {} through the emulator at {endpoint}; certificate {}… ACTIVE and attached; claim handed over with {} s left",
            thing.name,
            &certificate[..certificate.len().min(12)],
            provisioned.claim_time_left_at_handover.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimlink_core::SecretString;

    fn options(bind: &str, host: Option<&str>) -> CloudOptions {
        CloudOptions {
            wifi: WifiCredentials::new(b"lab".to_vec(), SecretString::new("passphrase".into()))
                .expect("valid"),
            bind: bind.parse().expect("an IP"),
            host: host.map(str::to_owned),
            ca_file: PathBuf::from("ca.pem"),
        }
    }

    #[test]
    fn the_device_is_told_the_named_host_or_the_bind_address() {
        assert_eq!(
            options("127.0.0.1", None).device_host().as_deref(),
            Ok("127.0.0.1")
        );
        assert_eq!(
            options("0.0.0.0", Some("emulator.lan"))
                .device_host()
                .as_deref(),
            Ok("emulator.lan")
        );
        // Listening everywhere names no address a device could use: the host must be given.
        let err = options("0.0.0.0", None).device_host().unwrap_err();
        assert!(err.contains("--cloud-host"), "{err}");
    }
}
