//! The credentials provider: a provisioned device's certificate buys temporary AWS credentials, and
//! only when AWS would allow it.

use std::sync::Arc;

use claimlink_core::{AwsClaimSource, ThingDirectory, ThingName};
use claimlink_harness::device::cloud::{self, CloudError, Connection};
use claimlink_harness::emulator::{Emulator, Template, TemporaryCredentials};
use claimlink_harness::providers::CredentialsSequence;
use claimlink_harness::testing::{certificate_identity as identity, claim_identity, emulator};
use claimlink_harness::testing::{credentials_endpoint, mqtt_endpoint, serial_parameters};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde_json::json;

const ALIAS: &str = "device-role";

/// Provisions thing `name` with `template`; returns (certificate PEM, key).
async fn provision(e: &Emulator, template: &str, name: &str) -> (String, PrivateKeyDer<'static>) {
    let mut conn = Connection::open(&mqtt_endpoint(e), claim_identity(e, template).await, name)
        .await
        .expect("connects");
    let cert = cloud::create_keys_and_certificate(&mut conn)
        .await
        .expect("certificate");
    cloud::register_thing(
        &mut conn,
        template,
        &cert.ownership_token,
        &serial_parameters(name),
    )
    .await
    .expect("registered");
    conn.close().await;
    let key = PrivateKeyDer::from_pem_slice(cert.private_key_pem.unwrap_or_default().as_bytes())
        .expect("key");
    (cert.certificate_pem, key)
}

async fn setup() -> Emulator {
    let e = emulator().await;
    e.put_template(Template::simple_with_policy("with-policy", "DevicePolicy"));
    e.put_policy(
        "DevicePolicy",
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate",
            "Resource": format!("arn:aws:iot:{}:123456789012:rolealias/{ALIAS}", e.region())}]}),
    );
    e.create_role_alias(ALIAS, "arn:aws:iam::123456789012:role/device", 3600)
        .expect("alias");
    e
}

fn status_of(r: Result<serde_json::Value, CloudError>) -> (u32, String) {
    match r {
        Ok(_) => (200, String::new()),
        Err(CloudError::Rejected {
            status_code,
            error_message,
            ..
        }) => (status_code, error_message),
        Err(other) => (0, other.to_string()),
    }
}

#[tokio::test]
async fn a_provisioned_certificate_gets_credentials_that_aws_accepts() {
    let e = setup().await;
    let (cert, key) = provision(&e, "with-policy", "cred-1").await;
    let ep = credentials_endpoint(&e);
    let creds = cloud::fetch_role_credentials(&ep, identity(&cert, &key), ALIAS, "cred-1")
        .await
        .expect("credentials");
    let expiration = creds["expiration"].as_str().expect("expiration");
    assert!(
        expiration.ends_with('Z') && expiration.len() == 20,
        "{expiration}"
    );
    // Those credentials sign requests the emulator's AWS API accepts.
    let aws = AwsClaimSource::builder(
        e.region(),
        Arc::new(CredentialsSequence::new(vec![TemporaryCredentials {
            access_key_id: creds["accessKeyId"].as_str().unwrap_or_default().to_owned(),
            secret_access_key: creds["secretAccessKey"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            session_token: creds["sessionToken"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }])),
    )
    .endpoint_url(e.base_url())
    .http_config(e.http_config())
    .build()
    .expect("aws");
    let thing = aws
        .describe_thing(&ThingName::new("cred-1").expect("name"))
        .await
        .expect("signed call")
        .expect("exists");
    assert_eq!(thing.certificates.len(), 1);
}

#[tokio::test]
async fn the_credentials_provider_refuses_what_aws_refuses() {
    let e = setup().await;
    let (cert, key) = provision(&e, "with-policy", "cred-2").await;
    let ep = credentials_endpoint(&e);
    // Unknown role alias.
    assert_eq!(
        status_of(
            cloud::fetch_role_credentials(&ep, identity(&cert, &key), "nope", "cred-2").await
        )
        .0,
        404
    );
    // A thing the certificate is not attached to.
    let (status, message) = status_of(
        cloud::fetch_role_credentials(&ep, identity(&cert, &key), ALIAS, "someone-else").await,
    );
    assert_eq!(
        (status, message.as_str()),
        (403, "Invalid thing name passed")
    );
    // A certificate whose policies do not allow AssumeRoleWithCertificate.
    let (plain_cert, plain_key) = provision(&e, "claimlink-demo", "cred-3").await;
    let (status, message) = status_of(
        cloud::fetch_role_credentials(&ep, identity(&plain_cert, &plain_key), ALIAS, "cred-3")
            .await,
    );
    assert_eq!((status, message.as_str()), (403, "Access Denied"));
    // A claim certificate is not a device certificate: the TLS handshake fails.
    let claim = claim_identity(&e, "with-policy").await;
    let err = cloud::fetch_role_credentials(&ep, claim, ALIAS, "cred-2")
        .await
        .expect_err("refused");
    assert!(matches!(err, CloudError::Connection(_)), "{err:?}");
    // Role alias durations outside 900..=43200 s are refused.
    assert!(e
        .create_role_alias("short", "arn:aws:iam::1:role/r", 899)
        .is_err());
    assert!(e
        .create_role_alias("long", "arn:aws:iam::1:role/r", 43_201)
        .is_err());
}
