//! The two objects an app holds: a [`Provisioner`] (one per app) and a [`ProvisioningSession`] (one
//! per device), plus the listener that reports progress and the [`TaskHandle`] of a run started in
//! the background.

use std::sync::{Arc, Mutex};

use super::claims::{AppClaimSource, AppThingDirectory, ClaimSource, ThingDirectory};
use super::link::{to_core, DeviceLink};
use super::progress::{ProvisionedDevice, ProvisioningEvent};
use super::providers::{Credentials, CredentialsProvider, TokenProvider, Tokens};
use super::records::{
    DeviceInfo, DeviceSecret, ProvisionOptions, ProvisionerSettings, WifiNetwork, WifiSettings,
};
use super::runtime::{on_runtime, runtime, AbortOnDrop};
use super::ProvisioningFailure;
use claimlink_core as core;
use claimlink_core::{AwsClaimSource, BackendClaimSource};

/// Receives a run's progress, stage by stage, in order, on an SDK thread. Keep it quick (hand the
/// event to the UI thread); it must not throw.
#[uniffi::export(foreign)]
pub trait ProvisioningListener: Send + Sync {
    /// A stage was reached.
    fn on_event(&self, event: ProvisioningEvent);
}

/// Receives the outcome of a run started with [`ProvisioningSession::start_provision`]: exactly one
/// call (`on_failure(Cancelled)` when the app cancelled the run through its handle).
#[uniffi::export(foreign)]
pub trait ProvisioningCompletion: Send + Sync {
    /// The device is online, confirmed by the cloud.
    fn on_success(&self, device: ProvisionedDevice);
    /// The run failed.
    fn on_failure(&self, failure: ProvisioningFailure);
}

/// Forwards core events to the app's listener.
struct ToAppListener(Option<Arc<dyn ProvisioningListener>>);

impl core::ProvisioningListener for ToAppListener {
    fn on_event(&self, event: core::ProvisioningEvent) {
        if let Some(listener) = &self.0 {
            listener.on_event(event.into());
        }
    }
}

/// Runs provisioning sessions. Create one per app (it is cheap to share between devices).
#[derive(uniffi::Object)]
pub struct Provisioner {
    inner: core::Provisioner,
}

impl std::fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[uniffi::export]
impl Provisioner {
    /// Claims from the app maker's backend (`POST {backend_url}/v1/provisioning-claims`, see
    /// docs/backend-api.md), authorised by the installer's bearer token from `tokens`.
    #[uniffi::constructor]
    pub fn with_backend(
        settings: ProvisionerSettings,
        backend_url: String,
        tokens: Arc<dyn TokenProvider>,
    ) -> Result<Arc<Self>, ProvisioningFailure> {
        let config = settings.core()?;
        let source = BackendClaimSource::builder(backend_url, Arc::new(Tokens(tokens)))
            .http_config(settings.http())
            .build()?;
        Ok(Self::wrap(core::Provisioner::new(Arc::new(source), config)))
    }

    /// Claims straight from AWS IoT (`CreateProvisioningClaim`, SigV4) in `region`, with the
    /// installer's temporary credentials from `credentials`. `endpoint_url` overrides AWS's control
    /// plane URL (tests, VPC endpoints).
    #[uniffi::constructor]
    pub fn with_aws(
        settings: ProvisionerSettings,
        region: String,
        endpoint_url: Option<String>,
        credentials: Arc<dyn CredentialsProvider>,
    ) -> Result<Arc<Self>, ProvisioningFailure> {
        let config = settings.core()?;
        let mut builder = AwsClaimSource::builder(region, Arc::new(Credentials(credentials)))
            .http_config(settings.http());
        if let Some(url) = endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(Self::wrap(core::Provisioner::new(
            Arc::new(builder.build()?),
            config,
        )))
    }

    /// Claims from the app's own `claims`, with `things` saying what the cloud knows about a thing
    /// (for the cloud's confirmation of each run). One object implementing both interfaces may be
    /// passed as both. For apps that obtain claims neither from a backend speaking
    /// docs/backend-api.md nor from AWS IoT directly.
    #[uniffi::constructor]
    pub fn with_claim_source(
        settings: ProvisionerSettings,
        claims: Arc<dyn ClaimSource>,
        things: Arc<dyn ThingDirectory>,
    ) -> Result<Arc<Self>, ProvisioningFailure> {
        let config = settings.core()?;
        Ok(Self::wrap(core::Provisioner::with_thing_directory(
            Arc::new(AppClaimSource(claims)),
            Arc::new(AppThingDirectory(things)),
            config,
        )))
    }

    /// SoftAP: fetches a claim for a run with `options` **before** the phone joins the device's access
    /// point (where it has no route to the backend), reads what the expected thing has (the cloud's
    /// confirmation needs it), and returns the time the claim has left; the next `provision` on any session of
    /// this provisioner hands it over at once, or renews it if joining the AP took so long that it no
    /// longer has the safety margin. It must have the safety margin plus `ap_join_budget_secs`
    /// (default 30) for the join. Over BLE
    /// there is nothing to call: the claim is requested just in time. Used once.
    pub async fn prepare_claim(
        &self,
        options: ProvisionOptions,
    ) -> Result<std::time::Duration, ProvisioningFailure> {
        let provisioner = self.inner.clone();
        on_runtime(async move {
            let options = options.core()?;
            Ok(provisioner.prepare_claim(&options).await?)
        })
        .await
    }

    /// Connects to the device on `link` and opens a secure session with `secret` (from its QR code or
    /// label). Emits `Connecting` and `Securing` to `listener`.
    #[uniffi::method(default(listener = None))]
    pub async fn connect(
        &self,
        link: Arc<dyn DeviceLink>,
        secret: Arc<DeviceSecret>,
        listener: Option<Arc<dyn ProvisioningListener>>,
    ) -> Result<Arc<ProvisioningSession>, ProvisioningFailure> {
        let provisioner = self.inner.clone();
        on_runtime(async move {
            let session = provisioner
                .connect(
                    to_core(link),
                    secret.inner.clone(),
                    &ToAppListener(listener),
                )
                .await?;
            Ok(Arc::new(ProvisioningSession {
                inner: Arc::new(session),
            }))
        })
        .await
    }
}

impl Provisioner {
    fn wrap(inner: core::Provisioner) -> Arc<Self> {
        Arc::new(Provisioner { inner })
    }
}

/// A secure session with one device. Drop it (or call `disconnect`) when done; a claim left on the device
/// by a failed run is wiped then.
#[derive(uniffi::Object)]
pub struct ProvisioningSession {
    pub(crate) inner: Arc<core::ProvisioningSession>,
}

impl std::fmt::Debug for ProvisioningSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[uniffi::export]
impl ProvisioningSession {
    /// What the device said about itself.
    pub async fn device_info(&self) -> Result<DeviceInfo, ProvisioningFailure> {
        let inner = self.inner.clone();
        on_runtime(async move {
            let caps = inner.capabilities().await;
            Ok(DeviceInfo::new(caps, inner.link_description()))
        })
        .await
    }

    /// Networks the device can see, strongest first.
    pub async fn scan_wifi(&self) -> Result<Vec<WifiNetwork>, ProvisioningFailure> {
        let inner = self.inner.clone();
        on_runtime(async move {
            Ok(inner
                .scan_wifi()
                .await?
                .into_iter()
                .map(WifiNetwork::from)
                .collect())
        })
        .await
    }

    /// Brings the device onto AWS IoT: requests a claim just in time, hands it and `wifi` over, and
    /// watches the device until the cloud confirms it. Progress goes to `listener`.
    ///
    /// On `WifiPasswordRejected` or `WifiNetworkNotFound` the session stays usable: call again with
    /// corrected settings. Cancelling the calling coroutine / task (or calling [`Self::cancel`]) stops
    /// the run and wipes the claim from the device.
    #[uniffi::method(default(listener = None, options))]
    pub async fn provision(
        &self,
        wifi: Arc<WifiSettings>,
        options: ProvisionOptions,
        listener: Option<Arc<dyn ProvisioningListener>>,
    ) -> Result<ProvisionedDevice, ProvisioningFailure> {
        let inner = self.inner.clone();
        on_runtime(run(inner, wifi, options, listener)).await
    }

    /// Starts [`Self::provision`] in the background and returns at once: progress goes to `listener`,
    /// the outcome to `completion`. Cancel with the handle or with [`Self::cancel`]; dropping the
    /// handle does not cancel (the run goes on and `completion` hears how it ended).
    pub fn start_provision(
        &self,
        wifi: Arc<WifiSettings>,
        options: ProvisionOptions,
        listener: Option<Arc<dyn ProvisioningListener>>,
        completion: Arc<dyn ProvisioningCompletion>,
    ) -> Result<Arc<TaskHandle>, ProvisioningFailure> {
        let inner = self.inner.clone();
        let finished = Arc::new(Mutex::new(Some(completion)));
        let report = finished.clone();
        let task = runtime()?.spawn(async move {
            let outcome = run(inner, wifi, options, listener).await;
            let completion = report.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(completion) = completion {
                match outcome {
                    Ok(device) => completion.on_success(device),
                    Err(failure) => completion.on_failure(failure),
                }
            }
        });
        Ok(Arc::new(TaskHandle {
            task: Mutex::new(Some(task)),
            completion: finished,
        }))
    }

    /// Cancels the `provision` in progress (it fails with `Cancelled` after wiping the claim from the
    /// device). With no run in progress it does nothing: it never cancels a later run.
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Wipes any claim a failed run left on the device, then closes the link. (Not `close`: Kotlin's
    /// `AutoCloseable.close()` on every object frees the Rust side.)
    pub async fn disconnect(&self) -> Result<(), ProvisioningFailure> {
        let inner = self.inner.clone();
        on_runtime(async move {
            inner.close().await;
            Ok(())
        })
        .await
    }
}

async fn run(
    inner: Arc<core::ProvisioningSession>,
    wifi: Arc<WifiSettings>,
    options: ProvisionOptions,
    listener: Option<Arc<dyn ProvisioningListener>>,
) -> Result<ProvisionedDevice, ProvisioningFailure> {
    let options = options.core()?;
    Ok(inner
        .provision(&wifi.inner, &options, &ToAppListener(listener))
        .await?
        .into())
}

/// A run in the background. `cancel()` stops it (the claim is wiped from the device, and the
/// completion hears `Cancelled`). Dropping the handle, or the garbage collector freeing it, does **not**
/// stop the run: the run goes on and the completion hears its outcome, so an app that keeps only the
/// completion is not cancelled behind its back. Keep the handle to be able to cancel (or use the
/// session's `cancel()`).
#[derive(uniffi::Object)]
pub struct TaskHandle {
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    completion: Arc<Mutex<Option<Arc<dyn ProvisioningCompletion>>>>,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[uniffi::export]
impl TaskHandle {
    /// Stops the run. Idempotent.
    pub fn cancel(&self) {
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(task) = task else { return };
        let was_running = !task.is_finished();
        // Enter the runtime so that the run's clean-up (wiping the claim) can be spawned from here,
        // whatever thread the app calls from.
        let _guard = runtime().ok().map(|r| r.enter());
        drop(AbortOnDrop(task));
        let completion = self
            .completion
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let (true, Some(completion)) = (was_running, completion) {
            completion.on_failure(ProvisioningFailure::Cancelled);
        }
    }

    /// Whether the run has ended (finished, failed or cancelled).
    pub fn is_finished(&self) -> bool {
        self.task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_none_or(|t| t.is_finished())
    }
}

/// Parses a provisioning QR code (ESP-IDF's JSON: `{"ver":"v1","name":…,"pop":…,"transport":…,
/// "security":…,"password":…}`). Errors never quote the secret.
#[uniffi::export]
pub fn parse_provisioning_qr(
    payload: String,
) -> Result<super::records::ProvisioningQrCode, ProvisioningFailure> {
    use super::records::{DeviceTransport, ProvisioningQrCode};
    let qr = claimlink_core::ProvisioningQr::parse(&payload).map_err(|e| {
        ProvisioningFailure::InvalidInput {
            detail: e.to_string(),
        }
    })?;
    Ok(ProvisioningQrCode {
        name: qr.name,
        transport: match qr.transport {
            claimlink_core::QrTransport::Ble => DeviceTransport::Ble,
            claimlink_core::QrTransport::SoftAp => DeviceTransport::SoftAp,
        },
        security: qr.security.into(),
        secret: Arc::new(DeviceSecret {
            inner: qr.credentials,
        }),
    })
}
