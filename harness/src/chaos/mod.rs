//! The seeded fault campaign: every run draws a fault from the seed, provisions one simulated device
//! through the real SDK against the emulator, and checks the invariants an installer relies on —
//! no panic; the run ends by its claim's deadline + 5 s and by the SDK's overall timeout + 5 s; the
//! error is the specific one the fault causes; no false success (the success names the expected
//! thing, and the registry shows it with the reported certificate ACTIVE, one that was not ACTIVE on
//! it before the run); a failure leaves no ACTIVE certificate on the thing; the device holds no claim
//! after a failure; an impostor receives nothing but the `proto-ver` request and no claim is issued
//! for it. Hostile-device faults: an impostor offering a weaker scheme, a device lying about being
//! done, oversize and late answers under the SDK's production BLE link.
//! Any failing run is reproducible with the same seed.
//!
//! * `fault` — the faults and how a run draws one from the seed;
//! * `inject` — how a fault is put into a run: a link that damages an answer, a GATT table whose
//!   answer is oversize or late, a link that records what an impostor received, listeners that
//!   reboot the device or take the broker down at a stage, a hook that never answers;
//! * `run` — one run: the world set up for its fault, the SDK's provisioning, the invariants checked;
//! * `report` — what a run and a campaign record, and the outcomes each fault may lead to.

mod fault;
mod inject;
mod report;
mod run;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub use fault::{DoneLie, Fault, FrameFault};
pub use report::{Report, RunRecord};

use crate::emulator::{PreProvisioningHook, Template};
use crate::world::{World, WorldOptions};
use inject::silent_hook;
use run::{one_run, provision_other};

/// The faults of the first `runs` runs drawn from `seed` (what [`campaign`] runs).
pub fn drawn(runs: usize, seed: u64) -> Vec<Fault> {
    (0..runs)
        .map(|index| {
            let mut rng = ChaCha20Rng::seed_from_u64(
                seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            Fault::draw(&mut rng)
        })
        .collect()
}

/// Runs `runs` runs drawn from `seed`.
pub async fn campaign(runs: usize, seed: u64) -> Result<Report, String> {
    campaign_of(drawn(runs, seed), seed).await
}

/// Runs the given faults in order, run `i` with `faults[i]`, in one world (`seed` seeds the devices
/// and names the things): a fault (or a failing run of a drawn campaign) made into a test.
pub async fn campaign_of(faults: Vec<Fault>, seed: u64) -> Result<Report, String> {
    let world = World::start(WorldOptions {
        poll_interval: Duration::from_millis(50),
        ..WorldOptions::default()
    })
    .await?;
    let e = &world.emulator;
    e.put_template(Template {
        name: "chaos-reject".into(),
        body: serde_json::json!({
            "Parameters": {"SerialNumber": {"Type": "String"}},
            "Resources": {
                "thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "SerialNumber"}, "ThingGroups": ["never-created"]}},
                "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
            }
        }),
        enabled: true,
    });
    e.put_template(Template::simple("chaos-hook"));
    e.put_template(Template::simple("chaos-hook-silent"));
    let (silent_url, silent_task) = silent_hook().await?;
    e.set_pre_provisioning_hook(
        "chaos-hook-silent",
        Some(PreProvisioningHook::Url(silent_url)),
    );
    e.set_hook_timeout(Duration::from_secs(1));
    e.set_pre_provisioning_hook(
        "chaos-hook",
        Some(PreProvisioningHook::Rule(Arc::new(|_| {
            Ok(serde_json::json!({"allowProvisioning": false}))
        }))),
    );
    // Every run fetches a claim or two: their keys are generated ahead, so that issuing one costs the
    // same on an idle machine and a busy one.
    e.reserve_keys(faults.len() + 1);
    let started = Instant::now();
    // The thing a lying device names: one honest provisioning per campaign.
    let other = provision_other(&world, seed).await?;
    let mut records = Vec::new();
    for (index, fault) in faults.into_iter().enumerate() {
        let record = one_run(&world, index, seed, fault, &other).await;
        records.push(record);
    }
    silent_task.abort();
    Ok(Report {
        seed,
        runs: records,
        took: started.elapsed(),
    })
}
