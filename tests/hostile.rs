//! Hostile devices (issue 21): an impostor that offers a weaker security scheme than the one the
//! credentials are for gets nothing, and a device that lies about being done is not a success.

use std::sync::Arc;

use claimlink_core::{DeviceCredentials, ProvisioningQr};
use claimlink_core::{NoListener, ProvisionError, ProvisionOptions, Provisioner, ThingName};
use claimlink_core::{ProtocolError, SecurityPolicy, SecurityScheme};
use claimlink_harness::device::security::DeviceSecurity;
use claimlink_harness::device::SimDevice;
use claimlink_harness::testing::{
    self, lab_wifi, RecordingLink, SimDeviceBuilder, DEVICE_PASSWORD,
};
use claimlink_harness::world::World;

/// The world's provisioner with `policy`.
fn provisioner_with(world: &World, policy: SecurityPolicy) -> Provisioner {
    let mut config = world.provisioner.config().clone();
    config.security = policy;
    Provisioner::new(world.claims.clone(), config)
}

fn options(serial: &str) -> ProvisionOptions {
    ProvisionOptions {
        expected_thing_name: Some(ThingName::new(serial).expect("name")),
        ..testing::serial_options(serial)
    }
}

/// An impostor: a Security 1 device. It stands for one that cracked the password from a Sec1
/// command (a 4-digit password falls offline in well under a second), so its PoP is the password:
/// were the session opened, it would complete and the impostor would get the Wi-Fi passphrase and
/// the claim.
fn impostor(world: &World, index: u8) -> (Arc<SimDevice>, Arc<RecordingLink>) {
    let (device, link) = SimDeviceBuilder::in_world(world, index)
        .configure(|c| {
            c.security = DeviceSecurity::Sec1 {
                pop: Some(DEVICE_PASSWORD.into()),
            }
        })
        .build();
    (device, RecordingLink::new(link))
}

/// The app expects Security 2 (a password, set explicitly or from the QR code); the device offers
/// Security 1. With or without `allow_sec1` in the provisioner's policy, nothing but `proto-ver` is
/// sent: no Sec1 command (the password is never used as a PoP), no Wi-Fi passphrase, no claim.
#[tokio::test]
async fn an_impostor_offering_sec1_gets_nothing_from_an_app_expecting_sec2() {
    let world = testing::quick_world().await;
    let from_qr = || {
        ProvisioningQr::parse(&format!(
            r#"{{"ver":"v1","name":"PROV_0040","transport":"ble","security":2,"password":"{DEVICE_PASSWORD}"}}"#
        ))
        .expect("parses")
        .credentials
    };
    let policies = [
        SecurityPolicy::default(),
        SecurityPolicy {
            allow_sec1: true,
            ..SecurityPolicy::default()
        },
        SecurityPolicy {
            allow_sec1: true,
            danger_allow_sec0: true,
            danger_allow_sec2_patch0: true,
        },
    ];
    let mut index = 40;
    for policy in policies {
        for credentials in [DeviceCredentials::password(DEVICE_PASSWORD), from_qr()] {
            index += 1;
            let (device, link) = impostor(&world, index);
            let provisioner = provisioner_with(&world, policy.clone());
            let connected = provisioner
                .connect(link.clone(), credentials, &NoListener)
                .await;
            if let Ok(session) = &connected {
                // Show what the impostor would get if the session were opened.
                let _ = session
                    .provision(&lab_wifi(), &options("SN-IMPOSTOR"), &NoListener)
                    .await;
            }
            let err = connected.expect_err("an impostor is refused");
            assert!(
                matches!(
                    &err,
                    ProvisionError::Protocol(ProtocolError::SecurityRefused { .. })
                        | ProvisionError::Protocol(ProtocolError::UnexpectedSecurity {
                            expected: SecurityScheme::Sec2,
                            offered: SecurityScheme::Sec1,
                        })
                ),
                "{policy:?}: {err:?}"
            );
            assert_eq!(link.sent_to(), ["proto-ver"], "{policy:?}");
            assert!(device.received_claim().is_none(), "{policy:?}");
            assert!(!device.holds_claim(), "{policy:?}");
        }
    }
    assert!(
        world.emulator.issued_claims().is_empty(),
        "no claim was even requested"
    );
    assert!(world.emulator.thing("SN-IMPOSTOR").is_none());
}

/// With `allow_sec1`, the scheme the credentials are for is the one used, and the policy is the
/// floor: a PoP opens a Security 1 device, and it is refused by a Security 2 device and by a policy
/// without `allow_sec1`.
#[tokio::test]
async fn sec1_is_chosen_per_connection_by_the_credentials() {
    let sec1_policy = SecurityPolicy {
        allow_sec1: true,
        ..SecurityPolicy::default()
    };
    let sec1 = SimDeviceBuilder::default().configure(|c| {
        c.security = DeviceSecurity::Sec1 {
            pop: Some("pop-123".into()),
        }
    });
    let (_device, link) = sec1.build();
    let session =
        testing::establish_session(link, &DeviceCredentials::pop("pop-123"), &sec1_policy)
            .await
            .expect("a PoP opens a Security 1 device");
    assert_eq!(session.capabilities().security, SecurityScheme::Sec1);

    let qr = ProvisioningQr::parse(r#"{"ver":"v1","name":"P","transport":"ble","security":1}"#)
        .expect("parses");
    let (_device, link) = SimDeviceBuilder::default()
        .configure(|c| c.security = DeviceSecurity::Sec1 { pop: None })
        .build();
    testing::establish_session(link, &qr.credentials, &sec1_policy)
        .await
        .expect("a QR code for Security 1 without PoP opens such a device");

    let (device, link) = SimDeviceBuilder::default().build();
    let link = RecordingLink::new(link);
    let err = testing::establish_session(
        link.clone(),
        &DeviceCredentials::pop("pop-123"),
        &sec1_policy,
    )
    .await
    .expect_err("a PoP is not a Security 2 password");
    assert!(
        matches!(
            err,
            ProtocolError::UnexpectedSecurity {
                expected: SecurityScheme::Sec1,
                offered: SecurityScheme::Sec2
            }
        ),
        "{err:?}"
    );
    assert_eq!(link.sent_to(), ["proto-ver"]);
    assert_eq!(device.exchanges(), 1);
}

/// Provisions `serial` with a device that tells the truth, so that a thing with an ACTIVE certificate
/// exists; returns that certificate id.
async fn provisioned_before(world: &World, index: u8, serial: &str) -> String {
    let (_device, link) = SimDeviceBuilder::in_world(world, index).build();
    let session = testing::connect(&world.provisioner, link).await;
    let done = session
        .provision(&lab_wifi(), &options(serial), &NoListener)
        .await
        .expect("provisioned");
    done.certificate_id.expect("certificate id")
}

/// A provisioner that gives up on the confirmation quickly.
fn quick_to_confirm(world: &World) -> Provisioner {
    let mut config = world.provisioner.config().clone();
    config.cloud_timeout = std::time::Duration::from_secs(1);
    Provisioner::new(world.claims.clone(), config)
}

/// A device says Done as another thing that exists, naming that thing's ACTIVE certificate: the
/// expected thing does not exist, so this is no success, and the other thing is not reported.
#[tokio::test]
async fn a_device_done_as_another_existing_thing_is_not_a_success() {
    let world = testing::quick_world().await;
    let other = provisioned_before(&world, 50, "SN-OTHER").await;
    let (device, link) = SimDeviceBuilder::in_world(&world, 51)
        .configure(|c| {
            c.cloud = None;
            c.danger_lie_done_as("SN-OTHER", &other);
        })
        .build();
    let session = testing::connect(&quick_to_confirm(&world), link).await;
    let result = session
        .provision(&lab_wifi(), &options("SN-EXPECTED"), &NoListener)
        .await;
    let err = result.expect_err("the device is not the thing it names");
    assert!(
        matches!(&err, ProvisionError::NotConfirmed { .. }),
        "{err:?}"
    );
    assert!(world.emulator.thing("SN-EXPECTED").is_none());
    assert!(!device.holds_claim(), "a failed run wipes the claim");
}

/// A device says Done as the expected thing, naming a certificate the thing had ACTIVE before the
/// hand-over (an old registration): an old certificate never counts, whoever names it.
#[tokio::test]
async fn a_device_done_with_the_expected_things_old_certificate_is_not_a_success() {
    let world = testing::quick_world().await;
    let old = provisioned_before(&world, 52, "SN-REUSED").await;
    let (_device, link) = SimDeviceBuilder::in_world(&world, 53)
        .configure(|c| {
            c.cloud = None;
            c.danger_lie_done_as("SN-REUSED", &old);
        })
        .build();
    let session = testing::connect(&quick_to_confirm(&world), link).await;
    let err = session
        .provision(&lab_wifi(), &options("SN-REUSED"), &NoListener)
        .await
        .expect_err("the old certificate is not this device's");
    assert!(
        matches!(&err, ProvisionError::NotConfirmed { thing_name } if thing_name == "SN-REUSED"),
        "{err:?}"
    );
    let thing = world.emulator.thing("SN-REUSED").expect("thing");
    assert_eq!(thing.principals, vec![old], "nothing new was registered");
}

/// The honest counterpart: a thing that existed before is provisioned again by a device that really
/// registers, and the new certificate (not the old one) confirms it.
#[tokio::test]
async fn an_honest_device_reprovisioning_an_existing_thing_is_confirmed_with_its_new_certificate() {
    let world = testing::quick_world().await;
    let old = provisioned_before(&world, 54, "SN-AGAIN2").await;
    let (_device, link) = SimDeviceBuilder::in_world(&world, 55).build();
    let session = testing::connect(&world.provisioner, link).await;
    let done = session
        .provision(&lab_wifi(), &options("SN-AGAIN2"), &NoListener)
        .await
        .expect("provisioned again");
    assert_eq!(done.thing_name, "SN-AGAIN2");
    assert_ne!(done.certificate_id.as_deref(), Some(old.as_str()));
}
