//! The pages: self-contained, escaped, with every lane and table in place.

use std::collections::BTreeMap;

use agentrun_core::{Event, ResidentModel, RunStatus, RunSummary, TranscriptEntry};
use agentrun_memory::Policy;

use super::{escape, run_report_html, simulation_report_html};
use crate::{PolicyFigures, SimulationReport};

fn run(workflow: &str, agent: &str, model: &str, wall_s: f64) -> Vec<Event> {
    let entry = TranscriptEntry {
        turn: 1,
        agent: agent.to_owned(),
        model: Some(model.to_owned()),
        text: "<b>hello</b>".to_owned(),
        choice: None,
        passed: None,
        next: agentrun_spec::EdgeTarget::End,
        load_wait_s: 3.0,
        generation_s: wall_s - 3.0,
        tokens: 7,
        resident: Vec::new(),
        started_s: 0.0,
        tool_calls: Vec::new(),
        thinking: None,
        cut_off: false,
        context: None,
        branch: None,
    };
    let mut agents = BTreeMap::new();
    agents.insert(agent.to_owned(), Default::default());
    vec![
        Event::RunStarted {
            workflow: workflow.to_owned(),
            task: "t".to_owned(),
            policy: agentrun_memory::Policy::Smart,
            endpoint: "sim".to_owned(),
            gpu_budget_bytes: Some(54_000_000_000),
            resumed_turns: 0,
            at_s: 0.0,
        },
        Event::Resident {
            turn: 1,
            models: vec![ResidentModel {
                model: model.to_owned(),
                bytes: 20_000_000_000,
            }],
            at_s: 0.0,
        },
        Event::TurnStarted {
            turn: 1,
            agent: agent.to_owned(),
            model: Some(model.to_owned()),
            branch: None,
            at_s: 0.0,
        },
        Event::TurnFinished {
            entry,
            at_s: wall_s,
        },
        Event::RunFinished {
            summary: Box::new(RunSummary {
                workflow: workflow.to_owned(),
                status: RunStatus::Completed,
                reason: "'a' ended the run".to_owned(),
                turns: 1,
                wall_s,
                load_wait_s: 3.0,
                avoidable_wait_s: 0.0,
                router_repairs: 0,
                router_fallbacks: 0,
                policy: agentrun_memory::Policy::Smart,
                agents,
                models: BTreeMap::new(),
                context: Vec::new(),
                context_cuts: 0,
                hosts: Default::default(),
            }),
        },
    ]
}

#[test]
fn text_is_escaped_everywhere() {
    assert_eq!(
        escape(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
    let page = run_report_html(&run("<script>alert(1)</script>", "a&b", "m\"odel", 10.0));
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("a&amp;b") && !page.contains("a&b"));
    assert!(page.contains("m&quot;odel") && !page.contains("m\"odel"));
}

#[test]
fn a_run_page_stands_alone_with_its_lanes_and_summary() {
    let page = run_report_html(&run("review", "coder", "qwen3-coder:32b", 10.0));
    assert!(page.starts_with("<!DOCTYPE html>"));
    for external in ["<script", "<link", "src=", "@import", "url(http"] {
        assert!(
            !page.contains(external),
            "the page fetches something: {external}"
        );
    }
    assert_eq!(page.matches("<svg").count(), 1);
    assert!(page.contains(r#"class="lane lane-turns""#));
    assert!(page.contains(r#"class="lane lane-model" data-model="qwen3-coder:32b""#));
    assert!(page.contains(r#"class="memory""#));
    assert!(
        page.contains(r#"class="load-wait""#),
        "the 3 s wait is marked"
    );
    assert!(page.contains(r#"class="budget""#));
    assert!(page.contains(r#"<table class="summary run">"#));
    assert!(page.contains("completed"));
}

#[test]
fn a_simulation_page_draws_every_policy_on_one_axis() {
    let figures = |wall_s: f64| PolicyFigures {
        load_wait_s: 3.0,
        fan_outs: Default::default(),
        serialized_because: Vec::new(),
        join_wait_s: 0.0,
        excess_over_bound_s: 1.0,
        foresight_s: 0.0,
        planner_error_s: 1.0,
        excess_over_oracle_s: None,
        loads: 1,
        unloads: 0,
        expiries: 0,
        gb_read: 20.0,
        wall_s,
        turns: 1,
        status: RunStatus::Completed,
        excess_per_turn_s: vec![1.0],
    };
    let mut report = SimulationReport {
        workflow: "review".to_owned(),
        seed: 1,
        turns: 1,
        load_mode: None,
        hosts: Vec::new(),
        bound_s: 2.0,
        bound_exact: false,
        bound_compute_s: 0.0,
        policies: BTreeMap::new(),
        events: BTreeMap::new(),
    };
    for (policy, wall_s) in [(Policy::Smart, 100.0), (Policy::Static, 400.0)] {
        report.policies.insert(policy, figures(wall_s));
        report
            .events
            .insert(policy, run("review", "coder", "m", wall_s));
    }
    let page = simulation_report_html(&report);
    assert_eq!(page.matches("<svg").count(), 2);
    // The bound, each policy's excess over it (signed), and the oracle for what it is.
    assert!(page.contains("Lower bound: 2.0 s"), "{page}");
    assert!(page.contains("<td>+1.0 s</td>"), "{page}");
    assert!(page.contains("this planner given the future"), "{page}");
    let smart = page
        .find(r#"<h3 class="policy">smart</h3>"#)
        .expect("smart");
    let fixed = page
        .find(r#"<h3 class="policy">static</h3>"#)
        .expect("static");
    assert!(smart < fixed, "policies in the usual order");
    // One axis: the shorter run's turn ends a quarter of the way along.
    let widths: Vec<f64> = page
        .match_indices(r#"<g class="turn" data-agent="coder"><rect x=""#)
        .map(|(at, found)| {
            let rest = &page[at + found.len()..];
            let width_at = rest.find("width=\"").expect("a width") + 7;
            let width = &rest[width_at..];
            width[..width.find('"').expect("quoted")]
                .parse()
                .expect("a number")
        })
        .collect();
    assert_eq!(widths.len(), 2);
    assert!(
        (widths[1] / widths[0] - 4.0).abs() < 0.01,
        "same axis: {widths:?}"
    );
    assert!(page.contains(r#"<table class="summary comparison">"#));

    // On several hosts the one machine's bound bounds nothing: neither it nor the
    // figures measured against it are shown.
    report.hosts = vec!["mac".to_owned(), "linux".to_owned()];
    report.bound_s = 0.0;
    let page = simulation_report_html(&report);
    assert!(page.contains("on 2 simulated hosts (mac, linux)"), "{page}");
    assert!(page.contains("No lower bound"), "{page}");
    assert!(!page.contains("Lower bound:"), "{page}");
    assert!(!page.contains("<td>+1.0 s</td>"), "{page}");
}

#[test]
fn a_turns_reasoning_and_its_cut_off_are_in_its_details() {
    let mut events = run("haiku", "writer", "qwen3:8b", 10.0);
    for event in &mut events {
        if let Event::TurnFinished { entry, .. } = event {
            entry.thinking = Some("Five <syllables> first.".to_owned());
            entry.cut_off = true;
        }
    }
    let page = run_report_html(&events);
    assert!(
        page.contains("cut off at its length limit"),
        "no cut-off mark"
    );
    assert!(
        page.contains("<summary>thinking</summary><pre>Five &lt;syllables&gt; first.</pre>"),
        "no folded reasoning"
    );
    let plain = run_report_html(&run("haiku", "writer", "qwen3:8b", 10.0));
    assert!(!plain.contains("cut off at its length limit"));
    assert!(!plain.contains("<summary>thinking</summary>"));
}
