//! Time, honestly: the phone's wall clock (which may be wrong by minutes) and the monotonic
//! [`Deadline`] that every claim carries.
//!
//! A claim expires five minutes after the *server* issued it. The phone's wall clock cannot be trusted
//! to measure that: installers' phones are routinely minutes off. So a [`Deadline`] is anchored on the
//! monotonic clock: `time left = server expiry − server time (HTTP Date header)`, counted from the
//! instant the response arrived. The phone's wall clock is used only when the server sent no `Date`.
//!
//! Nor is one header trusted: a claim's time left is never more than its certificate's lifetime
//! (`notAfter − notBefore`), so a `Date` a day behind cannot stretch a five-minute claim to a day,
//! and a clock that reads before the certificate's start is flagged on the [`Deadline`].

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time. The SDK reads the wall clock through this trait so that a wrong phone
/// clock can be simulated (the harness's `--clock-skew-secs`) and so that time can be reasoned about.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time as this device believes it to be.
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A wall clock that is off by a fixed number of seconds, like a phone whose clock was set by hand.
/// Positive offsets run ahead of true time.
#[derive(Debug, Clone, Copy)]
pub struct SkewedClock {
    offset_secs: i64,
}

impl SkewedClock {
    /// A clock `offset_secs` ahead of (positive) or behind (negative) the system clock.
    pub fn new(offset_secs: i64) -> Self {
        Self { offset_secs }
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> SystemTime {
        shift(SystemTime::now(), self.offset_secs)
    }
}

/// `t` moved by `secs` seconds (either direction), saturating at the epoch.
pub(crate) fn shift(t: SystemTime, secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        t + magnitude
    } else {
        t.checked_sub(magnitude).unwrap_or(UNIX_EPOCH)
    }
}

/// `a − b` in whole seconds, signed.
pub(crate) fn signed_secs_between(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Seconds since the Unix epoch (0 for times before it).
pub(crate) fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The moment a claim stops being usable, on the phone's monotonic clock.
///
/// Built from what the server said (its expiry and its own `Date`), so a phone clock that is minutes
/// off does not change it; the uncertainty is the one-second resolution of the two server timestamps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    expires_at: Instant,
    server_expiry: SystemTime,
    clock_skew_secs: Option<i64>,
    clock_behind_certificate_secs: Option<u64>,
}

/// How far before a certificate's `notBefore` the clock a deadline was measured on may be before it
/// is called wrong: a server's `Date` is at or after the certificates it just issued, but a backend
/// in front of AWS IoT has its own clock, and both are whole seconds.
pub(crate) const CLOCK_SLACK_BEFORE_CERTIFICATE: Duration = Duration::from_secs(60);

impl Deadline {
    /// Computes the deadline of something that expires at `server_expiry` (server time).
    ///
    /// * `server_now` — the server's time when it answered (the HTTP `Date` header), if it sent one;
    /// * `phone_now` — the phone's wall clock when the answer arrived (used only without `server_now`);
    /// * `received_at` — the monotonic instant the answer arrived.
    pub fn from_server_expiry(
        server_expiry: SystemTime,
        server_now: Option<SystemTime>,
        phone_now: SystemTime,
        received_at: Instant,
    ) -> Self {
        let reference = server_now.unwrap_or(phone_now);
        let left = server_expiry
            .duration_since(reference)
            .unwrap_or(Duration::ZERO);
        let expires_at = received_at.checked_add(left).unwrap_or(received_at);
        // A deadline that was already past on arrival: move the instant back so `overdue` tells by how much.
        let expires_at = match reference.duration_since(server_expiry) {
            Ok(late) if !late.is_zero() => received_at.checked_sub(late).unwrap_or(received_at),
            _ => expires_at,
        };
        Self {
            expires_at,
            server_expiry,
            clock_skew_secs: server_now.map(|s| signed_secs_between(s, phone_now)),
            clock_behind_certificate_secs: None,
        }
    }

    /// Computes the deadline of a certificate valid from `not_before` to `not_after` (server
    /// time) that the server says expires at `server_expiry`, measured like
    /// [`from_server_expiry`](Self::from_server_expiry), but without trusting one header:
    ///
    /// * it is never later than the certificate's `notAfter`, nor more than the certificate's
    ///   lifetime (`notAfter − notBefore`) after the answer arrived, whatever the `Date` (or the
    ///   phone's clock) says: a `Date` a day behind cannot make a five-minute claim last a day;
    /// * a clock that reads earlier than `notBefore` by more than
    ///   [`CLOCK_SLACK_BEFORE_CERTIFICATE`] is wrong (the server issued the certificate before it
    ///   answered): [`clock_behind_certificate_secs`](Self::clock_behind_certificate_secs) says by
    ///   how much.
    pub(crate) fn from_certificate(
        not_before: SystemTime,
        not_after: SystemTime,
        server_expiry: SystemTime,
        server_now: Option<SystemTime>,
        phone_now: SystemTime,
        received_at: Instant,
    ) -> Self {
        let mut deadline = Self::from_server_expiry(
            server_expiry.min(not_after),
            server_now,
            phone_now,
            received_at,
        );
        let lifetime = not_after
            .duration_since(not_before)
            .unwrap_or(Duration::ZERO);
        if let Some(latest) = received_at.checked_add(lifetime) {
            deadline.expires_at = deadline.expires_at.min(latest);
        }
        let reference = server_now.unwrap_or(phone_now);
        deadline.clock_behind_certificate_secs = not_before
            .duration_since(reference)
            .ok()
            .filter(|behind| *behind > CLOCK_SLACK_BEFORE_CERTIFICATE)
            .map(|behind| behind.as_secs());
        deadline
    }

    /// A deadline `left` from now (for timeouts that are not tied to a server clock).
    pub fn after(left: Duration) -> Self {
        let now = Instant::now();
        Self {
            expires_at: now + left,
            server_expiry: SystemTime::now() + left,
            clock_skew_secs: None,
            clock_behind_certificate_secs: None,
        }
    }

    /// Time left before the deadline, zero once it has passed.
    pub fn remaining(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    /// How long ago the deadline passed, zero while it has not.
    pub fn overdue(&self) -> Duration {
        Instant::now().saturating_duration_since(self.expires_at)
    }

    /// Whether the deadline has passed.
    pub fn has_passed(&self) -> bool {
        Instant::now() >= self.expires_at
    }

    /// The monotonic instant of the deadline (for `tokio::time::sleep_until`).
    pub fn instant(&self) -> Instant {
        self.expires_at
    }

    /// The expiry as the server stated it, in the server's clock.
    pub fn server_expiry(&self) -> SystemTime {
        self.server_expiry
    }

    /// The server's clock minus the phone's, in seconds, when the server sent its time.
    pub fn clock_skew_secs(&self) -> Option<i64> {
        self.clock_skew_secs
    }

    /// When the clock this deadline was measured on (the server's `Date`, or the phone's clock
    /// when the server sent none: see [`clock_skew_secs`](Self::clock_skew_secs)) read earlier
    /// than the certificate's start (by more than a minute of slack): by how many seconds. That
    /// clock is wrong; the time left was capped by the certificate's lifetime (`notAfter −
    /// notBefore`), as every claim's is.
    pub fn clock_behind_certificate_secs(&self) -> Option<u64> {
        self.clock_behind_certificate_secs
    }
}

impl fmt::Debug for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deadline")
            .field("remaining_ms", &self.remaining().as_millis())
            .field("server_expiry_epoch", &epoch_secs(self.server_expiry))
            .field("clock_skew_secs", &self.clock_skew_secs)
            .field(
                "clock_behind_certificate_secs",
                &self.clock_behind_certificate_secs,
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn server_date_wins_over_a_wrong_phone_clock() {
        let received = Instant::now();
        let expiry = at(1_000_300);
        let server_now = Some(at(1_000_000));
        for phone_offset in [-600i64, 0, 600] {
            let phone_now = shift(at(1_000_000), phone_offset);
            let d = Deadline::from_server_expiry(expiry, server_now, phone_now, received);
            assert_eq!(
                d.instant().duration_since(received),
                Duration::from_secs(300)
            );
            assert_eq!(d.clock_skew_secs(), Some(-phone_offset));
        }
    }

    #[test]
    fn without_a_server_date_the_phone_clock_is_used() {
        let received = Instant::now();
        let d = Deadline::from_server_expiry(at(1_000_300), None, at(1_000_100), received);
        assert_eq!(
            d.instant().duration_since(received),
            Duration::from_secs(200)
        );
        assert_eq!(d.clock_skew_secs(), None);
    }

    #[test]
    fn an_expiry_in_the_past_is_overdue_by_the_right_amount() {
        let received = Instant::now();
        let d = Deadline::from_server_expiry(at(1_000_000), Some(at(1_000_030)), at(0), received);
        assert!(d.has_passed());
        assert_eq!(d.remaining(), Duration::ZERO);
        assert!(d.overdue() >= Duration::from_secs(30));
    }

    #[test]
    fn a_date_a_day_behind_is_capped_by_the_certificate_and_flagged() {
        let received = Instant::now();
        let (not_before, not_after) = (at(1_000_000), at(1_000_300));
        let day_behind = Some(at(1_000_000 - 86_400));
        let d = Deadline::from_certificate(
            not_before,
            not_after,
            not_after,
            day_behind,
            at(1_000_000),
            received,
        );
        assert_eq!(
            d.instant().duration_since(received),
            Duration::from_secs(300)
        );
        assert_eq!(d.clock_behind_certificate_secs(), Some(86_400));
        // The uncapped computation, for contrast: a day and five minutes.
        let naive = Deadline::from_server_expiry(not_after, day_behind, at(1_000_000), received);
        assert_eq!(
            naive.instant().duration_since(received),
            Duration::from_secs(86_700)
        );
    }

    #[test]
    fn a_phone_clock_behind_without_a_date_is_capped_too() {
        let received = Instant::now();
        let d = Deadline::from_certificate(
            at(1_000_000),
            at(1_000_300),
            at(1_000_300),
            None,
            at(1_000_000 - 3_600),
            received,
        );
        assert_eq!(
            d.instant().duration_since(received),
            Duration::from_secs(300)
        );
        assert_eq!(d.clock_behind_certificate_secs(), Some(3_600));
        assert_eq!(d.clock_skew_secs(), None);
    }

    #[test]
    fn a_consistent_date_is_not_flagged_and_counts_from_the_date() {
        let received = Instant::now();
        // Issued at 1_000_000, answered 20 s later; a backend clock 30 s behind is within the slack.
        for (date, left) in [(1_000_020, 280), (999_970, 300)] {
            let d = Deadline::from_certificate(
                at(1_000_000),
                at(1_000_300),
                at(1_000_300),
                Some(at(date)),
                at(0),
                received,
            );
            assert_eq!(
                d.instant().duration_since(received),
                Duration::from_secs(left),
                "Date {date}"
            );
            assert_eq!(d.clock_behind_certificate_secs(), None, "Date {date}");
        }
    }

    #[test]
    fn a_stated_expiry_past_the_certificate_end_is_cut_to_it() {
        let received = Instant::now();
        let d = Deadline::from_certificate(
            at(1_000_000),
            at(1_000_300),
            at(2_000_000),
            Some(at(1_000_100)),
            at(0),
            received,
        );
        assert_eq!(
            d.instant().duration_since(received),
            Duration::from_secs(200)
        );
    }

    #[test]
    fn skewed_clock_shifts_both_ways() {
        let ahead = SkewedClock::new(600).now();
        let behind = SkewedClock::new(-600).now();
        let diff = signed_secs_between(ahead, behind);
        assert!((1199..=1201).contains(&diff), "{diff}");
    }
}
