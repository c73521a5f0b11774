//! Hostile peers: a device (or anyone imitating its access point) that answers too much or too
//! slowly, and a server whose `Date` header lies. Each is a real TCP server on 127.0.0.1 written
//! here by hand, so that the bytes on the wire are exactly the hostile ones.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use claimlink_core::{BackendClaimSource, Claim, ClaimError, ClaimRequest, ClaimSource};
use claimlink_core::{DeviceCredentials, ProvisionOptions, Provisioner, Stage, ThingName};
use claimlink_core::{DeviceLink, HttpLink, LinkError, HTTP_MAX_MESSAGE_BYTES};
use claimlink_core::{HttpConfig, RetryPolicy, TemplateName};
use claimlink_harness::providers::TokenSequence;
use claimlink_harness::testing::{self, lab_wifi, EventRecorder, SimDeviceBuilder};
use claimlink_harness::testing::{DEVICE_PASSWORD, TEMPLATE};

/// What a hostile server managed to do before it stopped.
#[derive(Debug)]
struct Served {
    /// Bytes of answer written (headers included).
    written: usize,
    /// The client closed the connection before the server had written all it meant to.
    closed_early: bool,
}

/// The most any hostile server here writes: far more than the SDK may buffer.
const HOSTILE_BYTES: usize = 64 * 1024 * 1024;

/// Reads one HTTP request (headers, then `Content-Length` bytes of body).
fn read_request(stream: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)
}

/// Starts a server that accepts one connection, reads the request and answers with `answer`, which
/// writes through the counting writer it is given and returns when done (or on the first error).
fn hostile_server<F>(answer: F) -> (String, JoinHandle<Served>)
where
    F: FnOnce(&mut Counting) -> io::Result<()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        read_request(&mut stream).expect("request");
        let mut counting = Counting { stream, written: 0 };
        let closed_early = answer(&mut counting).is_err();
        Served {
            written: counting.written,
            closed_early,
        }
    });
    (url, handle)
}

/// A stream that counts what was written to it.
struct Counting {
    stream: TcpStream,
    written: usize,
}

impl Counting {
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        self.written += bytes.len();
        Ok(())
    }
}

/// Waits for the server thread, without blocking the runtime and never for long.
/// The link closed the connection well before the hostile server got its 64 MiB out.
fn assert_stopped_reading_early(served: Served) {
    assert!(
        served.closed_early,
        "the link read everything the server sent: {served:?}"
    );
    assert!(
        served.written < 16 * 1024 * 1024,
        "the server got {} bytes out before the link closed: {served:?}",
        served.written
    );
}

/// A 2-second link to the dripping server at `url` ends in a typed timeout, soon, and hangs up.
async fn assert_times_out(url: &str, server: JoinHandle<Served>) {
    let started = Instant::now();
    let answer = link(url, Duration::from_secs(2))
        .exchange("proto-ver", b"---")
        .await;
    let took = started.elapsed();
    assert_eq!(answer, Err(LinkError::Timeout { millis: 2000 }));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let served = served(server).await;
    assert!(served.closed_early, "{served:?}");
}

async fn served(handle: JoinHandle<Served>) -> Served {
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || handle.join().expect("server thread")),
    )
    .await
    .expect("the server stopped within 30 s")
    .expect("join")
}

fn link(url: &str, timeout: Duration) -> Arc<HttpLink> {
    Arc::new(HttpLink::new(url, timeout).expect("link"))
}

#[tokio::test]
async fn a_huge_content_length_is_refused_before_the_body_is_read() {
    let (url, server) = hostile_server(|out| {
        out.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 536870912\r\n\r\n",
        )?;
        let block = vec![0u8; 64 * 1024];
        while out.written < HOSTILE_BYTES {
            out.send(&block)?;
        }
        Ok(())
    });
    let started = Instant::now();
    let answer = link(&url, Duration::from_secs(20))
        .exchange("proto-ver", b"---")
        .await;
    let took = started.elapsed();
    assert_eq!(
        answer,
        Err(LinkError::TooLarge {
            len: 536_870_912,
            max: HTTP_MAX_MESSAGE_BYTES
        })
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_stopped_reading_early(served(server).await);
}

#[tokio::test]
async fn a_chunked_answer_past_the_cap_stops_the_read_at_the_cap() {
    let (url, server) = hostile_server(|out| {
        out.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
        )?;
        let mut chunk = b"1000\r\n".to_vec();
        chunk.extend_from_slice(&[b'x'; 0x1000]);
        chunk.extend_from_slice(b"\r\n");
        while out.written < HOSTILE_BYTES {
            out.send(&chunk)?;
        }
        out.send(b"0\r\n\r\n")
    });
    let started = Instant::now();
    let answer = link(&url, Duration::from_secs(20))
        .exchange("proto-ver", b"---")
        .await;
    let took = started.elapsed();
    match answer {
        Err(LinkError::TooLarge { len, max }) => {
            assert_eq!(max, HTTP_MAX_MESSAGE_BYTES);
            assert!(
                len > max && len <= 2 * max + 0x1000,
                "read {len} bytes before refusing"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_stopped_reading_early(served(server).await);
}

/// Sends `head`, then `drip` one byte a second until the client goes away (or 60 s).
fn dripping(head: &'static [u8], drip: &'static [u8]) -> (String, JoinHandle<Served>) {
    hostile_server(move |out| {
        out.send(head)?;
        for byte in drip.iter().cycle().take(60) {
            std::thread::sleep(Duration::from_secs(1));
            out.send(std::slice::from_ref(byte))?;
        }
        Ok(())
    })
}

#[tokio::test]
async fn a_body_dripping_one_byte_a_second_ends_in_a_typed_timeout() {
    let (url, server) = dripping(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n",
        b"x",
    );
    assert_times_out(&url, server).await;
}

#[tokio::test]
async fn headers_dripping_one_byte_a_second_end_in_a_typed_timeout() {
    let (url, server) = dripping(b"HTTP/1.1 200 OK\r\n", b"X-Slow: yes\r\n");
    assert_times_out(&url, server).await;
}

/// The JSON a backend answers a claim request with, for `claim` (expiring with its certificate).
fn claim_answer(claim: &Claim) -> String {
    let expiration = claim
        .certificate()
        .not_after()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    serde_json::json!({
        "certificateId": claim.certificate_id(),
        "certificatePem": claim.certificate().pem(),
        "keyPair": {"PrivateKey": claim.private_key().expose()},
        "expiration": expiration,
    })
    .to_string()
}

/// A plain-HTTP backend that hands out `answer` (a claim) to every request, with a `Date` header
/// `date_offset_secs` off the true time (negative: behind).
fn lying_backend(answer: String, date_offset_secs: i64) -> BackendClaimSource {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            if read_request(&mut stream).is_err() {
                continue;
            }
            let now = SystemTime::now();
            let date = if date_offset_secs < 0 {
                now - Duration::from_secs(date_offset_secs.unsigned_abs())
            } else {
                now + Duration::from_secs(date_offset_secs.unsigned_abs())
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nDate: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                httpdate::fmt_http_date(date),
                answer.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    BackendClaimSource::builder(url, Arc::new(TokenSequence::new(vec!["token".into()])))
        .danger_allow_plain_http(true)
        .build()
        .expect("the lying backend's source builds")
}

/// A `Date` one day behind would make a five-minute claim look like a 24-hour one: the time left is
/// capped by the certificate's own lifetime, the inconsistency is reported once with the claim, and
/// the device is handed the claim with the true time left.
#[tokio::test]
async fn a_date_a_day_behind_does_not_stretch_the_claim() {
    let world = testing::quick_world().await;
    // A real claim from the emulator (five minutes), served again by a backend whose clock is a day
    // behind.
    let template = TemplateName::new(TEMPLATE).expect("template");
    let genuine = world
        .claims
        .request_claim(&ClaimRequest::new(template.clone()))
        .await
        .expect("a claim");
    let lifetime = genuine
        .certificate()
        .not_after()
        .duration_since(genuine.certificate().not_before())
        .expect("notAfter after notBefore");
    let lying = Arc::new(lying_backend(claim_answer(&genuine), -86_400));

    let claim = lying
        .request_claim(&ClaimRequest::new(template))
        .await
        .expect("the claim parses");
    assert!(
        claim.deadline().remaining() <= lifetime,
        "a {lifetime:?} claim has {:?} left",
        claim.deadline().remaining()
    );
    let behind = claim
        .deadline()
        .clock_behind_certificate_secs()
        .expect("the inconsistent Date is flagged");
    assert!((86_390..=86_410).contains(&behind), "{behind}");
    // The genuine answer, with a consistent Date, is not flagged.
    assert_eq!(genuine.deadline().clock_behind_certificate_secs(), None);

    // A whole run: the device gets the true time left.
    let provisioner = Provisioner::with_thing_directory(
        lying,
        world.claims.clone(),
        world.provisioner.config().clone(),
    );
    let (_device, link) = SimDeviceBuilder::in_world(&world, 1).build();
    let events = EventRecorder::new();
    let session = provisioner
        .connect(link, DeviceCredentials::password(DEVICE_PASSWORD), &events)
        .await
        .expect("session");
    let options = ProvisionOptions {
        expected_thing_name: Some(ThingName::new("SN-LYING-DATE").expect("name")),
        ..testing::serial_options("SN-LYING-DATE")
    };
    let done = session
        .provision(&lab_wifi(), &options, &events)
        .await
        .expect("provisioned");
    assert!(
        done.claim_time_left_at_handover <= lifetime,
        "handed over with {:?} left",
        done.claim_time_left_at_handover
    );
    // Reported once, with the claim.
    let issued: Vec<Option<String>> = events
        .events()
        .iter()
        .filter(|e| e.stage == Stage::ClaimIssued)
        .map(|e| e.detail.clone())
        .collect();
    assert_eq!(issued.len(), 1, "{issued:?}");
    let detail = issued[0].as_deref().unwrap_or("");
    assert!(
        detail.contains("the server's Date reads") && detail.contains("capped"),
        "{detail:?}"
    );
    for event in events.events() {
        if let Some(left) = event.claim_time_left {
            assert!(left <= lifetime, "{:?} reported {left:?} left", event.stage);
        }
    }
}

/// A backend source for `url` that waits `timeout` and tries once.
fn impatient_backend(url: &str, timeout: Duration) -> BackendClaimSource {
    BackendClaimSource::builder(url, Arc::new(TokenSequence::new(vec!["token".into()])))
        .danger_allow_plain_http(true)
        .http_config(HttpConfig {
            connect_timeout: timeout,
            request_timeout: timeout,
            ..HttpConfig::default()
        })
        .retry_policy(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
        .build()
        .expect("the source builds")
}

/// The same review for the cloud: the claim client refuses a huge stated length without reading the
/// body, and a server that drips ends in a timeout.
#[tokio::test]
async fn a_cloud_answer_with_a_huge_content_length_is_refused_unread() {
    let (url, server) = hostile_server(|out| {
        out.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 536870912\r\n\r\n")?;
        let block = vec![b' '; 64 * 1024];
        while out.written < HOSTILE_BYTES {
            out.send(&block)?;
        }
        Ok(())
    });
    let template = TemplateName::new(TEMPLATE).expect("template");
    let answer = impatient_backend(&url, Duration::from_secs(20))
        .request_claim(&ClaimRequest::new(template))
        .await;
    match answer {
        Err(ClaimError::Malformed { problem }) => {
            assert!(problem.contains("larger than"), "{problem}")
        }
        other => panic!("expected a refused body, got {other:?}"),
    }
    let served = served(server).await;
    assert!(served.closed_early, "{served:?}");
    assert!(served.written < 16 * 1024 * 1024, "{served:?}");
}

#[tokio::test]
async fn a_cloud_answer_dripping_one_byte_a_second_ends_in_a_timeout() {
    let (url, server) = dripping(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        b" ",
    );
    let started = Instant::now();
    let template = TemplateName::new(TEMPLATE).expect("template");
    let answer = impatient_backend(&url, Duration::from_secs(2))
        .request_claim(&ClaimRequest::new(template))
        .await;
    assert!(
        matches!(
            answer,
            Err(ClaimError::Network {
                timed_out: true,
                ..
            })
        ),
        "{answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(served(server).await.closed_early);
}
