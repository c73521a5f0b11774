//! MQTT topic filters and the claim policy: which topics a claim certificate may use.
//!
//! AWS attaches a policy to every claim `CreateProvisioningClaim` issues that names the one template
//! the claim was issued for (the fleet-provisioning guide's claim policy: `$aws/certificates/create/*`,
//! `$aws/certificates/create-from-csr/*` and `$aws/provisioning-templates/<templateName>/provision/*`).
//! A claim for one template therefore cannot call another template's RegisterThing.

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

/// The claim policy of a claim issued for `template`: create / create-from-csr and that template's
/// provision topics (and their replies), in JSON or CBOR.
pub(super) fn claim_may_use(topic_or_filter: &str, template: &str) -> bool {
    [
        "$aws/certificates/create/",
        "$aws/certificates/create-from-csr/",
    ]
    .iter()
    .any(|p| topic_or_filter.starts_with(p))
        || topic_or_filter
            .strip_prefix("$aws/provisioning-templates/")
            .and_then(|rest| rest.strip_prefix(template))
            .and_then(|rest| rest.strip_prefix("/provision/"))
            .is_some()
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
        assert!(claim_may_use(
            "$aws/certificates/create-from-csr/json",
            "t1"
        ));
        assert!(claim_may_use(
            "$aws/provisioning-templates/t1/provision/json/accepted",
            "t1"
        ));
        assert!(claim_may_use(
            "$aws/provisioning-templates/t1/provision/cbor",
            "t1"
        ));
        // Another template's topics, or a name that merely starts like the claim's template.
        assert!(!claim_may_use(
            "$aws/provisioning-templates/t2/provision/json",
            "t1"
        ));
        assert!(!claim_may_use(
            "$aws/provisioning-templates/t10/provision/json",
            "t1"
        ));
        assert!(!claim_may_use(
            "$aws/provisioning-templates/+/provision/json/accepted",
            "t1"
        ));
        assert!(!claim_may_use("$aws/things/t1/shadow/update", "t1"));
        assert!(!claim_may_use("devices/t1/telemetry", "t1"));
        assert!(!claim_may_use("$aws/provisioning-templates/t1/other", "t1"));
    }
}
