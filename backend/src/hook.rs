//! The pre-provisioning hook: the binding of a claim to the one device it was issued for.
//!
//! AWS IoT calls the template's hook (a Lambda function; the emulator: an HTTP URL) before RegisterThing
//! with [`HookInput`] and registers the thing only when the answer ([`HookOutput`]) says
//! `allowProvisioning`. [`decide_hook`] allows only a claim this backend issued, for this template,
//! unexpired, still `ISSUED`, whose device sends the serial the claim was issued for; it flips the
//! claim to `CONSUMED` in the same step (single use) and overrides the thing's name and attributes from
//! the record, so that what the device says cannot rename it. Everything else — unknown claims, a
//! database failure — is a denial: the hook fails closed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::{now_secs, ConsumeOutcome};
use crate::AppState;

/// AWS's input to a pre-provisioning hook (payload version 2020-04-01).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookInput {
    /// The id of the claim certificate the device connected with.
    pub claim_certificate_id: String,
    /// The id of the device's new certificate.
    #[serde(default)]
    pub certificate_id: String,
    /// The device's new certificate, PEM.
    #[serde(default)]
    pub certificate_pem: String,
    /// The template's ARN (`arn:aws:iot:<region>:<account>:provisioningtemplate/<name>`).
    #[serde(default)]
    pub template_arn: String,
    /// The device's MQTT client id.
    #[serde(default)]
    pub client_id: String,
    /// The parameters the device sent with RegisterThing.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// The hook's answer, in AWS's shape.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookOutput {
    /// Whether AWS may go on with RegisterThing.
    pub allow_provisioning: bool,
    /// Parameters that replace the device's (only with `allowProvisioning`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameter_overrides: BTreeMap<String, String>,
}

impl HookOutput {
    /// A denial.
    pub fn deny() -> Self {
        Self::default()
    }
}

/// The template name in a provisioning-template ARN (the text after `provisioningtemplate/`).
pub fn template_from_arn(arn: &str) -> Option<&str> {
    arn.rsplit_once(":provisioningtemplate/")
        .map(|(_, name)| name)
        .filter(|n| !n.is_empty())
}

/// The parameter overrides that name the thing from the claim's record: the installer's template
/// parameters, then the serial, `ThingName`, `Installer` and `Site` (those always win).
pub fn overrides_for(
    record: &crate::store::ClaimRecord,
    serial_parameter: &str,
) -> BTreeMap<String, String> {
    let mut o = record.parameters.clone();
    o.insert(serial_parameter.to_owned(), record.serial.clone());
    o.insert("ThingName".to_owned(), record.thing_name.clone());
    o.insert("Installer".to_owned(), record.installer.clone());
    o.insert("Site".to_owned(), record.site.clone());
    o
}

/// Decides one RegisterThing: see the module documentation. Called by the HTTP hook route and the
/// Lambda hook alike.
pub async fn decide_hook(state: &AppState, input: HookInput) -> HookOutput {
    let config = state.config();
    let Some(template) = template_from_arn(&input.template_arn) else {
        deny_unconsumed(
            state,
            &input,
            "the hook input has no provisioning-template ARN",
        )
        .await;
        return HookOutput::deny();
    };
    let Some(serial) = input.parameters.get(&config.claims.serial_parameter) else {
        let why = format!(
            "the device sent no {} parameter",
            config.claims.serial_parameter
        );
        deny_unconsumed(state, &input, &why).await;
        return HookOutput::deny();
    };
    match state
        .store()
        .consume(
            &input.claim_certificate_id,
            template,
            serial,
            &input.certificate_id,
            now_secs(),
        )
        .await
    {
        Ok(ConsumeOutcome::Consumed(record)) => {
            tracing::info!(certificate_id = %record.certificate_id, serial = %record.serial, "hook: allowed");
            HookOutput {
                allow_provisioning: true,
                parameter_overrides: overrides_for(&record, &config.claims.serial_parameter),
            }
        }
        Ok(ConsumeOutcome::Refused(why, _)) => {
            tracing::info!(certificate_id = %input.claim_certificate_id, reason = %crate::store::refusal_words(&why), "hook: denied");
            HookOutput::deny()
        }
        Err(e) => {
            tracing::warn!(error = %e, "hook: database failure, denying");
            HookOutput::deny()
        }
    }
}

/// Audits a denial decided before the database was asked (best effort: the answer is a denial anyway).
async fn deny_unconsumed(state: &AppState, input: &HookInput, why: &str) {
    let mut entry = crate::store::AuditEntry::new("hook", "hook.deny", "denied", why);
    entry.certificate_id = Some(input.claim_certificate_id.clone());
    if let Err(e) = state.store().append_audit(entry).await {
        tracing::warn!(error = %e, "hook: the denial could not be audited");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_and_output_use_aws_field_names() {
        let input: HookInput = serde_json::from_value(serde_json::json!({
            "claimCertificateId": "abc", "certificateId": "def", "certificatePem": "pem",
            "templateArn": "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/claimlink-demo",
            "clientId": "dev", "parameters": {"SerialNumber": "SN-1"}
        }))
        .unwrap();
        assert_eq!(
            template_from_arn(&input.template_arn),
            Some("claimlink-demo")
        );
        assert_eq!(input.parameters["SerialNumber"], "SN-1");
        let out = HookOutput {
            allow_provisioning: true,
            parameter_overrides: BTreeMap::from([("ThingName".into(), "SN-1".into())]),
        };
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            serde_json::json!({"allowProvisioning": true, "parameterOverrides": {"ThingName": "SN-1"}})
        );
        assert_eq!(
            serde_json::to_value(HookOutput::deny()).unwrap(),
            serde_json::json!({"allowProvisioning": false})
        );
    }

    #[test]
    fn template_arn_is_parsed_strictly() {
        assert_eq!(
            template_from_arn("arn:aws:iot:r:1:provisioningtemplate/"),
            None
        );
        assert_eq!(template_from_arn("claimlink-demo"), None);
    }
}
