//! The run report: one self-contained HTML page with an SVG timeline of a run,
//! or of a simulation's policies side by side, and the summary tables.
//!
//! The page needs nothing beyond itself: no scripts, no fonts, no images, its
//! style inline. Hovering over a span shows its details (SVG `<title>`).

mod page;
mod svg;
mod timeline;

use agentrun_core::Event;
use agentrun_memory::Policy;

use crate::SimulationReport;

/// The report of a run, from its events (every start of it, in order: the lines of
/// its `events.jsonl`).
pub fn run_report_html(events: &[Event]) -> String {
    page::run_page(&timeline::Timeline::from_events(events))
}

/// The report of a simulation: its comparison table, and each policy's timeline on
/// one time axis. The timelines need the events the simulation kept
/// ([`crate::SimulationOptions::keep_events`]); a policy without them shows an empty one.
pub fn simulation_report_html(report: &SimulationReport) -> String {
    // The map's order is the policies' report order.
    let timelines: Vec<(Policy, timeline::Timeline)> = report
        .policies
        .keys()
        .map(|&policy| {
            let events = report.events.get(&policy).map_or(&[][..], Vec::as_slice);
            (policy, timeline::Timeline::from_events(events))
        })
        .collect();
    page::simulation_page(report, &timelines)
}

/// Text made safe for HTML and SVG, in element content and in quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests;
