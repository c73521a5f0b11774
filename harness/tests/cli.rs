//! The CLI as a person runs it.

use std::process::Command;

fn harness() -> Command {
    Command::new(env!("CARGO_BIN_EXE_claimlink-harness"))
}

#[test]
fn demo_json_provisions_every_device_and_reports_its_stages() {
    let out = harness()
        .args(["demo", "--json", "--devices", "3", "--interval-ms", "5"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let devices = summary["devices"].as_array().expect("devices");
    assert_eq!(devices.len(), 3);
    for d in devices {
        assert_eq!(d["outcome"], "provisioned", "{d}");
        assert_eq!(d["certificate_id"].as_str().map(str::len), Some(64));
        let stages: Vec<&str> = d["stages"]
            .as_array()
            .expect("stages")
            .iter()
            .filter_map(|s| s["stage"].as_str())
            .collect();
        assert_eq!(stages.first(), Some(&"Connecting"));
        assert_eq!(stages.last(), Some(&"ConfirmedByCloud"));
        assert!(d["claim_time_left_at_handover_ms"].as_u64().unwrap_or(0) > 290_000);
    }
}

#[test]
fn demo_reports_a_missing_network_draws_a_timeline_and_writes_the_support_report() {
    let dir = std::env::temp_dir().join(format!("claimlink-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let svg = dir.join("timeline.svg");
    let report_file = dir.join("report.json");
    let out = harness()
        .args([
            "demo",
            "--json",
            "--wifi-fault",
            "not-found",
            "--interval-ms",
            "5",
            "--timeline",
        ])
        .arg(&svg)
        .arg("--report")
        .arg(&report_file)
        .output()
        .expect("runs");
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let outcome = summary["devices"][0]["outcome"].as_str().unwrap_or("");
    assert!(
        outcome.contains("cannot find the Wi-Fi network"),
        "{outcome}"
    );
    let drawn = std::fs::read_to_string(&svg).expect("timeline written");
    assert!(drawn.starts_with("<svg") && drawn.contains("PROV_0000"));
    // One device: the report itself, with the failure's stable code and the link the run used.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).expect("report written"))
            .expect("the report is JSON");
    assert_eq!(report["outcome"]["result"], "failure");
    assert_eq!(report["outcome"]["code"], "CL-202");
    assert_eq!(report["link"]["mtu"], 185);
    assert!(report["runs"][0]["stages"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["stage"] == "WifiFailed")));
    // The demo's device password never reaches the report.
    assert!(!report.to_string().contains("abcd1234"));
}

#[test]
fn a_bad_option_is_one_clear_line() {
    let out = harness()
        .args(["demo", "--wifi-fault", "bogus"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid value 'bogus'"), "{err}");
}

#[test]
fn scan_without_bluetooth_is_one_clear_line() {
    // Without the `ble` feature the binary says how to get it; with it, on a machine without an
    // adapter (or BlueZ/D-Bus), it says that. One line either way, never a stack of errors.
    let out = harness()
        .args(["scan", "--seconds", "1"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("Bluetooth"), "{err}");
}

#[test]
fn provision_takes_no_secret_on_the_command_line() {
    let common = [
        "provision",
        "--ssid",
        "lab",
        "--backend-url",
        "https://127.0.0.1:9/",
        "--template",
        "t",
        "--iot-endpoint",
        "example-ats.iot.eu-west-1.amazonaws.com",
    ];
    // The old `--qr JSON` form is gone: a PoP on the command line is readable by other users.
    let out = harness()
        .args(common)
        .args([
            "--qr",
            r#"{"ver":"v1","name":"PROV_1","pop":"pop-on-argv","transport":"ble"}"#,
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--qr"), "{err}");

    // From a file it is read, and never echoed, whatever fails next (no token, no adapter, no
    // Bluetooth in this build). Its own directory: the tests run in parallel in one process.
    let dir = std::env::temp_dir().join(format!("claimlink-cli-qr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let qr = dir.join("qr.json");
    std::fs::write(
        &qr,
        r#"{"ver":"v1","name":"PROV_1","pop":"pop-in-file-1234","transport":"ble"}"#,
    )
    .expect("write");
    let out = harness()
        .args(common)
        .arg("--qr-file")
        .arg(&qr)
        .env("CLAIMLINK_TOKEN", "tok_cli_test_token_value")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(all.trim().lines().count(), 1, "{all}");
    assert!(
        !all.contains("pop-in-file-1234") && !all.contains("tok_cli_test"),
        "{all}"
    );

    // A missing file is named.
    let out = harness()
        .args(common)
        .args(["--qr-file", "/nonexistent/qr.json"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = if cfg!(feature = "ble") {
        "/nonexistent/qr.json"
    } else {
        "Bluetooth"
    };
    assert!(err.contains(expected), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the harness with `args` and returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = harness().args(args).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn out_of_range_values_are_refused_before_anything_runs() {
    for (args, says) in [
        (&["demo", "--devices", "0"][..], "--devices"),
        (&["serve", "--devices", "0"][..], "--devices"),
        (&["demo", "--mtu", "0"][..], "--mtu"),
        (&["demo", "--mtu", "5"][..], "--mtu"),
        (&["demo", "--mtu", "22"][..], "--mtu"),
        (&["demo", "--mtu", "518"][..], "--mtu"),
        (&["demo", "--mtu", "65535"][..], "--mtu"),
        (&["demo", "--interval-ms", "0"][..], "--interval-ms"),
        (
            &["demo", "--clock-skew-secs", "9223372036854775807"][..],
            "--clock-skew-secs",
        ),
        (
            &["demo", "--clock-skew-secs", "-9223372036854775808"][..],
            "--clock-skew-secs",
        ),
        (
            &["demo", "--claim-validity-secs", "18446744073709551615"][..],
            "--claim-validity-secs",
        ),
        (
            &["demo", "--claim-validity-secs", "0"][..],
            "--claim-validity-secs",
        ),
        (&["bench", "--devices", "100,0"][..], "--devices"),
    ] {
        let (ok, _, err) = run(args);
        assert!(!ok, "{args:?} is refused");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn unwritable_paths_fail_at_once_and_name_the_path() {
    let (ok, _, err) = run(&["demo", "--timeline", "/proc/nope/t.svg"]);
    assert!(!ok);
    assert!(err.contains("/proc/nope/t.svg"), "{err}");
    let (ok, _, err) = run(&["emulator", "--out", "/proc/nope"]);
    assert!(!ok);
    assert!(err.contains("/proc/nope"), "{err}");
    // A port already in use is named.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let (ok, _, err) = run(&["serve-device", "--port", &port]);
    assert!(!ok);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[test]
fn serve_refuses_reference_backend_options_that_do_not_fit() {
    // (bindings/python/test_reference_backend.py runs `serve --backend reference` end to end.)
    for (args, says) in [
        (
            &["serve", "--backend-database", "postgres://u@127.0.0.1/db"][..],
            "--backend-database goes with --backend reference",
        ),
        (&["serve", "--backend", "lambda"][..], "--backend"),
        (
            &[
                "serve",
                "--backend",
                "reference",
                "--iot-endpoint",
                "iot.example.com",
                "--aws-region",
                "eu-west-3",
            ][..],
            "--backend reference runs on the embedded emulator only",
        ),
    ] {
        let (ok, out, err) = run(args);
        assert!(!ok && out.is_empty(), "{args:?} is refused: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn help_says_what_runs_without_a_command_and_how_to_log() {
    let (ok, out, _) = run(&["--help"]);
    assert!(ok);
    assert!(out.contains("Without a command, runs `demo`"), "{out}");
    assert!(out.contains("CLAIMLINK_LOG"), "{out}");
}

#[test]
fn many_devices_end_in_a_compact_summary() {
    let (ok, out, err) = run(&["demo", "--devices", "30", "--interval-ms", "1"]);
    assert!(ok, "{err}");
    let summary = out
        .split_once("30 devices:")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("a summary: {out}"));
    assert!(summary.contains("    30  provisioned"), "{summary}");
    assert!(summary.contains("time to online: p50 "), "{summary}");
    assert!(summary.contains("least claim time left: "), "{summary}");
    // No line per device (the progress lines name none either, past a screenful).
    assert!(!out.contains("PROV_001D"), "{out}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {err}"
    );
}

#[test]
fn demo_runs_the_c_firmware_component_on_its_devices() {
    let host = claimlink_harness::testing::c_firmware_host();
    let host = host.to_str().expect("utf-8 path");
    let (ok, out, err) = run(&[
        "demo",
        "--firmware",
        host,
        "--devices",
        "2",
        "--interval-ms",
        "5",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("device firmware: "), "{out}");
    assert!(out.matches("provisioned").count() >= 2, "{out}");

    let (ok, _, err) = run(&["demo", "--firmware", "/nonexistent/firmware"]);
    assert!(!ok);
    assert!(
        err.contains("--firmware /nonexistent/firmware: not `rust`, `c`, or a program that exists"),
        "{err}"
    );
}

/// The stages each device of a `demo --json` run went through, after checking it was provisioned.
fn provisioned_stages(summary: &serde_json::Value) -> Vec<Vec<String>> {
    let devices = summary["devices"].as_array().expect("devices");
    devices
        .iter()
        .map(|d| {
            assert_eq!(d["outcome"], "provisioned", "{d}");
            d["stages"]
                .as_array()
                .expect("stages")
                .iter()
                .filter_map(|s| s["stage"].as_str().map(str::to_owned))
                .collect()
        })
        .collect()
}

#[test]
fn demo_over_softap_prepares_the_claim_and_confirms_once_the_phone_is_back_online() {
    let (ok, out, err) = run(&["demo", "--json", "--transport", "softap", "--devices", "2"]);
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(summary["settings"]["transport"], "softap");
    for stages in provisioned_stages(&summary) {
        // The claim came before the session (no request on the access point), and the confirmation
        // waited for the phone to leave the access point and rejoin its network.
        assert!(!stages.iter().any(|s| s == "ClaimRequested"), "{stages:?}");
        let waiting = stages
            .iter()
            .position(|s| s == "WaitingForNetwork")
            .unwrap_or_else(|| panic!("no wait for the network: {stages:?}"));
        assert_eq!(stages[waiting + 1..], ["ConfirmedByCloud"], "{stages:?}");
    }

    // A phone that keeps its internet on the access point (mobile data) never waits.
    let (ok, out, err) = run(&[
        "demo",
        "--json",
        "--transport",
        "softap",
        "--phone-online-on-ap",
    ]);
    assert!(ok, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    for stages in provisioned_stages(&summary) {
        assert!(
            !stages.iter().any(|s| s == "WaitingForNetwork"),
            "{stages:?}"
        );
        assert_eq!(stages.last().map(String::as_str), Some("ConfirmedByCloud"));
    }

    // The switch means nothing over BLE: refused, not ignored.
    let (ok, _, err) = run(&["demo", "--phone-online-on-ap"]);
    assert!(!ok);
    assert!(err.contains("--phone-online-on-ap"), "{err}");
}
