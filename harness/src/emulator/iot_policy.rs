//! AWS IoT policy evaluation for the MQTT actions, as the AWS IoT developer guide describes it: a
//! request is allowed when some statement allows its action on its resource and none denies it
//! (an explicit `Deny` wins; no statement: denied). Actions and resources match with `*` (any run of
//! characters) and `?` (one character); in a `topic/…` or `topicfilter/…` resource they are policy
//! wildcards, not MQTT's `+` and `#`. Policy variables (`${iot:Connection.Thing.ThingName}`, …) are
//! not substituted: a resource that uses one matches nothing here. `iot:Receive` is not checked: the
//! emulator delivers a client only the replies to its own requests.

use serde_json::Value;

/// The MQTT actions an IoT policy governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `iot:Connect` on `client/<clientId>`.
    Connect,
    /// `iot:Publish` on `topic/<topic>`.
    Publish,
    /// `iot:Subscribe` on `topicfilter/<filter>`.
    Subscribe,
}

impl Action {
    /// Its name in policies.
    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Publish => "iot:Publish",
            Action::Subscribe => "iot:Subscribe",
        }
    }

    /// The resource ARN it is checked against for `what` (client id, topic or topic filter).
    pub fn resource(self, region: &str, account: &str, what: &str) -> String {
        let kind = match self {
            Action::Connect => "client",
            Action::Publish => "topic",
            Action::Subscribe => "topicfilter",
        };
        format!("arn:aws:iot:{region}:{account}:{kind}/{what}")
    }
}

/// Glob match with `*` and `?` (byte-wise; policies and topics here are ASCII).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn statements(document: &Value) -> Vec<&Value> {
    match document.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

/// Whether `documents` (the policies attached to a certificate) allow `action` on `resource`.
pub fn allows(documents: &[&Value], action: &str, resource: &str) -> bool {
    let mut allowed = false;
    for statement in documents.iter().flat_map(|d| statements(d)) {
        let applies = strings(statement.get("Action"))
            .iter()
            .any(|a| glob(a.as_bytes(), action.as_bytes()))
            && strings(statement.get("Resource"))
                .iter()
                .any(|r| !r.contains("${") && glob(r.as_bytes(), resource.as_bytes()));
        if !applies {
            continue;
        }
        match statement.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return false,
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The claim policy of the fleet-provisioning guide, for template `T` in us-east-1/123456789012.
    fn claim_policy() -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["iot:Connect"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": [
                "arn:aws:iot:us-east-1:123456789012:topic/$aws/certificates/create/*",
                "arn:aws:iot:us-east-1:123456789012:topic/$aws/provisioning-templates/T/provision/*"]},
            {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": [
                "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/certificates/create/*",
                "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/provisioning-templates/T/provision/*"]}
        ]})
    }

    fn check(action: Action, what: &str) -> bool {
        let doc = claim_policy();
        allows(
            &[&doc],
            action.name(),
            &action.resource("us-east-1", "123456789012", what),
        )
    }

    #[test]
    fn the_claim_policy_allows_provisioning_topics_only() {
        assert!(check(Action::Connect, "serial-1"));
        assert!(check(Action::Publish, "$aws/certificates/create/json"));
        assert!(check(
            Action::Subscribe,
            "$aws/certificates/create/json/accepted"
        ));
        assert!(check(
            Action::Publish,
            "$aws/provisioning-templates/T/provision/json"
        ));
        // `create/*` does not cover `create-from-csr/…` (the guide's policy allows only the keys path).
        assert!(!check(
            Action::Publish,
            "$aws/certificates/create-from-csr/json"
        ));
        assert!(!check(
            Action::Publish,
            "$aws/provisioning-templates/U/provision/json"
        ));
        assert!(!check(Action::Subscribe, "#"));
        assert!(!check(Action::Publish, "devices/serial-1/telemetry"));
    }

    #[test]
    fn deny_wins_and_no_policy_denies() {
        let doc = claim_policy();
        let deny = json!({"Statement": {"Effect": "Deny", "Action": "iot:*", "Resource": "*"}});
        assert!(!allows(
            &[&doc, &deny],
            "iot:Connect",
            "arn:aws:iot:r:a:client/x"
        ));
        assert!(!allows(&[], "iot:Connect", "arn:aws:iot:r:a:client/x"));
    }

    #[test]
    fn globs() {
        assert!(glob(b"a*c", b"abbbc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"abbc"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a", b"ab"));
    }
}
