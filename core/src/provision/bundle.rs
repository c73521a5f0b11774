//! The claim as the device receives it: the orchestrator turns a [`Claim`] into the protocol's
//! [`ClaimBundle`] (the protocol layer knows nothing of claim sources).

use std::collections::BTreeMap;

use crate::claim::Claim;
use crate::protocomm::ops::ClaimBundle;

/// The bundle the device gets for `claim`, to connect to `iot_endpoint` and provision with the claim's
/// template and `parameters`. Borrows the claim: the key is never copied here.
pub fn claim_bundle<'a>(
    claim: &'a Claim,
    iot_endpoint: &'a str,
    parameters: &'a BTreeMap<String, String>,
) -> ClaimBundle<'a> {
    ClaimBundle {
        certificate_der: claim.certificate().der(),
        private_key_pem: claim.private_key(),
        certificate_id: claim.certificate_id(),
        expires_at: claim.deadline().server_expiry(),
        seconds_left: u32::try_from(claim.deadline().remaining().as_secs()).unwrap_or(u32::MAX),
        iot_endpoint,
        template_name: claim.template().as_str(),
        template_parameters: parameters,
    }
}
