//! Writes the seed corpora (fuzz/seeds/<target>/): small, valid inputs, most of them recorded from the
//! real thing — a claim issued by the harness's PKI (rcgen, RSA-2048), and the SDK client's whole
//! conversation with the device simulator over Sec0, Sec1 and Sec2 (its answers seed the session
//! targets, its requests the device-side targets). The rest are written out below.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` (from the repository root).

use std::path::{Path, PathBuf};
use std::time::Duration;

use claimlink_core::internal::proto;
use claimlink_core::SecurityScheme;
use claimlink_fuzz::client;
use claimlink_harness::emulator::pki::Pki;
use prost::Message;

fn write(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    std::fs::create_dir_all(&dir)?;
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes)?;
    println!("{} ({} bytes)", path.display(), bytes.len());
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The claim: valid from a day before the targets' clock for ten years. Made once: the session
    // targets send the committed one (`SEED_CLAIM`), so a new one is written only when it is missing
    // (delete fuzz/seeds/claim_certificate/claim.pem and run this twice to renew it).
    let claim_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/claim_certificate/claim.pem");
    if !claim_file.exists() || claimlink_fuzz::SEED_CLAIM.is_empty() {
        let pki = Pki::generate()?;
        let claim = pki.issue_claim(
            claimlink_fuzz::fuzz_now() - Duration::from_secs(86_400),
            Duration::from_secs(3650 * 86_400),
        )?;
        let claim_pem = format!("{}{}", claim.certificate_pem, &*claim.private_key_pem);
        write("claim_certificate", "claim.pem", claim_pem.as_bytes())?;
        println!("a new claim: run this again so that the session seeds carry it");
        return Ok(());
    }
    let (certificate_pem, key_pem) = claimlink_fuzz::split_claim(claimlink_fuzz::SEED_CLAIM);
    let certificate = claimlink_core::ClaimCertificate::from_pem(certificate_pem)?;
    let expiration = claimlink_fuzz::fuzz_now() + Duration::from_secs(300);
    let epoch = expiration.duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let answer = serde_json::json!({
        "certificateId": certificate.id(),
        "certificatePem": certificate_pem,
        "keyPair": {"PrivateKey": key_pem},
        "expiration": epoch,
    });
    write(
        "claim_answer",
        "create-provisioning-claim.json",
        answer.to_string().as_bytes(),
    )?;

    // The client's conversations; the session targets replay the device's answers.
    for (scheme, target) in [
        (SecurityScheme::Sec0, "session_sec0"),
        (SecurityScheme::Sec1, "session_sec1"),
        (SecurityScheme::Sec2, "session_sec2"),
    ] {
        let (_, recorder) = client::record(scheme);
        write(
            target,
            "conversation.bin",
            &client::framed(&recorder.answers()),
        )?;
        match scheme {
            SecurityScheme::Sec0 => {
                for (i, answer) in recorder.answers().iter().enumerate() {
                    write("proto_messages", &format!("sec0-answer-{i:02}.bin"), answer)?;
                }
                for (i, (endpoint, request)) in recorder.requests().iter().enumerate() {
                    if endpoint == "proto-ver" {
                        write("proto_ver", "sec0.json", &recorder.answers()[i])?;
                        continue;
                    }
                    write(
                        "device_endpoints",
                        &format!("{i:02}-{endpoint}.bin"),
                        request,
                    )?;
                }
                bundle_seed(&recorder.requests())?;
            }
            SecurityScheme::Sec1 => write("proto_ver", "sec1.json", &recorder.answers()[0])?,
            SecurityScheme::Sec2 => {
                write("proto_ver", "sec2.json", &recorder.answers()[0])?;
                let handshake: Vec<Vec<u8>> = recorder
                    .requests()
                    .into_iter()
                    .filter(|(endpoint, _)| endpoint == "prov-session")
                    .map(|(_, request)| request)
                    .collect();
                write(
                    "device_handshake",
                    "sec2-commands.bin",
                    &client::framed(&handshake),
                )?;
            }
        }
    }

    write(
        "qr",
        "espressif.json",
        br#"{"ver":"v1","name":"PROV_C1A1","username":"wifiprov","pop":"abcd1234","transport":"ble","security":2}"#,
    )?;
    write("cloud_answers", "backend-thing.json", br#"{"thingName":"t","attributes":{"a":"b"},"certificates":[{"certificateId":"c","status":"ACTIVE"}]}"#)?;
    write("cloud_answers", "aws-describe-thing.json", br#"{"thingName":"t","thingArn":"arn:aws:iot:us-east-1:1:thing/t","attributes":{"a":"b"},"version":1}"#)?;
    write(
        "cloud_answers",
        "aws-principals.json",
        br#"{"principals":["arn:aws:iot:us-east-1:1:cert/abc"],"nextToken":"n"}"#,
    )?;
    write(
        "cloud_answers",
        "aws-certificate.json",
        br#"{"certificateDescription":{"certificateId":"abc","status":"ACTIVE"}}"#,
    )?;
    write(
        "cloud_answers",
        "aws-error.json",
        br#"{"message":"Throttled","__type":"ThrottlingException"}"#,
    )?;
    write(
        "mqtt_packets",
        "connect.bin",
        &[
            0x10, 0x10, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 4, b'd', b'e', b'v', b'1',
        ],
    )?;
    write(
        "mqtt_packets",
        "publish.bin",
        &[0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'],
    )?;
    write("sigv4_header", "authorization.txt", b"AWS4-HMAC-SHA256 Credential=ASIAX/20261130/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")?;
    write("template", "fleet.json", br#"{"Parameters":{"SerialNumber":{"Type":"String"}},"Mappings":{"m":{"a":{"b":"c"}}},"Resources":{"t":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Fn::Join":["-",[{"Ref":"SerialNumber"},{"Fn::Select":[0,{"Fn::Split":["/","a/b"]}]},{"Fn::FindInMap":["m","a","b"]},{"Fn::Sub":"${SerialNumber}"}]]}}}}}"#)?;
    Ok(())
}

/// The claim bundle the client sent (plaintext on Sec0, in a begin and chunks): the
/// device_claim_bundle seed.
fn bundle_seed(requests: &[(String, Vec<u8>)]) -> Result<(), Box<dyn std::error::Error>> {
    use proto::aws_claim_payload::Payload as P;
    let mut bundle = Vec::new();
    for (_, request) in requests.iter().filter(|(e, _)| e == "aws-claim") {
        match proto::AwsClaimPayload::decode(request.as_slice())?.payload {
            Some(P::CmdBegin(begin)) => bundle = begin.data,
            Some(P::CmdChunk(chunk)) => bundle.extend_from_slice(&chunk.data),
            _ => {}
        }
    }
    Ok(write("device_claim_bundle", "claim-bundle.bin", &bundle)?)
}
