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
    let (status, _, message) = refusal_of(r);
    (status, message)
}

/// (status, x-amzn-ErrorType, message) of a credentials-provider answer.
fn refusal_of(r: Result<serde_json::Value, CloudError>) -> (u32, String, String) {
    match r {
        Ok(_) => (200, String::new(), String::new()),
        Err(CloudError::Rejected {
            status_code,
            error_code,
            error_message,
            ..
        }) => (status_code, error_code, error_message),
        Err(other) => (0, String::new(), other.to_string()),
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
    // Unknown role alias: AWS's status, error type and message.
    let (status, kind, message) = refusal_of(
        cloud::fetch_role_credentials(&ep, identity(&cert, &key), "nope", "cred-2").await,
    );
    assert_eq!(
        (status, kind.as_str(), message.as_str()),
        (
            404,
            "ResourceNotFoundException",
            "Role alias does not exist"
        )
    );
    // A thing the certificate is not attached to.
    let (status, kind, message) = refusal_of(
        cloud::fetch_role_credentials(&ep, identity(&cert, &key), ALIAS, "someone-else").await,
    );
    assert_eq!(
        (status, kind.as_str(), message.as_str()),
        (403, "AccessDeniedException", "Invalid thing name passed")
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

/// The credentials provider's credentials expire on the emulator's clock: their `expiration` is the
/// emulator's time plus the role alias's duration, and once the emulator's clock passes it the SigV4
/// API refuses them (`ExpiredTokenException`) and the SDK, asking its provider once more, reports it.
#[tokio::test]
async fn role_credentials_expire_on_the_emulators_clock() {
    let e = setup().await;
    let (cert, key) = provision(&e, "with-policy", "cred-4").await;
    // The emulator's clock runs a day ahead of this machine's.
    let day = 86_400;
    e.set_clock_offset_secs(day);
    let creds = cloud::fetch_role_credentials(
        &credentials_endpoint(&e),
        identity(&cert, &key),
        ALIAS,
        "cred-4",
    )
    .await
    .expect("credentials");
    let expected = time::OffsetDateTime::now_utc() + time::Duration::seconds(day + 3600);
    let expiration = time::OffsetDateTime::parse(
        creds["expiration"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert!(
        (expiration - expected).whole_seconds().abs() <= 5,
        "{expiration} vs {expected}"
    );
    let temporary = TemporaryCredentials {
        access_key_id: creds["accessKeyId"].as_str().unwrap_or_default().to_owned(),
        secret_access_key: creds["secretAccessKey"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        session_token: creds["sessionToken"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    let provider = Arc::new(CredentialsSequence::new(vec![temporary]));
    let describe = |skew: i64| {
        let aws = AwsClaimSource::builder(e.region(), provider.clone())
            .endpoint_url(e.base_url())
            .http_config(e.http_config())
            .clock(Arc::new(claimlink_core::SkewedClock::new(skew)))
            .build()
            .expect("aws");
        async move {
            aws.describe_thing(&ThingName::new("cred-4").expect("name"))
                .await
        }
    };
    assert!(describe(day).await.expect("accepted").is_some());
    // An hour and a second later on the emulator's clock (the phone's clock keeps up with it).
    e.set_clock_offset_secs(day + 3601);
    let err = describe(day + 3601).await.expect_err("expired");
    assert!(
        matches!(&err, claimlink_core::ClaimError::Unauthorized { message, .. }
            if message == "The security token included in the request is expired"),
        "{err:?}"
    );
    assert_eq!(provider.refreshes(), 1, "asked for fresh credentials once");
}
