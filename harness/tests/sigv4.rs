//! The emulator refuses badly signed requests exactly as AWS would. Requests are signed here with the
//! `aws-sigv4` crate and sent over real HTTPS.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use claimlink_harness::emulator::{Emulator, TemporaryCredentials};

struct Signed {
    method: &'static str,
    url: String,
    headers: Vec<(String, String)>,
}

fn sign_request(
    method: &'static str,
    url: &str,
    creds: &TemporaryCredentials,
    secret: &str,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Signed {
    let identity = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        secret.to_owned(),
        Some(creds.session_token.clone()),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let signable = SignableRequest::new(method, url, std::iter::empty(), SignableBody::Bytes(&[]))
        .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    Signed {
        method,
        url: url.to_owned(),
        headers: instructions
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    }
}

struct Harness {
    emulator: Emulator,
    client: reqwest::Client,
    creds: TemporaryCredentials,
}

impl Harness {
    async fn start() -> Self {
        let emulator = claimlink_harness::testing::emulator().await;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(emulator.ca_pem().as_bytes()) {
            roots.add(cert.expect("pem")).expect("root");
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .expect("client");
        let creds = emulator.issue_credentials();
        Self {
            emulator,
            client,
            creds,
        }
    }

    fn claim_url(&self, template: &str) -> String {
        format!(
            "{}/provisioning-templates/{template}/provisioning-claim",
            self.emulator.base_url()
        )
    }

    fn sign(&self, method: &'static str, url: &str) -> Signed {
        sign_request(
            method,
            url,
            &self.creds,
            &self.creds.secret_access_key,
            self.emulator.region(),
            "iot",
            SystemTime::now(),
        )
    }

    /// Sends `signed` to `url` (which may differ from the signed URL); returns status, error type, message.
    async fn send_to(
        &self,
        signed: &Signed,
        url: &str,
        drop_header: Option<&str>,
    ) -> (u16, String, String) {
        let method = reqwest::Method::from_bytes(signed.method.as_bytes()).expect("method");
        let mut request = self.client.request(method, url);
        for (k, v) in &signed.headers {
            if Some(k.as_str()) != drop_header {
                request = request.header(k, v);
            }
        }
        let response = request.send().await.expect("answer");
        let status = response.status().as_u16();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(':').next())
            .unwrap_or("")
            .to_owned();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("")
            .to_owned();
        (status, error_type, message)
    }

    async fn send(&self, signed: &Signed) -> (u16, String, String) {
        self.send_to(signed, &signed.url, None).await
    }
}

#[tokio::test]
async fn a_correctly_signed_request_is_accepted() {
    let h = Harness::start().await;
    let signed = h.sign("POST", &h.claim_url("claimlink-demo"));
    let (status, kind, message) = h.send(&signed).await;
    assert_eq!((status, kind.as_str()), (200, ""), "{message}");
    assert_eq!(h.emulator.issued_claims().len(), 1);
}

#[tokio::test]
async fn a_wrong_secret_is_a_signature_mismatch() {
    let h = Harness::start().await;
    let url = h.claim_url("claimlink-demo");
    let signed = sign_request(
        "POST",
        &url,
        &h.creds,
        "not-the-secret",
        h.emulator.region(),
        "iot",
        SystemTime::now(),
    );
    let (status, kind, message) = h.send(&signed).await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"));
    assert!(
        message.starts_with("The request signature we calculated does not match"),
        "{message}"
    );
    assert!(h.emulator.issued_claims().is_empty());
}

#[tokio::test]
async fn a_stale_or_future_timestamp_is_refused_with_aws_words() {
    let h = Harness::start().await;
    let url = h.claim_url("claimlink-demo");
    let secret = h.creds.secret_access_key.clone();
    let past = sign_request(
        "POST",
        &url,
        &h.creds,
        &secret,
        h.emulator.region(),
        "iot",
        SystemTime::now() - Duration::from_secs(16 * 60),
    );
    let (status, kind, message) = h.send(&past).await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"));
    assert!(
        message.starts_with("Signature expired: ") && message.ends_with(" - 15 min.)"),
        "{message}"
    );

    let future = sign_request(
        "POST",
        &url,
        &h.creds,
        &secret,
        h.emulator.region(),
        "iot",
        SystemTime::now() + Duration::from_secs(16 * 60),
    );
    let (status, _, message) = h.send(&future).await;
    assert_eq!(status, 403);
    assert!(
        message.starts_with("Signature not yet current: "),
        "{message}"
    );

    // 14 minutes off is still inside AWS's window.
    let near = sign_request(
        "POST",
        &url,
        &h.creds,
        &secret,
        h.emulator.region(),
        "iot",
        SystemTime::now() - Duration::from_secs(14 * 60),
    );
    assert_eq!(h.send(&near).await.0, 200);
}

#[tokio::test]
async fn a_tampered_path_or_query_is_a_signature_mismatch() {
    let h = Harness::start().await;
    let signed = h.sign("POST", &h.claim_url("claimlink-demo"));
    h.emulator
        .put_template(claimlink_harness::emulator::Template::simple(
            "other-template",
        ));
    let (status, kind, _) = h
        .send_to(&signed, &h.claim_url("other-template"), None)
        .await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"));

    h.emulator
        .register_thing("t1", &"c".repeat(64), "pem", "ACTIVE");
    let url = format!(
        "{}/things/t1/principals?maxResults=25",
        h.emulator.base_url()
    );
    let signed = h.sign("GET", &url);
    assert_eq!(h.send(&signed).await.0, 200);
    let tampered = format!(
        "{}/things/t1/principals?maxResults=26",
        h.emulator.base_url()
    );
    let (status, kind, _) = h.send_to(&signed, &tampered, None).await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"));
    // A different method on a signed URL.
    let signed_get = h.sign("GET", &h.claim_url("claimlink-demo"));
    let signed_as_post = Signed {
        method: "POST",
        ..signed_get
    };
    assert_eq!(h.send(&signed_as_post).await.0, 403);
}

#[tokio::test]
async fn credentials_and_scope_are_checked() {
    let h = Harness::start().await;
    let url = h.claim_url("claimlink-demo");
    // Missing session token.
    let signed = h.sign("POST", &url);
    let (status, kind, message) = h.send_to(&signed, &url, Some("x-amz-security-token")).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "UnrecognizedClientException"),
        "{message}"
    );
    // Unknown access key.
    let mut stranger = h.creds.clone();
    stranger.access_key_id = "ASIAUNKNOWNUNKNOWN00".into();
    let signed = sign_request(
        "POST",
        &url,
        &stranger,
        &h.creds.secret_access_key,
        h.emulator.region(),
        "iot",
        SystemTime::now(),
    );
    let (status, kind, _) = h.send(&signed).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "UnrecognizedClientException")
    );
    // Revoked credentials.
    h.emulator.revoke_credentials(&h.creds.access_key_id);
    let (status, kind, _) = h.send(&h.sign("POST", &url)).await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "UnrecognizedClientException")
    );
    let h = Harness::start().await;
    let url = h.claim_url("claimlink-demo");
    // Wrong region and wrong service in the scope.
    let signed = sign_request(
        "POST",
        &url,
        &h.creds,
        &h.creds.secret_access_key,
        "eu-west-1",
        "iot",
        SystemTime::now(),
    );
    let (status, kind, message) = h.send(&signed).await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"));
    assert!(message.contains("region"), "{message}");
    let signed = sign_request(
        "POST",
        &url,
        &h.creds,
        &h.creds.secret_access_key,
        h.emulator.region(),
        "s3",
        SystemTime::now(),
    );
    assert_eq!(h.send(&signed).await.0, 403);
    // No signature at all.
    let response = h.client.post(&url).send().await.expect("answer");
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(
        response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or("")),
        Some("MissingAuthenticationTokenException")
    );
    assert!(h.emulator.issued_claims().is_empty());
}
