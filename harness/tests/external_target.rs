//! Simulated devices against an external AWS IoT endpoint. The endpoint is a second emulator, started
//! as a separate process (`claimlink-harness emulator --out DIR`) with its own CA and credentials and
//! treated as foreign: the `demo` under test gets only what a maker would have — the data endpoint,
//! the region, a control-plane URL, a CA file, an AWS shared-credentials file or a bearer token —
//! and nothing of its own emulator runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use claimlink_core::{AwsClaimSource, ThingDirectory, ThingName};
use serde_json::Value;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_claimlink-harness"))
}

/// What `claimlink-harness emulator --out DIR` tells a client about itself.
struct ForeignEndpoint {
    control_plane: String,
    mqtt: String,
    region: String,
    ca_file: PathBuf,
    aws_credentials_file: PathBuf,
    bearer_token: String,
}

/// Reads an emulator's `--out` directory (the one place that knows its layout).
fn read_emulator_out(dir: &Path) -> ForeignEndpoint {
    let endpoints: Value =
        serde_json::from_slice(&std::fs::read(dir.join("endpoints.json")).expect("endpoints.json"))
            .expect("JSON");
    let text = |key: &str| endpoints[key].as_str().expect(key).to_owned();
    ForeignEndpoint {
        control_plane: text("control_plane"),
        mqtt: format!(
            "{}:{}",
            text("mqtt_host"),
            endpoints["mqtt_port"].as_u64().expect("mqtt_port")
        ),
        region: text("region"),
        ca_file: dir.join("ca.pem"),
        aws_credentials_file: dir.join("aws-credentials"),
        bearer_token: std::fs::read_to_string(dir.join("bearer-token"))
            .expect("bearer-token")
            .trim()
            .to_owned(),
    }
}

/// The foreign emulator process; killed when dropped.
struct Foreign {
    child: Child,
    dir: PathBuf,
    endpoint: ForeignEndpoint,
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_foreign(name: &str) -> Foreign {
    let dir = std::env::temp_dir().join(format!("claimlink-foreign-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut child = harness()
        .arg("emulator")
        .arg("--out")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("emulator starts");
    // endpoints.json is written last: its presence says the emulator is ready.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("endpoints.json").exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the emulator exited: {status}");
        }
        assert!(Instant::now() < deadline, "the emulator did not get ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    let endpoint = read_emulator_out(&dir);
    Foreign {
        child,
        dir,
        endpoint,
    }
}

/// `demo` against the foreign endpoint with claims from AWS, credentials from its shared-credentials
/// file only (the environment's AWS variables removed, HOME elsewhere).
/// `demo --json` against the foreign endpoint with claims from its (emulated) AWS control plane;
/// trust, credentials and the rest are the caller's.
fn demo_via_aws(foreign: &Foreign) -> Command {
    let e = &foreign.endpoint;
    let mut command = harness();
    command
        .args(["demo", "--json", "--interval-ms", "5"])
        .args(["--iot-endpoint", &e.mqtt, "--aws-region", &e.region])
        .args(["--aws-endpoint-url", &e.control_plane]);
    command
}

fn demo_with_aws(foreign: &Foreign, extra: &[&str]) -> (bool, Value, String) {
    let e = &foreign.endpoint;
    let out = demo_via_aws(foreign)
        .arg("--iot-ca")
        .arg(&e.ca_file)
        .args(extra)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("HOME", &foreign.dir)
        .env("AWS_SHARED_CREDENTIALS_FILE", &e.aws_credentials_file)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), summary, stderr)
}

fn things(summary: &Value) -> Vec<(String, String)> {
    summary["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            assert_eq!(d["outcome"], "provisioned", "{d}");
            let stages: Vec<&str> = d["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .filter_map(|s| s["stage"].as_str())
                .collect();
            assert_eq!(stages.last(), Some(&"ConfirmedByCloud"));
            (
                d["thing_name"].as_str().expect("thing").to_owned(),
                d["certificate_id"]
                    .as_str()
                    .expect("certificate")
                    .to_owned(),
            )
        })
        .collect()
}

/// The foreign account's registry, read over its SigV4 API with its credentials.
fn directory(foreign: &Foreign) -> AwsClaimSource {
    let e = &foreign.endpoint;
    let c = claimlink_harness::aws_chain::load_profile(&e.aws_credentials_file, "default")
        .expect("readable")
        .expect("keys");
    let emulator_credentials = claimlink_harness::emulator::TemporaryCredentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key.expose().to_owned(),
        session_token: c
            .session_token
            .map(|t| t.expose().to_owned())
            .unwrap_or_default(),
    };
    AwsClaimSource::builder(
        e.region.clone(),
        Arc::new(claimlink_harness::providers::CredentialsSequence::new(
            vec![emulator_credentials],
        )),
    )
    .endpoint_url(e.control_plane.clone())
    .http_config(claimlink_core::HttpConfig {
        extra_root_certificates_pem: vec![std::fs::read_to_string(&e.ca_file).expect("ca")],
        ..claimlink_core::HttpConfig::default()
    })
    .build()
    .expect("source")
}

#[tokio::test(flavor = "multi_thread")]
async fn devices_provision_against_a_foreign_endpoint_and_cleanup_deletes_only_what_the_run_made() {
    let foreign = start_foreign("aws");
    let registry = directory(&foreign);

    let (ok, summary, stderr) = demo_with_aws(&foreign, &["--devices", "2"]);
    assert!(ok, "{stderr}");
    let kept = things(&summary);
    assert_eq!(kept.len(), 2);
    for (thing, certificate) in &kept {
        assert!(thing.starts_with("claimlink-"), "{thing}");
        let described = registry
            .describe_thing(&ThingName::new(thing.clone()).expect("name"))
            .await
            .expect("DescribeThing")
            .expect("the thing is in the foreign account");
        assert!(described.has_active_certificate(certificate));
    }
    assert!(summary.get("cleanup").is_none());

    let (ok, summary, stderr) = demo_with_aws(&foreign, &["--devices", "1", "--cleanup"]);
    assert!(ok, "{stderr}");
    let cleaned = things(&summary);
    let (thing, certificate) = &cleaned[0];
    assert!(
        !kept.iter().any(|(t, _)| t == thing),
        "each run names its own things"
    );
    let lines: Vec<&str> = summary["cleanup"]
        .as_array()
        .expect("cleanup lines")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        lines,
        [
            format!("deleted thing {thing}"),
            format!("deleted certificate {certificate}")
        ]
    );
    assert!(registry
        .describe_thing(&ThingName::new(thing.clone()).expect("name"))
        .await
        .expect("DescribeThing")
        .is_none());
    // The first run's things are untouched.
    for (thing, _) in &kept {
        assert!(registry
            .describe_thing(&ThingName::new(thing.clone()).expect("name"))
            .await
            .expect("DescribeThing")
            .is_some());
    }
}

#[test]
fn devices_provision_against_a_foreign_endpoint_with_claims_from_the_makers_backend() {
    let foreign = start_foreign("backend");
    let e = &foreign.endpoint;
    let out = harness()
        .args(["demo", "--json", "--interval-ms", "5", "--devices", "1"])
        .args(["--iot-endpoint", &e.mqtt, "--backend-url", &e.control_plane])
        .arg("--iot-ca")
        .arg(&e.ca_file)
        .env("CLAIMLINK_TOKEN", &e.bearer_token)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(things(&summary).len(), 1);
}

#[test]
fn without_its_ca_the_foreign_endpoint_is_not_trusted() {
    // Nothing is hard-wired to an emulator's CA: by default only Amazon's roots are trusted, and the
    // foreign emulator's certificate does not chain to them.
    let foreign = start_foreign("untrusted");
    let e = &foreign.endpoint;
    let out = demo_via_aws(&foreign)
        .args(["--devices", "1"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("HOME", &foreign.dir)
        .env("AWS_SHARED_CREDENTIALS_FILE", &e.aws_credentials_file)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let outcome = summary["devices"][0]["outcome"].as_str().expect("outcome");
    assert!(outcome.contains("UnknownIssuer"), "{outcome}");
}

#[test]
fn options_that_do_not_go_together_are_refused_before_anything_runs() {
    let cases: [(&[&str], &str); 6] = [
        (
            &["demo", "--aws-region", "eu-west-1"],
            "give --iot-endpoint as well",
        ),
        (
            &["demo", "--iot-endpoint", "x.example:8883"],
            "--aws-region (AWS) or --backend-url",
        ),
        (
            &[
                "demo",
                "--iot-endpoint",
                "x.example",
                "--backend-url",
                "https://b.example",
                "--cleanup",
            ],
            "--cleanup needs --aws-region",
        ),
        (
            &[
                "demo",
                "--iot-endpoint",
                "x.example",
                "--aws-region",
                "eu-west-1",
                "--claim-validity-secs",
                "60",
            ],
            "AWS decides how long its claims are valid",
        ),
        (
            &[
                "chaos",
                "--iot-endpoint",
                "x.example",
                "--aws-region",
                "eu-west-1",
            ],
            "chaos cannot run against an external target",
        ),
        (
            &[
                "serve",
                "--iot-endpoint",
                "x.example",
                "--aws-region",
                "eu-west-1",
                "--cleanup",
            ],
            "--cleanup is for demo",
        ),
    ];
    for (args, expected) in cases {
        let out = harness()
            .args(args)
            .env_remove("CLAIMLINK_TOKEN")
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // A backend without its token in the environment.
    let out = harness()
        .args([
            "demo",
            "--iot-endpoint",
            "x.example",
            "--backend-url",
            "https://b.example",
        ])
        .env_remove("CLAIMLINK_TOKEN")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CLAIMLINK_TOKEN"));
}

#[test]
fn the_default_trust_is_amazons_roots_as_mozilla_ships_them() {
    use der::{Decode, Encode};
    use rustls_pki_types::pem::PemObject;
    let pem = claimlink_harness::external::AMAZON_ROOT_CAS;
    let certificates: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("PEM");
    assert_eq!(certificates.len(), 4);
    for der in &certificates {
        let cert = x509_cert::Certificate::from_der(der.as_ref()).expect("X.509");
        let subject = cert.tbs_certificate.subject.to_der().expect("subject");
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .expect("spki");
        // webpki-roots holds each anchor's subject and key without their outer SEQUENCE header.
        let listed = webpki_roots::TLS_SERVER_ROOTS.iter().any(|anchor| {
            subject.ends_with(anchor.subject.as_ref())
                && spki.ends_with(anchor.subject_public_key_info.as_ref())
                && subject.len() - anchor.subject.len() <= 4
        });
        assert!(listed, "{}", cert.tbs_certificate.subject);
    }
}

/// A `serve` process; killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn served_devices_provision_against_a_foreign_endpoint_for_an_app_with_its_own_claims() {
    use std::io::BufRead;
    let foreign = start_foreign("serve");
    let e = &foreign.endpoint;
    let mut child = harness()
        .args(["serve", "--json", "--devices", "1", "--wifi-join-ms", "10"])
        .args(["--iot-endpoint", &e.mqtt, "--aws-region", &e.region])
        .arg("--iot-ca")
        .arg(&e.ca_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let served = Served(child);
    // The first line is printed once every device serves.
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
    })
    .await
    .expect("joined")
    .expect("a line");
    let info: Value = serde_json::from_str(&line).expect("JSON");
    assert!(
        info.get("bearer_token").is_none(),
        "no emulator, no token of its own"
    );
    let device = &info["devices"][0];
    let serial = device["template_parameters"]["SerialNumber"]
        .as_str()
        .expect("serial")
        .to_owned();

    // The app: claims from the foreign endpoint's backend contract, the device over HTTP.
    let source = Arc::new(
        claimlink_core::BackendClaimSource::builder(
            e.control_plane.clone(),
            Arc::new(claimlink_harness::providers::TokenSequence::new(vec![e
                .bearer_token
                .clone()])),
        )
        .http_config(claimlink_core::HttpConfig {
            extra_root_certificates_pem: vec![std::fs::read_to_string(&e.ca_file).expect("ca")],
            ..claimlink_core::HttpConfig::default()
        })
        .build()
        .expect("source"),
    );
    let provisioner = claimlink_core::Provisioner::new(
        source,
        claimlink_core::ProvisionerConfig::new(
            claimlink_core::TemplateName::new("claimlink-demo").expect("template"),
            e.mqtt.clone(),
        ),
    );
    let link = Arc::new(
        claimlink_core::HttpLink::new(device["url"].as_str().expect("url"), Duration::from_secs(5))
            .expect("link"),
    );
    let session = claimlink_harness::testing::connect(&provisioner, link).await;
    let provisioned = session
        .provision(
            &claimlink_harness::testing::lab_wifi(),
            &claimlink_harness::testing::expected_thing_options(&serial),
            &claimlink_core::NoListener,
        )
        .await
        .expect("provisioned");
    assert_eq!(provisioned.thing_name, serial);
    let described = directory(&foreign)
        .describe_thing(&ThingName::new(serial).expect("name"))
        .await
        .expect("DescribeThing")
        .expect("in the foreign account");
    assert!(described.has_active_certificate(provisioned.certificate_id.as_deref().expect("id")));
    drop(served);
}

#[test]
fn credentials_come_from_the_environment_or_a_named_profile_of_the_config_file() {
    let foreign = start_foreign("chain");
    let e = &foreign.endpoint;
    let keys = claimlink_harness::aws_chain::load_profile(&e.aws_credentials_file, "default")
        .expect("readable")
        .expect("keys");
    // The emulator's `--out` key is a long-term access key (no session token), as an IAM user's is;
    // temporary credentials would carry one.
    let token = keys.session_token.as_ref().map(|t| t.expose().to_owned());
    let demo = || {
        let mut command = demo_via_aws(&foreign);
        command
            .args(["--devices", "1"])
            .arg("--iot-ca")
            .arg(&e.ca_file)
            .env("HOME", &foreign.dir)
            .env_remove("AWS_SHARED_CREDENTIALS_FILE")
            .env_remove("AWS_CONFIG_FILE")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN");
        command
    };
    // The environment.
    let mut from_env = demo();
    from_env
        .env("AWS_ACCESS_KEY_ID", &keys.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", keys.secret_access_key.expose());
    if let Some(token) = &token {
        from_env.env("AWS_SESSION_TOKEN", token);
    }
    let out = from_env.output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `[profile maker]` of the config file named by AWS_CONFIG_FILE, chosen by AWS_PROFILE.
    let config = foreign.dir.join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[default]\nregion = {}\n\n[profile maker]\naws_access_key_id = {}\naws_secret_access_key = {}\n{}",
            e.region,
            keys.access_key_id,
            keys.secret_access_key.expose(),
            token
                .as_ref()
                .map(|t| format!("aws_session_token = {t}\n"))
                .unwrap_or_default()
        ),
    )
    .expect("written");
    let out = demo()
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_PROFILE", "maker")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A profile the chain cannot read is named, and nothing provisions.
    std::fs::write(&config, "[profile sso]\nsso_session = corp\n").expect("written");
    let out = demo()
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_PROFILE", "sso")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let outcome = summary["devices"][0]["outcome"].as_str().expect("outcome");
    assert!(outcome.contains("uses sso_session"), "{outcome}");
}
