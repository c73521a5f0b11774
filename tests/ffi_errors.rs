//! How failures cross the FFI, compared as values: every core error becomes the app action (and the
//! sentence) it should, and a link failure keeps its kind, and says its text once, whichever side of
//! the FFI raised it: an app's own `DeviceLink` throwing into the SDK, or one of the SDK's links
//! throwing into the app that calls it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use claimlink::{
    http_device_link, DeviceLink, DeviceSecret, LinkFailure, ProviderFailure, Provisioner,
    ProvisionerSettings, ProvisioningFailure, TokenProvider,
};
use claimlink_core::{
    ClaimError, DeviceRefusal, InvalidInputReason, LinkError, LinkFault, MalformedReason,
    ProtocolError, ProvisionError, Service, UnsupportedReason,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every cause the core knows maps to the action the app should take, with its sentence said once.
#[test]
fn core_errors_map_to_app_actions() {
    use ProvisioningFailure as F;
    let m = |s: &str| s.to_owned();
    let cases: Vec<(ProvisionError, F)> = vec![
        (ProtocolError::WrongCredentials.into(), F::WrongDevicePassword),
        (ProtocolError::DeviceNotAuthentic.into(), F::DeviceNotAuthentic),
        (ProtocolError::Tampered.into(), F::MessageTampered),
        (
            ProtocolError::SessionBroken.into(),
            F::ConnectionLost {
                detail: m("the session is broken by an earlier failure; open a new session"),
            },
        ),
        (
            ProtocolError::Link(LinkError::Disconnected).into(),
            F::ConnectionLost {
                detail: m("the device disconnected"),
            },
        ),
        (
            ProtocolError::Link(LinkError::Busy).into(),
            F::ConnectionLost {
                detail: m("another exchange is in flight"),
            },
        ),
        (
            ProtocolError::Link(LinkError::Other(LinkFault::Reported(m("radio off")))).into(),
            F::ConnectionLost {
                detail: m("transport failure: radio off"),
            },
        ),
        (
            ProtocolError::Link(LinkError::DeviceNotFound).into(),
            F::DeviceNotFound,
        ),
        (
            ProtocolError::Link(LinkError::DeviceError(DeviceRefusal::HttpStatus(500))).into(),
            F::DeviceMisbehaved {
                detail: m("the device refused the request: HTTP 500"),
            },
        ),
        (
            ProtocolError::Link(LinkError::TooLarge { len: 600, max: 480 }).into(),
            F::InvalidInput {
                detail: m("a 600-byte message exceeds the 480-byte limit"),
            },
        ),
        (
            ProtocolError::Link(LinkError::UnknownEndpoint(m("aws-claim"))).into(),
            F::UnsupportedDevice {
                reason: m("the device has no endpoint \"aws-claim\""),
            },
        ),
        (
            ProtocolError::Malformed {
                endpoint: m("prov-config"),
                reason: MalformedReason::EmptyAnswer,
            }
            .into(),
            F::DeviceMisbehaved {
                detail: m("malformed answer on prov-config: empty answer"),
            },
        ),
        (
            ProtocolError::Unsupported(UnsupportedReason::AwsClaimEndpoint).into(),
            F::UnsupportedDevice {
                reason: m("the device does not support the aws-claim endpoint (claimlink firmware extension)"),
            },
        ),
        (
            ProtocolError::InvalidInput(InvalidInputReason::SsidLength).into(),
            F::InvalidInput {
                detail: m("an SSID is 1 to 32 bytes"),
            },
        ),
        (
            ProtocolError::ClaimBundleTooLarge { len: 5_000_000_000 }.into(),
            F::Internal {
                detail: m(
                    "claim bundle too large: 5000000000 bytes do not fit the protocol's 32-bit length",
                ),
            },
        ),
        (ProvisionError::WifiAuthFailed, F::WifiPasswordRejected),
        (ProvisionError::WifiNetworkNotFound, F::WifiNetworkNotFound),
        (ProvisionError::WifiTimeout, F::WifiTimeout),
        (
            ProvisionError::OverallTimeout {
                stage: claimlink_core::Stage::WifiConnected,
                limit: Duration::from_secs(420),
            },
            F::StageTimeout {
                stage: claimlink::Stage::WifiConnected,
            },
        ),
        (ProvisionError::Cancelled, F::Cancelled),
        (
            ClaimError::InvalidInput(m("template name \"no spaces!\"")).into(),
            F::InvalidInput {
                detail: m("template name \"no spaces!\""),
            },
        ),
        (
            ClaimError::Unauthorized {
                service: Service::Backend,
                message: m("401"),
            }
            .into(),
            F::SignInRequired {
                detail: m("the backend rejected the app's credentials: 401"),
            },
        ),
        (
            ClaimError::Provider {
                message: m("signed out"),
                signed_out: true,
            }
            .into(),
            F::SignInRequired {
                detail: m("the installer is signed out: signed out"),
            },
        ),
        (
            ClaimError::Provider {
                message: m("no network to Cognito"),
                signed_out: false,
            }
            .into(),
            F::ServiceUnavailable {
                detail: m("the app's credentials provider failed: no network to Cognito"),
            },
        ),
        (
            ClaimError::TemplateNotFound {
                service: Service::Aws,
                template: m("t"),
            }
            .into(),
            F::TemplateNotFound { template: m("t") },
        ),
        (
            ClaimError::Throttled { attempts: 4 }.into(),
            F::ServiceUnavailable {
                detail: m("throttled after 4 attempts; try again later"),
            },
        ),
        (
            ClaimError::Unavailable {
                status: 503,
                attempts: 4,
            }
            .into(),
            F::ServiceUnavailable {
                detail: m("the service failed with HTTP 503 after 4 attempts; try again later"),
            },
        ),
        (
            ClaimError::Network {
                message: m("refused"),
                timed_out: true,
            }
            .into(),
            F::ServiceUnavailable {
                detail: m("could not reach the service (timed out): refused"),
            },
        ),
        (
            ClaimError::Expired { overdue_secs: 3 }.into(),
            F::ClaimUnusable {
                detail: m("the claim expired 3 s before it could be used"),
            },
        ),
        (
            ClaimError::TooShortLived {
                left_secs: 20,
                margin_secs: 60,
            }
            .into(),
            F::ClaimUnusable {
                detail: m(
                    "the service's claims have 20 s left, less than the 60 s safety margin",
                ),
            },
        ),
        (
            ClaimError::Malformed { problem: m("json") }.into(),
            F::ClaimUnusable {
                detail: m("the service's answer is malformed: json"),
            },
        ),
        (
            ClaimError::Rejected {
                service: Service::Backend,
                status: 403,
                code: Some(m("Forbidden")),
                message: m("no"),
            }
            .into(),
            F::ServiceRejected {
                status: 403,
                code: Some(m("Forbidden")),
                detail: m("no"),
            },
        ),
        (
            ProvisionError::AlreadyProvisioned {
                thing_name: m("SN-1"),
                certificate_id: m("ab12"),
            },
            F::AlreadyProvisioned {
                thing_name: m("SN-1"),
                certificate_id: m("ab12"),
            },
        ),
        (ProvisionError::NotProvisioned, F::NotProvisioned),
    ];
    for (error, expected) in cases {
        let shown = error.to_string();
        // The core's code for the error (what the support report says) is the app's failure's.
        let code = error.code();
        let failure = F::from(error);
        assert_eq!(failure.failure_code(), code, "code of {shown}");
        assert_eq!(failure.code(), code.code());
        assert_eq!(failure, expected, "from {shown}");
    }
}

/// Each link failure crosses the FFI and comes back as the same kind with the same sentence: what an
/// SDK link raises reaches an app as its `LinkFailure`, and that, thrown back (an app wrapping the
/// SDK's link), is the failure the SDK started with.
#[test]
fn link_failures_keep_their_kind_and_text_both_ways() {
    let m = |s: &str| s.to_owned();
    let cases: Vec<(LinkError, LinkFailure, LinkError)> = vec![
        (
            LinkError::Disconnected,
            LinkFailure::Disconnected,
            LinkError::Disconnected,
        ),
        (
            LinkError::Timeout { millis: 250 },
            LinkFailure::Timeout { millis: 250 },
            LinkError::Timeout { millis: 250 },
        ),
        (
            LinkError::UnknownEndpoint(m("aws-claim")),
            LinkFailure::UnknownEndpoint {
                name: m("aws-claim"),
            },
            LinkError::UnknownEndpoint(m("aws-claim")),
        ),
        // Became `Other` before.
        (
            LinkError::TooLarge { len: 600, max: 480 },
            LinkFailure::TooLarge { len: 600, max: 480 },
            LinkError::TooLarge { len: 600, max: 480 },
        ),
        (LinkError::Busy, LinkFailure::Busy, LinkError::Busy),
        (
            LinkError::DeviceNotFound,
            LinkFailure::DeviceNotFound,
            LinkError::DeviceNotFound,
        ),
        // The refusal's kind is the SDK's own; across the FFI it is the app's words, the same words.
        (
            LinkError::DeviceError(DeviceRefusal::HttpStatus(500)),
            LinkFailure::DeviceRefused {
                detail: m("HTTP 500"),
            },
            LinkError::DeviceError(DeviceRefusal::Reported(m("HTTP 500"))),
        ),
        (
            LinkError::DeviceError(DeviceRefusal::Att(m("status 5"))),
            LinkFailure::DeviceRefused {
                detail: m("ATT error: status 5"),
            },
            LinkError::DeviceError(DeviceRefusal::Reported(m("ATT error: status 5"))),
        ),
        // Said "transport failure: transport failure: …" before.
        (
            LinkError::Other(LinkFault::HttpStatus(403)),
            LinkFailure::Other {
                detail: m("device answered HTTP 403"),
            },
            LinkError::Other(LinkFault::Reported(m("device answered HTTP 403"))),
        ),
    ];
    for (core, app, back) in cases {
        let crossed = LinkFailure::from(core.clone());
        assert_eq!(crossed, app);
        assert_eq!(crossed.to_string(), core.to_string());
        let returned = LinkError::from(crossed);
        assert_eq!(returned, back);
        assert_eq!(returned.to_string(), core.to_string());
        assert_eq!(
            ProvisioningFailure::from(returned),
            ProvisioningFailure::from(core)
        );
    }
}

/// A one-connection HTTP stand-in for a device: answers every request with `answer`, or, with none,
/// accepts and never answers. Each accepted connection is reported on the channel.
async fn http_stub(
    answer: Option<&'static str>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (accepted, on_accept) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = accepted.send(());
            let Some(answer) = answer else {
                held.push(tcp);
                continue;
            };
            tokio::spawn(async move {
                // Read the head and the body (the SDK always sends a Content-Length), then answer.
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let Ok(n) = tcp.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let _ = tcp.write_all(answer.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (url, on_accept)
}

const HTTP_403: &str = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const HTTP_500: &str =
    "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// The SDK's own link, called by an app: its failures arrive as the matching `LinkFailure`, with the
/// text said once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_link_fails_into_the_app_with_its_kind() {
    let (url, _) = http_stub(Some(HTTP_403)).await;
    let link = http_device_link(url).expect("link");
    let failure = link
        .exchange("proto-ver".into(), b"ESP".to_vec())
        .await
        .expect_err("403");
    assert_eq!(
        failure,
        LinkFailure::Other {
            detail: "device answered HTTP 403".into()
        }
    );
    assert_eq!(
        failure.to_string(),
        "transport failure: device answered HTTP 403"
    );
    // Became `Other` before.
    assert_eq!(
        link.exchange("proto-ver".into(), vec![0; 5000])
            .await
            .expect_err("too large"),
        LinkFailure::TooLarge {
            len: 5000,
            max: 4096
        }
    );

    let (url, _) = http_stub(Some(HTTP_500)).await;
    let link = http_device_link(url).expect("link");
    assert_eq!(
        link.exchange("prov-session".into(), b"x".to_vec())
            .await
            .expect_err("500"),
        LinkFailure::DeviceRefused {
            detail: "HTTP 500".into()
        }
    );

    // A second exchange while the first waits for an answer. Became `Other` before.
    let (url, mut accepted) = http_stub(None).await;
    let link = http_device_link(url).expect("link");
    let first = tokio::spawn({
        let link = link.clone();
        async move { link.exchange("proto-ver".into(), b"ESP".to_vec()).await }
    });
    accepted
        .recv()
        .await
        .expect("the first exchange reached the device");
    assert_eq!(
        link.exchange("proto-ver".into(), b"ESP".to_vec())
            .await
            .expect_err("busy"),
        LinkFailure::Busy
    );
    first.abort();

    let invalid = http_device_link("ftp://192.168.4.1".into()).err();
    assert_eq!(
        invalid,
        Some(ProvisioningFailure::InvalidInput {
            detail: "device URL \"ftp://192.168.4.1\" must be http://host:port".into()
        })
    );
}

/// An app's link that fails as told.
#[derive(Debug)]
struct FailingLink {
    on_connect: Option<LinkFailure>,
    on_exchange: LinkFailure,
}

#[async_trait]
impl DeviceLink for FailingLink {
    async fn connect(&self) -> Result<(), LinkFailure> {
        self.on_connect.clone().map_or(Ok(()), Err)
    }
    async fn exchange(&self, _endpoint: String, _request: Vec<u8>) -> Result<Vec<u8>, LinkFailure> {
        Err(self.on_exchange.clone())
    }
    fn endpoints(&self) -> Option<Vec<String>> {
        None
    }
    fn max_message_bytes(&self) -> i32 {
        480
    }
    fn mtu(&self) -> Option<i32> {
        None
    }
    async fn disconnect(&self) {}
    fn describe(&self) -> String {
        "failing app link".into()
    }
}

struct Token;

#[async_trait]
impl TokenProvider for Token {
    async fn bearer_token(&self, _refresh: bool) -> Result<String, ProviderFailure> {
        Ok("t".into())
    }
}

fn provisioner() -> Arc<Provisioner> {
    let settings = ProvisionerSettings {
        template: "claimlink-demo".into(),
        iot_endpoint: "example-ats.iot.eu-west-1.amazonaws.com".into(),
        extra_root_certificates_pem: vec![],
        security: None,
        safety_margin_secs: 60,
        poll_interval_millis: 500,
        wifi_timeout_secs: 45,
        cloud_timeout_secs: 60,
        overall_timeout_secs: 420,
        ap_join_budget_secs: 30,
        proxy_url: None,
    };
    Provisioner::with_backend(settings, "https://x.example/".into(), Arc::new(Token))
        .expect("provisioner")
}

async fn connect_failure(link: Arc<dyn DeviceLink>) -> ProvisioningFailure {
    let secret = DeviceSecret::password("wifiprov".into(), "abcd1234".into());
    tokio::time::timeout(
        Duration::from_secs(20),
        provisioner().connect(link, secret, None),
    )
    .await
    .expect("connect finishes")
    .expect_err("connect fails")
}

/// What an app's own link throws reaches the app's `provision`/`connect` caller as the action its kind
/// calls for, the text said once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_link_fails_into_the_sdk_with_its_kind() {
    use ProvisioningFailure as F;
    let failing = |on_exchange: LinkFailure| -> Arc<dyn DeviceLink> {
        Arc::new(FailingLink {
            on_connect: None,
            on_exchange,
        })
    };
    let cases = [
        // Became `Other` (ConnectionLost) before.
        (
            LinkFailure::TooLarge { len: 600, max: 480 },
            F::InvalidInput {
                detail: "a 600-byte message exceeds the 480-byte limit".into(),
            },
        ),
        // ConnectionLost "transport failure: another exchange is in flight" before.
        (
            LinkFailure::Busy,
            F::ConnectionLost {
                detail: "another exchange is in flight".into(),
            },
        ),
        (
            LinkFailure::Other {
                detail: "radio off".into(),
            },
            F::ConnectionLost {
                detail: "transport failure: radio off".into(),
            },
        ),
        (
            LinkFailure::DeviceRefused {
                detail: "GATT status 5".into(),
            },
            F::DeviceMisbehaved {
                detail: "the device refused the request: GATT status 5".into(),
            },
        ),
        (
            LinkFailure::Disconnected,
            F::ConnectionLost {
                detail: "the device disconnected".into(),
            },
        ),
    ];
    for (thrown, expected) in cases {
        assert_eq!(
            connect_failure(failing(thrown.clone())).await,
            expected,
            "{thrown:?}"
        );
    }
    // "Device not found" was ConnectionLost before.
    let gone = Arc::new(FailingLink {
        on_connect: Some(LinkFailure::DeviceNotFound),
        on_exchange: LinkFailure::Disconnected,
    });
    assert_eq!(connect_failure(gone).await, F::DeviceNotFound);

    // The SDK's own link, passed back in (the SDK adapts it like any app's link): once
    // "transport failure: transport failure: device answered HTTP 403".
    let (url, _) = http_stub(Some(HTTP_403)).await;
    assert_eq!(
        connect_failure(http_device_link(url).expect("link")).await,
        F::ConnectionLost {
            detail: "transport failure: device answered HTTP 403".into()
        }
    );
}

#[test]
fn a_cloud_failure_reads_as_the_core_says_it_without_empty_aws_fields() {
    use claimlink::{CloudStep, ProvisioningFailure};
    let device_side = ProvisioningFailure::CloudRejected {
        step: CloudStep::TlsRejected,
        status_code: 0,
        error_code: String::new(),
        error_message: "timed out awaiting CONNACK".into(),
        thing_name: None,
        certificate_id: None,
    }
    .to_string();
    assert!(
        !device_side.contains("0 :") && !device_side.contains("refused"),
        "{device_side}"
    );
    assert!(
        device_side.starts_with("the device failed while connecting"),
        "{device_side}"
    );
    let aws_side = ProvisioningFailure::CloudRejected {
        step: CloudStep::RegisterThingRejected,
        status_code: 400,
        error_code: "InvalidRequest".into(),
        error_message: "no such template".into(),
        thing_name: None,
        certificate_id: Some("abc".into()),
    }
    .to_string();
    assert_eq!(
        aws_side,
        "AWS IoT refused the device while registering the thing (RegisterThingRejected): 400 InvalidRequest: no such template (AWS had issued certificate abc)"
    );
}
