//! The timeline rebuilt from hand-written event sequences.

use agentrun_core::{Event, LoadCause, ResidentModel, RunStatus, RunSummary, TranscriptEntry};

use super::{ModelState, Span, Timeline};

const GB: u64 = 1_000_000_000;

fn started(at_s: f64, resumed_turns: u32) -> Event {
    Event::RunStarted {
        workflow: "review".to_owned(),
        task: "t".to_owned(),
        policy: agentrun_memory::Policy::Smart,
        endpoint: "sim".to_owned(),
        gpu_budget_bytes: Some(40 * GB),
        resumed_turns,
        at_s,
    }
}

fn resident(turn: u32, at_s: f64, models: &[(&str, u64)]) -> Event {
    Event::Resident {
        turn,
        models: models
            .iter()
            .map(|(model, bytes)| ResidentModel {
                model: (*model).to_owned(),
                bytes: *bytes,
            })
            .collect(),
        at_s,
    }
}

fn turn_started(turn: u32, agent: &str, model: &str, at_s: f64) -> Event {
    Event::TurnStarted {
        turn,
        agent: agent.to_owned(),
        model: Some(model.to_owned()),
        branch: None,
        at_s,
    }
}

fn turn_finished(turn: u32, agent: &str, model: &str, times: (f64, f64, f64)) -> Event {
    let (started_s, load_wait_s, generation_s) = times;
    Event::TurnFinished {
        entry: TranscriptEntry {
            turn,
            agent: agent.to_owned(),
            model: Some(model.to_owned()),
            text: "text".to_owned(),
            choice: None,
            passed: None,
            next: agentrun_spec::EdgeTarget::End,
            load_wait_s,
            generation_s,
            tokens: 10,
            resident: Vec::new(),
            started_s,
            tool_calls: Vec::new(),
            thinking: None,
            cut_off: false,
            context: None,
            branch: None,
        },
        at_s: started_s + load_wait_s + generation_s,
    }
}

fn load(model: &str, cause: LoadCause, at_s: f64) -> Event {
    Event::LoadStarted {
        model: model.to_owned(),
        cause,
        expected_s: None,
        at_s,
    }
}

fn loaded(model: &str, cause: LoadCause, load_s: f64, at_s: f64) -> Event {
    Event::LoadFinished {
        model: model.to_owned(),
        cause,
        load_s,
        at_s,
    }
}

fn unload(model: &str, at_s: f64) -> Event {
    Event::Unload {
        model: model.to_owned(),
        reason: "not needed".to_owned(),
        at_s,
    }
}

fn finished(wall_s: f64) -> Event {
    Event::RunFinished {
        summary: Box::new(RunSummary {
            workflow: "review".to_owned(),
            status: RunStatus::Completed,
            reason: "done".to_owned(),
            turns: 2,
            wall_s,
            load_wait_s: 10.0,
            avoidable_wait_s: 0.0,
            router_repairs: 0,
            router_fallbacks: 0,
            policy: agentrun_memory::Policy::Smart,
            agents: Default::default(),
            models: Default::default(),
            context: Vec::new(),
            context_cuts: 0,
            hosts: Default::default(),
        }),
    }
}

/// The spans of one state on a model's lane, as (start, end).
fn spans(timeline: &Timeline, model: &str, state: ModelState) -> Vec<(f64, f64)> {
    let lane = timeline
        .models
        .iter()
        .find(|lane| lane.model == model)
        .unwrap_or_else(|| panic!("no lane for {model}"));
    lane.spans
        .iter()
        .filter(|span| span.state == state)
        .map(|span: &Span| (span.start_s, span.end_s))
        .collect()
}

/// Turn 1 loads `small` on demand while `big` is preloaded for turn 2; `small` is
/// unloaded before turn 2.
fn two_turns() -> Vec<Event> {
    vec![
        started(0.0, 0),
        resident(1, 0.0, &[]),
        turn_started(1, "writer", "small", 0.0),
        load("small", LoadCause::OnDemand, 0.0),
        load("big", LoadCause::Preload, 12.0),
        loaded("big", LoadCause::Preload, 8.0, 20.0),
        loaded("small", LoadCause::OnDemand, 10.0, 30.0),
        turn_finished(1, "writer", "small", (0.0, 10.0, 20.0)),
        resident(2, 30.0, &[("small", 10 * GB), ("big", 20 * GB)]),
        unload("small", 30.5),
        turn_started(2, "reviewer", "big", 31.0),
        turn_finished(2, "reviewer", "big", (31.0, 0.0, 9.0)),
        finished(41.0),
    ]
}

#[test]
fn loads_generation_residency_and_unloads_land_on_their_model_lanes() {
    let timeline = Timeline::from_events(&two_turns());
    assert_eq!(timeline.workflow, "review");
    assert_eq!(timeline.gpu_budget_bytes, Some(40 * GB));
    assert_eq!(timeline.end_s, 41.0);
    let lanes: Vec<&str> = timeline.models.iter().map(|l| l.model.as_str()).collect();
    assert_eq!(lanes, ["small", "big"]);

    assert_eq!(
        spans(&timeline, "small", ModelState::Loading(LoadCause::OnDemand)),
        [(0.0, 10.0)],
        "an on-demand load ends load_s after it began, not when its turn ends"
    );
    assert_eq!(
        spans(&timeline, "small", ModelState::Generating),
        [(10.0, 30.0)]
    );
    assert_eq!(
        spans(&timeline, "small", ModelState::Resident),
        [(10.0, 30.5)]
    );
    assert_eq!(
        spans(&timeline, "small", ModelState::Unloading),
        [(30.5, 31.0)],
        "an unload lasts until the executor goes on"
    );
    assert_eq!(
        spans(&timeline, "big", ModelState::Loading(LoadCause::Preload)),
        [(12.0, 20.0)]
    );
    assert_eq!(
        spans(&timeline, "big", ModelState::Resident),
        [(20.0, 41.0)],
        "still resident at the end"
    );
    assert_eq!(
        spans(&timeline, "big", ModelState::Generating),
        [(31.0, 40.0)]
    );

    let turns: Vec<(u32, &str, f64, f64, f64)> = timeline
        .turns
        .iter()
        .map(|t| (t.turn, t.agent.as_str(), t.start_s, t.end_s, t.load_wait_s))
        .collect();
    assert_eq!(
        turns,
        [
            (1, "writer", 0.0, 30.0, 10.0),
            (2, "reviewer", 31.0, 40.0, 0.0)
        ]
    );
    assert!(timeline.summary.is_some());
}

#[test]
fn memory_in_use_adds_up_the_models_present_at_each_moment() {
    let timeline = Timeline::from_events(&two_turns());
    let memory = timeline.memory();
    let at = |seconds: f64| {
        memory
            .iter()
            .rev()
            .find(|(start, _)| *start <= seconds)
            .map_or(0, |(_, bytes)| *bytes)
    };
    assert_eq!(at(5.0), 10 * GB, "small is loading");
    assert_eq!(at(15.0), 30 * GB, "big is preloaded beside it");
    assert_eq!(at(30.7), 30 * GB, "small is still being unloaded");
    assert_eq!(at(35.0), 20 * GB);
    assert_eq!(timeline.peak_bytes(), 30 * GB);
}

#[test]
fn a_model_gone_from_a_snapshot_stops_at_its_last_sign_of_life() {
    let events = vec![
        started(0.0, 0),
        resident(1, 0.0, &[]),
        turn_started(1, "writer", "small", 0.0),
        turn_finished(1, "writer", "small", (0.0, 0.0, 20.0)),
        resident(2, 25.0, &[("small", 10 * GB)]),
        turn_started(2, "writer", "small", 25.0),
        turn_finished(2, "writer", "small", (25.0, 0.0, 5.0)),
        // Ollama let it expire some time before the next turn.
        resident(3, 400.0, &[]),
        finished(401.0),
    ];
    let timeline = Timeline::from_events(&events);
    assert_eq!(
        spans(&timeline, "small", ModelState::Resident),
        [(0.0, 30.0)]
    );
}

#[test]
fn a_resumed_run_shows_the_interrupted_turn_and_where_it_resumed() {
    let events = vec![
        started(0.0, 0),
        resident(1, 0.0, &[]),
        turn_started(1, "writer", "small", 0.0),
        turn_finished(1, "writer", "small", (0.0, 0.0, 30.0)),
        resident(2, 30.0, &[("small", 10 * GB)]),
        turn_started(2, "reviewer", "big", 31.0),
        load("big", LoadCause::OnDemand, 31.0),
        // The process was killed; a new one resumes where the events stop.
        started(31.0, 1),
        resident(2, 31.0, &[("small", 10 * GB), ("big", 20 * GB)]),
        turn_started(2, "reviewer", "big", 31.0),
        turn_finished(2, "reviewer", "big", (31.0, 0.0, 10.0)),
        finished(41.0),
    ];
    let timeline = Timeline::from_events(&events);
    assert_eq!(timeline.resumed_at_s, [31.0]);
    let turns: Vec<(u32, bool)> = timeline
        .turns
        .iter()
        .map(|t| (t.turn, t.completed))
        .collect();
    assert_eq!(turns, [(1, true), (2, false), (2, true)]);
    assert_eq!(
        spans(&timeline, "big", ModelState::Loading(LoadCause::OnDemand)),
        [(31.0, 31.0)],
        "the interrupted load ends where its process's events stop"
    );
    assert_eq!(
        spans(&timeline, "big", ModelState::Resident),
        [(31.0, 41.0)]
    );
}

#[test]
fn no_events_make_an_empty_timeline() {
    let timeline = Timeline::from_events(&[]);
    assert!(timeline.models.is_empty() && timeline.turns.is_empty());
    assert_eq!(timeline.end_s, 0.0);
    assert_eq!(timeline.peak_bytes(), 0);
}

/// A turn of branch `index` of the region forked at turn 1.
fn in_branch(event: Event, index: u32, start: &str) -> Event {
    let branch = Some(agentrun_core::BranchRef {
        fork: 1,
        index,
        start: start.to_owned(),
    });
    match event {
        Event::TurnStarted {
            turn,
            agent,
            model,
            at_s,
            ..
        } => Event::TurnStarted {
            turn,
            agent,
            model,
            branch,
            at_s,
        },
        Event::TurnFinished { mut entry, at_s } => {
            entry.branch = branch;
            Event::TurnFinished { entry, at_s }
        }
        other => other,
    }
}

#[test]
fn overlapping_branch_turns_get_a_row_each_and_the_join_wait_is_drawn() {
    let arrived = |index: u32, start: &str, at_s: f64| Event::BranchArrived {
        branch: agentrun_core::BranchRef {
            fork: 1,
            index,
            start: start.to_owned(),
        },
        at_s,
    };
    let events = vec![
        started(0.0, 0),
        turn_started(1, "coder", "big", 0.0),
        turn_finished(1, "coder", "big", (0.0, 0.0, 10.0)),
        in_branch(turn_started(2, "style", "small", 10.0), 1, "style"),
        in_branch(turn_started(3, "security", "mid", 10.0), 0, "security"),
        in_branch(
            turn_finished(2, "style", "small", (10.0, 0.0, 5.0)),
            1,
            "style",
        ),
        arrived(1, "style", 15.0),
        in_branch(
            turn_finished(3, "security", "mid", (10.0, 0.0, 20.0)),
            0,
            "security",
        ),
        arrived(0, "security", 30.0),
        Event::JoinOpened {
            join: "lead".to_owned(),
            stopped: Vec::new(),
            region_s: 20.0,
            at_s: 30.0,
        },
        turn_started(4, "lead", "big", 30.0),
        turn_finished(4, "lead", "big", (30.0, 0.0, 2.0)),
        finished(32.0),
    ];
    let timeline = Timeline::from_events(&events);
    assert_eq!(timeline.turn_rows(), 2);
    let rows: Vec<(u32, usize, f64, f64)> = timeline
        .turns
        .iter()
        .map(|turn| (turn.turn, turn.row, turn.start_s, turn.end_s))
        .collect();
    assert_eq!(
        rows,
        [
            (1, 0, 0.0, 10.0),
            (2, 1, 10.0, 15.0),
            (3, 0, 10.0, 30.0),
            (4, 0, 30.0, 32.0)
        ]
    );
    let waits: Vec<(&str, usize, f64, f64)> = timeline
        .join_waits
        .iter()
        .map(|wait| (wait.branch.as_str(), wait.row, wait.start_s, wait.end_s))
        .collect();
    assert_eq!(
        waits,
        [("style", 1, 15.0, 30.0), ("security", 0, 30.0, 30.0)]
    );
    let svg = crate::report::svg::timeline_svg(
        &timeline,
        crate::report::svg::Axis {
            end_s: timeline.end_s,
        },
        &[
            "coder".to_owned(),
            "security".to_owned(),
            "style".to_owned(),
        ],
    );
    assert!(
        svg.contains("branch style waited 15.0 s at the join lead"),
        "{svg}"
    );
    assert!(svg.contains("a row per branch"));
}

fn placement(at_s: f64, hosts: &[(&str, bool, &[&str])]) -> Event {
    Event::Placement {
        hosts: hosts
            .iter()
            .map(|(host, up, models)| agentrun_core::HostPlacement {
                host: (*host).to_owned(),
                url: format!("http://{host}:11434"),
                up: *up,
                gpu_budget_bytes: 24 * GB,
                models: models.iter().map(|model| (*model).to_owned()).collect(),
            })
            .collect(),
        reason: "placed".to_owned(),
        at_s,
    }
}

#[test]
fn lanes_are_grouped_by_host_and_a_moved_model_names_both() {
    let events = vec![
        started(0.0, 0),
        // Seen resident first in the other order: the hosts decide the lanes' order.
        resident(1, 0.0, &[("coder", 20 * GB), ("architect", 40 * GB)]),
        placement(
            0.0,
            &[("mac", true, &["architect"]), ("linux", true, &["coder"])],
        ),
        placement(
            50.0,
            &[
                ("mac", true, &["architect", "coder"]),
                ("linux", false, &[]),
            ],
        ),
        resident(2, 60.0, &[("coder", 20 * GB), ("architect", 40 * GB)]),
    ];
    let timeline = Timeline::from_events(&events);
    let lanes: Vec<(&str, Vec<String>)> = timeline
        .models
        .iter()
        .map(|lane| (lane.model.as_str(), lane.hosts.clone()))
        .collect();
    assert_eq!(
        lanes,
        vec![
            ("architect", vec!["mac".to_owned()]),
            ("coder", vec!["linux".to_owned(), "mac".to_owned()]),
        ]
    );
    let svg =
        crate::report::svg::timeline_svg(&timeline, crate::report::svg::Axis { end_s: 60.0 }, &[]);
    assert!(
        svg.contains(r#"data-model="coder" data-host="linux mac""#),
        "{svg}"
    );
    assert!(svg.contains("@ linux→mac"), "{svg}");
}
