//! The HTML page around the timelines: title, legend, summary tables and turns,
//! with its style inline so the file stands alone.

use std::fmt::Write as _;

use agentrun_core::RunSummary;
use agentrun_memory::Policy;

use crate::SimulationReport;
use crate::report::escape;
use crate::report::svg::{self, Axis, STATE_COLOURS, agent_colour, clock};
use crate::report::timeline::{Timeline, TurnSpan};

const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
       margin: 24px 32px; color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; }
p.meta { margin: 0 0 12px; color: #555; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 6px 0 10px; font-size: 13px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.legend i { display: inline-block; width: 22px; height: 12px; border-radius: 2px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 24px 12px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e5e5e5; text-align: right; }
th { background: #f3f3f3; font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
td.text { text-align: left; max-width: 520px; overflow: hidden; text-overflow: ellipsis;
          white-space: nowrap; }
.tables { display: flex; flex-wrap: wrap; align-items: flex-start; }
.status-completed { color: #2e7d32; font-weight: 600; }
.status-other { color: #b23c17; font-weight: 600; }
svg.timeline { display: block; max-width: 100%; height: auto; }
details summary { cursor: pointer; margin: 8px 0; }
";

/// The page of one run.
pub(crate) fn run_page(timeline: &Timeline) -> String {
    let agents = agents_of(std::slice::from_ref(timeline));
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1><p class=\"meta\">residency policy <b>{}</b>{}{}</p>",
        escape(&title_of(timeline)),
        timeline.policy,
        timeline
            .gpu_budget_bytes
            .map(|bytes| format!(", GPU budget {}", agentrun_memory::gigabytes(bytes)))
            .unwrap_or_default(),
        resumed_note(timeline),
    );
    body.push_str("<section class=\"timeline-section\"><h2>Timeline</h2>");
    body.push_str(&legend(&agents));
    body.push_str(&svg::timeline_svg(
        timeline,
        Axis {
            end_s: timeline.end_s,
        },
        &agents,
    ));
    body.push_str("</section>");
    body.push_str("<section class=\"summary-section\"><h2>Summary</h2>");
    match &timeline.summary {
        Some(summary) => body.push_str(&summary_tables(summary)),
        None => body.push_str(
            "<p class=\"meta\">No summary: the run has not ended (it was interrupted, or is \
             still running).</p>",
        ),
    }
    body.push_str("</section>");
    body.push_str(&turns_table(timeline));
    page(&title_of(timeline), &body)
}

/// A policy's cells measured against the bound: its excess, foresight and planner error;
/// blanks on several hosts, which the one machine's bound does not bound.
fn against_bound(report: &SimulationReport, figures: &crate::PolicyFigures) -> String {
    if report.hosts.is_empty() {
        format!(
            "<td>{:+.1} s</td><td>{:.1} s</td><td>{:.1} s</td>",
            figures.excess_over_bound_s, figures.foresight_s, figures.planner_error_s
        )
    } else {
        "<td>-</td><td>-</td><td>-</td>".to_owned()
    }
}

/// The page of a simulation: the comparison, then each policy's timeline on one axis.
pub(crate) fn simulation_page(
    report: &SimulationReport,
    timelines: &[(Policy, Timeline)],
) -> String {
    let all: Vec<Timeline> = timelines.iter().map(|(_, t)| t.clone()).collect();
    let agents = agents_of(&all);
    let axis = Axis {
        end_s: all.iter().map(|t| t.end_s).fold(0.0, f64::max),
    };
    let title = format!("{}: residency policies compared", report.workflow);
    let mut body = String::new();
    let on = if report.hosts.is_empty() {
        "the simulated machine".to_owned()
    } else {
        format!(
            "{} simulated hosts ({})",
            report.hosts.len(),
            escape(&report.hosts.join(", "))
        )
    };
    let bound = if report.hosts.is_empty() {
        format!(
            "Lower bound: {:.1} s of load wait, below which no policy can go on these turns. \
             The oracle is this planner given the future, not an optimum. A policy's wait above \
             the bound splits into foresight (its wait above the oracle's) and planner error (the \
             oracle's own excess over the bound).",
            report.bound_s
        )
    } else {
        // The bound models one machine's memory and loader; several hosts load at once.
        "No lower bound: the bound models one machine, and several hosts loading at once can \
         wait less than it. The oracle is this planner given the future, not an optimum."
            .to_owned()
    };
    let _ = write!(
        body,
        "<h1>{}</h1><p class=\"meta\">{} simulated turns (seed {}) on {on}, load mode {} for \
         every policy; every policy faces the same turns, drawn on the same time axis. {bound}</p>",
        escape(&title),
        report.turns,
        report.seed,
        report
            .load_mode
            .map_or("each policy's own", |mode| mode.name()),
    );
    body.push_str("<section class=\"summary-section\"><h2>Summary</h2>");
    body.push_str("<table class=\"summary comparison\"><tr><th>policy</th><th>load wait</th><th>vs bound</th><th>foresight</th><th>planner error</th><th>vs oracle</th><th>loads</th><th>unloads</th><th>GB read</th><th>wall</th><th>turns</th><th>status</th></tr>");
    for (policy, _) in timelines {
        let Some(figures) = report.policies.get(policy) else {
            continue;
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{:.1} s</td>{}<td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            policy.name(),
            figures.load_wait_s,
            against_bound(report, figures),
            figures
                .excess_over_oracle_s
                .map_or_else(|| "-".to_owned(), |s| format!("{s:+.1} s")),
            figures.loads,
            figures.unloads,
            figures.gb_read,
            clock(figures.wall_s),
            figures.turns,
            status_cell(figures.status.as_str()),
        );
    }
    body.push_str("</table></section>");
    body.push_str("<section class=\"timeline-section\"><h2>Timelines</h2>");
    body.push_str(&legend(&agents));
    for (policy, timeline) in timelines {
        let _ = write!(body, "<h3 class=\"policy\">{}</h3>", policy.name());
        body.push_str(&svg::timeline_svg(timeline, axis, &agents));
        if let Some(summary) = &timeline.summary {
            let _ = write!(
                body,
                "<details><summary>{} in detail</summary>{}</details>",
                policy.name(),
                summary_tables(summary)
            );
        }
    }
    body.push_str("</section>");
    page(&title, &body)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title)
    )
}

fn title_of(timeline: &Timeline) -> String {
    let name = if timeline.workflow.is_empty() {
        "run"
    } else {
        timeline.workflow.as_str()
    };
    format!("{name}: run report")
}

fn resumed_note(timeline: &Timeline) -> String {
    match timeline.resumed_at_s.len() {
        0 => String::new(),
        1 => ", interrupted and resumed once".to_owned(),
        count => format!(", interrupted and resumed {count} times"),
    }
}

/// Agents in order of first turn over all the timelines.
fn agents_of(timelines: &[Timeline]) -> Vec<String> {
    let mut agents: Vec<String> = Vec::new();
    for timeline in timelines {
        for turn in &timeline.turns {
            if !agents.contains(&turn.agent) {
                agents.push(turn.agent.clone());
            }
        }
    }
    agents
}

fn legend(agents: &[String]) -> String {
    let mut html = String::from("<div class=\"legend\">");
    for (_, colour, name) in STATE_COLOURS {
        let _ = write!(
            html,
            "<span><i style=\"background:{colour}\"></i>{name}</span>"
        );
    }
    html.push_str(
        "<span><i style=\"background: repeating-linear-gradient(45deg, #d1495b 0 3px, #f6d5d9 3px 6px)\"></i>waiting for a load</span>",
    );
    for agent in agents {
        let _ = write!(
            html,
            "<span><i style=\"background:{}\"></i>turn of {}</span>",
            agent_colour(agents, agent),
            escape(agent)
        );
    }
    html.push_str("</div>");
    html
}

fn status_cell(status: &str) -> String {
    let class = if status == "completed" {
        "status-completed"
    } else {
        "status-other"
    };
    format!("<span class=\"{class}\">{}</span>", escape(status))
}

fn summary_tables(summary: &RunSummary) -> String {
    let mut html = String::from("<div class=\"tables\">");
    let _ = write!(
        html,
        "<table class=\"summary run\"><tr><th>run</th><th></th></tr>\
         <tr><td>status</td><td>{}</td></tr>\
         <tr><td>why</td><td>{}</td></tr>\
         <tr><td>turns</td><td>{}</td></tr>\
         <tr><td>wall time</td><td>{}</td></tr>\
         <tr><td>waited for loads</td><td>{:.1} s</td></tr>\
         <tr><td>of which avoidable</td><td>{:.1} s</td></tr>\
         <tr><td>router repairs / fallbacks</td><td>{} / {}</td></tr>\
         <tr><td>prompts cut by the server</td><td>{}</td></tr></table>",
        status_cell(summary.status.as_str()),
        escape(&summary.reason),
        summary.turns,
        clock(summary.wall_s),
        summary.load_wait_s,
        summary.avoidable_wait_s,
        summary.router_repairs,
        summary.router_fallbacks,
        summary.context_cuts,
    );
    html.push_str("<table class=\"summary agents\"><tr><th>agent</th><th>turns</th><th>generation</th><th>load wait</th><th>tokens</th></tr>");
    for (name, agent) in &summary.agents {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{:.1} s</td><td>{:.1} s</td><td>{}</td></tr>",
            escape(name),
            agent.turns,
            agent.generation_s,
            agent.load_wait_s,
            agent.tokens
        );
    }
    html.push_str("</table>");
    html.push_str("<table class=\"summary models\"><tr><th>model</th><th>loads</th><th>unloads</th><th>loading</th><th>avoidable wait</th><th>unavoidable wait</th></tr>");
    for (name, model) in &summary.models {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{:.1} s</td><td>{:.1} s</td></tr>",
            escape(name),
            model.loads,
            model.unloads,
            model.load_s,
            model.avoidable_wait_s,
            model.unavoidable_wait_s
        );
    }
    html.push_str("</table></div>");
    html
}

/// What a turn's reply cell says: whether it was cut off, and its reasoning, folded.
fn reply_details(turn: &TurnSpan) -> String {
    let mut cell = String::new();
    if turn.cut_off {
        cell.push_str("<span class=\"cut-off\">cut off at its length limit</span>");
    }
    if let Some(thinking) = &turn.thinking {
        let _ = write!(
            cell,
            "<details class=\"thinking\"><summary>thinking</summary><pre>{}</pre></details>",
            escape(thinking)
        );
    }
    cell
}

/// What a model turn's context held: its prompt's tokens against num_ctx, and what was
/// elided, dropped, summarized, or cut by the server.
fn context_cell(turn: &TurnSpan) -> String {
    let Some(context) = &turn.context else {
        return String::new();
    };
    let mut cell = format!(
        "{} / {} tokens <span class=\"meta\">({})</span>",
        context.prompt_tokens, context.num_ctx, context.strategy
    );
    let left_out: Vec<String> = [
        (context.elided, "elided"),
        (context.dropped, "dropped"),
        (context.summarized, "summarized"),
        (context.pinned, "pinned"),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| format!("{count} {what}"))
    .collect();
    if !left_out.is_empty() {
        let _ = write!(cell, "<br>{}", left_out.join(", "));
    }
    if context.cut_by_server {
        cell.push_str(
            "<br><span class=\"cut-off\">cut by the server: the oldest messages went unseen</span>",
        );
    }
    cell
}

fn turns_table(timeline: &Timeline) -> String {
    let mut html = format!(
        "<section class=\"turns-section\"><details><summary>{} turns</summary>\
         <table class=\"turns\"><tr><th>turn</th><th>agent</th><th>model</th><th>start</th>\
         <th>load wait</th><th>duration</th><th>tokens</th><th>context</th><th>reply</th></tr>",
        timeline.turns.len()
    );
    for turn in &timeline.turns {
        let _ = write!(
            html,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{:.1} s</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            turn.turn,
            if turn.completed { "" } else { " (interrupted)" },
            escape(&turn.agent),
            escape(turn.model.as_deref().unwrap_or("-")),
            clock(turn.start_s),
            turn.load_wait_s,
            turn.end_s - turn.start_s,
            turn.tokens,
            context_cell(turn),
            reply_details(turn)
        );
    }
    html.push_str("</table></details></section>");
    html
}
