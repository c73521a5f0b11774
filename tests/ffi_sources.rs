//! What an app brings to the FFI besides its BLE stack, end to end: its own claim source and thing
//! directory (foreign traits), and its AWS credentials behind the `withAws` preset.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claimlink::{
    self, CertificateStatus, ClaimRequest, ClaimSource, ProviderFailure, ProvisionOptions,
    Provisioner, ProvisioningClaim, ProvisioningFailure, ThingCertificate, ThingDescription,
    ThingDirectory,
};
use claimlink_core::{BackendClaimSource, ClaimSource as _, ThingDirectory as _};
use claimlink_harness::testing::SimDeviceBuilder;
use claimlink_harness::world::World;
use common::{options, secret, wifi, world, world_settings, AppBle};

/// The app's Cognito credentials, as a Kotlin or Swift `CredentialsProvider`.
struct Cognito {
    id: String,
    secret: String,
    token: String,
    calls: Mutex<Vec<bool>>,
}

#[async_trait]
impl claimlink::CredentialsProvider for Cognito {
    async fn credentials(
        &self,
        refresh: bool,
    ) -> Result<Arc<claimlink::AwsCredentials>, ProviderFailure> {
        self.calls.lock().expect("lock").push(refresh);
        Ok(claimlink::AwsCredentials::new(
            self.id.clone(),
            self.secret.clone(),
            Some(self.token.clone()),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_direct_claims_through_the_apps_credentials_provider() {
    let world = world().await;
    let e = &world.emulator;
    let issued = e.issue_credentials();
    let settings = world_settings(&world);
    let provisioner = |secret: &str| {
        let cognito = Arc::new(Cognito {
            id: issued.access_key_id.clone(),
            secret: secret.to_owned(),
            token: issued.session_token.clone(),
            calls: Mutex::new(Vec::new()),
        });
        let p = Provisioner::with_aws(
            settings.clone(),
            e.region().to_owned(),
            Some(e.base_url()),
            cognito.clone(),
        )
        .expect("provisioner");
        (p, cognito)
    };

    // A wrong secret key: AWS refuses the signature, and the app is told to sign in again.
    let (wrong, _) = provisioner("not-the-secret-key");
    let (_device, gatt) = SimDeviceBuilder::in_world(&world, 12).build();
    let session = wrong
        .connect(AppBle::new(gatt), secret(), None)
        .await
        .expect("connect");
    let failure = session
        .provision(wifi(), options("FFI-AWS-12"), None)
        .await
        .expect_err("wrong secret");
    assert!(
        matches!(failure, ProvisioningFailure::SignInRequired { .. }),
        "{failure:?}"
    );
    assert!(!failure.to_string().contains("not-the-secret-key"));

    let (right, cognito) = provisioner(&issued.secret_access_key);
    let (_device, gatt) = SimDeviceBuilder::in_world(&world, 13).build();
    let session = right
        .connect(AppBle::new(gatt), secret(), None)
        .await
        .expect("connect");
    let done = session
        .provision(wifi(), options("FFI-AWS-13"), None)
        .await
        .expect("provision");
    assert_eq!(done.thing_name, "FFI-AWS-13");
    assert_eq!(cognito.calls.lock().expect("lock").first(), Some(&false));
}

/// An app's own claim source and thing directory in one object, as Kotlin or Swift would implement
/// them: it gets claims and reads things through the world's backend (here the core's own source)
/// and hands them over as plain strings and records.
#[derive(Debug)]
struct AppCloud {
    backend: Arc<BackendClaimSource>,
    requests: Mutex<Vec<ClaimRequest>>,
    described: Mutex<Vec<String>>,
    /// Instead of a claim, throw this.
    refuse: Option<ProviderFailure>,
    /// Instead of the issued claim, hand over this one (certificate, key, expiry).
    replace: Option<(String, String, std::time::SystemTime)>,
}

impl AppCloud {
    fn new(world: &World) -> Self {
        AppCloud {
            backend: world.claims.clone(),
            requests: Mutex::new(Vec::new()),
            described: Mutex::new(Vec::new()),
            refuse: None,
            replace: None,
        }
    }
}

fn app_failure(e: impl std::fmt::Display) -> ProviderFailure {
    ProviderFailure::Failed {
        detail: e.to_string(),
    }
}

#[async_trait]
impl ClaimSource for AppCloud {
    async fn request_claim(
        &self,
        request: ClaimRequest,
    ) -> Result<Arc<ProvisioningClaim>, ProviderFailure> {
        self.requests.lock().expect("lock").push(request.clone());
        if let Some(failure) = &self.refuse {
            return Err(failure.clone());
        }
        if let Some((pem, key, expiry)) = &self.replace {
            return Ok(ProvisioningClaim::new(pem.clone(), key.clone(), *expiry));
        }
        let template = claimlink_core::TemplateName::new(request.template).map_err(app_failure)?;
        let claim = self
            .backend
            .request_claim(&claimlink_core::ClaimRequest::new(template))
            .await
            .map_err(app_failure)?;
        Ok(ProvisioningClaim::new(
            claim.certificate().pem().to_owned(),
            claim.private_key().expose().to_owned(),
            claim.deadline().server_expiry(),
        ))
    }
}

#[async_trait]
impl ThingDirectory for AppCloud {
    async fn describe_thing(
        &self,
        thing_name: String,
    ) -> Result<Option<ThingDescription>, ProviderFailure> {
        self.described
            .lock()
            .expect("lock")
            .push(thing_name.clone());
        let name = claimlink_core::ThingName::new(thing_name).map_err(app_failure)?;
        let described = self
            .backend
            .describe_thing(&name)
            .await
            .map_err(app_failure)?;
        Ok(described.map(|d| ThingDescription {
            thing_name: d.thing_name,
            thing_arn: d.thing_arn,
            attributes: d.attributes.into_iter().collect(),
            certificates: d
                .certificates
                .into_iter()
                .map(|c| ThingCertificate {
                    certificate_id: c.certificate_id,
                    status: match c.status {
                        claimlink_core::CertificateStatus::Active => CertificateStatus::Active,
                        other => CertificateStatus::Other {
                            status: format!("{other:?}"),
                        },
                    },
                })
                .collect(),
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_claim_source_and_thing_directory_provision_a_device_end_to_end() {
    let world = world().await;
    let cloud = Arc::new(AppCloud::new(&world));
    let provisioner =
        Provisioner::with_claim_source(world_settings(&world), cloud.clone(), cloud.clone())
            .expect("provisioner");
    let (device, gatt) = SimDeviceBuilder::in_world(&world, 20).build();
    let session = provisioner
        .connect(AppBle::new(gatt), secret(), None)
        .await
        .expect("connect");
    let options = ProvisionOptions {
        expected_thing_name: Some("FFI-APP-20".into()),
        device_hint: Some("label 20".into()),
        ..options("FFI-APP-20")
    };
    let done = session
        .provision(wifi(), options, None)
        .await
        .expect("provision");
    assert_eq!(done.thing_name, "FFI-APP-20");
    let certificate = done.certificate_id.clone().expect("certificate id");
    let thing = world
        .emulator
        .thing("FFI-APP-20")
        .expect("thing registered");
    assert!(thing.principals.contains(&certificate));
    assert!(!device.holds_claim());
    assert_eq!(
        *cloud.requests.lock().expect("lock"),
        vec![ClaimRequest {
            template: "claimlink-demo".into(),
            device_hint: Some("label 20".into()),
        }]
    );
    // Read before the handover (the baseline) and after it (the confirmation).
    let described = cloud.described.lock().expect("lock").clone();
    assert!(described.len() >= 2, "{described:?}");
    assert!(described.iter().all(|t| t == "FFI-APP-20"), "{described:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_claim_source_failing_gives_the_action_the_app_takes() {
    let world = world().await;
    let good = world
        .emulator
        .claim_via_backend("claimlink-demo")
        .await
        .expect("claim");
    let other = world
        .emulator
        .claim_via_backend("claimlink-demo")
        .await
        .expect("claim");
    let pem = good.certificate().pem().to_owned();
    let expiry = good.deadline().server_expiry();
    type IsExpected = fn(&ProvisioningFailure) -> bool;
    let cases: Vec<(AppCloud, IsExpected)> = vec![
        (
            AppCloud {
                refuse: Some(ProviderFailure::NotSignedIn {
                    detail: "session ended".into(),
                }),
                ..AppCloud::new(&world)
            },
            |f| matches!(f, ProvisioningFailure::SignInRequired { .. }),
        ),
        (
            AppCloud {
                refuse: Some(ProviderFailure::Failed {
                    detail: "no network".into(),
                }),
                ..AppCloud::new(&world)
            },
            |f| matches!(f, ProvisioningFailure::ServiceUnavailable { .. }),
        ),
        (
            AppCloud {
                replace: Some((pem.clone(), other.private_key().expose().to_owned(), expiry)),
                ..AppCloud::new(&world)
            },
            |f| matches!(f, ProvisioningFailure::ClaimUnusable { .. }),
        ),
        (
            AppCloud {
                replace: Some((
                    pem.clone(),
                    good.private_key().expose().to_owned(),
                    std::time::SystemTime::now() - Duration::from_secs(5),
                )),
                ..AppCloud::new(&world)
            },
            |f| matches!(f, ProvisioningFailure::ClaimUnusable { .. }),
        ),
    ];
    for (index, (cloud, expected)) in cases.into_iter().enumerate() {
        let cloud = Arc::new(cloud);
        let provisioner =
            Provisioner::with_claim_source(world_settings(&world), cloud.clone(), cloud.clone())
                .expect("provisioner");
        let (device, gatt) = SimDeviceBuilder::in_world(&world, 21 + index as u8).build();
        let session = provisioner
            .connect(AppBle::new(gatt), secret(), None)
            .await
            .expect("connect");
        let failure = session
            .provision(wifi(), options(&format!("FFI-APP-{index}")), None)
            .await
            .expect_err("no usable claim");
        assert!(expected(&failure), "case {index}: {failure:?}");
        assert!(!device.holds_claim(), "case {index}");
        let shown = format!("{failure} {failure:?}");
        assert!(
            !shown.contains(good.private_key().expose().lines().nth(1).unwrap_or("-")),
            "case {index}: the key leaked into {shown}"
        );
    }
}

/// The AP join budget is the app's: a prepared claim must have the safety margin plus it, and one
/// that cannot is refused typed (a claim lives 300 s: 60 s of margin plus 240 s of join is too much).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_claim_needs_the_safety_margin_plus_the_apps_ap_join_budget() {
    let world = world().await;
    let e = &world.emulator;
    let issued = e.issue_credentials();
    let prepare = |budget: i32| {
        let provisioner = Provisioner::with_aws(
            claimlink::ProvisionerSettings {
                ap_join_budget_secs: budget,
                ..world_settings(&world)
            },
            e.region().to_owned(),
            Some(e.base_url()),
            Arc::new(Cognito {
                id: issued.access_key_id.clone(),
                secret: issued.secret_access_key.clone(),
                token: issued.session_token.clone(),
                calls: Mutex::new(Vec::new()),
            }),
        )
        .expect("provisioner");
        async move { provisioner.prepare_claim(options("FFI-PREPARE")).await }
    };
    let left = prepare(30).await.expect("a claim with 90 s to spare");
    assert!(left >= Duration::from_secs(90), "{left:?}");
    let failure = prepare(240).await.expect_err("300 s is not enough");
    assert!(
        matches!(failure, ProvisioningFailure::ClaimUnusable { .. }),
        "{failure:?}"
    );
    assert!(failure.to_string().contains("300"), "{failure}");
}
