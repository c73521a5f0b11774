//! Secret hygiene: a full provisioning run, its failure paths and the AWS source, all with logging at
//! TRACE for every crate — no claim private key (PEM lines or DER), Wi-Fi passphrase, Sec2 password,
//! bearer token or AWS secret may appear in any log line, error message, `Debug` output or support
//! report.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claimlink_core::DeviceCredentials;
use claimlink_core::WifiCredentials;
use claimlink_core::{FailureReport, SupportReport};
use claimlink_core::{ThingDirectory, ThingName};
use claimlink_harness::providers::CredentialsSequence;
use claimlink_harness::testing::{self, EventRecorder, SimDeviceBuilder};
// The secrets the test looks for are the ones every test uses.
use claimlink_harness::testing::{DEVICE_PASSWORD as PASSWORD, LAB_PASSPHRASE as PASSPHRASE};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_errors_or_debug_output() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let world = testing::quick_world().await;
    let mut shown: Vec<String> = Vec::new();
    let events = EventRecorder::new();
    let options = testing::serial_options("SN-SECRETS");

    // Wrong Sec2 password, then the right one; wrong passphrase, then the right one.
    let sim = SimDeviceBuilder::in_world(&world, 40).interval(Duration::from_millis(1));
    let (device, link) = sim.build();
    let err = world
        .provisioner
        .connect(
            link,
            DeviceCredentials::password("not-the-password"),
            &events,
        )
        .await
        .expect_err("wrong password");
    shown.push(format!("{err} {err:?}"));
    shown.push(
        SupportReport::without_session(FailureReport::from_error(&err), Some(&*sim.build().1))
            .to_json(),
    );
    let session = world
        .provisioner
        .connect(
            sim.link_to(&device),
            DeviceCredentials::password(PASSWORD),
            &events,
        )
        .await
        .expect("session");
    let wrong = WifiCredentials::new("claimlink-lab", "wrong horse battery".into()).expect("wifi");
    let err = session
        .provision(&wrong, &options, &events)
        .await
        .expect_err("wrong passphrase");
    shown.push(format!("{err} {err:?} {wrong:?}"));
    let right = WifiCredentials::new("claimlink-lab", PASSPHRASE.into()).expect("wifi");
    let done = session
        .provision(&right, &options, &events)
        .await
        .expect("provisioned");
    shown.push(format!(
        "{done:?} {session:?} {right:?} {:?}",
        world.provisioner
    ));
    // The support report of the session: both runs, the link and the device.
    let report = session.support_report().await.to_json();
    assert!(report.contains("CL-201") && report.contains("ConfirmedByCloud"));
    shown.push(report);

    // The AWS source with temporary credentials.
    let creds = world.emulator.issue_credentials();
    let aws_secret = creds.secret_access_key.clone();
    let aws_token = creds.session_token.clone();
    let aws = testing::aws_source(
        &world.emulator,
        Arc::new(CredentialsSequence::new(vec![creds])),
    )
    .build()
    .expect("aws");
    let thing = aws
        .describe_thing(&ThingName::new("SN-SECRETS").expect("name"))
        .await
        .expect("ok");
    shown.push(format!("{thing:?} {aws:?}"));

    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = String::from_utf8_lossy(&capture.0.lock().expect("lock")).into_owned();
    assert!(
        logs.lines().count() > 50,
        "trace logging was on ({} lines)",
        logs.lines().count()
    );
    let everything = format!(
        "{logs}\n{}\n{}",
        shown.join("\n"),
        events.map(|event| format!("{event:?}")).join("\n")
    );

    let claim = world
        .emulator
        .issued_claims()
        .pop()
        .expect("a claim was issued");
    let key_lines: Vec<&str> = claim
        .private_key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(key_lines.len() > 20);
    for line in key_lines {
        assert!(!everything.contains(line), "a claim key line leaked");
    }
    // The same key in any other form the SDK handles: its DER (PKCS#8 and the PKCS#1 inside it,
    // which is what goes to the device) in base64 at every byte alignment and in hex, and its primes.
    for (what, text) in key_forms(&claim.private_key_pem) {
        for window in text.as_bytes().chunks_exact(32) {
            let window = std::str::from_utf8(window).expect("ascii");
            assert!(
                !everything.contains(window),
                "the claim key leaked as {what}"
            );
        }
    }
    for (what, secret) in [
        ("the Wi-Fi passphrase", PASSPHRASE),
        ("the Sec2 password", PASSWORD),
        ("the wrong Sec2 password", "not-the-password"),
        ("the wrong passphrase", "wrong horse battery"),
        ("the AWS secret key", aws_secret.as_str()),
        ("the AWS session token", aws_token.as_str()),
    ] {
        assert!(!everything.contains(secret), "{what} leaked");
    }
    // The bearer token the provisioner used.
    for word in everything.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
        assert!(
            !(word.starts_with("tok_") && word.len() > 20),
            "a bearer token leaked: {word}"
        );
    }
}

/// The claim key as base64 (at each of the three byte alignments) and hex of its PKCS#8 and PKCS#1
/// DER, and hex of its primes.
fn key_forms(pem: &str) -> Vec<(&'static str, String)> {
    use pkcs1::der::Decode;
    let (label, der) = pkcs1::der::pem::decode_vec(pem.as_bytes()).expect("PEM");
    let pkcs1_der = match label {
        "PRIVATE KEY" => pkcs8::PrivateKeyInfo::from_der(&der)
            .expect("PKCS#8")
            .private_key
            .to_vec(),
        "RSA PRIVATE KEY" => der.clone(),
        other => panic!("unexpected PEM label {other}"),
    };
    let key = pkcs1::RsaPrivateKey::from_der(&pkcs1_der).expect("PKCS#1");
    let mut forms = Vec::new();
    for (what, bytes) in [("PKCS#8 DER", &der), ("PKCS#1 DER", &pkcs1_der)] {
        for skip in 0..3 {
            forms.push((what, base64(&bytes[skip..])));
        }
        forms.push((what, hex::encode(bytes)));
        forms.push((what, hex::encode_upper(bytes)));
    }
    for prime in [key.prime1.as_bytes(), key.prime2.as_bytes()] {
        forms.push(("a prime in hex", hex::encode(prime)));
        forms.push(("a prime in hex", hex::encode_upper(prime)));
    }
    assert!(forms.iter().all(|(_, f)| f.len() >= 256));
    // The encoder is right: the PEM body is the base64 of its DER.
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(forms[0].1, body);
    forms
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
