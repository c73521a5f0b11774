//! `claimlink-harness demo --backend reference`, through the harness's library: the demo's devices
//! provisioned with claims from this crate's binary (run as a child process, as the CLI runs it).

use std::sync::Arc;
use std::time::Duration;

use claimlink_harness::demo::{self, DemoOptions, Progress};

/// Prints nothing.
struct Quiet;

impl Progress for Quiet {
    fn event(&self, _device: &str, _event: &claimlink_core::ProvisioningEvent) {}
    fn finished(&self, _device: &str, _outcome: &Result<String, String>) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_provisions_every_device_through_the_reference_backend() {
    let options = DemoOptions {
        devices: 3,
        interval: Duration::from_millis(5),
        reference_backend: Some(env!("CARGO_BIN_EXE_claimlink-backend").into()),
        ..DemoOptions::default()
    };
    let reports = demo::run(&options, Arc::new(Quiet))
        .await
        .expect("the demo runs");
    let mut things: Vec<String> = reports
        .iter()
        .map(|r| r.outcome.clone().expect("provisioned"))
        .collect();
    things.sort();
    assert_eq!(
        things,
        [
            "claimlink-demo-000",
            "claimlink-demo-001",
            "claimlink-demo-002"
        ]
    );
}
