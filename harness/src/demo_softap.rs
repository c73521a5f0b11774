//! `demo --transport softap`: each device is provisioned by its own installer's phone over the
//! device's SoftAP access point, as docs/bindings.md ("SoftAP") tells an app to do it:
//!
//! 1. the phone prepares the claim while it still has its internet (`prepare_claim`);
//! 2. it joins the device's access point — and, like most phones, loses its route to the internet
//!    there ([`PhoneNetwork`]; `--phone-online-on-ap` models a phone that keeps one, e.g. over mobile
//!    data);
//! 3. it provisions over HTTP (the simulated device's SoftAP server on 127.0.0.1, the SDK's own
//!    [`HttpLink`]);
//! 4. it leaves the access point when the run reports `WaitingForNetwork` (or when the run ends), and
//!    the SDK confirms through the cloud once the phone has rejoined its own network.

use std::sync::Arc;
use std::time::Duration;

use claimlink_core::{HttpLink, ProvisionError, ProvisionOptions, Provisioner};

use crate::device::http::HttpDevice;
use crate::device::SimDevice;
use crate::testing::phone_network::PhoneNetwork;
use crate::world::World;

/// How long the SDK waits for one answer over the access point.
const SOFTAP_TIMEOUT: Duration = Duration::from_secs(10);

/// One installer's phone on one device's access point.
pub(crate) struct SoftApPhone {
    /// The app's provisioner on this phone (its claims and cloud calls go through `phone`).
    pub(crate) provisioner: Provisioner,
    /// The phone's network.
    pub(crate) phone: Arc<PhoneNetwork>,
    /// The SDK's link to the device over its access point.
    pub(crate) link: Arc<HttpLink>,
    /// The device's SoftAP server (stops when dropped).
    _access_point: HttpDevice,
}

impl SoftApPhone {
    /// Prepares the claim for `options` online, then joins `device`'s access point (offline there
    /// unless `online_on_ap`). Fails as the app would: the claim could not be prepared, or the
    /// access point could not be served.
    pub(crate) async fn join(
        world: &World,
        device: &Arc<SimDevice>,
        options: &ProvisionOptions,
        online_on_ap: bool,
    ) -> Result<Self, String> {
        let phone = PhoneNetwork::new(world.claims.clone());
        let provisioner = Provisioner::with_thing_directory(
            phone.clone(),
            phone.clone(),
            world.provisioner.config().clone(),
        );
        provisioner
            .prepare_claim(options)
            .await
            .map_err(|e: ProvisionError| e.to_string())?;
        let access_point = HttpDevice::serve(device.clone())
            .await
            .map_err(|e| format!("the device's access point cannot be served: {e}"))?;
        let link =
            HttpLink::new(&access_point.base_url(), SOFTAP_TIMEOUT).map_err(|e| e.to_string())?;
        if !online_on_ap {
            phone.join_access_point();
        }
        Ok(Self {
            provisioner,
            phone,
            link: Arc::new(link),
            _access_point: access_point,
        })
    }
}

impl Drop for SoftApPhone {
    /// The app leaves the access point when the run is over, whatever its outcome.
    fn drop(&mut self) {
        self.phone.leave_access_point();
    }
}
