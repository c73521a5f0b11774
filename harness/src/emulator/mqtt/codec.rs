//! The broker's two wire protocols, MQTT 3.1.1 and MQTT 5, as AWS IoT Core speaks both (each client
//! chooses by its CONNECT's protocol level), through rumqttc's maintained codecs
//! (`rumqttc::mqttbytes::v4` and `rumqttc::v5::mqttbytes::v5`), behind the few packets a session
//! handles ([`Inbound`], [`Outbound`]).
//!
//! Where the protocols differ in what a refusal looks like, each gets its own: an MQTT 3.1.1 client
//! whose policy does not allow a topic is disconnected (it has no way to be told), an MQTT 5 client gets
//! reason code 0x87 "Not authorized" in its SUBACK or PUBACK (AWS's MQTT reason codes,
//! developerguide/mqtt.html).

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

/// The largest packet read or written (AWS IoT: 128 KiB).
pub(super) const MAX_PACKET: usize = 128 * 1024;

/// Which MQTT a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5 (protocol level 5).
    V5,
}

/// What a client sent, in either protocol.
#[derive(Debug)]
pub(super) enum Inbound {
    Connect {
        client_id: String,
    },
    Subscribe {
        pkid: u16,
        /// Topic filter and whether QoS 1 (rather than 0) was asked.
        filters: Vec<(String, bool)>,
    },
    Publish {
        topic: String,
        at_least_once: bool,
        pkid: u16,
        payload: Bytes,
    },
    PingReq,
    Unsubscribe {
        pkid: u16,
        topics: Vec<String>,
    },
    Disconnect,
    /// Anything else (acknowledgements of what the broker sent, QoS 2 packets): ignored.
    Other,
}

/// What the broker sends, in either protocol.
#[derive(Clone, Debug)]
pub(crate) enum Outbound {
    ConnAck,
    /// Per filter: `Some(qos1)` granted, `None` refused as not authorized.
    SubAck {
        pkid: u16,
        granted: Vec<Option<bool>>,
    },
    PubAck {
        pkid: u16,
        not_authorized: bool,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    PingResp,
    UnsubAck {
        pkid: u16,
        count: usize,
    },
    /// MQTT 5 only: a DISCONNECT with reason 0x87 before the broker closes the connection.
    DisconnectNotAuthorized,
}

/// The protocol of the CONNECT at the start of `buf`: `Ok(None)` until enough bytes are there, `Err`
/// when it is no MQTT 3.1.1 or 5 CONNECT.
pub(super) fn detect(buf: &[u8]) -> Result<Option<MqttVersion>, ()> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != 0x10 {
        return Err(());
    }
    // The remaining length takes 1 to 4 bytes; the protocol name ("MQTT", 2 + 4 bytes) and the level
    // follow.
    let mut at = 1;
    loop {
        let Some(&b) = buf.get(at) else {
            return Ok(None);
        };
        at += 1;
        if b & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return Err(());
        }
    }
    let Some(header) = buf.get(at..at + 7) else {
        return Ok(None);
    };
    match header {
        [0, 4, b'M', b'Q', b'T', b'T', 4] => Ok(Some(MqttVersion::V311)),
        [0, 4, b'M', b'Q', b'T', b'T', 5] => Ok(Some(MqttVersion::V5)),
        _ => Err(()),
    }
}

impl MqttVersion {
    /// The next whole packet of `buf`: `Ok(None)` until it is all there, `Err` when it is malformed
    /// or too large.
    pub(super) fn read(self, buf: &mut BytesMut) -> Result<Option<Inbound>, ()> {
        match self {
            MqttVersion::V311 => match v4::Packet::read(buf, MAX_PACKET) {
                Ok(p) => Ok(Some(from_v4(p))),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
                Err(_) => Err(()),
            },
            MqttVersion::V5 => {
                let limit = u32::try_from(MAX_PACKET).ok();
                match v5::Packet::read(buf, limit) {
                    Ok(p) => Ok(Some(from_v5(p))),
                    Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
                    Err(_) => Err(()),
                }
            }
        }
    }

    /// Appends `packet`'s bytes to `buf`; `Err` when it cannot be encoded (too large).
    pub(super) fn write(self, packet: &Outbound, buf: &mut BytesMut) -> Result<(), ()> {
        match self {
            MqttVersion::V311 => match to_v4(packet) {
                Some(p) => p.write(buf, MAX_PACKET).map(|_| ()).map_err(|_| ()),
                // MQTT 3.1.1 has no DISCONNECT from the broker: the connection just closes.
                None => Ok(()),
            },
            MqttVersion::V5 => to_v5(packet)
                .write(buf, u32::try_from(MAX_PACKET).ok())
                .map(|_| ())
                .map_err(|_| ()),
        }
    }
}

fn from_v4(p: v4::Packet) -> Inbound {
    use rumqttc::mqttbytes::QoS;
    match p {
        v4::Packet::Connect(c) => Inbound::Connect {
            client_id: c.client_id,
        },
        v4::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, f.qos != QoS::AtMostOnce))
                .collect(),
        },
        v4::Packet::Publish(p) => Inbound::Publish {
            topic: p.topic,
            at_least_once: p.qos != QoS::AtMostOnce,
            pkid: p.pkid,
            payload: p.payload,
        },
        v4::Packet::PingReq => Inbound::PingReq,
        v4::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            topics: u.topics,
        },
        v4::Packet::Disconnect => Inbound::Disconnect,
        _ => Inbound::Other,
    }
}

fn from_v5(p: v5::Packet) -> Inbound {
    use rumqttc::v5::mqttbytes::QoS;
    match p {
        v5::Packet::Connect(c, _, _) => Inbound::Connect {
            client_id: c.client_id,
        },
        v5::Packet::Subscribe(s) => Inbound::Subscribe {
            pkid: s.pkid,
            filters: s
                .filters
                .into_iter()
                .map(|f| (f.path, f.qos != QoS::AtMostOnce))
                .collect(),
        },
        v5::Packet::Publish(p) => Inbound::Publish {
            topic: String::from_utf8_lossy(&p.topic).into_owned(),
            at_least_once: p.qos != QoS::AtMostOnce,
            pkid: p.pkid,
            payload: p.payload,
        },
        v5::Packet::PingReq(_) => Inbound::PingReq,
        v5::Packet::Unsubscribe(u) => Inbound::Unsubscribe {
            pkid: u.pkid,
            topics: u.filters,
        },
        v5::Packet::Disconnect(_) => Inbound::Disconnect,
        _ => Inbound::Other,
    }
}

fn to_v4(p: &Outbound) -> Option<v4::Packet> {
    use rumqttc::mqttbytes::QoS;
    let qos = |at_least_once: bool| {
        if at_least_once {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        }
    };
    Some(match p {
        Outbound::ConnAck => {
            v4::Packet::ConnAck(v4::ConnAck::new(v4::ConnectReturnCode::Success, false))
        }
        Outbound::SubAck { pkid, granted } => v4::Packet::SubAck(v4::SubAck::new(
            *pkid,
            granted
                .iter()
                .map(|g| match g {
                    Some(q) => v4::SubscribeReasonCode::Success(qos(*q)),
                    None => v4::SubscribeReasonCode::Failure,
                })
                .collect(),
        )),
        Outbound::PubAck { pkid, .. } => v4::Packet::PubAck(v4::PubAck::new(*pkid)),
        Outbound::Publish { topic, payload } => v4::Packet::Publish(v4::Publish::new(
            topic.clone(),
            QoS::AtMostOnce,
            payload.clone(),
        )),
        Outbound::PingResp => v4::Packet::PingResp,
        Outbound::UnsubAck { pkid, .. } => v4::Packet::UnsubAck(v4::UnsubAck { pkid: *pkid }),
        Outbound::DisconnectNotAuthorized => return None,
    })
}

fn to_v5(p: &Outbound) -> v5::Packet {
    use rumqttc::v5::mqttbytes::QoS;
    match p {
        Outbound::ConnAck => v5::Packet::ConnAck(v5::ConnAck {
            session_present: false,
            code: v5::ConnectReturnCode::Success,
            // What AWS IoT Core announces (developerguide/mqtt.html, "MQTT 5 supported features"):
            // QoS 0 and 1 only, no retained messages here, 128 KiB packets; no topic aliases,
            // subscription identifiers or shared subscriptions in the emulator.
            properties: Some(v5::ConnAckProperties {
                session_expiry_interval: None,
                receive_max: Some(100),
                max_qos: Some(1),
                retain_available: Some(0),
                max_packet_size: u32::try_from(MAX_PACKET).ok(),
                assigned_client_identifier: None,
                topic_alias_max: None,
                reason_string: None,
                user_properties: Vec::new(),
                wildcard_subscription_available: Some(1),
                subscription_identifiers_available: Some(0),
                shared_subscription_available: Some(0),
                server_keep_alive: None,
                response_information: None,
                server_reference: None,
                authentication_method: None,
                authentication_data: None,
            }),
        }),
        Outbound::SubAck { pkid, granted } => v5::Packet::SubAck(v5::SubAck {
            pkid: *pkid,
            return_codes: granted
                .iter()
                .map(|g| match g {
                    Some(true) => v5::SubscribeReasonCode::Success(QoS::AtLeastOnce),
                    Some(false) => v5::SubscribeReasonCode::Success(QoS::AtMostOnce),
                    None => v5::SubscribeReasonCode::NotAuthorized,
                })
                .collect(),
            properties: None,
        }),
        Outbound::PubAck {
            pkid,
            not_authorized,
        } => v5::Packet::PubAck(v5::PubAck {
            pkid: *pkid,
            reason: if *not_authorized {
                v5::PubAckReason::NotAuthorized
            } else {
                v5::PubAckReason::Success
            },
            properties: None,
        }),
        Outbound::Publish { topic, payload } => v5::Packet::Publish(v5::Publish::new(
            topic.clone(),
            QoS::AtMostOnce,
            payload.clone(),
            None,
        )),
        Outbound::PingResp => v5::Packet::PingResp(v5::PingResp),
        Outbound::UnsubAck { pkid, count } => v5::Packet::UnsubAck(v5::UnsubAck {
            pkid: *pkid,
            reasons: vec![v5::UnsubAckReason::Success; *count],
            properties: None,
        }),
        Outbound::DisconnectNotAuthorized => {
            v5::Packet::Disconnect(v5::Disconnect::new(v5::DisconnectReasonCode::NotAuthorized))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_says_which_protocol() {
        let mut v311 = BytesMut::new();
        v4::Packet::Connect(v4::Connect::new("a"))
            .write(&mut v311, MAX_PACKET)
            .expect("encodes");
        assert_eq!(detect(&v311), Ok(Some(MqttVersion::V311)));
        let mut v5_bytes = BytesMut::new();
        let connect = v5::Connect {
            keep_alive: 30,
            client_id: "a".into(),
            clean_start: true,
            properties: None,
        };
        v5::Packet::Connect(connect, None, None)
            .write(&mut v5_bytes, None)
            .expect("encodes");
        assert_eq!(detect(&v5_bytes), Ok(Some(MqttVersion::V5)));
        assert_eq!(detect(&v5_bytes[..5]), Ok(None));
        assert_eq!(detect(&[0x30, 0]), Err(()), "a PUBLISH first");
        assert_eq!(detect(&[0x10, 0x80, 0x80, 0x80, 0x80, 0x01]), Err(()));
        let mut v31 = v311.to_vec();
        v31[8] = 3;
        assert_eq!(detect(&v31), Err(()), "MQTT 3.1 is not spoken");
    }
}
