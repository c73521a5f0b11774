//! The payload formats of AWS's fleet-provisioning MQTT API, which the emulator and the simulated
//! devices both speak: every request topic ends in `/json` or `/cbor`
//! (AWS: "This API supports response buffers in Concise Binary Object Representation (CBOR) format
//! and JavaScript Object Notation (JSON), depending on the payload-format of the topic",
//! developerguide/fleet-provision-api.html), and the answer on `…/accepted` or `…/rejected` is in the
//! request's format. CBOR goes through `ciborium` (serde), into and out of the same JSON values the
//! handlers work on.

use serde_json::Value;

/// A fleet-provisioning payload format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadFormat {
    /// `…/json`.
    Json,
    /// `…/cbor`.
    Cbor,
}

impl PayloadFormat {
    /// The topic segment naming it.
    pub fn segment(self) -> &'static str {
        match self {
            PayloadFormat::Json => "json",
            PayloadFormat::Cbor => "cbor",
        }
    }

    /// Splits a request topic into its API part and its format: `$aws/certificates/create/cbor` →
    /// (`$aws/certificates/create`, CBOR). `None` when the topic names no format.
    pub fn split(topic: &str) -> Option<(&str, PayloadFormat)> {
        let (api, format) = topic.rsplit_once('/')?;
        match format {
            "json" => Some((api, PayloadFormat::Json)),
            "cbor" => Some((api, PayloadFormat::Cbor)),
            _ => None,
        }
    }

    /// Decodes a request payload (an empty one is `{}`, as AWS takes an empty CreateKeysAndCertificate
    /// request); `None` when it is not a well-formed document of this format.
    pub fn decode(self, payload: &[u8]) -> Option<Value> {
        if payload.is_empty() {
            return Some(Value::Object(serde_json::Map::new()));
        }
        match self {
            PayloadFormat::Json => serde_json::from_slice(payload).ok(),
            PayloadFormat::Cbor => ciborium::de::from_reader(payload).ok(),
        }
    }

    /// Encodes an answer.
    pub fn encode(self, value: &Value) -> Vec<u8> {
        match self {
            PayloadFormat::Json => value.to_string().into_bytes(),
            PayloadFormat::Cbor => {
                let mut out = Vec::new();
                // Writing into a Vec cannot fail, and every JSON value has a CBOR form: an error here
                // would leave `out` empty, which the requester reports as a malformed answer.
                if ciborium::ser::into_writer(value, &mut out).is_err() {
                    out.clear();
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip_and_refuse_garbage() {
        let v = serde_json::json!({"certificateOwnershipToken": "t", "parameters": {"SerialNumber": "x"}, "n": 7});
        for f in [PayloadFormat::Json, PayloadFormat::Cbor] {
            assert_eq!(f.decode(&f.encode(&v)), Some(v.clone()));
            assert_eq!(f.decode(b""), Some(serde_json::json!({})));
        }
        // A CBOR map of one text key, as RFC 8949 encodes it: a1 61 61 01 = {"a": 1}.
        assert_eq!(
            PayloadFormat::Cbor.decode(&[0xa1, 0x61, 0x61, 0x01]),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(PayloadFormat::Cbor.decode(&[0xa1, 0x61]), None);
        assert_eq!(PayloadFormat::Json.decode(&[0xa1, 0x61, 0x61, 0x01]), None);
        assert_eq!(
            PayloadFormat::split("$aws/provisioning-templates/t/provision/cbor"),
            Some((
                "$aws/provisioning-templates/t/provision",
                PayloadFormat::Cbor
            ))
        );
        assert_eq!(PayloadFormat::split("$aws/certificates/create/xml"), None);
    }
}
