//! `proto/vectors/aws_status.json`: an `aws-status` answer for every stage and every failure kind,
//! and answers a client must refuse, each with what the SDK makes of it; the simulator's own
//! answer (Idle) is checked against the vector byte for byte.

use std::sync::Arc;

use async_trait::async_trait;
use claimlink_core::internal::{proto, DeviceSession};
use claimlink_core::{DeviceCredentials, DeviceLink, LinkError, SecurityPolicy};
use prost::Message;
use serde_json::json;

use super::check_or_update;

/// A Sec0 device whose `aws-status` gives one canned answer.
#[derive(Debug)]
struct CannedStatus(Vec<u8>);

#[async_trait]
impl DeviceLink for CannedStatus {
    async fn exchange(&self, endpoint: &str, _request: &[u8]) -> Result<Vec<u8>, LinkError> {
        Ok(match endpoint {
            "proto-ver" => br#"{"prov":{"ver":"v1.1","sec_ver":0,"cap":["no_sec"]},"aws":{"ver":"1","cap":["claim","status"]}}"#.to_vec(),
            "prov-session" => proto::SessionData {
                sec_ver: proto::SecSchemeVersion::SecScheme0 as i32,
                proto: Some(proto::session_data::Proto::Sec0(proto::Sec0Payload {
                    msg: proto::Sec0MsgType::S0SessionResponse as i32,
                    payload: Some(proto::sec0_payload::Payload::Sr(proto::S0SessionResp {
                        status: 0,
                    })),
                })),
            }
            .encode_to_vec(),
            _ => self.0.clone(),
        })
    }

    async fn disconnect(&self) {}

    fn describe(&self) -> String {
        "canned aws-status".into()
    }
}

/// What the SDK makes of `answer`.
async fn sdk_reads(answer: &[u8]) -> serde_json::Value {
    let policy = SecurityPolicy {
        danger_allow_sec0: true,
        ..SecurityPolicy::default()
    };
    let mut rng = rand::rngs::OsRng;
    let session = DeviceSession::establish(
        Arc::new(CannedStatus(answer.to_vec())),
        &DeviceCredentials::none(),
        &policy,
        &mut rng,
    )
    .await
    .expect("a Sec0 session");
    match session.cloud_status().await {
        Ok(status) => json!({
            "accepted": true,
            "stage": format!("{:?}", status.stage),
            "ip4_addr": status.ip.map(|ip| ip.to_string()),
            "thing_name": status.thing_name,
            "certificate_id": status.certificate_id,
            "failure": status.failure.map(|f| format!("{:?}", f.kind)),
        }),
        Err(e) => json!({"accepted": false, "error": e.to_string()}),
    }
}

fn answer(status: proto::Status, resp: proto::RespGetCloudStatus) -> Vec<u8> {
    proto::AwsStatusPayload {
        msg: proto::AwsStatusMsgType::TypeRespGetCloudStatus as i32,
        status: status as i32,
        payload: Some(proto::aws_status_payload::Payload::RespGet(resp)),
    }
    .encode_to_vec()
}

const IP: &str = "192.168.1.23";
const THING: &str = "claimlink-SN-0001";
const CERT: &str = "4f1c3a3bd0e3e4c4b1d5c7a3a6f5e0b0f7c2e1d9a8b7c6d5e4f3a2b1c0d9e8f7";

/// The answer a device gives at `stage`, with the fields docs/protocol.md §6 says it has by then.
fn at_stage(stage: proto::CloudStage, failure: Option<proto::CloudFailure>) -> Vec<u8> {
    use proto::CloudStage as St;
    let n = stage as i32;
    let ip = if n >= St::WifiConnected as i32 {
        IP
    } else {
        ""
    };
    let cert = if n >= St::CertificateIssued as i32 && stage != St::Failed {
        CERT
    } else {
        ""
    };
    let thing = if n >= St::ThingRegistered as i32 && stage != St::Failed {
        THING
    } else {
        ""
    };
    answer(
        proto::Status::Success,
        proto::RespGetCloudStatus {
            stage: n,
            ip4_addr: ip.into(),
            thing_name: thing.into(),
            certificate_id: cert.into(),
            failure,
        },
    )
}

#[tokio::test]
async fn aws_status_answers() {
    use proto::CloudStage as St;
    let mut answers = Vec::new();
    for stage in (0..=9).filter_map(|n| St::try_from(n).ok()) {
        let bytes = at_stage(stage, None);
        answers.push(json!({
            "case": format!("{stage:?}"),
            "answer": hex::encode(&bytes),
            "sdk_reads": sdk_reads(&bytes).await,
        }));
    }
    for kind in (1..=12).filter_map(|n| proto::CloudFailureKind::try_from(n).ok()) {
        use proto::CloudFailureKind as K;
        let (status_code, code, message) = match kind {
            K::CertificateRejected | K::RegisterThingRejected => {
                (400, "InvalidParameters", "the AWS errorMessage, verbatim")
            }
            _ => (0, "", ""),
        };
        let bytes = at_stage(
            St::Failed,
            Some(proto::CloudFailure {
                kind: kind as i32,
                status_code,
                error_code: code.into(),
                error_message: message.into(),
            }),
        );
        answers.push(json!({
            "case": format!("Failed/{kind:?}"),
            "answer": hex::encode(&bytes),
            "sdk_reads": sdk_reads(&bytes).await,
        }));
    }
    // Answers a client must refuse.
    let refused = [
        ("Failed without a failure", at_stage(St::Failed, None)),
        (
            "an unknown stage (11)",
            answer(
                proto::Status::Success,
                proto::RespGetCloudStatus {
                    stage: 11,
                    ..Default::default()
                },
            ),
        ),
        (
            "a status other than Success",
            answer(proto::Status::InternalError, Default::default()),
        ),
    ];
    let mut must_refuse = Vec::new();
    for (case, bytes) in refused {
        let reads = sdk_reads(&bytes).await;
        assert_eq!(reads["accepted"], false, "{case}");
        must_refuse.push(json!({"case": case, "answer": hex::encode(&bytes), "sdk_reads": reads}));
    }
    // The simulator's answer before any claim is the Idle vector, byte for byte.
    let (_, session) = crate::sec2_session(480).await;
    let request = super::status_request();
    let simulated = session
        .request("aws-status", &request)
        .await
        .expect("answer");
    assert_eq!(simulated, at_stage(St::Idle, None), "the simulator's Idle");
    let vector = json!({
        "description": "aws-status (docs/protocol.md section 6). request: the one request (CmdGetCloudStatus). answers: an AwsStatusPayload answer for every stage, with the fields a device sets by then (ip4_addr from WifiConnected on, certificate_id from CertificateIssued on, thing_name from ThingRegistered on), and a Failed answer for every CloudFailureKind; sdk_reads: what the SDK makes of it. must_refuse: answers a client refuses as malformed.",
        "request": hex::encode(&request),
        "answers": answers,
        "must_refuse": must_refuse,
    });
    check_or_update("aws_status.json", &vector);
}
