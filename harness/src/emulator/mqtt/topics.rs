//! MQTT topic filters and the claim policy: which topics a claim certificate may use.

/// MQTT topic filter matching with `+` and `#`.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The claim policy: create / create-from-csr and any template's provision topics (and their replies).
pub(super) fn claim_may_use(topic_or_filter: &str) -> bool {
    [
        "$aws/certificates/create/",
        "$aws/certificates/create-from-csr/",
    ]
    .iter()
    .any(|p| topic_or_filter.starts_with(p))
        || topic_or_filter
            .strip_prefix("$aws/provisioning-templates/")
            .is_some_and(|rest| rest.split('/').nth(1) == Some("provision"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_the_claim_policy() {
        assert!(topic_matches(
            "$aws/certificates/create/json/+",
            "$aws/certificates/create/json/accepted"
        ));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(claim_may_use("$aws/certificates/create-from-csr/json"));
        assert!(claim_may_use(
            "$aws/provisioning-templates/t1/provision/json/accepted"
        ));
        assert!(!claim_may_use("$aws/things/t1/shadow/update"));
        assert!(!claim_may_use("devices/t1/telemetry"));
        assert!(!claim_may_use("$aws/provisioning-templates/t1/other"));
    }
}
