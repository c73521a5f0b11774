//! The demo's timeline picture (`demo --timeline FILE`).

use std::time::Duration;

use crate::demo::DeviceReport;

/// The timeline as SVG.
pub fn svg(reports: &[DeviceReport], window: Duration) -> String {
    crate::demo::timeline_svg(reports, window)
}

/// The SVG in a minimal HTML page.
pub fn html(svg: &str) -> String {
    format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>claimlink timeline</title></head><body>{svg}</body></html>\n")
}
