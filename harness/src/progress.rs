//! Live progress for the demo: bars on a terminal, plain lines otherwise, nothing with `--json`; past
//! a screenful of devices, one tally (a single bar, or a line per tenth of the devices finished).

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use claimlink_core::ProvisioningEvent;
use claimlink_harness::demo::Progress;
use claimlink_harness::demo_summary::SCREENFUL;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub trait Finish: Progress {
    fn done(&self);
}

/// Spinners, one per device, showing the stage and the claim's time left.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn bar(&self, device: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.entry(device.to_owned())
            .or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<11} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(device.to_owned());
                bar.enable_steady_tick(Duration::from_millis(100));
                bar
            })
            .clone()
    }
}

fn describe(event: &ProvisioningEvent) -> String {
    let left = event
        .claim_time_left
        .map(|d| format!("  claim: {:>5.1} s left", d.as_secs_f64()))
        .unwrap_or_default();
    let detail = event
        .detail
        .as_deref()
        .map(|d| format!("  ({d})"))
        .unwrap_or_default();
    format!("{:<26}{left}{detail}", event.stage.name())
}

impl Progress for Bars {
    fn event(&self, device: &str, event: &ProvisioningEvent) {
        self.bar(device).set_message(describe(event));
    }
    fn note(&self, text: &str) {
        let _ = self.multi.println(text);
    }
    fn finished(&self, device: &str, outcome: &Result<String, String>) {
        let bar = self.bar(device);
        match outcome {
            Ok(thing) => bar.finish_with_message(format!("✔ provisioned as {thing}")),
            Err(e) => bar.finish_with_message(format!("✘ {e}")),
        }
    }
}

impl Finish for Bars {
    /// Finished spinners stay on screen as the per-device record.
    fn done(&self) {}
}

/// One line per event (logs, CI).
struct Lines;

impl Progress for Lines {
    fn note(&self, text: &str) {
        println!("{text}");
    }
    fn event(&self, device: &str, event: &ProvisioningEvent) {
        println!(
            "[{:>7.3} s] {device:<11} {}",
            event.elapsed.as_secs_f64(),
            describe(event)
        );
    }
    fn finished(&self, device: &str, outcome: &Result<String, String>) {
        match outcome {
            Ok(thing) => println!("            {device:<11} provisioned as {thing}"),
            Err(e) => println!("            {device:<11} failed: {e}"),
        }
    }
}

impl Finish for Lines {
    fn done(&self) {}
}

/// Silence (for `--json`).
struct Quiet;

impl Progress for Quiet {
    fn event(&self, _: &str, _: &ProvisioningEvent) {}
    fn finished(&self, _: &str, _: &Result<String, String>) {}
}

impl Finish for Quiet {
    fn done(&self) {}
}

/// Counts for many devices: how many are at each stage, and how many finished each way.
struct Tally {
    devices: usize,
    bar: Option<ProgressBar>,
    counts: Mutex<TallyCounts>,
}

#[derive(Default)]
struct TallyCounts {
    /// Each device's latest stage.
    at: HashMap<String, &'static str>,
    provisioned: usize,
    failed: usize,
    /// The last tenth printed (lines mode).
    tenths: usize,
}

impl TallyCounts {
    fn line(&self) -> String {
        let mut stages: BTreeMap<&str, usize> = BTreeMap::new();
        for stage in self.at.values() {
            *stages.entry(stage).or_default() += 1;
        }
        let busy: Vec<String> = stages.iter().map(|(s, n)| format!("{n} {s}")).collect();
        format!(
            "✔ {} provisioned  ✘ {} failed  in progress: {}",
            self.provisioned,
            self.failed,
            if busy.is_empty() {
                "none".to_owned()
            } else {
                busy.join(", ")
            }
        )
    }
}

impl Progress for Tally {
    fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
        }
    }
    fn event(&self, device: &str, event: &ProvisioningEvent) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.at.insert(device.to_owned(), event.stage.name());
        if let Some(bar) = &self.bar {
            bar.set_message(counts.line());
        }
    }
    fn finished(&self, device: &str, outcome: &Result<String, String>) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.at.remove(device);
        match outcome {
            Ok(_) => counts.provisioned += 1,
            Err(_) => counts.failed += 1,
        }
        let done = counts.provisioned + counts.failed;
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(counts.line());
            }
            None => {
                let tenths = done * 10 / self.devices.max(1);
                if tenths > counts.tenths {
                    counts.tenths = tenths;
                    println!("{done}/{} finished: {}", self.devices, counts.line());
                }
            }
        }
    }
}

impl Finish for Tally {
    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Picks bars, lines, a tally or silence.
pub fn for_terminal(json: bool, devices: usize) -> Arc<dyn FinishProgress> {
    if json {
        Arc::new(Quiet)
    } else if devices > SCREENFUL {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(devices as u64);
            bar.set_style(
                ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Arc::new(Tally {
            devices,
            bar,
            counts: Mutex::new(TallyCounts::default()),
        })
    } else if std::io::stderr().is_terminal() {
        Arc::new(Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Arc::new(Lines)
    }
}

/// Progress that can also be closed.
pub trait FinishProgress: Progress + Finish {}
impl<T: Progress + Finish> FinishProgress for T {}
