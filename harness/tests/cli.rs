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
