//! Protocol benchmarks (run with `cargo bench -p claimlink --bench protocol`):
//!
//! * the Sec2 handshake's CPU time (both roles: the phone's SRP client and the simulated device);
//! * for a whole hand-over — proto-ver, Sec2 session, Wi-Fi scan, SetConfig, claim transfer,
//!   ApplyConfig — the protocol exchanges, ATT round trips, bytes, and the air time they model at a
//!   30 ms connection interval, for MTU 23, 185 and 512.

use std::time::{Duration, Instant};

use claimlink_core::internal::claim_bundle;
use claimlink_core::{DeviceCredentials, SecurityPolicy};
use claimlink_harness::testing::{self, establish_session, SimDeviceBuilder, DEVICE_PASSWORD};

const INTERVAL: Duration = Duration::from_millis(30);

/// Default devices behind a link at `mtu` that costs no time (the air time is modelled, not slept).
fn instant_link(mtu: u16) -> SimDeviceBuilder {
    SimDeviceBuilder::default()
        .mtu(mtu)
        .interval(Duration::ZERO)
}

fn main() {
    let runtime = testing::multi_thread_runtime();
    runtime.block_on(async {
        let creds = DeviceCredentials::password(DEVICE_PASSWORD);
        let policy = SecurityPolicy::default();

        // Sec2 handshake CPU time.
        let devices = instant_link(512);
        let device = devices.device();
        let mut samples = Vec::new();
        for _ in 0..20 {
            let link = devices.link_to(&device);
            let t = Instant::now();
            establish_session(link, &creds, &policy).await.expect("session");
            samples.push(t.elapsed());
        }
        samples.sort();
        println!(
            "Sec2 handshake (SRP-6a 3072, both roles, CPU)  n=20  median {:>8.2?}  p95 {:>8.2?}",
            samples[10], samples[18]
        );

        let emulator = testing::emulator().await;
        let claim = emulator.claim_via_backend(testing::TEMPLATE).await.expect("claim");
        let wifi = testing::lab_wifi();
        let params = testing::serial_parameters("SN-0001");

        println!("hand-over: proto-ver + Sec2 session + scan + SetConfig + claim + ApplyConfig, {INTERVAL:?} interval");
        println!("{:>5} {:>10} {:>12} {:>9} {:>9} {:>12} {:>14}", "MTU", "exchanges", "round trips", "written", "read", "modelled", "claim bundle");
        for mtu in [23u16, 185, 512] {
            let (_device, link) = instant_link(mtu).build();
            let session = establish_session(link.clone(), &creds, &policy).await.expect("session");
            session.scan_wifi().await.expect("scan");
            session.set_wifi_config(&wifi).await.expect("config");
            let transfer = session.send_claim(&claim_bundle(&claim, "a1b2c3-ats.iot.us-east-1.amazonaws.com", &params)).await.expect("claim");
            session.apply_wifi_config().await.expect("apply");
            let s = link.stats();
            let modelled = INTERVAL * u32::try_from(s.round_trips).unwrap_or(u32::MAX);
            println!(
                "{mtu:>5} {:>10} {:>12} {:>9} {:>9} {:>12.2?} {:>8} B / {}",
                s.exchanges, s.round_trips, s.bytes_written, s.bytes_read, modelled, transfer.bytes, transfer.exchanges
            );
        }
    });
}
