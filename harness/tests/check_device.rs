//! `check-device` as a person runs it, against `serve-device` (both the real CLI binary, over HTTP on
//! 127.0.0.1): every case passes against the simulator, and against each deliberately broken variant
//! the case checking the broken rule fails, naming what is wrong, and the exit code is 1.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use claimlink_harness::device::broken::BrokenBehaviour;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_claimlink-harness"))
}

/// A `serve-device` process, killed when dropped.
struct ServedDevice {
    child: Child,
    url: String,
    // Kept open: serve-device prints more lines, and a closed pipe would end it.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl ServedDevice {
    fn start(broken: Option<BrokenBehaviour>) -> Self {
        Self::start_with(broken, &[])
    }

    fn start_with(broken: Option<BrokenBehaviour>, more: &[&str]) -> Self {
        let mut command = harness();
        command.args(["serve-device", "--port", "0"]).args(more);
        if let Some(b) = broken {
            command.args(["--danger-broken", b.name()]);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve-device starts");
        // The first line names the URL once the server listens: waiting for it is waiting for a state.
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stdout = BufReader::new(stdout);
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .expect("serve-device prints its address");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {first:?}"))
            .to_owned();
        Self {
            child,
            url,
            _stdout: stdout,
        }
    }

    fn check_with(&self, more: &[&str]) -> Output {
        harness()
            .args(["check-device", "--http", &self.url])
            .args(more)
            .env("CLAIMLINK_DEVICE_PASSWORD", "abcd1234")
            .env("CLAIMLINK_WIFI_PASSPHRASE", "correct horse battery")
            .output()
            .expect("check-device runs")
    }
}

impl Drop for ServedDevice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line of `case` in the checker's output.
fn line_of<'a>(stdout: &'a str, case: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(case))
        .unwrap_or_else(|| panic!("no line for {case} in:\n{stdout}"))
}

const CASES: [&str; 15] = [
    "proto-ver",
    "wrong-password",
    "handshake",
    "status-before",
    "scan",
    "claim-transfer",
    "status-after",
    "abort",
    "begin-while-held",
    "wrong-sha256",
    "corrupted-chunk",
    "oversize",
    "dropped-session",
    "reset-reprov",
    "wifi-retry",
];

#[test]
fn every_case_passes_against_the_simulator() {
    let device = ServedDevice::start(None);
    // With a network the simulated device can join: the Wi-Fi retry case runs too, last.
    let out = device.check_with(&["--wifi-ssid", "claimlink-lab"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for case in CASES {
        assert!(line_of(&stdout, case).starts_with("PASS "), "{stdout}");
    }
    assert!(stdout.contains("15 cases: 15 passed, 0 failed"), "{stdout}");
}

/// The SoftAP link never goes through a proxy: with every proxy variable of the environment pointing
/// at a port where nothing listens, the checker still reaches the device (reqwest would otherwise send
/// `http://<device>` to the proxy, which on a phone means 192.168.4.1 is never reached).
#[test]
fn the_device_link_ignores_proxies_in_the_environment() {
    let device = ServedDevice::start(None);
    let dead = "http://127.0.0.1:9";
    let out = harness()
        .args(["check-device", "--http", &device.url])
        .env("CLAIMLINK_DEVICE_PASSWORD", "abcd1234")
        .env("http_proxy", dead)
        .env("HTTP_PROXY", dead)
        .env("ALL_PROXY", dead)
        .env("all_proxy", dead)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("check-device runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        line_of(&stdout, "handshake").starts_with("PASS "),
        "{stdout}"
    );
    assert!(out.status.success(), "{stdout}");
}

/// The C firmware component (firmware/esp-idf/claimlink_device) keeps the contract: every case
/// passes against `serve-device --firmware <its host program>`, the cloud case included (the
/// component provisions itself on the checker's emulator over MQTT with libmosquitto).
#[test]
fn every_case_passes_against_the_c_firmware() {
    let host = claimlink_harness::testing::c_firmware_host();
    let host = host.to_str().expect("utf-8 path");
    let dir = ScratchDir::new("c-firmware");
    let ca = dir.0.join("emulator-ca.pem");
    let ca = ca.to_str().expect("utf-8 path");
    let device = ServedDevice::start_with(None, &["--firmware", host, "--trust-ca", ca]);
    let out = device.check_with(&["--wifi-ssid", "claimlink-lab", "--cloud", "--cloud-ca", ca]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for case in CASES {
        assert!(line_of(&stdout, case).starts_with("PASS "), "{stdout}");
    }
    assert!(
        line_of(&stdout, "cloud").contains("ACTIVE and attached"),
        "{stdout}"
    );
    assert!(stdout.contains("16 cases: 16 passed, 0 failed"), "{stdout}");
}

/// One broken variant: the case that checks its rule fails with a reason naming what is wrong.
fn assert_caught(broken: BrokenBehaviour, case: &str, reason: &str) {
    let device = ServedDevice::start(Some(broken));
    let out = device.check_with(&["--wifi-ssid", "claimlink-lab"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{broken}: {stdout}");
    let line = line_of(&stdout, case);
    assert!(
        line.starts_with("FAIL ") && line.contains(reason),
        "{broken}: expected {case} to fail with {reason:?}, got:\n{stdout}"
    );
}

#[test]
fn proto_ver_without_aws_caps_is_caught() {
    assert_caught(
        BrokenBehaviour::ProtoVerWithoutAwsCaps,
        "proto-ver",
        "it must list \"claim\" and \"status\"",
    );
}

#[test]
fn a_wrong_aws_version_is_caught() {
    assert_caught(
        BrokenBehaviour::WrongAwsVersion,
        "proto-ver",
        "aws extension is version 2",
    );
}

#[test]
fn a_device_that_does_not_refuse_a_wrong_proof_is_caught() {
    assert_caught(
        BrokenBehaviour::AcceptsWrongProof,
        "wrong-password",
        "the device did not refuse a wrong proof",
    );
}

#[test]
fn a_status_that_claims_a_claim_it_does_not_hold_is_caught() {
    assert_caught(
        BrokenBehaviour::StatusClaimsWithoutClaim,
        "status-before",
        "ClaimReceived (expected Idle",
    );
}

#[test]
fn a_scan_without_results_is_caught() {
    assert_caught(BrokenBehaviour::ScanResultsEmpty, "scan", "scan failed");
}

#[test]
fn miscounted_chunks_are_caught() {
    assert_caught(
        BrokenBehaviour::MiscountsChunks,
        "claim-transfer",
        "the transfer failed",
    );
}

#[test]
fn a_reset_refused_after_a_failure_is_caught() {
    assert_caught(
        BrokenBehaviour::RefusesResetAfterFailure,
        "wifi-retry",
        "Reset after the failure was not accepted",
    );
}

#[test]
fn a_wrong_password_given_to_the_checker_fails_the_handshake() {
    // The handshake cases fail too: the checker with the wrong password for the device.
    let device = ServedDevice::start(None);
    let out = harness()
        .args(["check-device", "--http", &device.url])
        .env("CLAIMLINK_DEVICE_PASSWORD", "not-the-password")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = line_of(&stdout, "handshake");
    assert!(
        line.starts_with("FAIL ") && line.contains("refused the password"),
        "{stdout}"
    );
}

#[test]
fn a_status_that_hides_the_claim_is_caught() {
    assert_caught(
        BrokenBehaviour::StatusHidesClaim,
        "status-after",
        "Idle after a committed claim (expected ClaimReceived)",
    );
}

#[test]
fn accepting_a_wrong_sha256_is_caught() {
    assert_caught(
        BrokenBehaviour::AcceptsWrongSha,
        "wrong-sha256",
        "committed a bundle with a wrong SHA-256",
    );
}

#[test]
fn keeping_a_refused_claim_is_caught() {
    assert_caught(
        BrokenBehaviour::KeepsRefusedClaim,
        "corrupted-chunk",
        "the bytes received must be gone",
    );
}

#[test]
fn an_abort_that_keeps_the_claim_is_caught() {
    assert_caught(
        BrokenBehaviour::AbortKeepsClaim,
        "abort",
        "after Abort of a committed claim aws-status says ClaimReceived",
    );
}

#[test]
fn a_begin_that_keeps_the_held_claim_is_caught() {
    assert_caught(
        BrokenBehaviour::BeginKeepsHeldClaim,
        "begin-while-held",
        "the held claim was kept",
    );
}

#[test]
fn accepting_an_oversize_bundle_is_caught() {
    assert_caught(
        BrokenBehaviour::AcceptsOversizeBundle,
        "oversize",
        "(expected TooLarge)",
    );
}

#[test]
fn a_partial_claim_kept_after_a_dropped_session_is_caught() {
    assert_caught(
        BrokenBehaviour::KeepsPartialClaimAfterDrop,
        "dropped-session",
        "on the next session: a chunk continuing the transfer",
    );
}

#[test]
fn a_reset_that_wipes_the_claim_is_caught() {
    assert_caught(
        BrokenBehaviour::ResetWipesClaim,
        "reset-reprov",
        "Reset must keep the claim",
    );
}

#[test]
fn every_broken_behaviour_has_a_row_above() {
    // A new variant needs its own test row: this list is the rows' list.
    let rows = [
        BrokenBehaviour::ProtoVerWithoutAwsCaps,
        BrokenBehaviour::WrongAwsVersion,
        BrokenBehaviour::AcceptsWrongProof,
        BrokenBehaviour::StatusClaimsWithoutClaim,
        BrokenBehaviour::ScanResultsEmpty,
        BrokenBehaviour::MiscountsChunks,
        BrokenBehaviour::StatusHidesClaim,
        BrokenBehaviour::AcceptsWrongSha,
        BrokenBehaviour::KeepsRefusedClaim,
        BrokenBehaviour::AbortKeepsClaim,
        BrokenBehaviour::BeginKeepsHeldClaim,
        BrokenBehaviour::AcceptsOversizeBundle,
        BrokenBehaviour::KeepsPartialClaimAfterDrop,
        BrokenBehaviour::ResetWipesClaim,
        BrokenBehaviour::RefusesResetAfterFailure,
        BrokenBehaviour::DoneWithoutCertificate,
    ];
    assert_eq!(rows, BrokenBehaviour::ALL);
}

/// A directory of its own under the system's temp dir, removed when dropped.
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "claimlink-check-device-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `--cloud`: the device (told to trust the CA file the checker writes) provisions itself on the
/// embedded emulator through the SDK's Provisioner; the `cloud` case passes only when the emulator
/// shows the thing with its certificate ACTIVE.
#[test]
fn the_cloud_case_passes_when_the_device_provisions_itself_on_the_emulator() {
    let dir = ScratchDir::new("cloud-pass");
    let ca = dir.0.join("emulator-ca.pem");
    let ca = ca.to_str().expect("utf-8 path");
    // serve-device starts first: the CA file does not exist yet, it is read when the cloud half starts.
    let device = ServedDevice::start_with(None, &["--trust-ca", ca]);
    let out = device.check_with(&["--wifi-ssid", "claimlink-lab", "--cloud", "--cloud-ca", ca]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = line_of(&stdout, "cloud");
    assert!(
        line.starts_with("PASS ") && line.contains("ACTIVE and attached"),
        "{stdout}"
    );
    assert!(stdout.contains("16 cases: 16 passed, 0 failed"), "{stdout}");
}

/// A device that cannot complete the cloud half (here it has no usable CA: it cannot trust the
/// emulator's MQTT broker) fails the `cloud` case with the SDK's typed error, and the exit code is 1.
#[test]
fn a_device_that_fails_the_cloud_half_fails_the_cloud_case() {
    let dir = ScratchDir::new("cloud-fail");
    let ca = dir.0.join("emulator-ca.pem");
    let elsewhere = dir.0.join("not-the-emulator-ca.pem");
    let device = ServedDevice::start_with(
        None,
        &["--trust-ca", elsewhere.to_str().expect("utf-8 path")],
    );
    assert_only_the_cloud_case_fails(&device, &ca);
}

/// A device that says `Done` without a certificate (and without having run its cloud half) fails the
/// `cloud` case: the SDK does not take its word for it.
#[test]
fn a_device_reporting_done_without_a_certificate_fails_the_cloud_case() {
    let dir = ScratchDir::new("cloud-lie");
    let ca = dir.0.join("emulator-ca.pem");
    let device = ServedDevice::start(Some(BrokenBehaviour::DoneWithoutCertificate));
    assert_only_the_cloud_case_fails(&device, &ca);
}

/// `check-device --cloud` (the emulator's CA written to `ca`) against `device`: the `cloud` case
/// FAILs with the SDK's typed error, every other case still passes, and the exit code is 1.
fn assert_only_the_cloud_case_fails(device: &ServedDevice, ca: &std::path::Path) {
    let out = device.check_with(&[
        "--wifi-ssid",
        "claimlink-lab",
        "--cloud",
        "--cloud-ca",
        ca.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = line_of(&stdout, "cloud");
    assert!(
        line.starts_with("FAIL ") && line.contains("the SDK reported "),
        "{stdout}"
    );
    assert!(stdout.contains("16 cases: 15 passed, 1 failed"), "{stdout}");
}

#[test]
fn without_a_password_it_says_how_to_give_one() {
    let out = harness()
        .args(["check-device", "--http", "http://127.0.0.1:9"])
        .env_remove("CLAIMLINK_DEVICE_PASSWORD")
        .env_remove("CLAIMLINK_DEVICE_POP")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--password-file"), "{err}");
}

#[test]
fn an_unknown_broken_behaviour_is_one_clear_line() {
    let out = harness()
        .args(["serve-device", "--danger-broken", "bogus"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown broken behaviour \"bogus\""), "{err}");
}

/// The checker as a library, in process: a Sec1 device over HTTP (the handshake cases run Sec1 with
/// the right and a wrong PoP) and a Sec2 device over the simulated BLE link, reopened for each
/// session; every case passes on both.
#[test]
fn every_case_passes_on_sec1_over_http_and_on_simulated_ble() {
    use std::sync::Arc;
    use std::time::Duration;

    use claimlink_core::{DeviceCredentials, SecretString};
    use claimlink_harness::check_device::{self, CheckOptions, HttpOpener, ReconnectOpener};
    use claimlink_harness::device::security::DeviceSecurity;
    use claimlink_harness::device::{SimDevice, SimDeviceConfig};
    use claimlink_harness::testing::SimDeviceBuilder;

    let runtime = claimlink_harness::testing::multi_thread_runtime();
    runtime.block_on(async {
        let sec1 = Arc::new(SimDevice::new(SimDeviceConfig {
            security: DeviceSecurity::Sec1 {
                pop: Some("sec1-pop".into()),
            },
            ..SimDeviceConfig::default()
        }));
        let server = claimlink_harness::device::http::HttpDevice::serve(sec1)
            .await
            .expect("serves");
        let opener = HttpOpener::new(&server.base_url(), Duration::from_secs(10)).expect("url");
        let credentials = DeviceCredentials::pop(SecretString::new("sec1-pop".into()));
        let options = CheckOptions::new(credentials);
        let report = check_device::check(Arc::new(opener), options, |_| {}).await;
        assert_eq!(report.failed(), 0, "Sec1 over HTTP: {report:#?}");
        assert_eq!(report.cases.len(), 14);

        let (_device, link) = SimDeviceBuilder::from_config(SimDeviceConfig::default()).build();
        let opener = ReconnectOpener::new(link);
        let credentials = DeviceCredentials::password(SecretString::new("abcd1234".into()));
        let options = CheckOptions::new(credentials);
        let report = check_device::check(Arc::new(opener), options, |_| {}).await;
        assert_eq!(report.failed(), 0, "Sec2 over BLE: {report:#?}");
        let oversize = report.outcome("oversize").expect("ran");
        assert!(
            matches!(&oversize.result, Ok(seen) if seen.contains("not checked over BLE")),
            "{oversize}"
        );
    });
}

/// `accepts-wrong-proof` on Sec1 (the CLI rows run Sec2): the device answers a wrong PoP's command 1
/// with its verify data, and `wrong-password` fails naming it.
#[test]
fn a_sec1_device_that_does_not_refuse_a_wrong_pop_is_caught() {
    use std::sync::Arc;
    use std::time::Duration;

    use claimlink_core::{DeviceCredentials, SecretString};
    use claimlink_harness::check_device::{self, CheckOptions, HttpOpener};
    use claimlink_harness::device::security::DeviceSecurity;
    use claimlink_harness::device::{SimDevice, SimDeviceConfig};

    let runtime = claimlink_harness::testing::multi_thread_runtime();
    runtime.block_on(async {
        let device = Arc::new(SimDevice::new(SimDeviceConfig {
            security: DeviceSecurity::Sec1 {
                pop: Some("sec1-pop".into()),
            },
            danger_broken: vec![BrokenBehaviour::AcceptsWrongProof],
            ..SimDeviceConfig::default()
        }));
        let server = claimlink_harness::device::http::HttpDevice::serve(device)
            .await
            .expect("serves");
        let opener = HttpOpener::new(&server.base_url(), Duration::from_secs(10)).expect("url");
        let credentials = DeviceCredentials::pop(SecretString::new("sec1-pop".into()));
        let report =
            check_device::check(Arc::new(opener), CheckOptions::new(credentials), |_| {}).await;
        let line = report.outcome("wrong-password").expect("ran");
        assert!(
            matches!(&line.result, Err(why) if why.contains("the device did not refuse a wrong proof")),
            "{line}"
        );
        // Only that case: the right PoP still works.
        assert_eq!(report.failed(), 1, "{report:#?}");
    });
}
