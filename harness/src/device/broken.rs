//! **Test faults, not firmware behaviour**: the contract rules a simulated device can be told to
//! break ([`SimDeviceConfig::danger_broken`](super::SimDeviceConfig::danger_broken)), one per rule the
//! device checker (`claimlink-harness check-device`, [`crate::check_device`]) checks, so that each of
//! its cases is shown to fail against a device that breaks its rule.

use std::fmt;
use std::str::FromStr;

/// One contract rule a deliberately broken simulated device breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BrokenBehaviour {
    /// `proto-ver` has no `aws.cap` (neither `claim` nor `status`).
    ProtoVerWithoutAwsCaps,
    /// `proto-ver` says `aws.ver` "2", a major version nobody specified.
    WrongAwsVersion,
    /// A wrong handshake proof is not refused: Sec2 command 1 is answered with the device's own proof
    /// (and Sec1 command 1 with its verify data) instead of failing the session handler, as ESP-IDF's
    /// `components/protocomm/src/security/security2.c` (`handle_session_command1`: `ESP_FAIL` when
    /// `esp_srp_exchange_proofs` fails) and `security1.c` do.
    AcceptsWrongProof,
    /// `aws-status` says `ClaimReceived` while the device holds no claim.
    StatusClaimsWithoutClaim,
    /// `prov-scan` says it found networks and then returns no results.
    ScanResultsEmpty,
    /// The claim chunks' answers acknowledge one byte less than received.
    MiscountsChunks,
    /// `aws-status` never reports `ClaimReceived`, even while the device holds a claim.
    StatusHidesClaim,
    /// A commit whose SHA-256 does not match the bytes is accepted.
    AcceptsWrongSha,
    /// A refused commit (digest mismatch) keeps the bytes received, so the transfer can go on.
    KeepsRefusedClaim,
    /// `CmdClaimAbort` answers but keeps the claim.
    AbortKeepsClaim,
    /// `CmdClaimBegin` while a claim is held keeps the held claim.
    BeginKeepsHeldClaim,
    /// `CmdClaimBegin` with `total_length` over the device's maximum is accepted.
    AcceptsOversizeBundle,
    /// A partial claim survives the session it was sent on (a dropped connection).
    KeepsPartialClaimAfterDrop,
    /// `prov-ctrl` Reset wipes the claim too (it must clear the Wi-Fi configuration only).
    ResetWipesClaim,
    /// `prov-ctrl` Reset is refused after a failed connection (where every ESP-IDF accepts it).
    RefusesResetAfterFailure,
    /// Once on Wi-Fi, `aws-status` says `Done` with no certificate, whatever the cloud half did (a
    /// success it did not earn): only the `cloud` case (`check-device --cloud`) can see it.
    DoneWithoutCertificate,
}

impl BrokenBehaviour {
    /// Every variant, in the order the checker meets them.
    pub const ALL: [Self; 16] = [
        Self::ProtoVerWithoutAwsCaps,
        Self::WrongAwsVersion,
        Self::AcceptsWrongProof,
        Self::StatusClaimsWithoutClaim,
        Self::ScanResultsEmpty,
        Self::MiscountsChunks,
        Self::StatusHidesClaim,
        Self::AcceptsWrongSha,
        Self::KeepsRefusedClaim,
        Self::AbortKeepsClaim,
        Self::BeginKeepsHeldClaim,
        Self::AcceptsOversizeBundle,
        Self::KeepsPartialClaimAfterDrop,
        Self::ResetWipesClaim,
        Self::RefusesResetAfterFailure,
        Self::DoneWithoutCertificate,
    ];

    /// Its name on the command line (`serve-device --danger-broken <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::ProtoVerWithoutAwsCaps => "proto-ver-without-aws-caps",
            Self::WrongAwsVersion => "wrong-aws-version",
            Self::AcceptsWrongProof => "accepts-wrong-proof",
            Self::StatusClaimsWithoutClaim => "status-claims-without-claim",
            Self::ScanResultsEmpty => "scan-results-empty",
            Self::MiscountsChunks => "miscounts-chunks",
            Self::StatusHidesClaim => "status-hides-claim",
            Self::AcceptsWrongSha => "accepts-wrong-sha",
            Self::KeepsRefusedClaim => "keeps-refused-claim",
            Self::AbortKeepsClaim => "abort-keeps-claim",
            Self::BeginKeepsHeldClaim => "begin-keeps-held-claim",
            Self::AcceptsOversizeBundle => "accepts-oversize-bundle",
            Self::KeepsPartialClaimAfterDrop => "keeps-partial-claim-after-drop",
            Self::ResetWipesClaim => "reset-wipes-claim",
            Self::RefusesResetAfterFailure => "refuses-reset-after-failure",
            Self::DoneWithoutCertificate => "done-without-certificate",
        }
    }
}

impl fmt::Display for BrokenBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BrokenBehaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|b| b.name()).collect();
                format!(
                    "unknown broken behaviour {s:?}; one of: {}",
                    names.join(", ")
                )
            })
    }
}
