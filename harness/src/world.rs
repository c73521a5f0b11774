//! A ready-made world for tests, benches and the demo: the emulator, a [`Provisioner`] wired to it,
//! and simulated devices that trust it.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{BackendClaimSource, TemplateName};
use claimlink_core::{Clock, SkewedClock, SystemClock};
use claimlink_core::{Provisioner, ProvisionerConfig};

use crate::device::ble::SimBleLink;
use crate::device::{DeviceCloud, SimDevice, SimDeviceConfig};
use crate::emulator::{Emulator, EmulatorConfig};

/// How the world is set up.
#[derive(Clone, Debug)]
pub struct WorldOptions {
    /// Claim validity at the emulator (AWS: 5 minutes).
    pub claim_validity: Duration,
    /// The phone's clock error.
    pub clock_skew_secs: i64,
    /// The provisioner's status polling interval.
    pub poll_interval: Duration,
    /// The provisioner's safety margin.
    pub safety_margin: Duration,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            claim_validity: Duration::from_secs(300),
            clock_skew_secs: 0,
            poll_interval: Duration::from_millis(200),
            safety_margin: Duration::from_secs(60),
        }
    }
}

/// The emulator and a provisioner using it through the app-backend contract.
pub struct World {
    /// The emulator.
    pub emulator: Emulator,
    /// The claim source (and thing directory) the provisioner uses.
    pub claims: Arc<BackendClaimSource>,
    /// The provisioner.
    pub provisioner: Provisioner,
}

impl World {
    /// Starts the emulator and wires a provisioner to it.
    pub async fn start(options: WorldOptions) -> Result<Self, String> {
        Self::start_on(options, None).await
    }

    /// As [`start`](Self::start), with the emulator on `emulator_runtime` when given (the benchmark
    /// keeps its CPU time apart that way).
    pub async fn start_on(
        options: WorldOptions,
        emulator_runtime: Option<&tokio::runtime::Handle>,
    ) -> Result<Self, String> {
        let config = EmulatorConfig {
            claim_validity: options.claim_validity,
            ..EmulatorConfig::default()
        };
        let emulator = match emulator_runtime {
            Some(runtime) => runtime
                .spawn(Emulator::start(config))
                .await
                .map_err(|e| e.to_string())?,
            None => Emulator::start(config).await,
        }
        .map_err(|e| e.to_string())?;
        let clock: Arc<dyn Clock> = if options.clock_skew_secs == 0 {
            Arc::new(SystemClock)
        } else {
            Arc::new(SkewedClock::new(options.clock_skew_secs))
        };
        let claims = Arc::new(
            emulator
                .backend_source()
                .clock(clock)
                .build()
                .map_err(|e| e.to_string())?,
        );
        let mut config = ProvisionerConfig::new(
            TemplateName::new("claimlink-demo").map_err(|e| e.to_string())?,
            emulator.mqtt_addr().to_string(),
        );
        config.poll_interval = options.poll_interval;
        config.safety_margin = options.safety_margin;
        let provisioner = Provisioner::new(claims.clone(), config);
        Ok(Self {
            emulator,
            claims,
            provisioner,
        })
    }

    /// The configuration of a simulated device that provisions itself against this emulator.
    pub fn device_config(&self, index: u16) -> SimDeviceConfig {
        let mut config = SimDeviceConfig {
            name: format!("PROV_{index:04X}"),
            seed: u64::from(index) + 1,
            index,
            cloud: Some(DeviceCloud::trusting(self.emulator.ca_pem())),
            ..SimDeviceConfig::default()
        };
        config.world.connect_time = Duration::from_millis(100);
        config
    }

    /// A simulated device.
    pub fn device(&self, index: u16) -> Arc<SimDevice> {
        Arc::new(SimDevice::new(self.device_config(index)))
    }

    /// A BLE connection to `device`: the SDK's production `BleLink` over the device's fake GATT table,
    /// at `mtu` with `interval` per ATT round trip ([`SimDevice::ble_link`]).
    pub fn ble(device: &Arc<SimDevice>, mtu: u16, interval: Duration) -> Arc<SimBleLink> {
        device.ble_link(mtu, interval)
    }
}
