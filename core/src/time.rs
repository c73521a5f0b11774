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
//!
//! Nor does a sleeping phone stop the claim's clock: the certificate expires in the world's time,
//! while `std::time::Instant` stops counting when the phone suspends (Linux and Android
//! `CLOCK_MONOTONIC`, Apple's `CLOCK_UPTIME_RAW`). A [`Deadline`] is measured on
//! [`Clock::since_boot`] instead, a monotonic clock that keeps counting through suspend
//! (`CLOCK_BOOTTIME` on Linux and Android, `CLOCK_MONOTONIC` on Apple platforms), so a phone that
//! slept four minutes wakes up to a claim with one minute left, not five.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The phone's clocks. The SDK reads time through this trait so that a wrong phone clock (the
/// harness's `--clock-skew-secs`) and a phone that sleeps can be simulated, and so that time can be
/// reasoned about.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current wall-clock time as this device believes it to be.
    fn now(&self) -> SystemTime;

    /// A monotonic reading that keeps counting while the phone is suspended, from an origin fixed
    /// for the process. Deadlines are measured on it. The default reads [`suspend_aware_time`].
    fn since_boot(&self) -> Duration {
        suspend_aware_time()
    }
}

/// Where [`suspend_aware_time`] reads from, chosen once per process so readings stay comparable.
#[derive(Debug, Clone, Copy)]
enum MonotonicSource {
    /// The OS clock that counts suspended time.
    Boot,
    /// `Instant` since the first reading: on platforms without a suspend-aware clock (or if reading
    /// it failed), time spent suspended is not counted.
    Instant(Instant),
}

/// The OS's monotonic clock that keeps counting through suspend, if this platform has one we read.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_boot_clock() -> Option<Duration> {
    let t = rustix::time::clock_gettime_dynamic(rustix::time::DynamicClockId::Boottime).ok()?;
    Some(Duration::new(
        u64::try_from(t.tv_sec).ok()?,
        u32::try_from(t.tv_nsec).ok()?,
    ))
}

/// The OS's monotonic clock that keeps counting through suspend, if this platform has one we read.
/// Apple's `CLOCK_MONOTONIC` keeps counting while the system sleeps (unlike `CLOCK_UPTIME_RAW`).
#[cfg(any(target_os = "ios", target_os = "macos"))]
fn read_boot_clock() -> Option<Duration> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    Some(Duration::new(
        u64::try_from(t.tv_sec).ok()?,
        u32::try_from(t.tv_nsec).ok()?,
    ))
}

/// The OS's monotonic clock that keeps counting through suspend, if this platform has one we read.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "ios",
    target_os = "macos"
)))]
fn read_boot_clock() -> Option<Duration> {
    None
}

/// Monotonic time that keeps counting while the phone is suspended: `CLOCK_BOOTTIME` on Linux and
/// Android, `CLOCK_MONOTONIC` on Apple platforms. Elsewhere (or if the OS refuses the read) it falls
/// back to `Instant`, which may stop during suspend; the choice is made once per process.
pub fn suspend_aware_time() -> Duration {
    static SOURCE: OnceLock<MonotonicSource> = OnceLock::new();
    let source = *SOURCE.get_or_init(|| match read_boot_clock() {
        Some(_) => MonotonicSource::Boot,
        None => {
            tracing::warn!(
                "no suspend-aware clock on this platform: deadlines stop while the phone sleeps"
            );
            MonotonicSource::Instant(Instant::now())
        }
    });
    match source {
        // The boot clock was readable once; a later failure (never seen in practice) reads as the
        // last possible moment rather than travelling back in time.
        MonotonicSource::Boot => read_boot_clock().unwrap_or(Duration::MAX),
        MonotonicSource::Instant(origin) => origin.elapsed(),
    }
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

/// The latest time [`shift`] reaches: the end of year 9999, the last instant X.509 can state (and one
/// every platform's `SystemTime` holds).
const LATEST: Duration = Duration::from_secs(253_402_300_799);

/// `t` moved by `secs` seconds (either direction), saturating at the epoch and at the end of year 9999.
pub(crate) fn shift(t: SystemTime, secs: i64) -> SystemTime {
    let magnitude = Duration::from_secs(secs.unsigned_abs());
    let latest = UNIX_EPOCH + LATEST;
    if secs >= 0 {
        t.checked_add(magnitude)
            .map_or(latest, |shifted| shifted.min(latest))
    } else {
        t.checked_sub(magnitude)
            .map_or(UNIX_EPOCH, |shifted| shifted.max(UNIX_EPOCH))
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

/// The moment a claim stops being usable, on the phone's suspend-aware monotonic clock
/// ([`Clock::since_boot`]).
///
/// Built from what the server said (its expiry and its own `Date`), so a phone clock that is minutes
/// off does not change it; the uncertainty is the one-second resolution of the two server timestamps.
/// Time the phone spends asleep counts against it, as it does against the certificate.
#[derive(Clone)]
pub struct Deadline {
    /// The reading of `clock.since_boot()` at which the deadline passes, in nanoseconds (signed: a
    /// deadline already past on arrival may lie before the clock's origin).
    expires_at_ns: i128,
    clock: Arc<dyn Clock>,
    server_expiry: SystemTime,
    clock_skew_secs: Option<i64>,
    clock_behind_certificate_secs: Option<u64>,
}

/// How far before a certificate's `notBefore` the clock a deadline was measured on may be before it
/// is called wrong: a server's `Date` is at or after the certificates it just issued, but a backend
/// in front of AWS IoT has its own clock, and both are whole seconds.
pub(crate) const CLOCK_SLACK_BEFORE_CERTIFICATE: Duration = Duration::from_secs(60);

fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// A non-negative nanosecond count as a `Duration` (negative reads as zero).
fn duration_of(ns: i128) -> Duration {
    let ns = u128::try_from(ns).unwrap_or(0);
    Duration::new(
        u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX),
        u32::try_from(ns % 1_000_000_000).unwrap_or(0),
    )
}

impl Deadline {
    /// Computes the deadline of something that expires at `server_expiry` (server time).
    ///
    /// * `server_now` — the server's time when it answered (the HTTP `Date` header), if it sent one;
    /// * `phone_now` — the phone's wall clock when the answer arrived (used only without `server_now`);
    /// * `clock` — the clock the deadline is measured on ([`Clock::since_boot`]);
    /// * `received_at` — `clock.since_boot()` when the answer arrived.
    pub fn from_server_expiry(
        server_expiry: SystemTime,
        server_now: Option<SystemTime>,
        phone_now: SystemTime,
        clock: Arc<dyn Clock>,
        received_at: Duration,
    ) -> Self {
        let reference = server_now.unwrap_or(phone_now);
        // Signed: a deadline already past on arrival lies before `received_at`, so `overdue`
        // tells by how much.
        let left_ns = match server_expiry.duration_since(reference) {
            Ok(left) => nanos(left),
            Err(late) => -nanos(late.duration()),
        };
        Self {
            expires_at_ns: nanos(received_at).saturating_add(left_ns),
            clock,
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
        clock: Arc<dyn Clock>,
        received_at: Duration,
    ) -> Self {
        let mut deadline = Self::from_server_expiry(
            server_expiry.min(not_after),
            server_now,
            phone_now,
            clock,
            received_at,
        );
        let lifetime = not_after
            .duration_since(not_before)
            .unwrap_or(Duration::ZERO);
        deadline.expires_at_ns = deadline
            .expires_at_ns
            .min(nanos(received_at).saturating_add(nanos(lifetime)));
        let reference = server_now.unwrap_or(phone_now);
        deadline.clock_behind_certificate_secs = not_before
            .duration_since(reference)
            .ok()
            .filter(|behind| *behind > CLOCK_SLACK_BEFORE_CERTIFICATE)
            .map(|behind| behind.as_secs());
        deadline
    }

    /// A deadline `left` from now on the system's clocks (for timeouts that are not tied to a
    /// server clock).
    pub fn after(left: Duration) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let received_at = clock.since_boot();
        let now = SystemTime::now();
        Self::from_server_expiry(now + left, None, now, clock, received_at)
    }

    /// `expires_at − now` on the deadline's clock, in nanoseconds (negative once passed).
    fn left_ns(&self) -> i128 {
        self.expires_at_ns
            .saturating_sub(nanos(self.clock.since_boot()))
    }

    /// Time left before the deadline, zero once it has passed. Time the phone spent suspended
    /// counts.
    pub fn remaining(&self) -> Duration {
        duration_of(self.left_ns())
    }

    /// How long ago the deadline passed, zero while it has not.
    pub fn overdue(&self) -> Duration {
        duration_of(self.left_ns().saturating_neg())
    }

    /// Whether the deadline has passed.
    pub fn has_passed(&self) -> bool {
        self.left_ns() <= 0
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
    use std::sync::Mutex;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// A phone whose suspend-aware clock moves only when the test says: by `run` (time awake)
    /// or by `sleep` (time suspended, which `Instant` would not see).
    #[derive(Debug, Default)]
    struct StoppedClock {
        since_boot: Mutex<Duration>,
    }

    impl StoppedClock {
        fn start() -> (Arc<Self>, Arc<dyn Clock>, Duration) {
            let clock = Arc::new(Self {
                since_boot: Mutex::new(Duration::from_secs(1_000)),
            });
            let reading = clock.since_boot();
            (clock.clone(), clock, reading)
        }

        fn sleep(&self, d: Duration) {
            if let Ok(mut t) = self.since_boot.lock() {
                *t += d;
            }
        }
    }

    impl Clock for StoppedClock {
        fn now(&self) -> SystemTime {
            SystemTime::now()
        }
        fn since_boot(&self) -> Duration {
            self.since_boot.lock().map(|t| *t).unwrap_or_default()
        }
    }

    #[test]
    fn server_date_wins_over_a_wrong_phone_clock() {
        let (_, clock, received) = StoppedClock::start();
        let expiry = at(1_000_300);
        let server_now = Some(at(1_000_000));
        for phone_offset in [-600i64, 0, 600] {
            let phone_now = shift(at(1_000_000), phone_offset);
            let d = Deadline::from_server_expiry(
                expiry,
                server_now,
                phone_now,
                clock.clone(),
                received,
            );
            assert_eq!(d.remaining(), Duration::from_secs(300));
            assert_eq!(d.clock_skew_secs(), Some(-phone_offset));
        }
    }

    #[test]
    fn without_a_server_date_the_phone_clock_is_used() {
        let (_, clock, received) = StoppedClock::start();
        let d = Deadline::from_server_expiry(
            at(1_000_300),
            None,
            at(1_000_100),
            clock.clone(),
            received,
        );
        assert_eq!(d.remaining(), Duration::from_secs(200));
        assert_eq!(d.clock_skew_secs(), None);
    }

    #[test]
    fn an_expiry_in_the_past_is_overdue_by_the_right_amount() {
        let (_, clock, received) = StoppedClock::start();
        let d = Deadline::from_server_expiry(
            at(1_000_000),
            Some(at(1_000_030)),
            at(0),
            clock.clone(),
            received,
        );
        assert!(d.has_passed());
        assert_eq!(d.remaining(), Duration::ZERO);
        assert_eq!(d.overdue(), Duration::from_secs(30));
    }

    #[test]
    fn time_asleep_counts_against_the_deadline() {
        let (phone, clock, received) = StoppedClock::start();
        let d = Deadline::from_certificate(
            at(1_000_000),
            at(1_000_300),
            at(1_000_300),
            Some(at(1_000_000)),
            at(1_000_000),
            clock,
            received,
        );
        assert_eq!(d.remaining(), Duration::from_secs(300));
        // Four minutes in a pocket: `Instant` would still say five minutes left.
        phone.sleep(Duration::from_secs(240));
        assert_eq!(d.remaining(), Duration::from_secs(60));
        assert!(!d.has_passed());
        phone.sleep(Duration::from_secs(61));
        assert!(d.has_passed());
        assert_eq!(d.overdue(), Duration::from_secs(1));
        assert_eq!(d.remaining(), Duration::ZERO);
    }

    /// The system clock deadlines use is the kernel's boot clock, which counts suspended time:
    /// `/proc/uptime` reads the same clock (`CLOCK_BOOTTIME`), while a process-local `Instant`
    /// origin would read seconds since this test process started.
    #[cfg(target_os = "linux")]
    #[test]
    fn on_linux_deadlines_read_the_boot_clock() {
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|f| f.parse().ok()))
            .expect("/proc/uptime is readable on Linux");
        let ours = SystemClock.since_boot().as_secs_f64();
        assert!(
            (ours - uptime).abs() < 2.0,
            "boot clock {ours} s, /proc/uptime {uptime} s"
        );
        let later = SystemClock.since_boot();
        assert!(later.as_secs_f64() >= ours);
    }

    #[test]
    fn a_date_a_day_behind_is_capped_by_the_certificate_and_flagged() {
        let (_, clock, received) = StoppedClock::start();
        let (not_before, not_after) = (at(1_000_000), at(1_000_300));
        let day_behind = Some(at(1_000_000 - 86_400));
        let d = Deadline::from_certificate(
            not_before,
            not_after,
            not_after,
            day_behind,
            at(1_000_000),
            clock.clone(),
            received,
        );
        assert_eq!(d.remaining(), Duration::from_secs(300));
        assert_eq!(d.clock_behind_certificate_secs(), Some(86_400));
        // The uncapped computation, for contrast: a day and five minutes.
        let naive = Deadline::from_server_expiry(
            not_after,
            day_behind,
            at(1_000_000),
            clock.clone(),
            received,
        );
        assert_eq!(naive.remaining(), Duration::from_secs(86_700));
    }

    #[test]
    fn a_phone_clock_behind_without_a_date_is_capped_too() {
        let (_, clock, received) = StoppedClock::start();
        let d = Deadline::from_certificate(
            at(1_000_000),
            at(1_000_300),
            at(1_000_300),
            None,
            at(1_000_000 - 3_600),
            clock.clone(),
            received,
        );
        assert_eq!(d.remaining(), Duration::from_secs(300));
        assert_eq!(d.clock_behind_certificate_secs(), Some(3_600));
        assert_eq!(d.clock_skew_secs(), None);
    }

    #[test]
    fn a_consistent_date_is_not_flagged_and_counts_from_the_date() {
        let (_, clock, received) = StoppedClock::start();
        // Issued at 1_000_000, answered 20 s later; a backend clock 30 s behind is within the slack.
        for (date, left) in [(1_000_020, 280), (999_970, 300)] {
            let d = Deadline::from_certificate(
                at(1_000_000),
                at(1_000_300),
                at(1_000_300),
                Some(at(date)),
                at(0),
                clock.clone(),
                received,
            );
            assert_eq!(d.remaining(), Duration::from_secs(left), "Date {date}");
            assert_eq!(d.clock_behind_certificate_secs(), None, "Date {date}");
        }
    }

    #[test]
    fn a_stated_expiry_past_the_certificate_end_is_cut_to_it() {
        let (_, clock, received) = StoppedClock::start();
        let d = Deadline::from_certificate(
            at(1_000_000),
            at(1_000_300),
            at(2_000_000),
            Some(at(1_000_100)),
            at(0),
            clock.clone(),
            received,
        );
        assert_eq!(d.remaining(), Duration::from_secs(200));
    }

    #[test]
    fn skewed_clock_shifts_both_ways() {
        let ahead = SkewedClock::new(600).now();
        let behind = SkewedClock::new(-600).now();
        let diff = signed_secs_between(ahead, behind);
        assert!((1199..=1201).contains(&diff), "{diff}");
    }

    #[test]
    fn extreme_skews_saturate_instead_of_panicking() {
        assert_eq!(SkewedClock::new(i64::MAX).now(), UNIX_EPOCH + LATEST);
        assert_eq!(SkewedClock::new(i64::MIN).now(), UNIX_EPOCH);
        assert_eq!(shift(UNIX_EPOCH + LATEST, 1), UNIX_EPOCH + LATEST);
    }
}
