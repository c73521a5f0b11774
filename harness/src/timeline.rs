//! The demo's timeline picture (`demo --timeline FILE`), made for a support ticket:
//!
//! * a title with the counts, and the claim's whole validity window as context: a strip from 0 to the
//!   deadline with the part the run used shaded, so a 6 s run in a 300 s window reads as such;
//! * the run itself at a readable scale, with a time axis and ticks;
//! * up to [`MAX_ROWS`] devices: one row each, coloured by phase (secure session, claim, Wi-Fi, device
//!   with AWS IoT, cloud confirmation), the hand-over marked with the claim time left then, the
//!   outcome at the end (✔, or ✘ and the error), every stage a dot with its name and time as a tooltip;
//! * more devices: the distribution instead (a histogram of time to online, outcome counts);
//! * a legend.
//!
//! Plain SVG 1.1 with no script and no external resource: it renders the same in a browser, in an
//! image viewer and in headless Chromium (the test that looks at it).

use std::fmt::Write as _;
use std::time::Duration;

use claimlink_core::{ProvisioningEvent, Stage};

use crate::demo::DeviceReport;
use crate::demo_summary::{summarize, Spread};

/// Past this many devices the picture shows the distribution, not a row per device.
pub const MAX_ROWS: usize = 40;
/// The most outcome lines the distribution lists (the most frequent).
const MAX_OUTCOMES: usize = 10;

const WIDTH: f64 = 1000.0;
/// Left of the plot: device names.
const LEFT: f64 = 110.0;
/// Right of the plot: outcome and time left.
const RIGHT: f64 = 230.0;
const ROW: f64 = 30.0;
/// Extra height of a failed device's row: its error on a line of its own.
const ERROR_LINE: f64 = 16.0;

/// The phases a run goes through, in order, with their colours.
const PHASES: [(&str, &str); 5] = [
    ("secure session", "#6c8ebf"),
    ("claim", "#d79b00"),
    ("Wi-Fi", "#82b366"),
    ("device ↔ AWS IoT", "#9673a6"),
    ("cloud confirms", "#4d9fa6"),
];
const FAILED: &str = "#c0392b";
const PROVISIONED: &str = "#2a7d46";

/// The phase a stage starts (an index into [`PHASES`]).
fn phase(stage: Stage) -> usize {
    match stage {
        Stage::Connecting | Stage::Securing => 0,
        Stage::ClaimRequested | Stage::ClaimIssued => 1,
        Stage::ClaimSent | Stage::WifiApplied | Stage::WifiConnecting | Stage::WifiFailed => 2,
        Stage::WifiConnected
        | Stage::MqttConnectedWithClaim
        | Stage::CertificateIssued
        | Stage::ThingRegistered => 3,
        _ => 4,
    }
}

/// Text for SVG: `&`, `<`, `>` and quotes escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round tick step giving at most about ten ticks over `span` seconds.
fn tick_step(span: f64) -> f64 {
    [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|step| span / step <= 10.0)
    .unwrap_or(span / 10.0)
}

fn secs_label(s: f64, step: f64) -> String {
    if step < 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

/// The timeline as SVG; `window` is the claim's validity (the deadline the context strip shows).
pub fn svg(reports: &[DeviceReport], window: Duration) -> String {
    let summary = summarize(reports);
    let failed = reports.len() - summary.provisioned();
    let run_end = reports
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.elapsed).chain([r.total]))
        .max()
        .unwrap_or_default()
        .as_secs_f64()
        .max(0.1);
    let step = tick_step(run_end);
    let span = (run_end / step).ceil() * step;
    let plot = WIDTH - LEFT - RIGHT;
    let x = |s: f64| LEFT + plot * (s / span).clamp(0.0, 1.0);
    let rows = reports.len() <= MAX_ROWS;
    let row_height = |r: &DeviceReport| ROW + if r.outcome.is_err() { ERROR_LINE } else { 0.0 };
    let body_height = if rows {
        reports.iter().map(row_height).sum()
    } else {
        260.0 + 18.0 * summary.outcomes.len().min(MAX_OUTCOMES) as f64
    };
    let plot_top = 150.0;
    let height = plot_top + body_height + 110.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        out,
        "<rect width=\"{WIDTH}\" height=\"{height}\" fill=\"white\"/>"
    );
    // Title.
    let _ = writeln!(
        out,
        "<text x=\"16\" y=\"26\" font-size=\"17\" font-weight=\"bold\">claimlink provisioning timeline: {} device{}, {} provisioned, {} failed</text>",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" },
        summary.provisioned(),
        failed
    );
    context_strip(&mut out, run_end, window);
    // The run's axis.
    let axis_y = plot_top - 12.0;
    let _ = writeln!(
        out,
        "<text x=\"16\" y=\"{}\" font-weight=\"bold\">{}</text>",
        axis_y - 22.0,
        if rows {
            "The run, one row per device (time since the device's session opened)"
        } else {
            "The run: time to online and outcomes"
        }
    );
    if rows {
        axis(&mut out, &x, span, step, axis_y, plot_top + body_height);
        let mut y = plot_top;
        for r in reports {
            device_row(&mut out, r, y + ROW / 2.0, &x);
            y += row_height(r);
        }
    } else {
        distribution(&mut out, reports, &summary.time_to_online, plot_top);
    }
    legend(&mut out, height - 70.0, rows);
    out.push_str("</svg>\n");
    out
}

/// The claim's window from 0 to its deadline, the run's part shaded.
fn context_strip(out: &mut String, run_end: f64, window: Duration) {
    let window = window.as_secs_f64().max(1.0);
    let (left, right, y) = (LEFT, WIDTH - RIGHT, 62.0);
    let w = right - left;
    let used = (run_end / window).min(1.0);
    let _ = writeln!(
        out,
        "<text x=\"16\" y=\"{}\" font-weight=\"bold\">Claim window</text>",
        y + 4.0
    );
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{}\" width=\"{w}\" height=\"12\" fill=\"#eef1f5\" stroke=\"#9aa5b1\"/>",
        y - 6.0
    );
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{}\" width=\"{:.1}\" height=\"12\" fill=\"#6c8ebf\"/>",
        y - 6.0,
        (w * used).max(2.0)
    );
    let _ = writeln!(
        out,
        "<line x1=\"{right}\" y1=\"{}\" x2=\"{right}\" y2=\"{}\" stroke=\"{FAILED}\" stroke-width=\"2\"/>",
        y - 12.0,
        y + 12.0
    );
    let step = tick_step(window);
    let mut t = 0.0;
    while t <= window + 1e-9 {
        let tx = left + w * t / window;
        let _ = writeln!(
            out,
            "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#9aa5b1\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\" fill=\"#555\">{}</text>",
            y + 6.0,
            y + 10.0,
            y + 21.0,
            secs_label(t, step)
        );
        t += step;
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{FAILED}\">deadline: claim expires</text>",
        right + 8.0,
        y + 4.0
    );
    let _ = writeln!(
        out,
        "<text x=\"{left}\" y=\"{}\" font-size=\"11\" fill=\"#333\">the run took {run_end:.1} s of the {window:.0} s the claim is valid ({:.1}%), shaded; below at full scale</text>",
        y + 36.0,
        100.0 * used
    );
}

/// The time axis at `top` with ticks and labels above it and grid lines down to `bottom`; with
/// `bottom` < `top`, an axis under a chart: ticks and labels below it, no grid.
fn axis(out: &mut String, x: &dyn Fn(f64) -> f64, span: f64, step: f64, top: f64, bottom: f64) {
    let below = bottom < top;
    let _ = writeln!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{top}\" x2=\"{}\" y2=\"{top}\" stroke=\"#333\"/>",
        x(span)
    );
    let mut t = 0.0;
    while t <= span + 1e-9 {
        let tx = x(t);
        if below {
            let _ = writeln!(
                out,
                "<line x1=\"{tx:.1}\" y1=\"{top}\" x2=\"{tx:.1}\" y2=\"{}\" stroke=\"#333\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
                top + 5.0,
                top + 18.0,
                secs_label(t, step)
            );
        } else {
            let _ = writeln!(
                out,
                "<line x1=\"{tx:.1}\" y1=\"{top}\" x2=\"{tx:.1}\" y2=\"{bottom}\" stroke=\"#e3e6ea\"/><line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{top}\" stroke=\"#333\"/><text x=\"{tx:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\">{}</text>",
                top - 5.0,
                top - 8.0,
                secs_label(t, step)
            );
        }
        t += step;
    }
}

/// One device: its phases as coloured bars, its stages as dots, the hand-over and the outcome.
fn device_row(out: &mut String, r: &DeviceReport, y: f64, x: &dyn Fn(f64) -> f64) {
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-family=\"DejaVu Sans Mono, monospace\">{}</text>",
        LEFT - 8.0,
        y + 4.0,
        escape(&r.name)
    );
    let events: &[ProvisioningEvent] = &r.events;
    for (i, e) in events.iter().enumerate() {
        let start = e.elapsed.as_secs_f64();
        let end = events
            .get(i + 1)
            .map_or(start, |next| next.elapsed.as_secs_f64());
        let (x0, x1) = (x(start), x(end));
        if x1 > x0 {
            let _ = writeln!(
                out,
                "<rect x=\"{x0:.1}\" y=\"{}\" width=\"{:.1}\" height=\"14\" fill=\"{}\"/>",
                y - 7.0,
                x1 - x0,
                PHASES[phase(e.stage)].1
            );
        }
    }
    for e in events {
        let left = e
            .claim_time_left
            .map(|d| format!(", claim {:.1} s left", d.as_secs_f64()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{y}\" r=\"2.5\" fill=\"white\" stroke=\"#222\"><title>{} at {:.2} s{left}</title></circle>",
            x(e.elapsed.as_secs_f64()),
            e.stage.name(),
            e.elapsed.as_secs_f64()
        );
    }
    if let Some(sent) = events.iter().find(|e| e.stage == Stage::ClaimSent) {
        let sx = x(sent.elapsed.as_secs_f64());
        let _ = writeln!(
            out,
            "<path d=\"M {sx:.1} {} l 5 6 l -5 6 l -5 -6 z\" fill=\"#222\"/>",
            y - 13.0
        );
    }
    let end_x = WIDTH - RIGHT + 10.0;
    let left_at_handover = r
        .claim_time_left_at_handover
        .or_else(|| {
            events
                .iter()
                .find(|e| e.stage == Stage::ClaimSent)
                .and_then(|e| e.claim_time_left)
        })
        .map(|d| format!(" · {:.1} s left at hand-over", d.as_secs_f64()))
        .unwrap_or_default();
    match &r.outcome {
        Ok(_) => {
            let _ = writeln!(
                out,
                "<text x=\"{end_x}\" y=\"{}\" fill=\"{PROVISIONED}\">✔ {:.1} s{left_at_handover}</text>",
                y + 4.0,
                r.total.as_secs_f64()
            );
        }
        Err(e) => {
            let last = events.last().map_or(0.0, |e| e.elapsed.as_secs_f64());
            let fx = x(r.total.as_secs_f64().max(last));
            let _ = writeln!(
                out,
                "<text x=\"{fx:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\" fill=\"{FAILED}\">✘</text><text x=\"{end_x}\" y=\"{}\" fill=\"{FAILED}\">✘ {:.1} s{left_at_handover}</text>",
                y + 5.0,
                y + 4.0,
                r.total.as_secs_f64()
            );
            let short: String = e.chars().take(140).collect();
            let ellipsis = if e.chars().count() > 140 { "…" } else { "" };
            let _ = writeln!(
                out,
                "<text x=\"{LEFT}\" y=\"{}\" font-size=\"11\" fill=\"{FAILED}\">{}{ellipsis}<title>{}</title></text>",
                y + 20.0,
                escape(&short),
                escape(e)
            );
        }
    }
}

/// Many devices: a histogram of time to online, and the outcome counts.
fn distribution(out: &mut String, reports: &[DeviceReport], spread: &Spread, top: f64) {
    const BINS: usize = 20;
    let online: Vec<f64> = reports
        .iter()
        .filter(|r| r.outcome.is_ok())
        .filter_map(|r| {
            r.events
                .iter()
                .find(|e| e.stage == Stage::ReconnectedWithPermanent)
                .or(r.events.last())
                .map(|e| e.elapsed.as_secs_f64())
        })
        .collect();
    let max = online.iter().copied().fold(0.0f64, f64::max).max(0.1);
    let step = tick_step(max);
    let span = (max / step).ceil() * step;
    let mut bins = [0usize; BINS];
    for t in &online {
        let b = ((t / span) * BINS as f64) as usize;
        bins[b.min(BINS - 1)] += 1;
    }
    let tallest = bins.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (w, h) = (WIDTH - LEFT - RIGHT, 160.0);
    let base = top + h;
    let x = |s: f64| LEFT + w * s / span;
    axis(out, &x, span, step, base, base - 1.0);
    for (i, n) in bins.iter().enumerate() {
        let bh = h * *n as f64 / tallest;
        let _ = writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{}\"><title>{n} devices</title></rect>",
            LEFT + w * i as f64 / BINS as f64 + 1.0,
            base - bh,
            w / BINS as f64 - 2.0,
            PHASES[3].1
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">{} devices</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">0</text>",
        LEFT - 6.0,
        top + 10.0,
        tallest,
        LEFT - 6.0,
        base
    );
    for (label, at) in [
        ("p50", spread.p50),
        ("p95", spread.p95),
        ("max", spread.max),
    ] {
        let px = x(at.as_secs_f64());
        let _ = writeln!(
            out,
            "<line x1=\"{px:.1}\" y1=\"{top}\" x2=\"{px:.1}\" y2=\"{base}\" stroke=\"#222\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{label} {:.1} s</text>",
            px + 3.0,
            top + 12.0 + if label == "p95" { 14.0 } else if label == "max" { 28.0 } else { 0.0 },
            at.as_secs_f64()
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">time to online (from the session's start to the device online with its own certificate)</text>",
        LEFT + w / 2.0,
        base + 40.0
    );
    let mut oy = base + 80.0;
    let _ = writeln!(
        out,
        "<text x=\"16\" y=\"{oy}\" font-weight=\"bold\">Outcomes</text>"
    );
    let mut outcomes: Vec<(String, usize)> = summarize(reports).outcomes.into_iter().collect();
    outcomes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (outcome, n) in outcomes.into_iter().take(MAX_OUTCOMES) {
        oy += 18.0;
        let colour = if outcome == "provisioned" {
            PROVISIONED
        } else {
            FAILED
        };
        let short: String = outcome.chars().take(110).collect();
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{oy}\" fill=\"{colour}\" text-anchor=\"end\">{n}</text><text x=\"{}\" y=\"{oy}\" fill=\"{colour}\">{}<title>{}</title></text>",
            LEFT + 12.0,
            escape(&short),
            escape(&outcome)
        );
    }
}

/// What the colours and marks mean.
fn legend(out: &mut String, y: f64, rows: bool) {
    let mut lx = 16.0;
    let _ = writeln!(
        out,
        "<text x=\"{lx}\" y=\"{}\" font-weight=\"bold\">Legend</text>",
        y
    );
    let y = y + 20.0;
    if rows {
        for (name, colour) in PHASES {
            let _ = writeln!(
                out,
                "<rect x=\"{lx}\" y=\"{}\" width=\"18\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{}</text>",
                y - 10.0,
                lx + 24.0,
                y,
                escape(name)
            );
            lx += 34.0 + 7.5 * name.chars().count() as f64;
        }
        let _ = writeln!(
            out,
            "<path d=\"M {} {} l 5 6 l -5 6 l -5 -6 z\" fill=\"#222\"/><text x=\"{}\" y=\"{y}\">claim handed over</text>",
            lx + 5.0,
            y - 11.0,
            lx + 16.0
        );
        let y2 = y + 22.0;
        let _ = writeln!(
            out,
            "<circle cx=\"21\" cy=\"{}\" r=\"3\" fill=\"white\" stroke=\"#222\"/><text x=\"32\" y=\"{y2}\">a stage (hover for its name, time and claim time left)</text><text x=\"400\" y=\"{y2}\" fill=\"{PROVISIONED}\">✔ provisioned: total time</text><text x=\"600\" y=\"{y2}\" fill=\"{FAILED}\">✘ failed: where, and why</text>",
            y2 - 4.0
        );
    } else {
        let _ = writeln!(
            out,
            "<rect x=\"{lx}\" y=\"{}\" width=\"18\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{y}\">devices online within the bin</text><text x=\"330\" y=\"{y}\">dashed: p50, p95, max</text><text x=\"520\" y=\"{y}\" fill=\"{FAILED}\">red: the claim's deadline</text>",
            y - 10.0,
            PHASES[3].1,
            lx + 24.0
        );
    }
}

/// The SVG in a minimal HTML page.
pub fn html(svg: &str) -> String {
    format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>claimlink timeline</title></head><body style=\"margin:0\">{svg}</body></html>\n")
}
