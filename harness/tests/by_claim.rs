//! Provisioning by claim (the first flow of AWS's fleet-provisioning guide) on the emulator over real
//! TLS, MQTT and SigV4: a factory claim registered with the guide's claim policy, devices in
//! factory-claim mode provisioning themselves, a disabled claim refused at connect, the
//! pre-provisioning hook denying, the policy holding the claim to its topics, and the registry calls
//! a clean-up makes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use claimlink_core::internal::proto::CloudFailureKind;
use claimlink_harness::by_claim::{self, ByClaimEvent, ByClaimOptions, RegisteredClaim, TEMPLATE};
use claimlink_harness::device::cloud::{FlowFailure, Provisioned};
use claimlink_harness::device::factory_claim::{FactoryClaim, FactoryDevice};
use claimlink_harness::emulator::mqtt::{MqttEvent, Principal};
use claimlink_harness::emulator::{Emulator, PreProvisioningHook};
use claimlink_harness::iot_api::IotApi;
use serde_json::{json, Value};

const TEN_YEARS: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

struct Factory {
    emulator: Emulator,
    api: IotApi,
    claim: Arc<FactoryClaim>,
    registered: RegisteredClaim,
}

/// An emulator, and a factory claim registered in it with the guide's policy (`allow_csr` adds
/// create-from-csr).
async fn factory(allow_csr: bool) -> Factory {
    let emulator = claimlink_harness::testing::emulator().await;
    let (api, _) = by_claim::manufacturer_api(&emulator).expect("api");
    let claim = Arc::new(by_claim::make_factory_claim(TEMPLATE, TEN_YEARS).expect("claim"));
    let registered =
        by_claim::register_factory_claim(&api, emulator.account_id(), &claim, allow_csr)
            .await
            .expect("registered");
    Factory {
        emulator,
        api,
        claim,
        registered,
    }
}

impl Factory {
    fn device(&self, serial: &str, use_csr: bool) -> FactoryDevice {
        FactoryDevice {
            serial: serial.to_owned(),
            claim: self.claim.clone(),
            endpoint: by_claim::device_endpoint(&self.emulator),
            use_csr,
            retry_for: Duration::ZERO,
        }
    }

    async fn boot(
        &self,
        serial: &str,
        use_csr: bool,
    ) -> (Result<Provisioned, FlowFailure>, Vec<&'static str>) {
        let mut stages = Vec::new();
        let result = self
            .device(serial, use_csr)
            .first_boot(|s| stages.push(s.name()))
            .await;
        (result, stages)
    }

    /// An MQTT connection to the emulator as `client_id`, with the factory claim's certificate.
    async fn connect_as_claim(
        &self,
        client_id: &str,
    ) -> claimlink_harness::device::cloud::Connection {
        use claimlink_harness::device::cloud::{Connection, MqttIdentity};
        use rustls_pki_types::pem::PemObject;
        let identity = MqttIdentity {
            chain: vec![rustls_pki_types::CertificateDer::from_pem_slice(
                self.claim.certificate_pem.as_bytes(),
            )
            .expect("pem")
            .to_vec()],
            key: rustls_pki_types::PrivateKeyDer::from_pem_slice(
                self.claim.private_key_pem.as_bytes(),
            )
            .expect("key"),
        };
        Connection::open(
            &by_claim::device_endpoint(&self.emulator),
            identity,
            client_id,
        )
        .await
        .expect("connected")
    }

    fn connected_clients(&self) -> Vec<String> {
        self.emulator
            .mqtt_events()
            .into_iter()
            .filter_map(|e| match e {
                MqttEvent::Connected { client_id, .. } => Some(client_id),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test]
async fn devices_with_a_registered_factory_claim_provision_themselves_and_the_account_confirms() {
    let emulator = claimlink_harness::testing::emulator().await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let report = by_claim::run_on(
        &emulator,
        &ByClaimOptions {
            devices: 3,
            ..ByClaimOptions::default()
        },
        Arc::new(move |e| seen.lock().expect("events").push(e)),
    )
    .await
    .expect("run");
    assert_eq!(report.devices.len(), 3);
    for d in &report.devices {
        let (thing, certificate) = d.outcome.clone().expect("provisioned");
        assert_eq!(
            thing, d.serial,
            "the template names the thing by SerialNumber"
        );
        assert!(
            d.confirmed,
            "DescribeThing shows {certificate} ACTIVE on {thing}"
        );
        assert_eq!(
            d.stages.iter().map(|s| s.0.name()).collect::<Vec<_>>(),
            [
                "ConnectedWithClaim",
                "CertificateIssued",
                "ThingRegistered",
                "Reconnected"
            ]
        );
        assert_eq!(
            emulator.certificate_status(&certificate).as_deref(),
            Some("ACTIVE")
        );
        assert!(emulator
            .thing(&thing)
            .is_some_and(|t| t.principals == [certificate.clone()]));
    }
    // The claim is registered, ACTIVE, with the guide's policy, and stays so: every device of the
    // batch uses it. It connected as a registered certificate, not as one of the emulator's claims.
    assert_eq!(
        emulator
            .certificate_status(&report.claim.certificate_id)
            .as_deref(),
        Some("ACTIVE")
    );
    let as_claim = emulator
        .mqtt_events()
        .into_iter()
        .filter(|e| {
            matches!(e, MqttEvent::Connected { principal: Principal::Device { certificate_id }, .. }
                if *certificate_id == report.claim.certificate_id)
        })
        .count();
    assert_eq!(as_claim, 3);
    assert!(
        emulator.issued_claims().is_empty(),
        "no app, no CreateProvisioningClaim"
    );
    let events = events.lock().expect("events");
    assert!(matches!(&events[0], ByClaimEvent::Factory(l) if l.contains("factory CA")));
    assert!(
        matches!(&events[1], ByClaimEvent::Factory(l) if l.contains(&report.claim.certificate_id))
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ByClaimEvent::Finished { outcome: Ok(_), .. }))
            .count(),
        3
    );
}

#[tokio::test]
async fn a_disabled_claim_is_refused_at_connect_and_works_again_once_enabled() {
    let f = factory(false).await;
    f.api
        .update_certificate(&f.registered.certificate_id, "INACTIVE")
        .await
        .expect("UpdateCertificate");
    let (result, stages) = f.boot("misused-001", false).await;
    let failure = result.err().expect("refused");
    // The TLS handshake completes (the certificate is known), then the connection is closed before
    // any CONNACK, as AWS does for an inactive certificate.
    assert_eq!(failure.kind, CloudFailureKind::TlsRejected, "{failure:?}");
    assert!(
        failure.error_message.contains("CONNACK"),
        "{}",
        failure.error_message
    );
    assert!(stages.is_empty());
    assert!(f.connected_clients().is_empty());
    assert!(f.emulator.thing("misused-001").is_none());

    f.api
        .update_certificate(&f.registered.certificate_id, "ACTIVE")
        .await
        .expect("UpdateCertificate");
    let (result, _) = f.boot("misused-001", false).await;
    assert_eq!(result.expect("provisioned").thing_name, "misused-001");
}

#[tokio::test]
async fn disabling_the_claim_closes_its_open_connections() {
    let f = factory(false).await;
    let mut conn = f.connect_as_claim("shelf-1").await;
    f.api
        .update_certificate(&f.registered.certificate_id, "INACTIVE")
        .await
        .expect("UpdateCertificate");
    assert!(conn.closed_within(Duration::from_secs(10)).await);
}

#[tokio::test]
async fn the_pre_provisioning_hook_denying_refuses_register_thing_and_sees_the_claim() {
    let f = factory(false).await;
    let inputs = Arc::new(Mutex::new(Vec::<Value>::new()));
    let seen = inputs.clone();
    f.emulator.set_pre_provisioning_hook(
        TEMPLATE,
        Some(PreProvisioningHook::Rule(Arc::new(move |input| {
            seen.lock().expect("inputs").push(input.clone());
            Ok(json!({"allowProvisioning": false}))
        }))),
    );
    let (result, stages) = f.boot("denied-001", false).await;
    let failure = result.err().expect("denied");
    assert_eq!(failure.kind, CloudFailureKind::RegisterThingRejected);
    assert_eq!(failure.status_code, 403);
    assert_eq!(failure.error_code, "ACCESS_DENIED");
    assert_eq!(stages, ["ConnectedWithClaim", "CertificateIssued"]);
    let issued = failure
        .certificate_id
        .expect("the certificate AWS issued is named");
    assert_ne!(
        f.emulator.certificate_status(&issued).as_deref(),
        Some("ACTIVE")
    );
    assert!(f.emulator.thing("denied-001").is_none());
    let inputs = inputs.lock().expect("inputs");
    assert_eq!(inputs.len(), 1);
    let input = &inputs[0];
    assert_eq!(
        input["claimCertificateId"],
        f.registered.certificate_id.as_str()
    );
    assert_eq!(input["certificateId"], issued.as_str());
    assert_eq!(input["clientId"], "denied-001");
    assert_eq!(input["parameters"]["SerialNumber"], "denied-001");
    assert!(input["templateArn"]
        .as_str()
        .is_some_and(|a| a.ends_with(&format!(":provisioningtemplate/{TEMPLATE}"))));
}

#[tokio::test]
async fn the_claim_policy_holds_the_claim_to_its_template_and_topics() {
    // The guide's policy allows CreateKeysAndCertificate only: the CSR path is refused, as on AWS.
    let f = factory(false).await;
    let (result, stages) = f.boot("csr-001", true).await;
    assert!(result.is_err());
    assert_eq!(stages, ["ConnectedWithClaim"]);
    assert!(f.emulator.mqtt_events().iter().any(|e| matches!(e,
        MqttEvent::Forbidden { topic, .. } if topic.starts_with("$aws/certificates/create-from-csr/"))));
    // With create-from-csr in the policy, the same device provisions.
    let f = factory(true).await;
    let (result, _) = f.boot("csr-002", true).await;
    assert_eq!(result.expect("provisioned").thing_name, "csr-002");

    // Another template's topics are outside the claim's policy.
    let mut conn = f.connect_as_claim("other-1").await;
    let refused = conn
        .request(
            "$aws/provisioning-templates/someone-elses/provision/json",
            &json!({"certificateOwnershipToken": "x"}),
        )
        .await;
    assert!(refused.is_err());
    assert!(f.emulator.mqtt_events().iter().any(|e| matches!(e,
        MqttEvent::Forbidden { topic, .. } if topic.contains("someone-elses"))));
}

#[tokio::test]
async fn a_registered_claim_without_a_policy_cannot_connect() {
    let emulator = claimlink_harness::testing::emulator().await;
    let (api, _) = by_claim::manufacturer_api(&emulator).expect("api");
    let claim = Arc::new(by_claim::make_factory_claim(TEMPLATE, TEN_YEARS).expect("claim"));
    api.register_certificate_without_ca(&claim.certificate_pem, true)
        .await
        .expect("registered");
    let device = FactoryDevice {
        serial: "nopolicy-1".into(),
        claim,
        endpoint: by_claim::device_endpoint(&emulator),
        use_csr: false,
        retry_for: Duration::ZERO,
    };
    let failure = device.first_boot(|_| {}).await.err().expect("refused");
    assert_eq!(failure.kind, CloudFailureKind::TlsRejected);
    assert!(emulator.thing("nopolicy-1").is_none());
}

#[tokio::test]
async fn an_unregistered_factory_claim_fails_the_tls_handshake() {
    let emulator = claimlink_harness::testing::emulator().await;
    let claim = Arc::new(by_claim::make_factory_claim(TEMPLATE, TEN_YEARS).expect("claim"));
    let device = FactoryDevice {
        serial: "stranger-1".into(),
        claim,
        endpoint: by_claim::device_endpoint(&emulator),
        use_csr: false,
        retry_for: Duration::ZERO,
    };
    let failure = device.first_boot(|_| {}).await.err().expect("refused");
    assert_eq!(failure.kind, CloudFailureKind::TlsRejected);
    assert!(
        failure.error_message.contains("TLS") || failure.error_message.contains("closed"),
        "{}",
        failure.error_message
    );
}

#[tokio::test]
async fn the_registry_calls_refuse_what_aws_refuses_and_clean_up_a_provisioned_device() {
    let f = factory(false).await;
    // The same certificate twice, and a PEM that is no certificate.
    let again = f
        .api
        .register_certificate_without_ca(&f.claim.certificate_pem, true)
        .await
        .expect_err("conflict");
    assert_eq!(
        (again.status, again.code.as_str()),
        (Some(409), "ResourceAlreadyExistsException")
    );
    let garbage = f
        .api
        .register_certificate_without_ca(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            true,
        )
        .await
        .expect_err("invalid");
    assert_eq!(garbage.code, "CertificateValidationException");
    let bad_status = f
        .api
        .update_certificate(&f.registered.certificate_id, "LOST")
        .await;
    assert_eq!(
        bad_status.err().map(|e| e.code),
        Some("InvalidRequestException".into())
    );

    let provisioned = f.boot("cleanup-001", false).await.0.expect("provisioned");
    let id = provisioned.certificate_id.clone();
    let arn = format!(
        "arn:aws:iot:{}:{}:cert/{id}",
        f.emulator.region(),
        f.emulator.account_id()
    );
    // Out of order, AWS refuses: an ACTIVE certificate, a thing with principals.
    let active = f.api.delete_certificate(&id).await.expect_err("refused");
    assert_eq!(active.code, "CertificateStateException");
    let attached = f
        .api
        .delete_thing("cleanup-001")
        .await
        .expect_err("refused");
    assert_eq!(attached.code, "InvalidRequestException");
    // In order, as --cleanup does it.
    assert_eq!(
        f.api
            .list_thing_principals("cleanup-001")
            .await
            .expect("list"),
        std::slice::from_ref(&arn)
    );
    f.api
        .detach_thing_principal("cleanup-001", &arn)
        .await
        .expect("detach");
    f.api
        .delete_thing("cleanup-001")
        .await
        .expect("delete thing");
    f.api
        .update_certificate(&id, "INACTIVE")
        .await
        .expect("deactivate");
    f.api
        .delete_certificate(&id)
        .await
        .expect("delete certificate");
    assert!(f.emulator.thing("cleanup-001").is_none());
    assert_eq!(f.emulator.certificate_status(&id), None);
    let gone = f.api.delete_certificate(&id).await.expect_err("gone");
    assert_eq!(gone.status, Some(404));
}

#[test]
fn the_by_claim_command_shows_the_stages_and_confirms_every_device() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_claimlink-harness"))
        .args(["by-claim", "--devices", "2"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("claim registered (RegisterCertificateWithoutCA, ACTIVE)"),
        "{text}"
    );
    for stage in [
        "ConnectedWithClaim",
        "CertificateIssued",
        "ThingRegistered",
        "Reconnected",
    ] {
        assert!(text.contains(&format!("by-claim-001: {stage}")), "{text}");
    }
    assert!(
        text.contains("2 of 2 devices provisioned by claim and confirmed by DescribeThing"),
        "{text}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_claimlink-harness"))
        .args(["by-claim", "--devices", "1", "--csr", "--json"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["devices"][0]["outcome"], "provisioned");
    assert_eq!(report["devices"][0]["confirmed_by_describe_thing"], true);
    assert_eq!(
        report["claim_certificate_id"].as_str().map(str::len),
        Some(64)
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_claimlink-harness"))
        .args(["by-claim", "--devices", "0"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
}
