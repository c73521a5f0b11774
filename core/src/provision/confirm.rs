//! Confirmation by the cloud: what the thing had before handover, and the check that the expected
//! thing now has a certificate ACTIVE that it did not have then (an old certificate never counts,
//! whoever names it; another thing never counts).

use std::time::{Duration, Instant};

use crate::claim::{ClaimError, ThingName};

use super::handover::Handover;
use super::progress::ProgressLog;
use super::{ProvisionError, ProvisionOptions, ProvisionedDevice, ProvisioningSession, Stage};

/// How long one read of the expected thing before handover may take.
const BASELINE_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times that read is tried when the network fails it (a slow or lost answer under load):
/// without it, a success needs the device to name its certificate, and a quiet device is not
/// confirmed at all.
const BASELINE_ATTEMPTS: u32 = 3;
/// The expected thing's ACTIVE certificates (lowercase ids) before handover; empty if it did not exist.
pub(super) struct Baseline {
    thing: ThingName,
    active: std::collections::BTreeSet<String>,
}

impl Baseline {
    /// The thing it is of.
    pub(super) fn thing(&self) -> &ThingName {
        &self.thing
    }

    /// Whether `certificate_id` was ACTIVE on the thing before handover.
    fn had(&self, certificate_id: &str) -> bool {
        self.active.contains(&certificate_id.to_ascii_lowercase())
    }

    /// `None` while the thing has no ACTIVE certificate it lacked before handover; then the new one
    /// (the device's), or `Some(None)` when several appeared and cannot be told apart.
    fn new_certificate(&self, now: &crate::claim::ThingDescription) -> Option<Option<String>> {
        let new: Vec<&str> = now
            .active_certificate_ids()
            .filter(|id| !self.active.contains(&id.to_ascii_lowercase()))
            .collect();
        match new.as_slice() {
            [] => None,
            [one] => Some(Some((*one).to_owned())),
            _ => Some(None),
        }
    }
}

impl ProvisioningSession {
    /// The ACTIVE certificates the expected thing has before the device could register: without
    /// them, a thing that already existed (a device provisioned before, or a name reused) would
    /// confirm a run whose device never got a certificate. `None` when there is no expected name or
    /// the cloud could not be asked (a success then needs the device to name its certificate).
    pub(super) async fn baseline(&self, options: &ProvisionOptions) -> Option<Baseline> {
        self.provisioner.baseline(options).await
    }
}

impl super::Provisioner {
    /// [`ProvisioningSession::baseline`], read by the provisioner (also when it prepares a claim).
    pub(super) async fn baseline(&self, options: &ProvisionOptions) -> Option<Baseline> {
        let thing = options.expected_thing_name.clone()?;
        let mut attempt = 1;
        let answer = loop {
            // Bounded: a slow answer must not hold up the handover it runs alongside for long.
            let read = tokio::time::timeout(BASELINE_TIMEOUT, self.things.describe_thing(&thing));
            let answer = read.await.unwrap_or_else(|_| {
                Err(ClaimError::Network {
                    message: "no answer in time".into(),
                    timed_out: true,
                })
            });
            match answer {
                Err(ClaimError::Network { .. }) if attempt < BASELINE_ATTEMPTS => {
                    tracing::info!(
                        attempt,
                        "reading the thing before handover failed; trying again"
                    );
                    tokio::time::sleep(Duration::from_millis(250) * attempt).await;
                    attempt += 1;
                }
                answer => break answer,
            }
        };
        match answer {
            Ok(description) => Some(Baseline {
                active: description
                    .iter()
                    .flat_map(|d| d.active_certificate_ids())
                    .map(str::to_ascii_lowercase)
                    .collect(),
                thing,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the thing before handover; success will need the device's certificate id");
                None
            }
        }
    }
}

impl ProvisioningSession {
    /// Success only when the cloud shows the expected thing with a certificate ACTIVE that it did not
    /// have ACTIVE before the hand-over (see [`baseline`](Self::baseline)), whoever names it:
    /// * when the expected thing name is known, the thing the device names must be it (a device that
    ///   names another thing, existing or not, is no success, and the error names the expected one);
    /// * a certificate the device names counts only if it was not ACTIVE on the thing before the
    ///   hand-over; when the thing could not be read then, nothing tells an old certificate from a new
    ///   one, so the run is not confirmed;
    /// * when the device named no certificate, only one that became ACTIVE during this run counts.
    ///
    /// Without an expected thing name there is no baseline: a certificate the device names is taken
    /// if the cloud shows it ACTIVE on the thing the device names.
    pub(super) async fn confirm(
        &self,
        thing: &str,
        certificate_id: Option<String>,
        handover: &Handover,
        options: &ProvisionOptions,
        progress: &mut ProgressLog<'_>,
    ) -> Result<ProvisionedDevice, ProvisionError> {
        let config = self.provisioner.config.clone();
        let expected = options.expected_thing_name.as_ref();
        // The name an app may act on: the expected one when known (never another thing a lying
        // device named, which the app might otherwise clean up).
        let reported = expected.map_or(thing, |e| e.as_str()).to_owned();
        let not_confirmed = || ProvisionError::NotConfirmed {
            thing_name: reported.clone(),
        };
        let name = ThingName::new(thing).map_err(|_| not_confirmed())?;
        if let Some(expected) = expected {
            if *expected != name {
                tracing::warn!(
                    expected = expected.as_str(),
                    named = thing,
                    "the device says it is done as another thing than the expected one"
                );
                return Err(not_confirmed());
            }
        }
        let baseline = handover.baseline.as_ref().filter(|b| b.thing == name);
        match (&certificate_id, baseline) {
            (None, None) => {
                tracing::warn!(thing, "the device named no certificate and the thing was not read before handover: cannot tell a new certificate from an old one");
                return Err(not_confirmed());
            }
            (Some(_), None) if expected.is_some() => {
                tracing::warn!(thing, "the thing was not read before handover: cannot tell the certificate the device names from one the thing already had");
                return Err(not_confirmed());
            }
            (Some(id), Some(before)) if before.had(id) => {
                tracing::warn!(
                    thing,
                    certificate = id.as_str(),
                    "the device names a certificate the thing already had ACTIVE before handover"
                );
                return Err(not_confirmed());
            }
            _ => {}
        }
        let until = Instant::now() + config.cloud_timeout;
        let mut offline = OfflineWait::default();
        loop {
            let description = match self.provisioner.things.describe_thing(&name).await {
                Ok(description) => {
                    offline.reached();
                    description
                }
                // No route to the cloud (on SoftAP: the phone still on the device's access point):
                // the device may be done all the same, so wait for the network, not fail.
                Err(ClaimError::Network { message, .. }) => {
                    if offline.lost() {
                        tracing::info!(
                            thing,
                            reason = message.as_str(),
                            "the phone cannot reach the cloud to confirm; waiting for its network"
                        );
                        let left = until.saturating_duration_since(Instant::now());
                        progress.emit(
                            Stage::WaitingForNetwork,
                            Some(format!(
                                "the phone cannot reach the cloud; trying again for {} s",
                                left.as_secs()
                            )),
                        );
                    }
                    None
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(description) = description {
                let confirmed = match certificate_id.as_deref() {
                    Some(id) => description
                        .has_active_certificate(id)
                        .then(|| Some(id.to_owned())),
                    None => baseline.and_then(|before| before.new_certificate(&description)),
                };
                if let Some(certificate_id) = confirmed {
                    progress
                        .known
                        .learn(None, Some(thing), certificate_id.as_deref());
                    progress.emit(Stage::ConfirmedByCloud, None);
                    return Ok(ProvisionedDevice {
                        thing_name: thing.to_owned(),
                        certificate_id,
                        claim_time_left_at_handover: handover.time_left,
                        timings: progress.timings.clone(),
                    });
                }
            }
            let now = Instant::now();
            if now >= until {
                return Err(if offline.is_offline() {
                    ProvisionError::PhoneOffline {
                        thing_name: reported.clone(),
                    }
                } else {
                    not_confirmed()
                });
            }
            let pause = offline.pause().unwrap_or(config.poll_interval);
            tokio::time::sleep(pause.min(until - now)).await;
        }
    }
}

/// The confirmation's view of the phone's network: whether the last read of the thing failed for
/// want of a route, and how long to wait before the next (backoff from 500 ms doubling to 4 s, so
/// a phone back online is noticed within seconds without hammering a dead route).
#[derive(Debug, Default)]
struct OfflineWait {
    /// Failed reads in a row.
    failures: u32,
}

impl OfflineWait {
    /// A read reached the cloud.
    fn reached(&mut self) {
        self.failures = 0;
    }

    /// A read found no route; `true` when the phone was reachable before (an event is due).
    fn lost(&mut self) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.failures == 1
    }

    /// Whether the last read found no route.
    fn is_offline(&self) -> bool {
        self.failures > 0
    }

    /// The wait before the next read while offline; `None` while online (the poll interval applies).
    fn pause(&self) -> Option<Duration> {
        let doublings = self.failures.checked_sub(1)?.min(3);
        Some(Duration::from_millis(500) * (1 << doublings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offline_backoff_doubles_to_four_seconds_and_resets_when_online() {
        let mut wait = OfflineWait::default();
        assert_eq!(wait.pause(), None);
        assert!(wait.lost());
        assert_eq!(wait.pause(), Some(Duration::from_millis(500)));
        assert!(!wait.lost());
        assert_eq!(wait.pause(), Some(Duration::from_secs(1)));
        for _ in 0..10 {
            wait.lost();
        }
        assert_eq!(wait.pause(), Some(Duration::from_secs(4)));
        wait.reached();
        assert!(!wait.is_offline());
        assert_eq!(wait.pause(), None);
        assert!(wait.lost(), "offline again after being online: a new event");
    }
}
