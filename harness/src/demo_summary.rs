//! What `demo` prints at the end: one line per device while the devices fit on a screen, and past
//! that a compact summary (counts per outcome, time to online, the least claim time left).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use claimlink_core::Stage;
use serde_json::{json, Value};

use crate::demo::DeviceReport;

/// More devices than this get the compact summary instead of one line each.
pub const SCREENFUL: usize = 20;

/// Percentiles of a set of durations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spread {
    /// How many.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The largest.
    pub max: Duration,
}

impl Spread {
    /// The spread of `values` (all zero when empty).
    pub fn of(mut values: Vec<Duration>) -> Self {
        values.sort();
        let pick = |q: f64| {
            let last = values.len().saturating_sub(1);
            values
                .get((last as f64 * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        Self {
            count: values.len(),
            p50: pick(0.5),
            p95: pick(0.95),
            max: values.last().copied().unwrap_or_default(),
        }
    }
}

/// The whole run in numbers.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Devices per outcome: `provisioned`, or the error's text up to its first colon.
    pub outcomes: BTreeMap<String, usize>,
    /// From the start of a device's run until it was online with its own certificate.
    pub time_to_online: Spread,
    /// The least claim time left at the hand-over, over all devices that got a claim.
    pub least_left_at_handover: Option<Duration>,
    /// The least claim time left when a device had its certificate (the claim's job was done): the
    /// margin by which the tightest deadline was met.
    pub least_left_at_certificate: Option<Duration>,
}

impl Summary {
    /// Devices provisioned.
    pub fn provisioned(&self) -> usize {
        self.outcomes.get("provisioned").copied().unwrap_or(0)
    }
}

/// An outcome's class: `provisioned`, or the error up to its first colon (the part that names what
/// failed, without the per-device detail).
fn outcome_class(outcome: &Result<String, String>) -> String {
    match outcome {
        Ok(_) => "provisioned".to_owned(),
        Err(e) => {
            let head = e.split(':').next().unwrap_or(e);
            // A quoted name (a thing, a device) is the per-device detail: dropped.
            let class: String = head
                .split('"')
                .enumerate()
                .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
                .collect::<Vec<_>>()
                .join("\"");
            format!("failed: {class}")
        }
    }
}

fn left_at(report: &DeviceReport, stage: Stage) -> Option<Duration> {
    report
        .events
        .iter()
        .find(|e| e.stage == stage)
        .and_then(|e| e.claim_time_left)
}

/// The numbers of a run.
pub fn summarize(reports: &[DeviceReport]) -> Summary {
    let mut outcomes = BTreeMap::new();
    for r in reports {
        *outcomes.entry(outcome_class(&r.outcome)).or_insert(0) += 1;
    }
    let online = reports
        .iter()
        .filter(|r| r.outcome.is_ok())
        .filter_map(|r| {
            r.events
                .iter()
                .find(|e| e.stage == Stage::ReconnectedWithPermanent)
                .or_else(|| r.events.last())
                .map(|e| e.elapsed)
        })
        .collect();
    Summary {
        outcomes,
        time_to_online: Spread::of(online),
        least_left_at_handover: reports
            .iter()
            .filter_map(|r| {
                r.claim_time_left_at_handover
                    .or(left_at(r, Stage::ClaimSent))
            })
            .min(),
        least_left_at_certificate: reports
            .iter()
            .filter_map(|r| left_at(r, Stage::CertificateIssued))
            .min(),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// The end-of-run text: a line per device up to [`SCREENFUL`] devices, then the summary.
pub fn text(reports: &[DeviceReport]) -> String {
    let mut out = String::new();
    if reports.len() <= SCREENFUL {
        let _ = writeln!(
            out,
            "{:<11} {:<12} {:<22} {:<18} {:>18} {:>9}",
            "device", "outcome", "thing", "certificate", "left at hand-over", "total"
        );
        for r in reports {
            let (outcome, thing) = match &r.outcome {
                Ok(t) => ("provisioned", t.clone()),
                Err(e) => ("FAILED", e.clone()),
            };
            let left = r
                .claim_time_left_at_handover
                .map(|d| format!("{:>16.1} s", d.as_secs_f64()))
                .unwrap_or_else(|| format!("{:>18}", "-"));
            let _ = writeln!(
                out,
                "{:<11} {:<12} {:<22} {:<18} {left} {:>7.1} s",
                r.name,
                outcome,
                thing,
                r.certificate_id
                    .as_deref()
                    .map(|c| format!("{}…", &c[..c.len().min(16)]))
                    .unwrap_or_default(),
                r.total.as_secs_f64()
            );
        }
        out.push('\n');
    }
    let summary = summarize(reports);
    let _ = writeln!(out, "{} devices:", reports.len());
    for (outcome, n) in &summary.outcomes {
        let _ = writeln!(out, "  {n:>6}  {outcome}");
    }
    let t = summary.time_to_online;
    if t.count > 0 {
        let _ = writeln!(
            out,
            "time to online: p50 {}, p95 {}, max {}",
            secs(t.p50),
            secs(t.p95),
            secs(t.max)
        );
    }
    if let Some(left) = summary.least_left_at_handover {
        let _ = write!(out, "least claim time left: {} at hand-over", secs(left));
        match summary.least_left_at_certificate {
            Some(c) => {
                let _ = writeln!(out, ", {} when the certificate was issued", secs(c));
            }
            None => out.push('\n'),
        }
    }
    out
}

/// The summary as JSON (part of `demo --json`).
pub fn json(reports: &[DeviceReport]) -> Value {
    let s = summarize(reports);
    let ms = |d: Duration| d.as_millis() as u64;
    json!({
        "devices": reports.len(),
        "outcomes": s.outcomes,
        "time_to_online_ms": {
            "p50": ms(s.time_to_online.p50),
            "p95": ms(s.time_to_online.p95),
            "max": ms(s.time_to_online.max),
        },
        "least_claim_time_left_at_handover_ms": s.least_left_at_handover.map(ms),
        "least_claim_time_left_at_certificate_ms": s.least_left_at_certificate.map(ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, outcome: Result<String, String>, online_s: u64) -> DeviceReport {
        let at = |stage, s: u64| claimlink_core::ProvisioningEvent {
            stage,
            claim_time_left: Some(Duration::from_secs(300 - s)),
            elapsed: Duration::from_secs(s),
            detail: None,
            device_ip: None,
            thing_name: None,
            certificate_id: None,
        };
        DeviceReport {
            name: name.into(),
            outcome,
            certificate_id: None,
            claim_time_left_at_handover: Some(Duration::from_secs(290)),
            events: vec![
                at(Stage::ClaimSent, 1),
                at(Stage::CertificateIssued, online_s - 1),
                at(Stage::ReconnectedWithPermanent, online_s),
            ],
            total: Duration::from_secs(online_s + 1),
            support_report: String::new(),
        }
    }

    #[test]
    fn outcomes_group_without_per_device_names_and_times_are_spread() {
        let reports = vec![
            report("a", Ok("t-a".into()), 10),
            report("b", Ok("t-b".into()), 20),
            report("c", Ok("t-c".into()), 30),
            report(
                "d",
                Err("the cloud does not confirm thing \"t-d\"".into()),
                5,
            ),
            report(
                "e",
                Err("the cloud does not confirm thing \"t-e\"".into()),
                5,
            ),
            report(
                "f",
                Err("could not reach the service (timed out): no answer".into()),
                5,
            ),
        ];
        let s = summarize(&reports);
        assert_eq!(
            s.outcomes,
            BTreeMap::from([
                ("provisioned".to_owned(), 3),
                (
                    "failed: the cloud does not confirm thing \"…\"".to_owned(),
                    2
                ),
                (
                    "failed: could not reach the service (timed out)".to_owned(),
                    1
                ),
            ])
        );
        assert_eq!(s.time_to_online.p50, Duration::from_secs(20));
        assert_eq!(s.time_to_online.max, Duration::from_secs(30));
        assert_eq!(s.least_left_at_certificate, Some(Duration::from_secs(271)));
        let text = text(&reports);
        assert!(text.contains("6 devices:"), "{text}");
        assert!(
            text.contains("time to online: p50 20.0 s, p95 30.0 s, max 30.0 s"),
            "{text}"
        );
    }
}
