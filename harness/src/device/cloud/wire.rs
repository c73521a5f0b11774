//! The device client's two wire protocols, MQTT 3.1.1 and MQTT 5 (AWS IoT Core speaks both; AWS's
//! current device SDKs default to MQTT 5), through rumqttc's maintained codecs
//! (`rumqttc::mqttbytes::v4`, `rumqttc::v5::mqttbytes::v5`), behind the few packets the client sends
//! ([`Outgoing`]) and handles ([`Incoming`]). A refusal keeps the broker's words: MQTT 3.1.1's CONNACK
//! return code or SUBACK 0x80, MQTT 5's reason codes (0x87 "Not authorized" on a SUBACK or PUBACK).

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

/// Which MQTT the device speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MqttProtocol {
    /// MQTT 3.1.1.
    #[default]
    V311,
    /// MQTT 5.
    V5,
}

/// What the client sends.
pub(super) enum Outgoing<'a> {
    Connect {
        client_id: &'a str,
        keep_alive: u16,
    },
    Subscribe {
        pkid: u16,
        filter: &'a str,
    },
    Publish {
        topic: &'a str,
        payload: &'a [u8],
        pkid: Option<u16>,
    },
    PubAck {
        pkid: u16,
    },
    PingReq,
    Disconnect,
}

/// What the broker sent.
#[derive(Debug)]
pub(super) enum Incoming {
    /// `refusal`: the return or reason code when the broker refused the connection.
    ConnAck {
        refusal: Option<String>,
    },
    /// Per filter: granted, or refused with the broker's code.
    SubAck {
        pkid: u16,
        codes: Vec<Result<(), String>>,
    },
    PubAck {
        pkid: u16,
        refusal: Option<String>,
    },
    Publish {
        topic: String,
        qos: u8,
        pkid: u16,
        payload: Bytes,
    },
    PingResp,
    /// MQTT 5: the broker's DISCONNECT, with its reason.
    Disconnect {
        reason: String,
    },
    /// Anything else, named for the error that reports it.
    Other(String),
}

impl Incoming {
    /// The packet's name, for "unexpected ..." errors.
    pub(super) fn describe(&self) -> String {
        match self {
            Incoming::ConnAck { .. } => "ConnAck".into(),
            Incoming::SubAck { pkid, .. } => format!("SubAck for packet {pkid}"),
            Incoming::PubAck { pkid, .. } => format!("PubAck for packet {pkid}"),
            Incoming::Publish { topic, .. } => format!("Publish on {topic}"),
            Incoming::PingResp => "PingResp".into(),
            Incoming::Disconnect { reason } => format!("Disconnect ({reason})"),
            Incoming::Other(what) => what.clone(),
        }
    }
}

impl MqttProtocol {
    /// Appends `packet`'s bytes to `buf`.
    pub(super) fn encode(
        self,
        packet: &Outgoing<'_>,
        buf: &mut BytesMut,
        max: usize,
    ) -> Result<(), String> {
        match self {
            MqttProtocol::V311 => v4_packet(packet)
                .write(buf, max)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            MqttProtocol::V5 => v5_packet(packet)
                .write(buf, u32::try_from(max).ok())
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// The next whole packet of `buf`: `Ok(None)` until it is all there.
    pub(super) fn decode(self, buf: &mut BytesMut, max: usize) -> Result<Option<Incoming>, String> {
        match self {
            MqttProtocol::V311 => match v4::Packet::read(buf, max) {
                Ok(p) => Ok(Some(from_v4(p))),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
                Err(e) => Err(e.to_string()),
            },
            MqttProtocol::V5 => match v5::Packet::read(buf, u32::try_from(max).ok()) {
                Ok(p) => Ok(Some(from_v5(p))),
                Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

fn v4_packet(packet: &Outgoing<'_>) -> v4::Packet {
    use rumqttc::mqttbytes::QoS;
    match packet {
        Outgoing::Connect {
            client_id,
            keep_alive,
        } => {
            let mut connect = v4::Connect::new(*client_id);
            connect.clean_session = true;
            connect.keep_alive = *keep_alive;
            v4::Packet::Connect(connect)
        }
        Outgoing::Subscribe { pkid, filter } => {
            let mut subscribe = v4::Subscribe::new(*filter, QoS::AtLeastOnce);
            subscribe.pkid = *pkid;
            v4::Packet::Subscribe(subscribe)
        }
        Outgoing::Publish {
            topic,
            payload,
            pkid,
        } => {
            let qos = if pkid.is_some() {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            let mut publish = v4::Publish::new(*topic, qos, payload.to_vec());
            publish.pkid = pkid.unwrap_or(0);
            v4::Packet::Publish(publish)
        }
        Outgoing::PubAck { pkid } => v4::Packet::PubAck(v4::PubAck::new(*pkid)),
        Outgoing::PingReq => v4::Packet::PingReq,
        Outgoing::Disconnect => v4::Packet::Disconnect,
    }
}

fn v5_packet(packet: &Outgoing<'_>) -> v5::Packet {
    use rumqttc::v5::mqttbytes::QoS;
    match packet {
        Outgoing::Connect {
            client_id,
            keep_alive,
        } => v5::Packet::Connect(
            v5::Connect {
                keep_alive: *keep_alive,
                client_id: (*client_id).to_owned(),
                clean_start: true,
                properties: None,
            },
            None,
            None,
        ),
        Outgoing::Subscribe { pkid, filter } => {
            let mut subscribe =
                v5::Subscribe::new(v5::Filter::new(*filter, QoS::AtLeastOnce), None);
            subscribe.pkid = *pkid;
            v5::Packet::Subscribe(subscribe)
        }
        Outgoing::Publish {
            topic,
            payload,
            pkid,
        } => {
            let qos = if pkid.is_some() {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            let mut publish = v5::Publish::new(*topic, qos, payload.to_vec(), None);
            publish.pkid = pkid.unwrap_or(0);
            v5::Packet::Publish(publish)
        }
        Outgoing::PubAck { pkid } => v5::Packet::PubAck(v5::PubAck::new(*pkid, None)),
        Outgoing::PingReq => v5::Packet::PingReq(v5::PingReq),
        Outgoing::Disconnect => v5::Packet::Disconnect(v5::Disconnect::new(
            v5::DisconnectReasonCode::NormalDisconnection,
        )),
    }
}

fn from_v4(p: v4::Packet) -> Incoming {
    match p {
        v4::Packet::ConnAck(ack) => Incoming::ConnAck {
            refusal: (ack.code != v4::ConnectReturnCode::Success)
                .then(|| format!("{:?}", ack.code)),
        },
        v4::Packet::SubAck(ack) => Incoming::SubAck {
            pkid: ack.pkid,
            codes: ack
                .return_codes
                .iter()
                .map(|c| match c {
                    v4::SubscribeReasonCode::Success(_) => Ok(()),
                    v4::SubscribeReasonCode::Failure => Err("0x80".to_owned()),
                })
                .collect(),
        },
        v4::Packet::PubAck(ack) => Incoming::PubAck {
            pkid: ack.pkid,
            refusal: None,
        },
        v4::Packet::Publish(p) => Incoming::Publish {
            topic: p.topic,
            // Both rumqttc QoS enums are `#[repr(u8)]` with the wire values as discriminants.
            qos: p.qos as u8,
            pkid: p.pkid,
            payload: p.payload,
        },
        v4::Packet::PingResp => Incoming::PingResp,
        other => Incoming::Other(format!("{other:?}")),
    }
}

fn from_v5(p: v5::Packet) -> Incoming {
    match p {
        v5::Packet::ConnAck(ack) => Incoming::ConnAck {
            refusal: (ack.code != v5::ConnectReturnCode::Success)
                .then(|| format!("{:?}", ack.code)),
        },
        v5::Packet::SubAck(ack) => Incoming::SubAck {
            pkid: ack.pkid,
            codes: ack
                .return_codes
                .iter()
                .map(|c| match c {
                    v5::SubscribeReasonCode::Success(_) => Ok(()),
                    refused => Err(format!("{refused:?}")),
                })
                .collect(),
        },
        v5::Packet::PubAck(ack) => Incoming::PubAck {
            pkid: ack.pkid,
            refusal: match ack.reason {
                v5::PubAckReason::Success | v5::PubAckReason::NoMatchingSubscribers => None,
                refused => Some(format!("{refused:?}")),
            },
        },
        v5::Packet::Publish(p) => Incoming::Publish {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            // Both rumqttc QoS enums are `#[repr(u8)]` with the wire values as discriminants.
            qos: p.qos as u8,
            pkid: p.pkid,
            payload: p.payload,
        },
        v5::Packet::PingResp(_) => Incoming::PingResp,
        v5::Packet::Disconnect(d) => Incoming::Disconnect {
            reason: format!("{:?}", d.reason_code),
        },
        other => Incoming::Other(format!("{other:?}")),
    }
}
