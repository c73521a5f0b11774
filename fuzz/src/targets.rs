//! The fuzz targets: every decoder of bytes claimlink did not make, on both sides of the link and in
//! the emulator. Each target must never panic, whatever the input.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use claimlink_core::internal::proto;
use claimlink_core::{internal::DeviceSession, DeviceCredentials, SecurityPolicy};
use claimlink_core::{DeviceLink, LinkError};
use claimlink_harness::device::security::DeviceSecurity;
use claimlink_harness::device::{SimDevice, SimDeviceConfig};
use prost::Message;

/// A named target with seed inputs.
pub struct Target {
    /// Its name.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
    /// Valid inputs to mutate from.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("fuzz driver needs a runtime: {e}"))
    })
}

/// Every target.
pub fn all() -> Vec<Target> {
    vec![
        Target {
            name: "proto-ver",
            run: |b| {
                let _ = claimlink_core::DeviceCapabilities::parse(b);
            },
            seeds: || {
                vec![br#"{"prov":{"ver":"v1.1","sec_ver":2,"sec_patch_ver":1,"cap":["wifi_scan"]},"aws":{"ver":"1","cap":["claim","status"]}}"#.to_vec()]
            },
        },
        Target {
            name: "qr",
            run: |b| {
                let _ = claimlink_core::ProvisioningQr::parse(&String::from_utf8_lossy(b));
            },
            seeds: || {
                vec![br#"{"ver":"v1","name":"PROV_1","pop":"abcd1234","transport":"ble","security":2}"#.to_vec()]
            },
        },
        Target {
            name: "claim-certificate",
            run: |b| {
                let _ = claimlink_core::ClaimCertificate::from_pem(&String::from_utf8_lossy(b));
            },
            seeds: || {
                vec![b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUe\n-----END CERTIFICATE-----\n".to_vec()]
            },
        },
        Target {
            name: "cloud-json",
            run: |b| {
                let _ = claimlink_core::internal::fuzzing::claim_answer(b);
                claimlink_core::internal::fuzzing::error_answer(b);
                let _ = claimlink_core::internal::fuzzing::backend_thing(b);
                claimlink_core::internal::fuzzing::aws_answers(b);
            },
            seeds: || {
                vec![
            br#"{"certificateId":"ab","certificatePem":"x","keyPair":{"PrivateKey":"k"},"expiration":1795000000}"#.to_vec(),
            br#"{"certificateId":"ab","certificatePem":"x","keyPair":{"PublicKey":"p","PrivateKey":"-----BEGIN\n\u0041\/\"k\\\r\n"},"expiration":"1795000000.5"}"#.to_vec(),
            br#"{"thingName":"t","attributes":{"a":"b"},"certificates":[{"certificateId":"c","status":"ACTIVE"}]}"#.to_vec(),
            br#"{"principals":["arn:aws:iot:r:1:cert/abc"],"nextToken":"n","certificateDescription":{"status":"ACTIVE"}}"#.to_vec(),
        ]
            },
        },
        Target {
            name: "protobuf-messages",
            run: |b| {
                let _ = proto::SessionData::decode(b);
                let _ = proto::WiFiScanPayload::decode(b);
                let _ = proto::WiFiConfigPayload::decode(b);
                let _ = proto::WiFiCtrlPayload::decode(b);
                let _ = proto::AwsClaimPayload::decode(b);
                let _ = proto::AwsStatusPayload::decode(b);
                let _ = proto::ClaimBundle::decode(b);
            },
            seeds: || {
                vec![proto::SessionData::sec2(proto::sec2_payload::Payload::Sr1(
                    proto::S2SessionResp1 {
                        status: 0,
                        device_proof: vec![1; 64],
                        device_nonce: vec![2; 12],
                    },
                ))
                .encode_to_vec()]
            },
        },
        Target {
            name: "client-answers",
            run: client_answers,
            seeds: status_seeds,
        },
        Target {
            name: "device-endpoints",
            run: device_endpoints,
            seeds: status_seeds,
        },
        Target {
            name: "device-handshake",
            run: device_handshake,
            seeds: || {
                vec![proto::SessionData::sec2(proto::sec2_payload::Payload::Sc0(
                    proto::S2SessionCmd0 {
                        client_username: b"wifiprov".to_vec(),
                        client_pubkey: vec![3; 384],
                    },
                ))
                .encode_to_vec()]
            },
        },
        Target {
            name: "device-claim-bundle",
            run: device_claim_bundle,
            seeds: || {
                vec![proto::ClaimBundle {
                    certificate_der: vec![0x30, 3, 1, 2, 3],
                    private_key_der: vec![0x30, 1, 0],
                    iot_endpoint: "h:1".into(),
                    ..Default::default()
                }
                .encode_to_vec()]
            },
        },
        Target {
            name: "mqtt-packets",
            run: |b| {
                let mut buf = bytes::BytesMut::from(b);
                while let Ok(_p) = rumqttc::mqttbytes::v4::Packet::read(&mut buf, 128 * 1024) {}
            },
            seeds: || {
                vec![
                    vec![
                        0x10, 0x10, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 30, 0, 4, b'd', b'e',
                        b'v', b'1',
                    ],
                    vec![0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'],
                ]
            },
        },
        Target {
            name: "sigv4-header",
            run: sigv4_header,
            seeds: || {
                vec![b"AWS4-HMAC-SHA256 Credential=ASIAX/20261122/us-east-1/iot/aws4_request, SignedHeaders=host;x-amz-date, Signature=00".to_vec()]
            },
        },
        Target {
            name: "template",
            run: |b| {
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
                    let _ = claimlink_harness::emulator::template::evaluate(
                        &v,
                        &BTreeMap::from([("SerialNumber".to_owned(), "x".to_owned())]),
                        "abc",
                    );
                }
            },
            seeds: || {
                vec![br#"{"Parameters":{"SerialNumber":{"Type":"String"}},"Mappings":{"m":{"a":{"b":"c"}}},"Resources":{"t":{"Type":"AWS::IoT::Thing","Properties":{"ThingName":{"Fn::Join":["-",[{"Ref":"SerialNumber"},{"Fn::Select":[0,{"Fn::Split":["/","a/b"]}]},{"Fn::FindInMap":["m","a","b"]},{"Fn::Sub":"${SerialNumber}"}]]}}}}}"#.to_vec()]
            },
        },
    ]
}

fn status_seeds() -> Vec<Vec<u8>> {
    vec![
        proto::AwsStatusPayload {
            msg: 1,
            status: 0,
            payload: Some(proto::aws_status_payload::Payload::RespGet(
                proto::RespGetCloudStatus {
                    stage: 3,
                    ip4_addr: "10.0.0.2".into(),
                    ..Default::default()
                },
            )),
        }
        .encode_to_vec(),
        proto::WiFiConfigPayload {
            msg: 1,
            payload: Some(proto::wi_fi_config_payload::Payload::RespGetStatus(
                proto::RespGetStatus {
                    status: 0,
                    sta_state: 3,
                    state: Some(proto::resp_get_status::State::FailReason(0)),
                },
            )),
        }
        .encode_to_vec(),
        proto::WiFiScanPayload {
            msg: 5,
            status: 0,
            payload: Some(proto::wi_fi_scan_payload::Payload::RespScanResult(
                proto::RespScanResult {
                    entries: vec![proto::WiFiScanResult {
                        ssid: b"n".to_vec(),
                        channel: 1,
                        rssi: -40,
                        bssid: vec![1; 6],
                        auth: 3,
                    }],
                },
            )),
        }
        .encode_to_vec(),
    ]
}

/// A Sec0 device whose answers (after the handshake) are the fuzz input.
#[derive(Debug)]
struct Answers(Vec<u8>);

#[async_trait::async_trait]
impl DeviceLink for Answers {
    async fn exchange(&self, endpoint: &str, _request: &[u8]) -> Result<Vec<u8>, LinkError> {
        Ok(match endpoint {
            "proto-ver" => br#"{"prov":{"ver":"v1","sec_ver":0,"cap":["wifi_scan"]},"aws":{"ver":"1","cap":["claim","status"]}}"#.to_vec(),
            "prov-session" => proto::SessionData {
                sec_ver: 0,
                proto: Some(proto::session_data::Proto::Sec0(proto::Sec0Payload { msg: 1, payload: Some(proto::sec0_payload::Payload::Sr(proto::S0SessionResp { status: 0 })) })),
            }
            .encode_to_vec(),
            _ => self.0.clone(),
        })
    }
    async fn disconnect(&self) {}
    fn describe(&self) -> String {
        "fuzz answers".into()
    }
}

fn client_answers(bytes: &[u8]) {
    let link = Arc::new(Answers(bytes.to_vec()));
    runtime().block_on(async {
        let policy = SecurityPolicy {
            danger_allow_sec0: true,
            ..SecurityPolicy::default()
        };
        // A fresh session per operation: a bad answer breaks the session it arrived on.
        for op in 0..3 {
            let Ok(session) = DeviceSession::establish(
                link.clone(),
                &DeviceCredentials::none(),
                &policy,
                &mut rand::rngs::OsRng,
            )
            .await
            else {
                return;
            };
            match op {
                0 => drop(session.cloud_status().await),
                1 => drop(session.wifi_status().await),
                _ => drop(session.scan_wifi().await),
            }
        }
    });
}

fn sec0_device() -> SimDevice {
    SimDevice::new(SimDeviceConfig {
        security: DeviceSecurity::Sec0,
        ..SimDeviceConfig::default()
    })
}

fn open_sec0(device: &SimDevice) {
    let hello = proto::SessionData {
        sec_ver: 0,
        proto: Some(proto::session_data::Proto::Sec0(proto::Sec0Payload {
            msg: 0,
            payload: Some(proto::sec0_payload::Payload::Sc(proto::S0SessionCmd {})),
        })),
    };
    let _ = device.handle(1, "prov-session", &hello.encode_to_vec());
}

fn device_endpoints(bytes: &[u8]) {
    let device = sec0_device();
    open_sec0(&device);
    for endpoint in [
        "prov-scan",
        "prov-config",
        "prov-ctrl",
        "aws-claim",
        "aws-status",
        "proto-ver",
        "nope",
    ] {
        let _ = device.handle(1, endpoint, bytes);
    }
}

fn device_handshake(bytes: &[u8]) {
    static DEVICE: OnceLock<SimDevice> = OnceLock::new();
    let device = DEVICE.get_or_init(|| SimDevice::new(SimDeviceConfig::default()));
    let _ = device.handle(1, "prov-session", bytes);
    let _ = device.handle(1, "prov-session", bytes);
    let _ = device.handle(1, "prov-config", bytes);
}

fn device_claim_bundle(bytes: &[u8]) {
    use sha2_shim::digest;
    let device = sec0_device();
    open_sec0(&device);
    let begin = proto::AwsClaimPayload {
        msg: 0,
        status: 0,
        error: 0,
        payload: Some(proto::aws_claim_payload::Payload::CmdBegin(
            proto::CmdClaimBegin {
                total_length: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
                sha256: digest(bytes),
                data: bytes.to_vec(),
                commit: true,
            },
        )),
    };
    let _ = device.handle(1, "aws-claim", &begin.encode_to_vec());
}

/// SHA-256 without another dependency: the SDK re-exports nothing, so use the harness's.
mod sha2_shim {
    pub fn digest(bytes: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).to_vec()
    }
}

fn sigv4_header(bytes: &[u8]) {
    use claimlink_harness::emulator::sigv4::{KnownCredentials, Verifier};
    let mut credentials = std::collections::HashMap::new();
    credentials.insert(
        "ASIAX".to_owned(),
        KnownCredentials {
            secret_access_key: "s".into(),
            session_token: None,
        },
    );
    let verifier = Verifier {
        region: "us-east-1",
        service: "iot",
        credentials: &credentials,
        now: std::time::SystemTime::now(),
    };
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(bytes) {
        headers.insert(http::header::AUTHORIZATION, v.clone());
        headers.insert("x-amz-date", v);
    }
    headers.insert(
        http::header::HOST,
        http::HeaderValue::from_static("127.0.0.1"),
    );
    let uri: http::Uri = "/things/x?a=b".parse().unwrap_or_default();
    let _ = verifier.verify(&http::Method::GET, &uri, &headers, bytes);
}
