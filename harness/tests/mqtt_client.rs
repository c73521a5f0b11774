//! The device's MQTT client (`device::cloud::mqtt`) against scripted brokers on 127.0.0.1 over real
//! TLS: each test's broker answers (or refuses, stalls, hangs up, floods, sends garbage) packet by
//! packet, and the test checks what the client did on the wire and the error it names.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use claimlink_harness::device::cloud::mqtt::{
    ConnectOptions, Delivery, IncomingPublish, MqttClient, MqttError, MAX_UNREAD,
};
use claimlink_harness::emulator::pki::Pki;
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::QoS;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The broker's end of one connection.
struct BrokerSide {
    stream: TlsStream<tokio::net::TcpStream>,
    buf: BytesMut,
}

impl BrokerSide {
    /// The next packet the client sent (panics at end of stream).
    async fn expect(&mut self) -> Packet {
        loop {
            match Packet::read(&mut self.buf, 1 << 20) {
                Ok(p) => return p,
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {
                    let mut chunk = [0u8; 4096];
                    let n = self.stream.read(&mut chunk).await.expect("broker read");
                    assert!(n > 0, "the client hung up");
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) => panic!("the client sent a malformed packet: {e}"),
            }
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut out = BytesMut::new();
        packet.write(&mut out, 1 << 20).expect("encodable");
        self.send_raw(&out).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("broker write");
        self.stream.flush().await.expect("broker flush");
    }

    /// Reads the CONNECT and accepts it; returns the CONNECT for inspection.
    async fn accept_connect(&mut self) -> rumqttc::mqttbytes::v4::Connect {
        let Packet::Connect(connect) = self.expect().await else {
            panic!("the first packet is not CONNECT");
        };
        self.send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            false,
        )))
        .await;
        connect
    }

    /// Reads a SUBSCRIBE and returns its packet id.
    async fn expect_subscribe(&mut self) -> u16 {
        match self.expect().await {
            Packet::Subscribe(s) => s.pkid,
            other => panic!("expected SUBSCRIBE, got {other:?}"),
        }
    }
}

/// A broker on 127.0.0.1 that runs `script` on the first connection; returns the client's options
/// (trusting the broker's CA) and the script's task (await it to surface its assertions).
async fn broker<F, Fut>(script: F) -> (Arc<rustls::ClientConfig>, u16, JoinHandle<()>)
where
    F: FnOnce(BrokerSide) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let pki = Pki::generate().expect("pki");
    let identity = pki.server_identity().expect("server identity");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let stream = acceptor.accept(tcp).await.expect("TLS accept");
        script(BrokerSide {
            stream,
            buf: BytesMut::new(),
        })
        .await;
    });
    (client_tls(pki.server_ca.pem()), port, task)
}

fn client_tls(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA pem"))
        .expect("root");
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

async fn connect(
    tls: Arc<rustls::ClientConfig>,
    port: u16,
    keep_alive: Duration,
) -> Result<MqttClient, MqttError> {
    MqttClient::connect(
        ConnectOptions {
            host: "127.0.0.1",
            port,
            tls,
            client_id: "sn-42",
            keep_alive,
            protocol: claimlink_harness::device::cloud::MqttProtocol::V311,
        },
        soon(),
    )
    .await
}

const KEEP_ALIVE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn connect_sends_a_clean_session_and_a_refused_connack_is_refused() {
    let (tls, port, script) = broker(|mut b| async move {
        let Packet::Connect(c) = b.expect().await else {
            panic!("not CONNECT")
        };
        assert_eq!(c.client_id, "sn-42");
        assert!(c.clean_session);
        assert_eq!(c.keep_alive, 30);
        assert!(c.login.is_none() && c.last_will.is_none());
        b.send(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::NotAuthorized,
            false,
        )))
        .await;
    })
    .await;
    let err = connect(tls, port, KEEP_ALIVE).await.err().expect("refused");
    script.await.expect("broker script");
    assert!(
        matches!(&err, MqttError::Refused { awaiting, reason } if awaiting == "CONNACK" && reason == "NotAuthorized"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_broker_that_hangs_up_before_connack_is_a_closed_connection() {
    let (tls, port, script) = broker(|mut b| async move {
        b.expect().await;
        b.stream.shutdown().await.expect("close");
    })
    .await;
    let err = connect(tls, port, KEEP_ALIVE).await.err().expect("closed");
    script.await.expect("broker script");
    assert!(
        matches!(&err, MqttError::Closed { awaiting, .. } if awaiting == "CONNACK"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_untrusted_broker_certificate_fails_the_handshake() {
    let (_, port, _script) = broker(|_| async {}).await;
    let other = Pki::generate().expect("pki");
    let err = connect(client_tls(other.server_ca.pem()), port, KEEP_ALIVE)
        .await
        .err()
        .expect("untrusted");
    assert!(matches!(&err, MqttError::Handshake(_)), "{err:?}");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let pki = Pki::generate().expect("pki");
    let err = connect(client_tls(pki.server_ca.pem()), port, KEEP_ALIVE)
        .await
        .err()
        .expect("nothing there");
    assert!(matches!(err, MqttError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn subscribe_awaits_its_suback_and_a_refusal_is_an_error() {
    let (tls, port, script) = broker(|mut b| async move {
        b.accept_connect().await;
        let first = b.expect_subscribe().await;
        b.send(Packet::SubAck(SubAck::new(
            first,
            vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
        )))
        .await;
        let second = b.expect_subscribe().await;
        assert_ne!(first, second, "each SUBSCRIBE has its own packet id");
        b.send(Packet::SubAck(SubAck::new(
            second,
            vec![SubscribeReasonCode::Failure],
        )))
        .await;
    })
    .await;
    let mut client = connect(tls, port, KEEP_ALIVE).await.expect("connects");
    client
        .subscribe("$aws/certificates/create/json/accepted", soon())
        .await
        .expect("granted");
    let err = client
        .subscribe("not/allowed", soon())
        .await
        .expect_err("refused");
    script.await.expect("broker script");
    assert_eq!(
        err,
        MqttError::Refused {
            awaiting: "SUBACK for not/allowed".into(),
            reason: "0x80".into()
        }
    );
}

#[tokio::test]
async fn qos1_publish_awaits_its_puback_and_acknowledges_what_arrives_meanwhile() {
    let (tls, port, script) = broker(|mut b| async move {
        b.accept_connect().await;
        let Packet::Publish(p) = b.expect().await else {
            panic!("not PUBLISH")
        };
        assert_eq!((p.topic.as_str(), p.qos), ("up", QoS::AtLeastOnce));
        assert_eq!(&p.payload[..], b"{\"n\":1}");
        // Before the PUBACK: a QoS 1 message for the client, which it must acknowledge.
        let mut down = Publish::new("down", QoS::AtLeastOnce, b"hello".to_vec());
        down.pkid = 7;
        b.send(Packet::Publish(down)).await;
        assert_eq!(b.expect().await, Packet::PubAck(PubAck::new(7)));
        b.send(Packet::PubAck(PubAck::new(p.pkid))).await;
        // QoS 0 goes out unacknowledged.
        let Packet::Publish(q0) = b.expect().await else {
            panic!("not PUBLISH")
        };
        assert_eq!(q0.qos, QoS::AtMostOnce);
    })
    .await;
    let mut client = connect(tls, port, KEEP_ALIVE).await.expect("connects");
    client
        .publish("up", b"{\"n\":1}", Delivery::AtLeastOnce, soon())
        .await
        .expect("acknowledged");
    client
        .publish("up", b"fire and forget", Delivery::AtMostOnce, soon())
        .await
        .expect("sent");
    assert_eq!(
        client.next_publish(soon()).await.expect("kept"),
        IncomingPublish {
            topic: "down".into(),
            payload: b"hello".to_vec().into()
        }
    );
    script.await.expect("broker script");
}

#[tokio::test]
async fn no_answer_is_a_timeout_and_a_hang_up_a_closed_connection() {
    let (tls, port, script) = broker(|mut b| async move {
        b.accept_connect().await;
        b.expect_subscribe().await; // never answered
        b.expect().await; // the PUBLISH: the broker hangs up instead of acknowledging
        b.stream.shutdown().await.expect("close");
    })
    .await;
    let mut client = connect(tls, port, KEEP_ALIVE).await.expect("connects");
    let err = client
        .subscribe("silence", Instant::now() + Duration::from_millis(200))
        .await
        .expect_err("no SUBACK");
    assert_eq!(
        err,
        MqttError::Timeout {
            awaiting: "SUBACK for silence".into()
        }
    );
    let err = client
        .publish("t", b"x", Delivery::AtLeastOnce, soon())
        .await
        .expect_err("hung up");
    assert!(
        matches!(&err, MqttError::Closed { awaiting, .. } if awaiting == "PUBACK for t"),
        "{err:?}"
    );
    // Later calls say so without touching the stream again.
    let err = client.ping(soon()).await.expect_err("still closed");
    assert!(matches!(err, MqttError::Closed { .. }), "{err:?}");
    script.await.expect("broker script");
}

#[tokio::test]
async fn the_client_pings_when_the_keep_alive_is_due_and_on_request() {
    let (tls, port, script) = broker(|mut b| async move {
        let connect = b.accept_connect().await;
        assert_eq!(connect.keep_alive, 1);
        // Idle client: a PINGREQ comes on its own.
        assert_eq!(b.expect().await, Packet::PingReq);
        b.send(Packet::PingResp).await;
        b.send(Packet::Publish(Publish::new(
            "after-ping",
            QoS::AtMostOnce,
            b"1".to_vec(),
        )))
        .await;
        assert_eq!(b.expect().await, Packet::PingReq);
        b.send(Packet::PingResp).await;
    })
    .await;
    let mut client = connect(tls, port, Duration::from_secs(1))
        .await
        .expect("connects");
    let publish = client.next_publish(soon()).await.expect("arrives");
    assert_eq!(publish.topic, "after-ping");
    client.ping(soon()).await.expect("PINGRESP");
    script.await.expect("broker script");
}

#[tokio::test]
async fn a_hostile_broker_is_a_protocol_violation() {
    // Each case: what the broker sends instead of the SUBACK, and what the error must mention.
    let oversized = {
        // A PUBLISH announcing 200 KiB: refused from its header, nothing of it buffered.
        let mut b = vec![0x30];
        let mut len = 200 * 1024usize;
        loop {
            let mut byte = (len % 128) as u8;
            len /= 128;
            if len > 0 {
                byte |= 0x80;
            }
            b.push(byte);
            if len == 0 {
                break;
            }
        }
        b
    };
    let flood: Vec<u8> = {
        let mut out = BytesMut::new();
        for _ in 0..=MAX_UNREAD {
            Packet::Publish(Publish::new("flood", QoS::AtMostOnce, b"x".to_vec()))
                .write(&mut out, 1 << 20)
                .expect("encodable");
        }
        out.to_vec()
    };
    let qos2 = {
        let mut p = Publish::new("q2", QoS::ExactlyOnce, b"x".to_vec());
        p.pkid = 3;
        let mut out = BytesMut::new();
        Packet::Publish(p)
            .write(&mut out, 1 << 20)
            .expect("encodable");
        out.to_vec()
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("oversized", oversized, "limit"),
        ("reserved packet type 0", vec![0x00, 0x00], "packet type"),
        (
            "a PUBACK for nothing",
            vec![0x40, 0x02, 0x12, 0x34],
            "unexpected PubAck",
        ),
        ("a flood", flood, "unread publishes"),
        ("QoS 2", qos2, "QoS 2"),
        (
            "a second CONNACK",
            vec![0x20, 0x02, 0x00, 0x00],
            "unexpected ConnAck",
        ),
    ];
    for (name, bytes, mention) in cases {
        let (tls, port, script) = broker(move |mut b| async move {
            b.accept_connect().await;
            b.expect_subscribe().await;
            b.send_raw(&bytes).await;
        })
        .await;
        let mut client = connect(tls, port, KEEP_ALIVE).await.expect("connects");
        let err = client
            .subscribe("s", soon())
            .await
            .expect_err("hostile answer");
        script.await.expect("broker script");
        assert!(
            matches!(&err, MqttError::Protocol { awaiting, detail } if awaiting == "SUBACK for s" && detail.contains(mention)),
            "{name}: {err:?}"
        );
        // The connection is not used after a violation.
        assert!(
            matches!(client.ping(soon()).await, Err(MqttError::Closed { .. })),
            "{name}"
        );
    }
}
