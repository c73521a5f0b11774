//! What the FFI end-to-end tests (tests/ffi.rs, tests/ffi_sources.rs) share: an app's own BLE stack
//! implementing the FFI's `DeviceLink`, and the settings, options and secrets an app passes. FFI
//! types only, which is why this is not in `claimlink_harness::testing` (the harness cannot depend on
//! the `claimlink` crate).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use claimlink::{
    DeviceLink, DeviceSecret, LinkFailure, ProvisionOptions, ProvisionerSettings, WifiSettings,
};
use claimlink_core::DeviceLink as _;
use claimlink_harness::device::ble::SimBleLink;
use claimlink_harness::device::SimDevice;
use claimlink_harness::testing;
use claimlink_harness::testing::{DEVICE_PASSWORD, LAB_PASSPHRASE, LAB_SSID};
use claimlink_harness::world::{World, WorldOptions};

/// An app's own BLE stack, as Kotlin or Swift would implement `DeviceLink`.
#[derive(Debug)]
pub struct AppBle {
    /// The simulated BLE link the app's stack drives.
    pub gatt: Arc<SimBleLink>,
    /// Exchanges so far, on every endpoint.
    pub exchanges: AtomicU64,
    /// Drop the connection once, at the n-th exchange (1-based) on this endpoint.
    pub drop_once_at: Option<(&'static str, u64)>,
    /// Exchanges so far, by endpoint.
    pub on_endpoint: Mutex<HashMap<String, u64>>,
    /// Answer this exchange with garbage.
    pub garbage_at: Option<u64>,
    /// The device behind the link, to note whether it held claim material when the link dropped.
    pub device: Option<Arc<SimDevice>>,
    /// Whether the device held claim material when the link dropped.
    pub held_claim_at_drop: std::sync::atomic::AtomicBool,
    /// Answer `proto-ver` with this instead of the device's own answer.
    pub version_json: Option<String>,
}

impl AppBle {
    /// A well-behaved link.
    pub fn plain(gatt: Arc<SimBleLink>) -> Self {
        AppBle {
            gatt,
            exchanges: AtomicU64::new(0),
            drop_once_at: None,
            on_endpoint: Mutex::new(HashMap::new()),
            garbage_at: None,
            device: None,
            held_claim_at_drop: std::sync::atomic::AtomicBool::new(false),
            version_json: None,
        }
    }

    /// A well-behaved link, shared.
    pub fn new(gatt: Arc<SimBleLink>) -> Arc<Self> {
        Arc::new(Self::plain(gatt))
    }
}

#[async_trait]
impl DeviceLink for AppBle {
    async fn connect(&self) -> Result<(), LinkFailure> {
        Ok(self.gatt.connect().await?)
    }
    async fn exchange(&self, endpoint: String, request: Vec<u8>) -> Result<Vec<u8>, LinkFailure> {
        let n = self.exchanges.fetch_add(1, Ordering::SeqCst) + 1;
        let nth = {
            let mut seen = self.on_endpoint.lock().expect("lock");
            let count = seen.entry(endpoint.clone()).or_default();
            *count += 1;
            *count
        };
        if self.drop_once_at == Some((endpoint_name(&endpoint), nth)) {
            if let Some(device) = &self.device {
                self.held_claim_at_drop
                    .store(device.holds_claim(), Ordering::SeqCst);
            }
            self.gatt.drop_connection();
            return Err(LinkFailure::Disconnected);
        }
        if let (Some(json), "proto-ver") = (&self.version_json, endpoint.as_str()) {
            return Ok(json.clone().into_bytes());
        }
        let answer = self.gatt.exchange(&endpoint, &request).await?;
        if self.garbage_at == Some(n) {
            return Ok(vec![0xA5; answer.len().max(16)]);
        }
        Ok(answer)
    }
    fn endpoints(&self) -> Option<Vec<String>> {
        self.gatt.endpoints()
    }
    fn max_message_bytes(&self) -> i32 {
        480
    }
    fn mtu(&self) -> Option<i32> {
        self.gatt.mtu().map(i32::from)
    }
    async fn disconnect(&self) {
        self.gatt.disconnect().await
    }
    fn describe(&self) -> String {
        format!("app ble ({})", self.gatt.describe())
    }
}

/// The endpoints the app's link tells apart: the claim, the Wi-Fi configuration, the rest.
pub fn endpoint_name(endpoint: &str) -> &'static str {
    match endpoint {
        "aws-claim" => "aws-claim",
        "prov-config" => "prov-config",
        _ => "other",
    }
}

/// A world with its default options.
pub async fn world() -> World {
    testing::start_world(WorldOptions::default()).await
}

/// Settings as an app passes them: the FFI's defaults, a faster status poll.
pub fn settings(template: &str, iot_endpoint: String) -> ProvisionerSettings {
    ProvisionerSettings {
        template: template.into(),
        iot_endpoint,
        extra_root_certificates_pem: vec![],
        security: None,
        safety_margin_secs: 60,
        poll_interval_millis: 100,
        wifi_timeout_secs: 45,
        cloud_timeout_secs: 60,
        overall_timeout_secs: 420,
        ap_join_budget_secs: 30,
        proxy_url: None,
    }
}

/// Settings for the world's emulator (its MQTT endpoint, its CA trusted).
pub fn world_settings(world: &World) -> ProvisionerSettings {
    let e = &world.emulator;
    ProvisionerSettings {
        extra_root_certificates_pem: vec![e.ca_pem().to_owned()],
        ..settings("claimlink-demo", e.mqtt_addr().to_string())
    }
}

/// Options as an app passes them: the thing named after `serial`, everything else at its default.
pub fn options(serial: &str) -> ProvisionOptions {
    ProvisionOptions {
        template_parameters: HashMap::from([("SerialNumber".to_owned(), serial.to_owned())]),
        expected_thing_name: None,
        device_hint: None,
    }
}

/// The lab network, as an app passes it.
pub fn wifi() -> Arc<WifiSettings> {
    WifiSettings::new(LAB_SSID.into(), LAB_PASSPHRASE.into()).expect("wifi")
}

/// The simulated devices' Sec2 user name and password, as an app passes them.
pub fn secret() -> Arc<DeviceSecret> {
    DeviceSecret::password("wifiprov".into(), DEVICE_PASSWORD.into())
}
