//! The stages of a run, in one table: the [`Stage`] enum and everything the orchestrator knows about
//! each stage are generated from the same rows, so adding a stage is adding a row here (plus its
//! variant in the FFI crate's `Stage`, which the compiler asks for).
//!
//! What a row says, and what reads it:
//! * the `///` doc: the variant's doc (the bindings carry the FFI copy of it);
//! * `reached`: what holds once a run reached the stage ([`Milestone`]): read by the watchdog (the
//!   claim's deadline applies until the device has its certificate, the Wi-Fi timeout until it is on
//!   Wi-Fi) and by the disconnect rule (after Wi-Fi is applied, a lost link is confirmed through the
//!   cloud);
//! * `device`: the `aws-status` stages the device reports it by, in the device's own order; a stage
//!   with any is a *device step* (a step seen implies the device steps before it);
//! * `repeatable`: reported again in the same run (the progress log reports others once).

use crate::protocomm::proto::CloudStage;

/// What holds once a run reached a stage. Each milestone includes the ones listed before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Milestone {
    /// Nothing yet: the device has not been told to join Wi-Fi.
    None,
    /// The device was told to join Wi-Fi with the claim on it (it may still fail to join).
    WifiApplied,
    /// The device is on Wi-Fi with an address.
    OnWifi,
    /// The device has its permanent certificate: the claim's deadline no longer matters.
    Certificate,
}

/// One row of the table, less the doc and the name.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StageInfo {
    /// What holds once the stage is reached.
    pub(crate) reached: Milestone,
    /// The `aws-status` stages that report it (empty: not a device step).
    pub(crate) device: &'static [CloudStage],
    /// Reported more than once in a run.
    pub(crate) repeatable: bool,
}

impl StageInfo {
    /// A step of the SDK's own (connecting, the claim, the hand-over).
    const SDK: StageInfo = StageInfo {
        reached: Milestone::None,
        device: &[],
        repeatable: false,
    };

    /// A step the device reports through `aws-status`.
    const fn device(device: &'static [CloudStage], reached: Milestone) -> StageInfo {
        StageInfo {
            reached,
            device,
            repeatable: false,
        }
    }
}

/// Generates [`Stage`] and `STAGES` (one row per variant, in the same order) from the table below.
macro_rules! stage_table {
    ($( $(#[doc = $doc:literal])+ $stage:ident => $info:expr, )+) => {
        /// The stages of a provisioning run, in the order a run reports them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Stage {
            $( $(#[doc = $doc])+ $stage, )+
        }

        /// Every stage's name and row, in the order of [`Stage`]'s variants.
        const STAGES: &[(Stage, &str, StageInfo)] = &[
            $( (Stage::$stage, stringify!($stage), $info), )+
        ];
    };
}

stage_table! {
    /// Connecting to the device.
    Connecting => StageInfo::SDK,
    /// Establishing the secure session.
    Securing => StageInfo::SDK,
    /// Asking for a claim (only now: session up, network chosen). Reported a second time, with a
    /// detail, when the first claim arrived too close to expiry. Every other stage is reported once
    /// per run, except `WifiFailed` and `WaitingForNetwork`.
    ClaimRequested => StageInfo { repeatable: true, ..StageInfo::SDK },
    /// A claim is in hand.
    ClaimIssued => StageInfo::SDK,
    /// The claim is on the device.
    ClaimSent => StageInfo::SDK,
    /// The device was told to join Wi-Fi.
    WifiApplied => StageInfo { reached: Milestone::WifiApplied, ..StageInfo::SDK },
    /// The device is joining Wi-Fi.
    WifiConnecting => StageInfo::device(&[CloudStage::WifiConnecting], Milestone::WifiApplied),
    /// The device failed to join Wi-Fi.
    WifiFailed => StageInfo { reached: Milestone::WifiApplied, repeatable: true, ..StageInfo::SDK },
    /// The device is on Wi-Fi with an address.
    WifiConnected => StageInfo::device(
        &[CloudStage::WifiConnected, CloudStage::TimeSynced],
        Milestone::OnWifi,
    ),
    /// The device is connected to AWS IoT with the claim.
    MqttConnectedWithClaim => StageInfo::device(
        &[CloudStage::MqttConnectedWithClaim],
        Milestone::OnWifi,
    ),
    /// The device has its permanent certificate.
    CertificateIssued => StageInfo::device(
        &[CloudStage::CertificateIssued],
        Milestone::Certificate,
    ),
    /// Its thing is registered.
    ThingRegistered => StageInfo::device(&[CloudStage::ThingRegistered], Milestone::Certificate),
    /// It reconnected with its permanent certificate.
    ReconnectedWithPermanent => StageInfo::device(
        &[CloudStage::ReconnectedWithPermanent, CloudStage::Done],
        Milestone::Certificate,
    ),
    /// The phone cannot reach the cloud to confirm the device (on SoftAP, typically still on the
    /// device's access point, which has no route out): the SDK keeps trying, with backoff, until the
    /// confirmation's deadline (`cloud_timeout`), and fails with `PhoneOffline` if the phone is still
    /// offline then. Reported each time the phone is found offline after it was reachable.
    WaitingForNetwork => StageInfo { repeatable: true, ..StageInfo::SDK },
    /// The cloud confirms the thing with its certificate.
    ConfirmedByCloud => StageInfo { reached: Milestone::Certificate, ..StageInfo::SDK },
}

impl Stage {
    /// Every stage, in the order a run reports them.
    pub fn all() -> impl Iterator<Item = Stage> {
        STAGES.iter().map(|(stage, _, _)| *stage)
    }

    /// The stage's name, as the variant (and the bindings) spell it: `"WifiConnected"`.
    pub fn name(self) -> &'static str {
        STAGES[self.row()].1
    }

    /// What the table says about the stage.
    pub(crate) fn info(self) -> StageInfo {
        STAGES[self.row()].2
    }

    /// The stage's row in `STAGES`. The enum and the table are generated from the same list in the
    /// same order (see `stage_table!`), so a variant's discriminant is its row.
    fn row(self) -> usize {
        self as usize
    }

    /// A step the device reports through `aws-status` (`WifiFailed` is an outcome, not a step).
    pub(crate) fn is_device_step(self) -> bool {
        !self.info().device.is_empty()
    }

    /// The device step the device reports as `cloud`, if any (`Idle`, `ClaimReceived` and `Failed`
    /// are none).
    pub(crate) fn reported_by_device(cloud: CloudStage) -> Option<Stage> {
        Stage::all().find(|s| s.info().device.contains(&cloud))
    }

    /// The device steps before this one, in the device's order: a device that reports this step
    /// went through them, even when they came and went between two status reads. (For a stage that
    /// is not a device step: all of them.)
    pub(crate) fn device_steps_before(self) -> impl Iterator<Item = Stage> {
        Stage::all()
            .filter(|s| s.is_device_step())
            .take_while(move |s| *s != self)
    }

    /// Reported more than once in a run (a second claim request, a Wi-Fi failure per attempt).
    pub(crate) fn is_repeatable(self) -> bool {
        self.info().repeatable
    }

    /// By this stage the device was told to join Wi-Fi (with the claim on it).
    pub(crate) fn reached_wifi_applied(self) -> bool {
        !matches!(self.info().reached, Milestone::None)
    }

    /// By this stage the device is on Wi-Fi with an address.
    pub(crate) fn reached_wifi(self) -> bool {
        matches!(
            self.info().reached,
            Milestone::OnWifi | Milestone::Certificate
        )
    }

    /// By this stage the device has its permanent certificate: the claim's deadline no longer
    /// matters (a [`DeadlineMissed`](super::ProvisionError::DeadlineMissed) names a stage before).
    pub(crate) fn reached_certificate(self) -> bool {
        matches!(self.info().reached, Milestone::Certificate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_is_its_own_row() {
        for (row, (stage, name, _)) in STAGES.iter().enumerate() {
            assert_eq!(stage.row(), row, "{name}");
            assert_eq!(format!("{stage:?}"), *name);
            assert_eq!(stage.name(), *name);
        }
        assert_eq!(Stage::all().count(), STAGES.len());
    }

    #[test]
    fn device_steps_are_the_aws_status_stages_in_order() {
        let steps: Vec<Stage> = Stage::all().filter(|s| s.is_device_step()).collect();
        assert_eq!(
            steps,
            [
                Stage::WifiConnecting,
                Stage::WifiConnected,
                Stage::MqttConnectedWithClaim,
                Stage::CertificateIssued,
                Stage::ThingRegistered,
                Stage::ReconnectedWithPermanent,
            ]
        );
        assert!(!Stage::WifiFailed.is_device_step());
        assert_eq!(
            Stage::reported_by_device(CloudStage::TimeSynced),
            Some(Stage::WifiConnected)
        );
        assert_eq!(
            Stage::reported_by_device(CloudStage::Done),
            Some(Stage::ReconnectedWithPermanent)
        );
        for cloud in [
            CloudStage::Idle,
            CloudStage::ClaimReceived,
            CloudStage::Failed,
        ] {
            assert_eq!(Stage::reported_by_device(cloud), None, "{cloud:?}");
        }
    }

    #[test]
    fn a_device_step_implies_the_device_steps_before_it_and_never_a_wifi_failure() {
        let before: Vec<Stage> = Stage::CertificateIssued.device_steps_before().collect();
        assert_eq!(
            before,
            [
                Stage::WifiConnecting,
                Stage::WifiConnected,
                Stage::MqttConnectedWithClaim
            ]
        );
        assert_eq!(Stage::WifiConnecting.device_steps_before().count(), 0);
        assert!(Stage::ReconnectedWithPermanent
            .device_steps_before()
            .all(|s| s != Stage::WifiFailed));
    }

    #[test]
    fn milestones() {
        let applied: Vec<Stage> = Stage::all().filter(|s| s.reached_wifi_applied()).collect();
        let on_wifi: Vec<Stage> = Stage::all().filter(|s| s.reached_wifi()).collect();
        let certified: Vec<Stage> = Stage::all().filter(|s| s.reached_certificate()).collect();
        use Stage::*;
        assert_eq!(
            applied,
            [
                WifiApplied,
                WifiConnecting,
                WifiFailed,
                WifiConnected,
                MqttConnectedWithClaim,
                CertificateIssued,
                ThingRegistered,
                ReconnectedWithPermanent,
                ConfirmedByCloud
            ]
        );
        // A failed join is not on Wi-Fi, wherever it sits in the enum.
        assert_eq!(
            on_wifi,
            [
                WifiConnected,
                MqttConnectedWithClaim,
                CertificateIssued,
                ThingRegistered,
                ReconnectedWithPermanent,
                ConfirmedByCloud
            ]
        );
        assert_eq!(
            certified,
            [
                CertificateIssued,
                ThingRegistered,
                ReconnectedWithPermanent,
                ConfirmedByCloud
            ]
        );
    }

    #[test]
    fn only_a_claim_request_a_wifi_failure_and_a_wait_for_the_network_repeat() {
        let repeatable: Vec<Stage> = Stage::all().filter(|s| s.is_repeatable()).collect();
        assert_eq!(
            repeatable,
            [
                Stage::ClaimRequested,
                Stage::WifiFailed,
                Stage::WaitingForNetwork
            ]
        );
    }
}
