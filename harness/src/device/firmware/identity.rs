//! The device's permanent identity (its thing and certificate), which it keeps in non-volatile storage
//! once provisioned: it survives a reboot, is reported on `aws-status` as `Done` from boot on (so an
//! app can change its Wi-Fi without a claim), and is erased only by a factory reset
//! (docs/protocol.md, "Reprovisioning").

use claimlink_core::internal::proto::CloudStage;

use super::{CloudProgress, SimDevice};
use crate::device::DoneLie;

impl SimDevice {
    /// The thing and certificate the device keeps, when it is provisioned.
    pub fn identity(&self) -> Option<(String, String)> {
        let inner = self.lock();
        (inner.cloud.stage == Some(CloudStage::Done) && inner.cloud.failure.is_none()).then(|| {
            (
                inner.cloud.thing_name.clone(),
                inner.cloud.certificate_id.clone(),
            )
        })
    }

    /// Erases the permanent identity and reboots, as a factory reset does (a long press on the
    /// device's button): the device then provisions from scratch, with a new claim, for its new owner.
    pub fn factory_reset(&self) {
        self.lock().cloud = CloudProgress::default();
        self.reboot();
    }

    /// **Test fault, not firmware behaviour**: makes the device claim, from now on and across reboots,
    /// to be provisioned as `lie` (a device lying about its identity, or one whose certificate was
    /// revoked in the cloud meanwhile). The cloud refutes it.
    pub fn danger_pretend_provisioned_as(&self, lie: DoneLie) {
        self.lock().cloud = CloudProgress {
            stage: Some(CloudStage::Done),
            thing_name: lie.thing_name,
            certificate_id: lie.certificate_id,
            failure: None,
        };
    }

    /// What a reboot keeps of the cloud half's progress: the identity, when the device has one.
    pub(super) fn kept_across_reboot(progress: &CloudProgress) -> CloudProgress {
        if progress.stage == Some(CloudStage::Done) && progress.failure.is_none() {
            CloudProgress {
                stage: Some(CloudStage::Done),
                thing_name: progress.thing_name.clone(),
                certificate_id: progress.certificate_id.clone(),
                failure: None,
            }
        } else {
            CloudProgress::default()
        }
    }
}
