//! A phone that can be put to sleep: its clocks run on while it is suspended, as a real phone's do,
//! but `Instant` and tokio's timers do not see the time asleep (on a real phone they stop too).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use claimlink_core::{suspend_aware_time, Clock};

/// The system's clocks plus the time this phone has spent suspended: [`suspend`](Self::suspend)
/// moves the wall clock and the suspend-aware clock ahead at once, as waking from a sleep does,
/// while `Instant` (which stops during suspend on phones) is left where it was.
#[derive(Debug, Default)]
pub struct SleepingPhoneClock {
    asleep: Mutex<Duration>,
}

impl SleepingPhoneClock {
    /// A phone that has not slept yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The phone sleeps for `duration` and wakes up.
    pub fn suspend(&self, duration: Duration) {
        if let Ok(mut asleep) = self.asleep.lock() {
            *asleep += duration;
        }
    }

    fn asleep(&self) -> Duration {
        self.asleep.lock().map(|a| *a).unwrap_or_default()
    }
}

impl Clock for SleepingPhoneClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + self.asleep()
    }

    fn since_boot(&self) -> Duration {
        suspend_aware_time() + self.asleep()
    }
}
