//! The support report of a real session against the emulator and the simulated device: a run refused
//! for its Wi-Fi passphrase, then one that succeeds, then one AWS refuses — each with its stages and
//! times, the claim's time left, the link's counters, the device's capabilities, and the outcome with
//! its stable code and the cloud's own words; and the codes, message table and report of a failure as
//! the apps get them. (That reports hold no secret is tests/secrets.rs.)

use claimlink::ProvisioningFailure;
use claimlink_core::{NoListener, WifiCredentials};
use claimlink_harness::testing::{self, SimDeviceBuilder};
use serde_json::Value;

fn stages(run: &Value) -> Vec<&str> {
    run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["stage"].as_str().expect("name"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_reports_every_run_with_its_stages_link_and_outcome() {
    let world = testing::quick_world().await;
    let (_device, link) = SimDeviceBuilder::in_world(&world, 41).build();
    let session = testing::connect(&world.provisioner, link).await;
    let wrong = WifiCredentials::new("claimlink-lab", "not the passphrase".into()).expect("wifi");
    session
        .provision(&wrong, &testing::serial_options("SN-REPORT"), &NoListener)
        .await
        .expect_err("wrong passphrase");
    let done = session
        .provision(
            &testing::lab_wifi(),
            &testing::serial_options("SN-REPORT"),
            &NoListener,
        )
        .await
        .expect("provisioned");

    let report: Value =
        serde_json::from_str(&session.support_report().await.to_json()).expect("JSON");
    assert_eq!(report["format"], 1);
    assert_eq!(report["sdk_version"], env!("CARGO_PKG_VERSION"));
    assert!(report["session_started_unix_ms"].as_u64().expect("start") > 1_600_000_000_000);
    let connect: Vec<&str> = report["connect_stages"]
        .as_array()
        .expect("connect stages")
        .iter()
        .map(|s| s["stage"].as_str().expect("name"))
        .collect();
    assert_eq!(connect, ["Connecting", "Securing"]);

    let device = &report["device"];
    assert_eq!(device["security"], "Sec2");
    assert!(device["aws_version"].is_string(), "{device}");
    assert!(device["aws_capabilities"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));

    let link = &report["link"];
    assert!(
        link["description"]
            .as_str()
            .is_some_and(|d| d.contains("ble")),
        "{link}"
    );
    assert!(link["mtu"].as_u64().is_some(), "{link}");
    assert!(link["exchanges"].as_u64().expect("exchanges") > 5, "{link}");
    assert!(link["bytes_sent"].as_u64().expect("sent") > 0);
    assert!(link["bytes_received"].as_u64().expect("received") > 0);
    assert_eq!(link["connects"], 1, "{link}");
    assert_eq!(link["failed_exchanges"], 0, "{link}");

    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    let failed = &runs[0]["outcome"];
    assert_eq!(failed["result"], "failure");
    assert_eq!(failed["code"], "CL-201");
    assert_eq!(failed["error"], "the Wi-Fi network refused the passphrase");
    assert!(failed["message"]
        .as_str()
        .is_some_and(|m| m.contains("password")));
    assert!(
        stages(&runs[0]).contains(&"WifiFailed"),
        "{:?}",
        stages(&runs[0])
    );

    let run = &runs[1];
    assert_eq!(run["outcome"]["result"], "success");
    assert_eq!(run["outcome"]["thing_name"], done.thing_name.as_str());
    assert_eq!(
        run["outcome"]["certificate_id"].as_str(),
        done.certificate_id.as_deref()
    );
    assert_eq!(stages(run).last(), Some(&"ConfirmedByCloud"));
    assert!(run["started_ms"].as_u64() >= runs[0]["started_ms"].as_u64());
    // The times go forward, and the claim's time left is there from the first stage that has a claim.
    let times: Vec<u64> = run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| s["elapsed_ms"].as_u64().expect("elapsed"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let sent = run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["stage"] == "ClaimSent")
        .expect("ClaimSent");
    assert!(sent["claim_time_left_ms"].as_u64().expect("time left") > 0);
    assert_eq!(report["outcome"], run["outcome"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_by_aws_is_reported_in_its_own_words() {
    let world = testing::quick_world().await;
    world
        .emulator
        .put_template(testing::template_with_thing_group(
            testing::TEMPLATE,
            "missing-group",
        ));
    let (_device, link) = SimDeviceBuilder::in_world(&world, 42).build();
    let session = testing::connect(&world.provisioner, link).await;
    let err = session
        .provision(
            &testing::lab_wifi(),
            &testing::serial_options("SN-REPORT-REJ"),
            &NoListener,
        )
        .await
        .expect_err("rejected");
    let report: Value =
        serde_json::from_str(&session.support_report().await.to_json()).expect("JSON");
    let outcome = &report["outcome"];
    assert_eq!(outcome["code"], "CL-403");
    assert_eq!(outcome["error"], err.to_string());
    let cloud = &outcome["cloud"];
    assert_eq!(cloud["step"], "RegisterThingRejected");
    assert_eq!(cloud["status_code"], 400);
    assert_eq!(cloud["error_code"], "InvalidParameters");
    assert!(cloud["error_message"]
        .as_str()
        .is_some_and(|m| m.contains("missing-group")));
}

/// The message table has one row per code, and each failure's report names its code, its message,
/// its sentence and (for a refusal by AWS) the cloud's own words.
#[test]
fn failures_have_stable_codes_messages_and_a_report() {
    let table = claimlink::failure_messages();
    assert_eq!(table.len(), claimlink_core::FailureCode::ALL.len());
    assert_eq!(table[0].code, "CL-101");
    assert_eq!(ProvisioningFailure::WrongDevicePassword.code(), "CL-101");
    assert_eq!(
        ProvisioningFailure::WrongDevicePassword.sentence(),
        "the device refused the password"
    );
    let refused = ProvisioningFailure::CloudRejected {
        step: claimlink::CloudStep::RegisterThingRejected,
        status_code: 400,
        error_code: "InvalidRequest".into(),
        error_message: "hook refused SN-9".into(),
        thing_name: None,
        certificate_id: Some("cafe".into()),
    };
    let report: serde_json::Value =
        serde_json::from_str(&refused.support_report()).expect("the report is JSON");
    assert_eq!(report["sdk_version"], claimlink::claimlink_version());
    let outcome = &report["outcome"];
    assert_eq!(outcome["result"], "failure");
    assert_eq!(outcome["code"], "CL-403");
    assert_eq!(outcome["message"], refused.code_message());
    assert_eq!(outcome["error"], refused.sentence());
    assert_eq!(outcome["cloud"]["step"], "RegisterThingRejected");
    assert_eq!(outcome["cloud"]["status_code"], 400);
    assert_eq!(outcome["cloud"]["error_code"], "InvalidRequest");
    assert_eq!(outcome["cloud"]["error_message"], "hook refused SN-9");
    assert_eq!(outcome["cloud"]["certificate_id"], "cafe");
}
