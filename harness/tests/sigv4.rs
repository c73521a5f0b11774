//! The emulator refuses badly signed requests exactly as AWS would, and answers in the shapes of AWS's
//! service model. Requests are signed here with the `aws-sigv4` crate and sent over real HTTPS.

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use claimlink_harness::emulator::{Emulator, TemporaryCredentials};

#[path = "sigv4_support/shapes.rs"]
mod shapes;

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

/// Signs `body` for `url` at `time`, with the payload's hash in `x-amz-content-sha256` (as S3 clients
/// and `aws-sigv4` with `PayloadChecksumKind::XAmzSha256` send it).
fn sign_body_with_hash_header(
    url: &str,
    creds: &TemporaryCredentials,
    region: &str,
    body: &[u8],
    time: SystemTime,
) -> Signed {
    let identity = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.clone(),
        Some(creds.session_token.clone()),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("iot")
        .time(time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let signable = SignableRequest::new("POST", url, std::iter::empty(), SignableBody::Bytes(body))
        .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    Signed {
        method: "POST",
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

    /// Signs a POST to `url` with the harness's credentials, `offset` seconds ahead of this clock.
    fn sign_at(&self, offset: u64, url: &str) -> Signed {
        sign_request(
            "POST",
            url,
            &self.creds,
            &self.creds.secret_access_key,
            self.emulator.region(),
            "iot",
            SystemTime::now() + Duration::from_secs(offset),
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

    /// Sends `signed` with `body`; returns the status, the error type and the JSON answer.
    async fn exchange(&self, signed: &Signed, body: &[u8]) -> (u16, String, serde_json::Value) {
        let method = reqwest::Method::from_bytes(signed.method.as_bytes()).expect("method");
        let mut request = self.client.request(method, &signed.url).body(body.to_vec());
        for (k, v) in &signed.headers {
            request = request.header(k, v);
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
        (
            status,
            error_type,
            response.json().await.unwrap_or_default(),
        )
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

/// Every answer of the SigV4 API, errors included, has the shape AWS's service model gives it
/// (botocore's, vendored in harness/tests/aws_model/): no member the model lacks, no `null`, enums
/// and timestamps as AWS sends them.
#[tokio::test]
async fn every_answer_has_the_shape_of_aws_service_model() {
    let h = Harness::start().await;
    let model = shapes::model();
    let conforms = |shape: &str, answer: &serde_json::Value| {
        let departures = shapes::departures(&model, shape, answer);
        assert!(departures.is_empty(), "{shape}: {departures:#?}\n{answer}");
    };
    let op = |name: &str, field: &str| model["operations"][name][field].clone();
    assert_eq!(op("CreateProvisioningClaim", "http")["method"], "POST");
    let (status, _, claim) = h
        .exchange(&h.sign("POST", &h.claim_url("claimlink-demo")), b"")
        .await;
    assert_eq!(status, 200, "{claim}");
    conforms("CreateProvisioningClaimResponse", &claim);

    let certificate_id = claim["certificateId"].as_str().expect("an id").to_owned();
    let pem = claim["certificatePem"].as_str().expect("a PEM").to_owned();
    h.emulator
        .register_thing("shape-1", &certificate_id, &pem, "PENDING_ACTIVATION");
    let base = h.emulator.base_url();
    for (operation, url) in [
        ("DescribeThing", format!("{base}/things/shape-1")),
        (
            "ListThingPrincipals",
            format!("{base}/things/shape-1/principals"),
        ),
        (
            "DescribeCertificate",
            format!("{base}/certificates/{certificate_id}"),
        ),
    ] {
        assert_eq!(op(operation, "http")["method"], "GET");
        let (status, _, answer) = h.exchange(&h.sign("GET", &url), b"").await;
        assert_eq!(status, 200, "{operation}: {answer}");
        conforms(op(operation, "output").as_str().unwrap_or(""), &answer);
        if operation == "DescribeThing" {
            assert_eq!(answer["defaultClientId"], "shape-1");
            assert!(answer.get("thingTypeName").is_none(), "absent, not null");
        }
        if operation == "DescribeCertificate" {
            let d = &answer["certificateDescription"];
            assert_eq!(d["status"], "PENDING_ACTIVATION");
            assert_eq!(d["ownedBy"], "123456789012");
            assert_eq!(d["certificateMode"], "DEFAULT");
            let not_after = d["validity"]["notAfter"].as_f64().expect("notAfter");
            let claim_expiration = claim["expiration"].as_f64().expect("expiration");
            assert!((not_after - claim_expiration).abs() < 1.0, "{d}");
            assert!(d["creationDate"].as_f64().is_some_and(|t| t > 1.7e9), "{d}");
        }
    }

    // Errors: the type in x-amzn-ErrorType is one the operation declares, with its status and body.
    for (operation, method, url) in [
        ("DescribeThing", "GET", format!("{base}/things/nope")),
        (
            "ListThingPrincipals",
            "GET",
            format!("{base}/things/nope/principals"),
        ),
        (
            "DescribeCertificate",
            "GET",
            format!("{base}/certificates/{}", "0".repeat(64)),
        ),
        (
            "CreateProvisioningClaim",
            "POST",
            h.claim_url("no-such-template"),
        ),
    ] {
        let (status, error_type, body) = h.exchange(&h.sign(method, &url), b"").await;
        assert!(
            op(operation, "errors")
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e == error_type.as_str())),
            "{operation}: {error_type} is not among its errors"
        );
        assert_eq!(
            model["shapes"][&error_type]["error"]["httpStatusCode"], status,
            "{operation}: {error_type}"
        );
        conforms(&error_type, &body);
    }
}

/// `x-amz-content-sha256`, when a client sends it, must be the body's hash: the emulator computes the
/// hash from the body and never takes the header's word for it.
#[tokio::test]
async fn x_amz_content_sha256_is_checked_against_the_body() {
    let h = Harness::start().await;
    let url = h.claim_url("claimlink-demo");
    let region = h.emulator.region().to_owned();
    let honest = sign_body_with_hash_header(&url, &h.creds, &region, b"{}", SystemTime::now());
    assert!(honest
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("x-amz-content-sha256")));
    assert_eq!(h.exchange(&honest, b"{}").await.0, 200);
    // Signed (header and signature) for one body, sent with another.
    let signed = sign_body_with_hash_header(&url, &h.creds, &region, b"{}", SystemTime::now());
    let (status, kind, body) = h.exchange(&signed, b"{\"other\": 1}").await;
    assert_eq!(
        (status, kind.as_str()),
        (403, "InvalidSignatureException"),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("x-amz-content-sha256")),
        "{body}"
    );
    assert_eq!(h.emulator.issued_claims().len(), 1);
}

/// Temporary credentials expire on the emulator's clock: once it passes their expiration, a request
/// signed with them (at the emulator's time, so the signature itself is current) gets AWS's 403
/// `ExpiredTokenException`.
#[tokio::test]
async fn temporary_credentials_expire_on_the_emulators_clock() {
    let h = Harness::start().await;
    let url = h.claim_url("claimlink-demo");
    let creds = h
        .emulator
        .issue_credentials_valid_for(Duration::from_secs(900));
    let signed_at = |offset: u64| {
        sign_request(
            "POST",
            &url,
            &creds,
            &creds.secret_access_key,
            h.emulator.region(),
            "iot",
            SystemTime::now() + Duration::from_secs(offset),
        )
    };
    assert_eq!(h.send(&signed_at(0)).await.0, 200);
    h.emulator.set_clock_offset_secs(901);
    let (status, kind, message) = h.send(&signed_at(901)).await;
    assert_eq!(
        (status, kind.as_str(), message.as_str()),
        (
            403,
            "ExpiredTokenException",
            "The security token included in the request is expired"
        )
    );
    // Credentials without an expiration are unaffected by the clock.
    assert_eq!(h.send(&h.sign_at(901, &url)).await.0, 200);
}

/// The checker itself finds what it must: a `null`, a member the model lacks, a wrong type, a value
/// outside an enum.
#[test]
fn the_shape_checker_finds_departures() {
    let model = shapes::model();
    let bad = serde_json::json!({
        "thingName": "t", "thingTypeName": null, "extra": 1, "version": "1",
    });
    let found = shapes::departures(&model, "DescribeThingResponse", &bad);
    assert_eq!(found.len(), 3, "{found:#?}");
    let bad = serde_json::json!({"certificateDescription": {"status": "SLEEPING", "creationDate": "2026"}});
    let found = shapes::departures(&model, "DescribeCertificateResponse", &bad);
    assert_eq!(found.len(), 2, "{found:#?}");
}
