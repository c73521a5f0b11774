//! Test support, shared by claimlink's end-to-end tests (tests/), its benches (benches/) and the
//! harness's own tests: not for apps. One event recorder, one device factory (the only place a test
//! builds a simulated device and its link), the settings every test provisions with, and the world,
//! emulator, session and claim-source setups the tests used to copy from one another. A setup that
//! fails panics: in a test, that is the failure to report.
//!
//! ```no_run
//! # async fn run() {
//! use claimlink_harness::testing::{self, EventRecorder, SimDeviceBuilder};
//! use claimlink_core::{DeviceCredentials, Stage};
//!
//! let world = testing::quick_world().await;
//! let (device, link) = SimDeviceBuilder::in_world(&world, 1).build();
//! let events = EventRecorder::new();
//! let session = world
//!     .provisioner
//!     .connect(link, DeviceCredentials::password(testing::DEVICE_PASSWORD), &events)
//!     .await
//!     .expect("session");
//! let (wifi, options) = (testing::lab_wifi(), testing::serial_options("SN-1"));
//! let run = session.provision(&wifi, &options, &events);
//! testing::drop_when(run, events.reached(Stage::WifiApplied)).await;
//! assert!(testing::eventually(testing::WIPE_WAIT, || !device.holds_claim()).await);
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use claimlink_core::internal::DeviceSession;
use claimlink_core::{AwsClaimSource, Claim, ProtocolError, SecurityPolicy, ThingName};
use claimlink_core::{AwsClaimSourceBuilder, DeviceCredentials, DeviceLink, HttpLink};
use claimlink_core::{NoListener, WifiCredentials};
use claimlink_core::{ProvisionOptions, ProvisioningEvent, ProvisioningListener, Stage};
use claimlink_core::{Provisioner, ProvisioningSession};
use rand::rngs::OsRng;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;

use crate::device::ble::{BleLinkConfig, SimBleLink};
use crate::device::cloud::{CloudEndpoint, MqttIdentity};
use crate::device::http::HttpDevice;
use crate::device::{DeviceCloud, SimDevice, SimDeviceConfig};
use crate::emulator::{Emulator, EmulatorConfig, Template};
use crate::providers::CredentialsSequence;
use crate::world::{World, WorldOptions};

pub mod claim_sources;
pub mod phone_network;
mod recording;
mod sleeping_phone;

pub use sleeping_phone::SleepingPhoneClock;

pub use recording::RecordingLink;

/// The simulated devices' Sec2 password (`SimDeviceConfig::default()`'s security).
pub const DEVICE_PASSWORD: &str = "abcd1234";
/// The network every simulated device can join (the first of `WifiWorld::default()`).
pub const LAB_SSID: &str = "claimlink-lab";
/// The lab network's passphrase.
pub const LAB_PASSPHRASE: &str = "correct horse battery";
/// The provisioning template the emulator starts with and the world's provisioner uses.
pub const TEMPLATE: &str = "claimlink-demo";
/// How long a test waits for background work such as the wipe after a dropped run.
pub const WIPE_WAIT: Duration = Duration::from_secs(3);

/// How often [`eventually`] and [`holds`] look again.
const POLL: Duration = Duration::from_millis(1);

/// The lab network's credentials.
pub fn lab_wifi() -> WifiCredentials {
    // Both are constants that satisfy the Wi-Fi rules (SSID 1–32 bytes, passphrase 8–63).
    WifiCredentials::new(LAB_SSID, LAB_PASSPHRASE.into()).expect("the lab network is valid")
}

/// Template parameters naming the thing after `serial` (`SerialNumber`, as the demo template wants).
pub fn serial_parameters(serial: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("SerialNumber".to_owned(), serial.to_owned())])
}

/// Options that provision a device as thing `serial`, everything else at its default.
pub fn serial_options(serial: &str) -> ProvisionOptions {
    ProvisionOptions {
        template_parameters: serial_parameters(serial),
        ..ProvisionOptions::default()
    }
}

/// [`serial_options`] that also expect the thing to be named `serial` and hint the device with it.
pub fn expected_thing_options(serial: &str) -> ProvisionOptions {
    ProvisionOptions {
        expected_thing_name: Some(ThingName::new(serial).expect("name")),
        device_hint: Some(serial.to_owned()),
        ..serial_options(serial)
    }
}

/// The world's defaults with a 50 ms status poll, so that runs end soon after the device is done.
pub fn quick_world_options() -> WorldOptions {
    WorldOptions {
        poll_interval: Duration::from_millis(50),
        ..WorldOptions::default()
    }
}

/// A world started with [`quick_world_options`].
pub async fn quick_world() -> World {
    start_world(quick_world_options()).await
}

/// A world started with `options`; panics if it cannot start (a test has nothing to run then).
pub async fn start_world(options: WorldOptions) -> World {
    World::start(options).await.expect("the world starts")
}

/// An emulator with its default settings; panics if it cannot start.
pub async fn emulator() -> Emulator {
    Emulator::start(EmulatorConfig::default())
        .await
        .expect("the emulator starts")
}

/// An emulator and a claim it issued for [`TEMPLATE`] through its backend.
pub async fn emulator_with_claim() -> (Emulator, Claim) {
    let emulator = emulator().await;
    let claim = emulator.claim_via_backend(TEMPLATE).await.expect("claim");
    (emulator, claim)
}

/// Every stage of a successful run that requests its claim just in time, in order, as the listener
/// hears them (connecting, then the run).
pub const EVERY_STAGE: [Stage; 13] = [
    Stage::Connecting,
    Stage::Securing,
    Stage::ClaimRequested,
    Stage::ClaimIssued,
    Stage::ClaimSent,
    Stage::WifiApplied,
    Stage::WifiConnecting,
    Stage::WifiConnected,
    Stage::MqttConnectedWithClaim,
    Stage::CertificateIssued,
    Stage::ThingRegistered,
    Stage::ReconnectedWithPermanent,
    Stage::ConfirmedByCloud,
];

/// Starts a run of `session` for `serial` on `device` and cancels it once the device holds the claim;
/// returns what the run ended with and whether the device still holds any claim afterwards (a cancel
/// must wipe it).
pub async fn cancel_once_the_device_holds_the_claim(
    session: Arc<claimlink_core::ProvisioningSession>,
    device: &SimDevice,
    serial: &str,
) -> (
    Result<claimlink_core::ProvisionedDevice, claimlink_core::ProvisionError>,
    bool,
) {
    let running = {
        let (session, options) = (session.clone(), expected_thing_options(serial));
        tokio::spawn(async move { session.provision(&lab_wifi(), &options, &NoListener).await })
    };
    assert!(
        eventually(WIPE_WAIT, || device.holds_claim()).await,
        "the claim reached the device"
    );
    session.cancel();
    let result = match running.await {
        Ok(result) => result,
        Err(e) => panic!("the run's task: {e}"),
    };
    (result, device.holds_claim())
}

/// Makes the world's template require a thing group that does not exist, provisions the device
/// `devices` builds as `serial`, and checks that RegisterThing's rejection reaches the app in AWS's
/// words (400 `InvalidParameters`, naming the group), with no thing and with the certificate AWS had
/// issued named so the app can clean it up (docs/protocol.md §6). Returns the device.
pub async fn assert_template_rejection_in_aws_words(
    world: &World,
    devices: SimDeviceBuilder,
    serial: &str,
) -> Arc<SimDevice> {
    world
        .emulator
        .put_template(template_with_thing_group(TEMPLATE, "missing-group"));
    let (device, link) = devices.build();
    let session = connect(&world.provisioner, link).await;
    let err = match session
        .provision(&lab_wifi(), &expected_thing_options(serial), &NoListener)
        .await
    {
        Ok(done) => panic!("provisioned despite the template: {done:?}"),
        Err(e) => e,
    };
    let claimlink_core::ProvisionError::CloudRejected {
        kind,
        status_code,
        error_code,
        error_message,
        thing_name,
        certificate_id,
    } = err
    else {
        panic!("expected CloudRejected, got {err:?}");
    };
    assert_eq!(
        (kind, status_code, error_code.as_str()),
        (
            claimlink_core::CloudFailureKind::RegisterThingRejected,
            400,
            "InvalidParameters"
        )
    );
    assert!(error_message.contains("missing-group"), "{error_message}");
    assert_eq!(thing_name, None, "nothing was registered");
    let Some(certificate_id) = certificate_id else {
        panic!("the issued certificate is not named");
    };
    assert!(world.emulator.certificate_status(&certificate_id).is_some());
    device
}

/// The DER of `claim`'s private key (PKCS #1, as the emulator issues it).
pub fn private_key_der(claim: &Claim) -> Vec<u8> {
    let key = PrivateKeyDer::from_pem_slice(claim.private_key().expose().as_bytes()).expect("pem");
    key.secret_der().to_vec()
}

/// Like [`Template::simple`], and the thing joins `group`: RegisterThing fails while the group does
/// not exist (AWS: `InvalidParameters`).
pub fn template_with_thing_group(name: &str, group: &str) -> Template {
    let mut template = Template::simple(name);
    template.body["Resources"]["thing"]["Properties"]["ThingGroups"] = serde_json::json!([group]);
    template
}

/// A multi-threaded runtime with every driver on, as the benches run in.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the runtime starts")
}

/// The SDK's AWS claim source for `emulator` (its endpoint, its CA trusted), signing with
/// `credentials`. Adjust (clock, retries) before `build`.
pub fn aws_source(
    emulator: &Emulator,
    credentials: Arc<CredentialsSequence>,
) -> AwsClaimSourceBuilder {
    AwsClaimSource::builder(emulator.region(), credentials)
        .endpoint_url(emulator.base_url())
        .http_config(emulator.http_config())
}

/// [`aws_source`] with one fresh set of temporary credentials from the emulator, built.
pub fn fresh_aws_source(emulator: &Emulator) -> AwsClaimSource {
    let credentials = Arc::new(CredentialsSequence::new(vec![emulator.issue_credentials()]));
    aws_source(emulator, credentials)
        .build()
        .expect("the AWS source builds")
}

/// Where a device reaches `emulator`'s MQTT broker: 127.0.0.1, its CA trusted, 10 s per answer.
pub fn mqtt_endpoint(emulator: &Emulator) -> CloudEndpoint {
    local_endpoint(emulator, emulator.mqtt_addr().port())
}

/// Where a device reaches `emulator`'s credentials provider, as [`mqtt_endpoint`] does its broker.
pub fn credentials_endpoint(emulator: &Emulator) -> CloudEndpoint {
    local_endpoint(emulator, emulator.credentials_addr().port())
}

fn local_endpoint(emulator: &Emulator, port: u16) -> CloudEndpoint {
    CloudEndpoint {
        host: "127.0.0.1".into(),
        port,
        ca_pem: emulator.ca_pem().to_owned(),
        timeout: Duration::from_secs(10),
    }
}

/// A claim for `template` from `emulator`, as the MQTT identity a device would use.
pub async fn claim_identity(emulator: &Emulator, template: &str) -> MqttIdentity {
    let claim = emulator
        .claim_via_backend(template)
        .await
        .expect("the emulator issues a claim");
    MqttIdentity::from_claim(&claim).expect("a claim is an MQTT identity")
}

/// The MQTT identity of a certificate (PEM, as the emulator issues it) and its key.
pub fn certificate_identity(certificate_pem: &str, key: &PrivateKeyDer<'_>) -> MqttIdentity {
    let certificate = CertificateDer::from_pem_slice(certificate_pem.as_bytes())
        .expect("the emulator's certificate is PEM");
    MqttIdentity {
        chain: vec![certificate.to_vec()],
        key: key.clone_key(),
    }
}

/// A secure session with the device behind `link`, as the SDK's provisioner opens one (fresh OS
/// randomness).
pub async fn establish_session(
    link: Arc<dyn DeviceLink>,
    credentials: &DeviceCredentials,
    policy: &SecurityPolicy,
) -> Result<DeviceSession, ProtocolError> {
    DeviceSession::establish(link, credentials, policy, &mut OsRng).await
}

/// [`establish_session`] with a simulated device's password and the default policy; panics if the
/// session cannot be opened.
pub async fn sec2_session(link: Arc<dyn DeviceLink>) -> DeviceSession {
    establish_session(
        link,
        &DeviceCredentials::password(DEVICE_PASSWORD),
        &SecurityPolicy::default(),
    )
    .await
    .expect("session")
}

/// A provisioning session through `provisioner` with the device on `link` (a simulated device's
/// password, no listener); panics if it cannot be opened.
pub async fn connect(provisioner: &Provisioner, link: Arc<dyn DeviceLink>) -> ProvisioningSession {
    provisioner
        .connect(
            link,
            DeviceCredentials::password(DEVICE_PASSWORD),
            &NoListener,
        )
        .await
        .expect("session")
}

/// Builds a simulated device and the simulated BLE link to it: the one place tests make either, so
/// that how a test reaches a device changes here alone.
///
/// The device is what its [`SimDeviceConfig`] says; the link is a phone at MTU 185 with a 2 ms
/// connection interval unless set otherwise.
#[derive(Clone, Debug)]
pub struct SimDeviceBuilder {
    config: SimDeviceConfig,
    link: BleLinkConfig,
}

impl Default for SimDeviceBuilder {
    fn default() -> Self {
        Self::from_config(SimDeviceConfig::default())
    }
}

impl SimDeviceBuilder {
    /// A device as `config` describes it.
    pub fn from_config(config: SimDeviceConfig) -> Self {
        Self {
            config,
            link: BleLinkConfig {
                mtu: 185,
                interval: Duration::from_millis(2),
                ..BleLinkConfig::default()
            },
        }
    }

    /// Device `index` of `world`: it provisions itself against the world's emulator
    /// ([`World::device_config`]).
    pub fn in_world(world: &World, index: u8) -> Self {
        Self::from_config(world.device_config(u16::from(index)))
    }

    /// A device with the cloud half, trusting `emulator` (the CSR path unless `cloud` says otherwise).
    pub fn trusting(emulator: &Emulator) -> Self {
        Self::from_config(SimDeviceConfig {
            cloud: Some(DeviceCloud::trusting(emulator.ca_pem())),
            ..SimDeviceConfig::default()
        })
    }

    /// Changes the device's configuration.
    pub fn configure(mut self, edit: impl FnOnce(&mut SimDeviceConfig)) -> Self {
        edit(&mut self.config);
        self
    }

    /// Changes the device's cloud half (nothing when it has none).
    pub fn cloud(self, edit: impl FnOnce(&mut DeviceCloud)) -> Self {
        self.configure(|config| {
            if let Some(cloud) = config.cloud.as_mut() {
                edit(cloud);
            }
        })
    }

    /// The device runs the C component (firmware/esp-idf/claimlink_device) as its claim extension
    /// and cloud half, built here if needed ([`c_firmware_host`]).
    pub fn c_firmware(self) -> Self {
        self.configure(|config| config.external_firmware = Some(c_firmware_host()))
    }

    /// How long the device takes to join a network.
    pub fn joins_in(self, connect_time: Duration) -> Self {
        self.configure(|config| config.world.connect_time = connect_time)
    }

    /// The link's ATT MTU.
    pub fn mtu(mut self, mtu: u16) -> Self {
        self.link.mtu = mtu;
        self
    }

    /// The link's time per ATT round trip.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.link.interval = interval;
        self
    }

    /// The link drops when this exchange (1-based) starts.
    pub fn disconnect_at_exchange(mut self, exchange: u64) -> Self {
        self.link.disconnect_at_exchange = Some(exchange);
        self
    }

    /// A new device and a link to it.
    pub fn build(&self) -> (Arc<SimDevice>, Arc<SimBleLink>) {
        let device = self.device();
        let link = self.link_to(&device);
        (device, link)
    }

    /// A new device alone, for a test that reaches it another way (HTTP, a fake GATT table).
    pub fn device(&self) -> Arc<SimDevice> {
        Arc::new(SimDevice::new(self.config.clone()))
    }

    /// Another link, with this builder's link settings, to `device` (a phone connecting again).
    pub fn link_to(&self, device: &Arc<SimDevice>) -> Arc<SimBleLink> {
        Arc::new(SimBleLink::connect(device.clone(), self.link.clone()))
    }
}

/// The C component's host program, built once per process; panics with the reason when it cannot be
/// built (a test that runs the C firmware cannot run without it).
pub fn c_firmware_host() -> std::path::PathBuf {
    match crate::device::c_firmware::c_firmware_host() {
        Ok(path) => path,
        Err(why) => panic!("the C firmware host program: {why}"),
    }
}

/// Devices as `config` says that join in 50 ms, behind links that take 1 ms a round trip: for the
/// protocol tests, which drive a device's endpoints directly.
pub fn quick_devices(config: SimDeviceConfig) -> SimDeviceBuilder {
    SimDeviceBuilder::from_config(config)
        .joins_in(Duration::from_millis(50))
        .interval(Duration::from_millis(1))
}

/// [`quick_devices`] with the default (Sec2) configuration.
pub fn quick_sec2_devices() -> SimDeviceBuilder {
    quick_devices(SimDeviceConfig::default())
}

/// Serves `device` over HTTP on 127.0.0.1, as a SoftAP device would, and returns the server (it
/// stops when dropped) and the SDK's HTTP link to it.
pub async fn http_link_to(device: &Arc<SimDevice>) -> (HttpDevice, Arc<HttpLink>) {
    let server = HttpDevice::serve(device.clone())
        .await
        .expect("the HTTP device serves");
    let link = HttpLink::new(&server.base_url(), Duration::from_secs(5))
        .expect("the simulator's URL is valid");
    (server, Arc::new(link))
}

/// The device's Wi-Fi state once it stopped joining (neither `Connecting` nor between attempts),
/// read every 10 ms; panics if it is still joining after 2 s (a simulated join takes milliseconds).
pub async fn wifi_settled(session: &DeviceSession) -> claimlink_core::WifiState {
    use claimlink_core::WifiState;
    for _ in 0..200 {
        match session.wifi_status().await.expect("status") {
            WifiState::Connecting | WifiState::AttemptFailed { .. } => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            other => return other,
        }
    }
    panic!("the device never finished joining");
}

/// Records every event a run reports, and lets a test wait for a state of them.
///
/// `E` is the core's [`ProvisioningEvent`] unless a test records another form of it (the FFI's, by
/// forwarding its listener to [`EventRecorder::record`]).
#[derive(Debug)]
pub struct EventRecorder<E = ProvisioningEvent> {
    events: watch::Sender<Vec<E>>,
}

impl<E> Default for EventRecorder<E> {
    fn default() -> Self {
        Self {
            events: watch::Sender::new(Vec::new()),
        }
    }
}

impl<E: Clone> EventRecorder<E> {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `event`.
    pub fn record(&self, event: E) {
        self.events.send_modify(|events| events.push(event));
    }

    /// The events so far, in order.
    pub fn events(&self) -> Vec<E> {
        self.events.borrow().clone()
    }

    /// What `read` makes of each event so far, in order.
    pub fn map<T>(&self, read: impl FnMut(&E) -> T) -> Vec<T> {
        self.events.borrow().iter().map(read).collect()
    }

    /// Resolves once `condition` holds for the events recorded (at once if it already does). It
    /// wakes on each new event: no fixed sleep; bound it with a timeout or a racing future.
    pub async fn until(&self, mut condition: impl FnMut(&[E]) -> bool) {
        let mut seen = self.events.subscribe();
        // The sender lives in `self`, which this future borrows: the channel cannot close while it
        // waits, so `wait_for` only ends when the condition holds.
        let _ = seen.wait_for(|events| condition(events)).await;
    }
}

impl EventRecorder<ProvisioningEvent> {
    /// The stages reached so far, in order.
    pub fn stages(&self) -> Vec<Stage> {
        self.map(|event| event.stage)
    }

    /// Resolves once `stage` has been reported.
    pub async fn reached(&self, stage: Stage) {
        self.until(|events| events.iter().any(|event| event.stage == stage))
            .await
    }
}

impl ProvisioningListener for EventRecorder<ProvisioningEvent> {
    fn on_event(&self, event: ProvisioningEvent) {
        self.record(event);
    }
}

/// Resolves once `condition` holds (looked at every millisecond): for a state outside the events,
/// such as what a simulated device holds.
pub async fn holds(condition: impl Fn() -> bool) {
    while !condition() {
        tokio::time::sleep(POLL).await;
    }
}

/// Whether `condition` holds within `within` (background work, such as a wipe after a dropped run).
pub async fn eventually(within: Duration, condition: impl Fn() -> bool) -> bool {
    tokio::time::timeout(within, holds(&condition))
        .await
        .is_ok()
        || condition()
}

/// Runs `run` until `reached` resolves, then drops it, as an app cancelling its coroutine or task
/// does; panics if the run ends first. Waiting for a state, not a fixed time, keeps a test
/// independent of how fast the machine is.
pub async fn drop_when<T: std::fmt::Debug>(
    run: impl Future<Output = T>,
    reached: impl Future<Output = ()>,
) {
    tokio::pin!(run);
    tokio::select! {
        ended = &mut run => panic!("the run ended before it could be dropped: {ended:?}"),
        () = reached => {}
    }
}
