//! The device's MQTT client over mutual TLS, MQTT 3.1.1 or MQTT 5 ([`MqttProtocol`]): tokio-rustls for
//! the connection, rumqttc's maintained codecs (no TLS feature of rumqttc) for the packets (`wire`). It does what a
//! device provisioning itself needs and no more: CONNECT (clean session, keep-alive, client id),
//! SUBSCRIBE awaiting the SUBACK (a refusal, 0x80, is an error), PUBLISH at QoS 0 or 1 (QoS 1 awaits
//! the PUBACK), incoming PUBLISHes (QoS 1 ones acknowledged), PINGREQ when the keep-alive is due and
//! on request, and DISCONNECT.
//!
//! One task owns a [`MqttClient`]; every call reads the connection until what it awaits arrives, by a
//! deadline the caller gives. Publishes that arrive meanwhile wait in a bounded inbox for
//! [`MqttClient::next_publish`]. Reads are bounded: no packet larger than [`MAX_PACKET`] (AWS IoT's
//! limit) is buffered. Every failure says what was awaited and what happened ([`MqttError`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub use super::wire::MqttProtocol;
use super::wire::{Incoming, Outgoing};

/// Largest MQTT packet sent or accepted (AWS IoT: 128 KiB).
pub const MAX_PACKET: usize = 128 * 1024;

/// Most incoming publishes kept unread; one more is a protocol error (the broker floods us).
pub const MAX_UNREAD: usize = 64;

/// Why an MQTT operation failed. `awaiting` names what the client was waiting for ("CONNACK",
/// "SUBACK for $aws/...", "PUBACK for ...", "a publish", "PINGRESP").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    /// The TCP connection failed (refused, reset, no route): nothing answered, so a retry may work.
    #[error("cannot connect: {0}")]
    Unreachable(String),
    /// The TLS handshake failed: the broker (or what answers in its place) refused it.
    #[error("cannot connect: TLS handshake: {0}")]
    Handshake(String),
    /// The broker answered with a refusal: a CONNACK return code other than 0, or SUBACK 0x80.
    #[error("{awaiting}: refused ({reason})")]
    Refused {
        /// What was awaited.
        awaiting: String,
        /// The broker's answer.
        reason: String,
    },
    /// Nothing (or not the awaited packet) arrived by the deadline.
    #[error("no {awaiting} in time")]
    Timeout {
        /// What was awaited.
        awaiting: String,
    },
    /// The broker closed the connection (end of stream, a TLS alert, a reset), or had before.
    #[error("connection closed while awaiting {awaiting}: {reason}")]
    Closed {
        /// What was awaited.
        awaiting: String,
        /// End of stream, or the read/write error.
        reason: String,
    },
    /// The broker sent what MQTT 3.1.1 does not allow here (a malformed or oversized packet, an
    /// acknowledgement for nothing we sent, too many unread publishes).
    #[error("protocol violation while awaiting {awaiting}: {detail}")]
    Protocol {
        /// What was awaited.
        awaiting: String,
        /// What was wrong.
        detail: String,
    },
}

/// The delivery a publish asks for (QoS 2 is not used by AWS IoT and not offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// QoS 0: sent, not acknowledged.
    AtMostOnce,
    /// QoS 1: acknowledged with a PUBACK.
    AtLeastOnce,
}

/// A message the broker delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomingPublish {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Bytes,
}

/// What to connect with.
pub struct ConnectOptions<'a> {
    /// Host name or IP of the broker (also the name its certificate must carry).
    pub host: &'a str,
    /// Its port.
    pub port: u16,
    /// The client's TLS configuration (trust anchors and client certificate).
    pub tls: Arc<rustls::ClientConfig>,
    /// The MQTT client id.
    pub client_id: &'a str,
    /// The keep-alive announced in CONNECT; a PINGREQ goes out when nothing was sent for this long.
    pub keep_alive: Duration,
    /// MQTT 3.1.1 or MQTT 5.
    pub protocol: MqttProtocol,
}

/// One MQTT session over mutual TLS (clean session: nothing survives it).
pub struct MqttClient {
    stream: TlsStream<TcpStream>,
    read_buf: BytesMut,
    inbox: VecDeque<IncomingPublish>,
    last_packet_id: u16,
    keep_alive: Duration,
    protocol: MqttProtocol,
    last_sent: Instant,
    /// Set once the connection failed: every later call reports it instead of touching the stream.
    broken: Option<String>,
}

impl MqttClient {
    /// Connects TCP, TLS and MQTT; returns once the broker accepted the CONNECT (CONNACK 0), or fails
    /// by `deadline`.
    pub async fn connect(
        options: ConnectOptions<'_>,
        deadline: Instant,
    ) -> Result<Self, MqttError> {
        let timeout = |awaiting: &str| MqttError::Timeout {
            awaiting: awaiting.to_owned(),
        };
        let server = ServerName::try_from(options.host.to_owned())
            .map_err(|e| MqttError::Unreachable(format!("{}: {e}", options.host)))?;
        let tcp =
            tokio::time::timeout_at(deadline, TcpStream::connect((options.host, options.port)))
                .await
                .map_err(|_| timeout("TCP connection"))?
                .map_err(|e| {
                    MqttError::Unreachable(format!("{}:{}: {e}", options.host, options.port))
                })?;
        let stream = tokio::time::timeout_at(
            deadline,
            TlsConnector::from(options.tls).connect(server, tcp),
        )
        .await
        .map_err(|_| timeout("TLS handshake"))?
        .map_err(|e| MqttError::Handshake(e.to_string()))?;
        let mut client = Self {
            stream,
            read_buf: BytesMut::with_capacity(4096),
            inbox: VecDeque::new(),
            last_packet_id: 0,
            keep_alive: options.keep_alive,
            protocol: options.protocol,
            last_sent: Instant::now(),
            broken: None,
        };
        let connect = Outgoing::Connect {
            client_id: options.client_id,
            keep_alive: u16::try_from(options.keep_alive.as_secs()).unwrap_or(u16::MAX),
        };
        client.send(&connect, "CONNACK", deadline).await?;
        let refusal = client
            .await_packet(deadline, "CONNACK", |p| match p {
                Incoming::ConnAck { refusal } => Some(refusal.clone()),
                _ => None,
            })
            .await?;
        if let Some(reason) = refusal {
            return Err(MqttError::Refused {
                awaiting: "CONNACK".into(),
                reason,
            });
        }
        Ok(client)
    }

    /// Subscribes to `filter` at QoS 1 and waits for the SUBACK; a refusal (0x80) is
    /// [`MqttError::Refused`].
    pub async fn subscribe(&mut self, filter: &str, deadline: Instant) -> Result<(), MqttError> {
        let awaiting = format!("SUBACK for {filter}");
        let pkid = self.next_packet_id();
        self.send(&Outgoing::Subscribe { pkid, filter }, &awaiting, deadline)
            .await?;
        let codes = self
            .await_packet(deadline, &awaiting, |p| match p {
                Incoming::SubAck { pkid: id, codes } if *id == pkid => Some(codes.clone()),
                _ => None,
            })
            .await?;
        match codes.as_slice() {
            [Ok(())] => Ok(()),
            [Err(reason)] => Err(MqttError::Refused {
                awaiting,
                reason: reason.clone(),
            }),
            other => Err(MqttError::Protocol {
                awaiting,
                detail: format!("{} return codes for one filter", other.len()),
            }),
        }
    }

    /// Publishes `payload` on `topic`; at [`Delivery::AtLeastOnce`] returns once the PUBACK arrived.
    pub async fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        delivery: Delivery,
        deadline: Instant,
    ) -> Result<(), MqttError> {
        let awaiting = format!("PUBACK for {topic}");
        if delivery == Delivery::AtMostOnce {
            let publish = Outgoing::Publish {
                topic,
                payload,
                pkid: None,
            };
            return self.send(&publish, &awaiting, deadline).await;
        }
        let pkid = self.next_packet_id();
        let publish = Outgoing::Publish {
            topic,
            payload,
            pkid: Some(pkid),
        };
        self.send(&publish, &awaiting, deadline).await?;
        // MQTT 5 may refuse a publish in its PUBACK (0x87 "Not authorized", ...).
        let refusal = self
            .await_packet(deadline, &awaiting, |p| match p {
                Incoming::PubAck { pkid: id, refusal } if *id == pkid => Some(refusal.clone()),
                _ => None,
            })
            .await?;
        match refusal {
            None => Ok(()),
            Some(reason) => Err(MqttError::Refused { awaiting, reason }),
        }
    }

    /// The next message the broker delivers, by `deadline`.
    pub async fn next_publish(&mut self, deadline: Instant) -> Result<IncomingPublish, MqttError> {
        loop {
            if let Some(publish) = self.inbox.pop_front() {
                return Ok(publish);
            }
            let packet = self.read_packet(deadline, "a publish").await?;
            self.unsolicited(packet, "a publish", deadline).await?;
        }
    }

    /// Sends a PINGREQ and waits for the PINGRESP.
    pub async fn ping(&mut self, deadline: Instant) -> Result<(), MqttError> {
        self.send(&Outgoing::PingReq, "PINGRESP", deadline).await?;
        self.await_packet(deadline, "PINGRESP", |p| {
            matches!(p, Incoming::PingResp).then_some(())
        })
        .await
    }

    /// Sends DISCONNECT and closes the TLS connection (errors do not matter any more: the session
    /// ends either way).
    pub async fn disconnect(mut self) {
        if self.broken.is_none() {
            let deadline = Instant::now() + Duration::from_secs(2);
            let _ = self.send(&Outgoing::Disconnect, "nothing", deadline).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), self.stream.shutdown()).await;
        }
    }

    /// MQTT packet ids are 1..=65535.
    fn next_packet_id(&mut self) -> u16 {
        self.last_packet_id = self.last_packet_id.checked_add(1).unwrap_or(1);
        self.last_packet_id
    }

    /// Writes one packet by `deadline`. A write cut short leaves half a packet on the stream, so a
    /// timeout here ends the connection too.
    async fn send(
        &mut self,
        packet: &Outgoing<'_>,
        awaiting: &str,
        deadline: Instant,
    ) -> Result<(), MqttError> {
        self.check_open(awaiting)?;
        let mut buf = BytesMut::new();
        self.protocol
            .encode(packet, &mut buf, MAX_PACKET)
            .map_err(|e| MqttError::Protocol {
                awaiting: awaiting.to_owned(),
                detail: format!("cannot send: {e}"),
            })?;
        let written = tokio::time::timeout_at(deadline, async {
            self.stream.write_all(&buf).await?;
            self.stream.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Ok(Err(e)) => Err(self.fail(awaiting, e.to_string())),
            Err(_) => {
                self.broken = Some("a write timed out".into());
                Err(MqttError::Timeout {
                    awaiting: awaiting.to_owned(),
                })
            }
        }
    }

    /// Reads packets until `pick` accepts one; publishes and PINGRESPs that come first are handled
    /// on the way, anything else is a protocol violation.
    async fn await_packet<T>(
        &mut self,
        deadline: Instant,
        awaiting: &str,
        mut pick: impl FnMut(&Incoming) -> Option<T>,
    ) -> Result<T, MqttError> {
        loop {
            let packet = self.read_packet(deadline, awaiting).await?;
            if let Some(found) = pick(&packet) {
                return Ok(found);
            }
            self.unsolicited(packet, awaiting, deadline).await?;
        }
    }

    /// A packet nobody waited for: a publish goes to the inbox (QoS 1 acknowledged), a PINGRESP
    /// answers our keep-alive ping; anything else is a protocol violation.
    async fn unsolicited(
        &mut self,
        packet: Incoming,
        awaiting: &str,
        deadline: Instant,
    ) -> Result<(), MqttError> {
        match packet {
            Incoming::Publish {
                topic,
                qos,
                pkid,
                payload,
            } => {
                if self.inbox.len() >= MAX_UNREAD {
                    return Err(
                        self.violation(awaiting, format!("over {MAX_UNREAD} unread publishes"))
                    );
                }
                match qos {
                    0 => {}
                    1 => {
                        self.send(&Outgoing::PubAck { pkid }, awaiting, deadline)
                            .await?
                    }
                    _ => {
                        return Err(self.violation(awaiting, "a QoS 2 publish".into()));
                    }
                }
                self.inbox.push_back(IncomingPublish { topic, payload });
                Ok(())
            }
            Incoming::PingResp => Ok(()),
            // MQTT 5: the broker says why it ends the session.
            Incoming::Disconnect { reason } => {
                Err(self.fail(awaiting, format!("the broker disconnected: {reason}")))
            }
            other => Err(self.violation(awaiting, format!("unexpected {}", other.describe()))),
        }
    }

    /// The next whole packet, by `deadline`; pings the broker whenever the keep-alive is due.
    async fn read_packet(
        &mut self,
        deadline: Instant,
        awaiting: &str,
    ) -> Result<Incoming, MqttError> {
        self.check_open(awaiting)?;
        loop {
            match self.protocol.decode(&mut self.read_buf, MAX_PACKET) {
                Ok(Some(packet)) => return Ok(packet),
                Ok(None) => {}
                Err(e) => return Err(self.violation(awaiting, e)),
            }
            // A zero keep-alive turns the mechanism off (MQTT 3.1.1, 3.1.2.10).
            let wake = if self.keep_alive.is_zero() {
                deadline
            } else {
                deadline.min(self.last_sent + self.keep_alive)
            };
            let mut chunk = [0u8; 4096];
            // `read` is cancel safe: when the timer wins, no byte was taken from the stream.
            match tokio::time::timeout_at(wake, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) => return Err(self.fail(awaiting, "end of stream".into())),
                Ok(Ok(n)) => self.read_buf.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => return Err(self.fail(awaiting, e.to_string())),
                Err(_) if wake == deadline => {
                    return Err(MqttError::Timeout {
                        awaiting: awaiting.to_owned(),
                    })
                }
                Err(_) => self.send(&Outgoing::PingReq, awaiting, deadline).await?,
            }
        }
    }

    fn check_open(&self, awaiting: &str) -> Result<(), MqttError> {
        match &self.broken {
            Some(reason) => Err(MqttError::Closed {
                awaiting: awaiting.to_owned(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The connection is unusable from now on.
    fn fail(&mut self, awaiting: &str, reason: String) -> MqttError {
        self.broken = Some(reason.clone());
        MqttError::Closed {
            awaiting: awaiting.to_owned(),
            reason,
        }
    }

    /// The broker broke the protocol: the connection is unusable from now on.
    fn violation(&mut self, awaiting: &str, detail: String) -> MqttError {
        self.broken = Some(format!("protocol violation: {detail}"));
        MqttError::Protocol {
            awaiting: awaiting.to_owned(),
            detail,
        }
    }
}
