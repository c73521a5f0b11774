//! The SDK's log, forwarded to the app (logcat, os_log, Python's `logging`).
//!
//! The SDK logs through `tracing`; [`set_logger`] installs (once per process) a subscriber that formats
//! each event as one line and hands it to the app's [`LogSink`]. The SDK never logs a secret (claim key,
//! passphrase, password, token): the secret types redact themselves, and the security tests scan
//! every log line of the fault campaign for leaks. Only the SDK's own events are forwarded, not its
//! dependencies' (HTTP, TLS internals).

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use super::ProvisioningFailure;

/// How much to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Failures.
    Error,
    /// Things that went wrong and were handled (a retry, a fresh claim).
    Warn,
    /// Milestones.
    Info,
    /// Protocol steps.
    Debug,
    /// Every exchange.
    Trace,
}

impl LogLevel {
    fn of(level: &Level) -> Self {
        match *level {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// One log line.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// Its level.
    pub level: LogLevel,
    /// The SDK module it came from (`claimlink::provision`), for a logcat tag or an os_log category.
    pub target: String,
    /// The message and its fields (`sending the claim bytes=1025`).
    pub message: String,
}

/// Receives the SDK's log. Called on SDK threads: keep it quick; do not call back into the SDK.
#[uniffi::export(foreign)]
pub trait LogSink: Send + Sync {
    /// One line.
    fn log(&self, record: LogRecord);
}

type Installed = RwLock<Option<(Arc<dyn LogSink>, LogLevel)>>;

static LOGGER: Installed = RwLock::new(None);
static SUBSCRIBER: OnceLock<bool> = OnceLock::new();

/// Sends the SDK's log at `level` and above to `logger` (replacing any earlier logger). Fails with
/// [`ProvisioningFailure::NotAvailable`] if the process already has another `tracing` subscriber (a
/// Rust host application that set its own).
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn LogSink>, level: LogLevel) -> Result<(), ProvisioningFailure> {
    let installed = *SUBSCRIBER.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(ToAppLogger))
            .is_ok()
    });
    if !installed {
        return Err(ProvisioningFailure::NotAvailable {
            reason: "another tracing subscriber is installed in this process".into(),
        });
    }
    *LOGGER.write().unwrap_or_else(|p| p.into_inner()) = Some((logger, level));
    Ok(())
}

/// Stops forwarding the SDK's log.
#[uniffi::export]
pub fn clear_logger() {
    *LOGGER.write().unwrap_or_else(|p| p.into_inner()) = None;
}

/// The `tracing` layer that hands the SDK's own events to the app's [`LogSink`].
struct ToAppLogger;

impl<S: Subscriber> Layer<S> for ToAppLogger {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        // Only the SDK's own events: its dependencies' internals (HTTP, TLS) mean nothing to an app
        // developer, and what they print is not covered by the SDK's secret checks.
        if !metadata.target().starts_with("claimlink") {
            return false;
        }
        LOGGER
            .read()
            .map(|l| {
                l.as_ref()
                    .is_some_and(|(_, max)| LogLevel::of(metadata.level()) <= *max)
            })
            .unwrap_or(false)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some((logger, max)) = LOGGER.read().ok().and_then(|l| l.clone()) else {
            return;
        };
        let level = LogLevel::of(event.metadata().level());
        if level > max {
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        logger.log(LogRecord {
            level,
            target: event.metadata().target().to_owned(),
            message: line.0,
        });
    }
}

#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Lines(Mutex<Vec<LogRecord>>);

    impl LogSink for Lines {
        fn log(&self, record: LogRecord) {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(record);
        }
    }

    fn emit(n: u32) {
        tracing::info!(n, "an event");
    }

    /// tracing caches per call site whether anyone listens: a sink installed (or a level changed) after
    /// a call site first fired must still get its events.
    #[test]
    fn a_sink_hears_call_sites_that_fired_before_it_was_installed() {
        emit(1);
        let lines = Arc::new(Lines::default());
        set_logger(lines.clone(), LogLevel::Info).expect("installed");
        emit(2);
        set_logger(lines.clone(), LogLevel::Error).expect("level changed");
        emit(3);
        set_logger(lines.clone(), LogLevel::Debug).expect("level changed");
        emit(4);
        clear_logger();
        emit(5);
        let got: Vec<String> = lines
            .0
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.message.clone())
            .collect();
        assert_eq!(got, ["an event n=2", "an event n=4"]);
    }
}
