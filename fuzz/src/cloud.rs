//! The decoders of what the phone reads from outside the device session (the QR code, `proto-ver`,
//! the claim sources' JSON answers, the claim's PEM and X.509), the raw protobuf messages, and the
//! emulator's parsers of what SDKs send it (MQTT packets, SigV4 headers, provisioning templates).

use std::collections::{BTreeMap, HashMap};

use claimlink_core::internal::fuzzing;
use claimlink_core::internal::proto;
use claimlink_core::{ClaimCertificate, DeviceCapabilities, ProvisioningQr, SecretString};
use prost::Message;

/// `proto-ver`'s JSON (the device's version and capabilities).
pub fn proto_ver(input: &[u8]) {
    let _ = DeviceCapabilities::parse(input);
}

/// The provisioning QR code's payload.
pub fn qr(input: &[u8]) {
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = ProvisioningQr::parse(text);
    }
}

/// A claim as an app's own claim source hands it over: the certificate PEM (to its END line), then
/// the RSA key PEM. Both through `Claim::new` (PEM, X.509, the key's PKCS#1/PKCS#8 DER, the key
/// matching the certificate), and the whole input as one certificate PEM.
pub fn claim_certificate(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let _ = ClaimCertificate::from_pem(text);
    let (certificate, key) = crate::split_claim(text);
    let Ok(template) = claimlink_core::TemplateName::new("fuzz") else {
        return;
    };
    let _ = claimlink_core::Claim::new(
        certificate,
        SecretString::from(key),
        // Claim::new reads the phone's real clock: an hour from now (the certificate is valid
        // until 2036).
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
        template,
    );
}

/// A claim answer (the backend's, or AWS's `CreateProvisioningClaim`) taken all the way to a
/// checked claim on a phone whose clock reads [`crate::fuzz_now`].
pub fn claim_answer(input: &[u8]) {
    fuzzing::claim(input, crate::fuzz_now());
}

/// The other cloud answers: error bodies, the backend's thing description, AWS's DescribeThing,
/// ListThingPrincipals and DescribeCertificate.
pub fn cloud_answers(input: &[u8]) {
    fuzzing::error_answer(input);
    let _ = fuzzing::backend_thing(input);
    fuzzing::aws_answers(input);
}

/// Every protobuf message of the protocol, decoded on its own.
pub fn proto_messages(input: &[u8]) {
    let _ = proto::SessionData::decode(input);
    let _ = proto::WiFiScanPayload::decode(input);
    let _ = proto::WiFiConfigPayload::decode(input);
    let _ = proto::WiFiCtrlPayload::decode(input);
    let _ = proto::AwsClaimPayload::decode(input);
    let _ = proto::AwsStatusPayload::decode(input);
    let _ = proto::ClaimBundle::decode(input);
}

/// The emulator's MQTT broker's packet reader (rumqttc's v4 codec), packet after packet.
pub fn mqtt_packets(input: &[u8]) {
    let mut buffer = bytes::BytesMut::from(input);
    while rumqttc::mqttbytes::v4::Packet::read(&mut buffer, 128 * 1024).is_ok() {}
}

/// The emulator's SigV4 verifier: the input is the `Authorization` header, the `x-amz-date` header
/// and the body at once.
pub fn sigv4_header(input: &[u8]) {
    use claimlink_harness::emulator::sigv4::{KnownCredentials, Verifier};
    let credentials = HashMap::from([(
        "ASIAX".to_owned(),
        KnownCredentials {
            secret_access_key: "s".into(),
            session_token: None,
        },
    )]);
    let verifier = Verifier {
        region: "us-east-1",
        service: "iot",
        credentials: &credentials,
        now: crate::fuzz_now(),
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_bytes(input) {
        headers.insert(http::header::AUTHORIZATION, value.clone());
        headers.insert("x-amz-date", value);
    }
    headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("127.0.0.1"),
    );
    let uri = http::Uri::from_static("/things/x?a=b");
    let _ = verifier.verify(&http::Method::GET, &uri, &headers, input);
}

/// The emulator's provisioning template evaluation (a JSON template with intrinsic functions).
pub fn template(input: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) {
        let _ = claimlink_harness::emulator::template::evaluate(
            &value,
            &BTreeMap::from([("SerialNumber".to_owned(), "x".to_owned())]),
            "abc",
        );
    }
}
