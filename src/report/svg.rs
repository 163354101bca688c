//! The timeline drawn as SVG: a lane of turns, a lane per model, and the memory in
//! use against the budget, on a time axis that several timelines can share.

use std::fmt::Write as _;

use agentrun_core::LoadCause;
use agentrun_memory::gigabytes;

use crate::report::escape;
use crate::report::timeline::{ModelState, Timeline};

/// The drawing's width in pixels.
pub(crate) const WIDTH: f64 = 1320.0;
/// The column of lane names on the left.
const LABEL_WIDTH: f64 = 230.0;
const RIGHT_MARGIN: f64 = 24.0;
const AXIS_HEIGHT: f64 = 26.0;
const MARKER_HEIGHT: f64 = 16.0;
const TURN_LANE_HEIGHT: f64 = 34.0;
const MODEL_LANE_HEIGHT: f64 = 28.0;
const MEMORY_HEIGHT: f64 = 120.0;
const GAP: f64 = 10.0;
/// A span narrower than this is widened so it stays visible.
const MIN_SPAN_WIDTH: f64 = 1.5;
/// A wait shorter than this found its model resident: the executor counts no load
/// either (the server's fast path takes some milliseconds).
const LOAD_WAIT_S: f64 = 0.1;

/// Colours of the model states, and what the legend calls them.
pub(crate) const STATE_COLOURS: [(&str, &str, &str); 5] = [
    ("resident", "#bcd4ee", "resident"),
    ("preload", "#f2a93b", "loading (preload)"),
    ("on-demand", "#d1495b", "loading (on demand)"),
    ("generating", "#2e8b57", "generating"),
    ("unloading", "#7b5ea7", "unloading"),
];

/// Agent colours in the turn lane, one per agent in order of first turn.
/// Dark enough for white labels, and none of them the reds, ambers and greens of the
/// model states.
const AGENT_COLOURS: [&str; 10] = [
    "#4e79a7", "#9c755f", "#8e5ea2", "#2f7f7f", "#5b5f97", "#6f7f2a", "#a0527a", "#586874",
    "#b8860b", "#3d5a80",
];

/// The time axis: seconds mapped to pixels, the same for every timeline of a page.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    pub(crate) end_s: f64,
}

impl Axis {
    fn plot_width() -> f64 {
        WIDTH - LABEL_WIDTH - RIGHT_MARGIN
    }

    fn x(self, seconds: f64) -> f64 {
        let end_s = if self.end_s > 0.0 { self.end_s } else { 1.0 };
        LABEL_WIDTH + (seconds.clamp(0.0, end_s) / end_s) * Axis::plot_width()
    }

    /// Tick positions: a round step giving at most about a dozen ticks.
    fn ticks(self) -> Vec<f64> {
        const STEPS: [f64; 18] = [
            0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
            1800.0, 3600.0, 7200.0, 18000.0,
        ];
        let step = STEPS
            .iter()
            .copied()
            .find(|step| self.end_s / step <= 12.0)
            .unwrap_or(self.end_s / 10.0)
            .max(0.1);
        let count = (self.end_s / step).floor() as usize;
        (0..=count).map(|i| i as f64 * step).collect()
    }
}

/// The agent colour of each agent name, in order of first turn; shared so a
/// comparison uses one colour per agent throughout.
pub(crate) fn agent_colour(agents: &[String], agent: &str) -> &'static str {
    let index = agents.iter().position(|known| known == agent).unwrap_or(0);
    AGENT_COLOURS[index % AGENT_COLOURS.len()]
}

/// Draws one timeline. `agents` fixes the agent colours.
pub(crate) fn timeline_svg(timeline: &Timeline, axis: Axis, agents: &[String]) -> String {
    // A row above the axis names the moments the run was resumed.
    let markers = if timeline.resumed_at_s.is_empty() {
        0.0
    } else {
        MARKER_HEIGHT
    };
    let lanes_top = markers + AXIS_HEIGHT;
    // Parallel branches get a row of the turn lane each.
    let turns_height = TURN_LANE_HEIGHT * timeline.turn_rows() as f64;
    let models_top = lanes_top + turns_height + GAP;
    let memory_top = models_top + timeline.models.len() as f64 * MODEL_LANE_HEIGHT + GAP;
    let height = memory_top + MEMORY_HEIGHT + AXIS_HEIGHT;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif" font-size="12">"##
    );
    svg.push_str(
        r##"<defs><pattern id="wait-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f6d5d9"/><rect width="3" height="6" fill="#d1495b"/></pattern></defs>"##,
    );
    draw_grid(&mut svg, axis, lanes_top, memory_top + MEMORY_HEIGHT);
    draw_turns(&mut svg, timeline, axis, lanes_top, agents);
    for (index, lane) in timeline.models.iter().enumerate() {
        let top = models_top + index as f64 * MODEL_LANE_HEIGHT;
        let _ = write!(
            svg,
            r#"<g class="lane lane-model" data-model="{}" data-host="{}">"#,
            escape(&lane.model),
            escape(&lane.hosts.join(" "))
        );
        let size = lane
            .bytes
            .map(|bytes| format!(" · {}", gigabytes(bytes)))
            .unwrap_or_default();
        // With several hosts the lane names its host: `mac` or, after a move, `linux→mac`.
        let size = if lane.hosts.is_empty() {
            size
        } else {
            format!(" @ {}{size}", lane.hosts.join("→"))
        };
        lane_label(&mut svg, top, MODEL_LANE_HEIGHT, &lane.model, &size);
        let _ = write!(
            svg,
            r##"<rect x="{LABEL_WIDTH}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#f7f7f7"/>"##,
            top + 3.0,
            Axis::plot_width(),
            MODEL_LANE_HEIGHT - 6.0
        );
        for span in &lane.spans {
            let (class, colour, inset) = match span.state {
                ModelState::Resident => ("resident", STATE_COLOURS[0].1, 3.0),
                ModelState::Loading(LoadCause::Preload) => ("preload", STATE_COLOURS[1].1, 6.0),
                ModelState::Loading(LoadCause::OnDemand) => ("on-demand", STATE_COLOURS[2].1, 6.0),
                ModelState::Generating => ("generating", STATE_COLOURS[3].1, 6.0),
                ModelState::Unloading => ("unloading", STATE_COLOURS[4].1, 6.0),
            };
            let x = axis.x(span.start_s);
            let width = (axis.x(span.end_s) - x).max(MIN_SPAN_WIDTH);
            let _ = write!(
                svg,
                r#"<rect class="span {class}" x="{x:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="{colour}"><title>{} ({} to {})</title></rect>"#,
                top + inset,
                MODEL_LANE_HEIGHT - 2.0 * inset,
                escape(&span.note),
                clock(span.start_s),
                clock(span.end_s),
            );
        }
        svg.push_str("</g>");
    }
    draw_memory(&mut svg, timeline, axis, memory_top);
    draw_resumptions(&mut svg, timeline, axis, memory_top + MEMORY_HEIGHT);
    draw_axis_labels(&mut svg, axis, lanes_top - 8.0);
    draw_axis_labels(&mut svg, axis, memory_top + MEMORY_HEIGHT + 18.0);
    svg.push_str("</svg>");
    svg
}

fn lane_label(svg: &mut String, top: f64, height: f64, name: &str, detail: &str) {
    let shown: String = if name.chars().count() > 30 {
        name.chars().take(29).chain(['…']).collect()
    } else {
        name.to_owned()
    };
    let _ = write!(
        svg,
        r##"<text class="lane-label" x="{:.1}" y="{:.1}" text-anchor="end" fill="#222">{}<tspan fill="#666">{}</tspan></text>"##,
        LABEL_WIDTH - 8.0,
        top + height / 2.0 + 4.0,
        escape(&shown),
        escape(detail)
    );
}

fn draw_grid(svg: &mut String, axis: Axis, top: f64, bottom: f64) {
    svg.push_str(r#"<g class="grid">"#);
    for tick in axis.ticks() {
        let x = axis.x(tick);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e3e3e3"/>"##
        );
    }
    svg.push_str("</g>");
}

fn draw_axis_labels(svg: &mut String, axis: Axis, baseline: f64) {
    svg.push_str(r#"<g class="axis">"#);
    for tick in axis.ticks() {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{baseline:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            axis.x(tick),
            escape(&tick_label(tick))
        );
    }
    svg.push_str("</g>");
}

fn draw_turns(svg: &mut String, timeline: &Timeline, axis: Axis, top: f64, agents: &[String]) {
    svg.push_str(r#"<g class="lane lane-turns">"#);
    let rows = timeline.turn_rows();
    let detail = if rows > 1 { "a row per branch" } else { "" };
    lane_label(svg, top, TURN_LANE_HEIGHT * rows as f64, "turns", detail);
    let height = TURN_LANE_HEIGHT - 6.0;
    for wait in &timeline.join_waits {
        let x = axis.x(wait.start_s);
        let width = (axis.x(wait.end_s) - x).max(MIN_SPAN_WIDTH);
        let y = top + 3.0 + wait.row as f64 * TURN_LANE_HEIGHT;
        let _ = write!(
            svg,
            r##"<rect class="join-wait" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{height:.1}" fill="#eeeeee" stroke="#999" stroke-dasharray="4 3"><title>branch {} waited {:.1} s at the join {} ({} to {})</title></rect>"##,
            escape(&wait.branch),
            wait.end_s - wait.start_s,
            escape(&wait.join),
            clock(wait.start_s),
            clock(wait.end_s),
        );
    }
    for turn in &timeline.turns {
        let y = top + 3.0 + turn.row as f64 * TURN_LANE_HEIGHT;
        let x = axis.x(turn.start_s);
        let width = (axis.x(turn.end_s) - x).max(MIN_SPAN_WIDTH);
        let colour = agent_colour(agents, &turn.agent);
        let state = if turn.completed { "" } else { ", interrupted" };
        let model = turn
            .model
            .as_deref()
            .map(|model| format!(" on {}", escape(model)))
            .unwrap_or_default();
        let _ = write!(
            svg,
            r##"<g class="turn" data-agent="{}"><rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{height:.1}" fill="{colour}" stroke="#fff" stroke-width="1"{}><title>turn {}: {}{model}, {} to {}, waited {:.1} s for its model, {} tokens{state}</title></rect>"##,
            escape(&turn.agent),
            if turn.completed {
                ""
            } else {
                r#" fill-opacity="0.45" stroke-dasharray="3 2""#
            },
            turn.turn,
            escape(&turn.agent),
            clock(turn.start_s),
            clock(turn.end_s),
            turn.load_wait_s,
            turn.tokens,
        );
        let waited = turn.load_wait_s >= LOAD_WAIT_S;
        if waited {
            let wait_width =
                (axis.x(turn.start_s + turn.load_wait_s) - x).clamp(MIN_SPAN_WIDTH, width);
            let _ = write!(
                svg,
                r##"<rect class="load-wait" x="{x:.1}" y="{y:.1}" width="{wait_width:.1}" height="{height:.1}" fill="url(#wait-hatch)"><title>turn {}: waited {:.1} s for {}</title></rect>"##,
                turn.turn,
                turn.load_wait_s,
                escape(turn.model.as_deref().unwrap_or("its model")),
            );
            if wait_width >= 52.0 {
                let _ = write!(
                    svg,
                    r##"<text class="wait-label" x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" font-weight="600" fill="#7a1020" paint-order="stroke" stroke="#fff" stroke-width="3">wait {:.0} s</text>"##,
                    x + wait_width / 2.0,
                    y + height / 2.0 + 4.0,
                    turn.load_wait_s
                );
            }
        }
        let label = format!("{} {}", turn.turn, turn.agent);
        let text_left = x + if waited {
            (axis.x(turn.start_s + turn.load_wait_s) - x).min(width)
        } else {
            0.0
        };
        let room = x + width - text_left;
        let shown = if room >= label.chars().count() as f64 * 7.0 + 8.0 {
            Some(label)
        } else if room >= turn.turn.to_string().len() as f64 * 7.0 + 6.0 {
            Some(turn.turn.to_string())
        } else {
            None
        };
        if let Some(shown) = shown {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" fill="#fff" font-weight="600">{}</text>"##,
                text_left + 4.0,
                y + height / 2.0 + 4.0,
                escape(&shown)
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</g>");
}

fn draw_memory(svg: &mut String, timeline: &Timeline, axis: Axis, top: f64) {
    let steps = timeline.memory();
    let peak = timeline.peak_bytes();
    let ceiling = (timeline.gpu_budget_bytes.unwrap_or(0).max(peak) as f64 * 1.1).max(1e9);
    let y = |bytes: f64| top + MEMORY_HEIGHT - (bytes / ceiling) * MEMORY_HEIGHT;
    svg.push_str(r#"<g class="memory">"#);
    let _ = write!(
        svg,
        r##"<text class="lane-label" x="{0:.1}" y="{1:.1}" text-anchor="end" fill="#222">memory in use</text><text x="{0:.1}" y="{2:.1}" text-anchor="end" fill="#666">peak {3}</text>"##,
        LABEL_WIDTH - 8.0,
        top + 16.0,
        top + 32.0,
        gigabytes(peak)
    );
    let _ = write!(
        svg,
        r##"<rect x="{LABEL_WIDTH}" y="{top:.1}" width="{:.1}" height="{MEMORY_HEIGHT}" fill="#fbfbfb" stroke="#ddd"/>"##,
        Axis::plot_width()
    );
    let ticks = gigabyte_ticks(ceiling);
    for &tick in &ticks {
        let _ = write!(
            svg,
            r##"<line x1="{LABEL_WIDTH}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#e6e6e6"/>"##,
            y(tick),
            LABEL_WIDTH + Axis::plot_width(),
        );
    }
    if !steps.is_empty() {
        let mut path = format!("M{:.1},{:.1}", axis.x(0.0), y(0.0));
        for (index, &(at_s, bytes)) in steps.iter().enumerate() {
            let x = axis.x(at_s);
            let previous = if index == 0 { 0 } else { steps[index - 1].1 };
            let _ = write!(
                path,
                " L{x:.1},{:.1} L{x:.1},{:.1}",
                y(previous as f64),
                y(bytes as f64)
            );
        }
        let last = steps.last().map_or(0, |&(_, bytes)| bytes);
        let _ = write!(
            path,
            " L{0:.1},{1:.1} L{0:.1},{2:.1} Z",
            axis.x(axis.end_s),
            y(last as f64),
            y(0.0)
        );
        let _ = write!(
            svg,
            r##"<path class="memory-in-use" d="{path}" fill="#cfd8dc" fill-opacity="0.85" stroke="#455a64" stroke-width="1.2"><title>memory in use, peak {}</title></path>"##,
            gigabytes(peak)
        );
    }
    // Drawn over the area, inside the plot, so they never meet the lane name.
    for &tick in ticks.iter().skip(1) {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" fill="#555" font-size="10" paint-order="stroke" stroke="#fff" stroke-width="3">{} GB</text>"##,
            LABEL_WIDTH + 4.0,
            y(tick) - 3.0,
            tick / 1e9
        );
    }
    if let Some(budget) = timeline.gpu_budget_bytes {
        let budget_y = y(budget as f64);
        let _ = write!(
            svg,
            r##"<line class="budget" x1="{LABEL_WIDTH}" y1="{budget_y:.1}" x2="{:.1}" y2="{budget_y:.1}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#c0392b" font-size="11" font-weight="600" paint-order="stroke" stroke="#fff" stroke-width="3">GPU budget {}</text>"##,
            LABEL_WIDTH + Axis::plot_width(),
            LABEL_WIDTH + Axis::plot_width() - 4.0,
            budget_y - 4.0,
            gigabytes(budget)
        );
    }
    svg.push_str("</g>");
}

fn draw_resumptions(svg: &mut String, timeline: &Timeline, axis: Axis, bottom: f64) {
    for &at_s in &timeline.resumed_at_s {
        let x = axis.x(at_s);
        // The label reads away from the right edge.
        let (label_x, anchor) = if x > WIDTH - 200.0 {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        let _ = write!(
            svg,
            r##"<g class="resumed"><line x1="{x:.1}" y1="4" x2="{x:.1}" y2="{bottom:.1}" stroke="#111" stroke-width="1.5" stroke-dasharray="4 3"/><text x="{label_x:.1}" y="12" text-anchor="{anchor}" fill="#111" font-size="11" font-weight="600">resumed after an interruption</text><title>resumed at {}</title></g>"##,
            clock(at_s)
        );
    }
}

/// Round gigabyte steps up to `ceiling` bytes, at most about five.
fn gigabyte_ticks(ceiling: f64) -> Vec<f64> {
    let gigabytes = ceiling / 1e9;
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]
        .into_iter()
        .find(|step| gigabytes / step <= 5.0)
        .unwrap_or(1000.0);
    let count = (gigabytes / step).floor() as usize;
    (0..=count).map(|i| i as f64 * step * 1e9).collect()
}

/// Seconds since the start as a clock reading: `42.0 s`, `3:05`, `1:02:03`.
pub(crate) fn clock(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.round() as u64;
    let (hours, minutes, secs) = (whole / 3600, whole / 60 % 60, whole % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{secs:02}")
    } else {
        format!("{minutes}:{secs:02}")
    }
}

fn tick_label(seconds: f64) -> String {
    if seconds < 60.0 {
        let text = format!("{seconds:.1}");
        let text = text.strip_suffix(".0").unwrap_or(&text);
        format!("{text} s")
    } else if seconds % 60.0 == 0.0 {
        format!("{} min", seconds / 60.0)
    } else {
        clock(seconds)
    }
}
