//! The SDK's one tokio runtime, and how foreign calls run on it.
//!
//! Every async export spawns its work here and awaits the [`JoinHandle`]: the foreign side
//! (Kotlin coroutines, Swift tasks, Python asyncio) only polls that handle, so the SDK's I/O never
//! depends on the caller's executor. When the foreign side cancels (a cancelled coroutine or `Task`
//! drops the Rust future), the handle's drop aborts the spawned work, which runs the core's own
//! clean-up (the claim is wiped from the device).
//!
//! Panics: the release profile keeps `panic = "unwind"`, deliberately. A panic inside spawned work
//! is caught by tokio and reported as [`ProvisioningFailure::Internal`]; a panic in a synchronous
//! export is caught by uniffi and raised as its internal-error exception. Either way the installer's
//! app keeps running. Panic messages are not forwarded (they could quote data); the panic is logged.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::ProvisioningFailure;

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The runtime, built on first use: two worker threads named `claimlink`.
pub(crate) fn runtime() -> Result<&'static Runtime, ProvisioningFailure> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("claimlink")
                .enable_all()
                .build()
                .map_err(|e| format!("could not start the SDK's runtime: {e}"))
        })
        .as_ref()
        .map_err(|message| ProvisioningFailure::Internal {
            detail: message.clone(),
        })
}

/// A spawned task that is aborted when this is dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` on the SDK's runtime; dropping the returned future aborts it.
pub(crate) async fn on_runtime<T, F>(work: F) -> Result<T, ProvisioningFailure>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ProvisioningFailure>> + Send + 'static,
{
    let mut task = AbortOnDrop(runtime()?.spawn(work));
    match (&mut task.0).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            tracing::error!("a claimlink task panicked");
            Err(ProvisioningFailure::Internal {
                detail: "a claimlink task panicked; see the SDK's log".into(),
            })
        }
        Err(_) => Err(ProvisioningFailure::Cancelled),
    }
}
