//! CPU time for the benchmark (`claimlink-harness bench`), split by who spent it, as far as one
//! process allows (Linux only; elsewhere every figure is zero):
//!
//! * the **emulator** runs on its own runtime and key threads, named `emulator…`: their time is read
//!   per thread from `/proc/self/task/*/schedstat` ([`threads_named`]);
//! * the **simulated devices** run inside the SDK's tasks (the simulated BLE link calls the device's
//!   handlers directly) and in their own cloud tasks: their time is measured around each handler call
//!   and each poll of a cloud task, with the thread's CPU clock ([`measure`], [`Accounted`]), only
//!   while [`enable`] is on (it costs two small file reads per measurement);
//! * the **SDK** is the rest of the process ([`process`] minus both).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

static ENABLED: AtomicBool = AtomicBool::new(false);
static SIMULATOR_NS: AtomicU64 = AtomicU64::new(0);

/// Turns the simulator's accounting on (the benchmark) or off.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// CPU time the simulated devices spent since the process started (while accounting was on).
pub fn simulator() -> Duration {
    Duration::from_nanos(SIMULATOR_NS.load(Ordering::Relaxed))
}

/// The calling thread's CPU time so far (`/proc/thread-self/schedstat`, nanoseconds).
fn this_thread_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Runs `f`, counting its CPU time as the simulator's when accounting is on.
pub fn measure<T>(f: impl FnOnce() -> T) -> T {
    if !ENABLED.load(Ordering::Relaxed) {
        return f();
    }
    let before = this_thread_ns();
    let out = f();
    if let (Some(b), Some(a)) = (before, this_thread_ns()) {
        SIMULATOR_NS.fetch_add(a.saturating_sub(b), Ordering::Relaxed);
    }
    out
}

/// A future whose polls count as the simulator's CPU time.
pub struct Accounted<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Accounted<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let inner = self.inner.as_mut();
        measure(|| inner.poll(cx))
    }
}

/// `future`, its polls counted as the simulator's.
pub fn accounted<F: Future>(future: F) -> Accounted<F> {
    Accounted {
        inner: Box::pin(future),
    }
}

/// The CPU time of this process's live threads whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let mut ns = 0u64;
    for task in tasks.flatten() {
        let path = task.path();
        let named = std::fs::read_to_string(path.join("comm"))
            .is_ok_and(|name| name.trim_end().starts_with(prefix));
        if !named {
            continue;
        }
        ns += std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

/// The whole process's CPU time (user + system, every thread, live or ended; `/proc/self/stat`,
/// in the kernel's 1/100 s ticks).
pub fn process() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// The process's peak resident set (`VmHWM` in `/proc/self/status`), in bytes.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
