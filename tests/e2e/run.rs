//! Running the shipped workflows against `ollama-sim` over HTTP.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{Sim, agentrun, events, of_type, repo_root};
use crate::tdd_cycle::example_project;

/// The model each request id asked for, by endpoint, from the simulator's log.
fn requests(log: &[Value], endpoint: &str) -> BTreeMap<u64, String> {
    log.iter()
        .filter(|event| event["event"] == "request_arrived" && event["endpoint"] == endpoint)
        .map(|event| {
            (
                event["request_id"].as_u64().expect("request id"),
                event["model"].as_str().expect("model").to_owned(),
            )
        })
        .collect()
}

#[test]
fn tdd_runs_to_completion_and_the_loop_never_waits_on_a_swap() {
    // One simulated second takes 50 ms: a preload then has a quarter of a second of slack
    // even on a busy machine (the whole suite runs at once on two cores in CI), and the
    // whole run takes about thirty seconds.
    let sim = Sim::start(&["--time-scale", "0.05", "--script", "workflows/sim/tdd.yaml"]);
    let dir = tempfile::tempdir().expect("a temp dir");
    let project = example_project();
    let events_path = dir.path().join("events.jsonl");
    let run = agentrun(&[
        "workflows/tdd.yaml",
        "--ollama",
        &sim.url,
        "--workspace",
        &project.path().to_string_lossy(),
        "--non-interactive",
        "--json",
        "--events",
        &events_path.to_string_lossy(),
    ]);
    run.expect_code(0);

    let summary = run.json();
    assert_eq!(summary["status"], "completed", "{summary:#}");
    assert_eq!(summary["turns"], 13);
    assert_eq!(
        summary["router_repairs"], 1,
        "the scripted malformed answer is repaired"
    );
    assert_eq!(summary["router_fallbacks"], 0);
    let turns = |agent: &str| summary["agents"][agent]["turns"].as_u64();
    assert_eq!(
        [
            turns("architect"),
            turns("tester"),
            turns("coder"),
            turns("tests"),
            turns("reviewer"),
            turns("router")
        ],
        [Some(1), Some(2), Some(3), Some(3), Some(2), Some(2)]
    );
    for field in ["wall_s", "load_wait_s", "avoidable_wait_s"] {
        assert!(
            summary[field].is_number(),
            "{field} missing from {summary:#}"
        );
    }
    assert_eq!(summary["avoidable_wait_s"], 0.0, "{summary:#}");

    let events = events(&events_path);
    let speakers: Vec<&str> = of_type(&events, "turn_started")
        .iter()
        .map(|event| event["agent"].as_str().expect("agent"))
        .collect();
    assert_eq!(
        speakers,
        [
            "architect",
            "tester",
            "coder",
            "tests",
            "coder",
            "tests",
            "reviewer",
            "router",
            "tester",
            "coder",
            "tests",
            "reviewer",
            "router"
        ]
    );
    let edges: Vec<(String, String)> = of_type(&events, "edge_taken")
        .iter()
        .map(|event| (event["from"].to_string(), event["to"].to_string()))
        .collect();
    assert_eq!(
        edges.last(),
        Some(&("\"router\"".to_owned(), "\"end\"".to_owned()))
    );
    assert_eq!(of_type(&events, "run_finished").len(), 1);

    // What the server saw: every chat of the coder's and the tester's models after
    // the first use of each found its model resident (the planner preloaded it).
    let log = sim.log();
    let chats = requests(&log, "chat");
    let mut seen = std::collections::BTreeSet::new();
    let mut checked = 0;
    for event in log
        .iter()
        .filter(|event| event["event"] == "request_finished")
    {
        let id = event["request_id"].as_u64().expect("request id");
        let Some(model) = chats.get(&id) else {
            continue;
        };
        if model != "qwen3-coder:32b" && model != "qwen3-coder:14b" {
            continue;
        }
        if seen.insert(model.clone()) && model == "qwen3-coder:14b" {
            // The tester follows the 52 GB architect, beside which nothing fits.
            continue;
        }
        // Loading either model takes seconds of simulated time; a busy machine adds only
        // scheduling jitter (tens of real milliseconds, well under a simulated second).
        let waited_s = event["load_duration_ns"].as_u64().unwrap_or(0) as f64 / 1e9;
        assert!(
            waited_s < 1.0,
            "request {id} to {model} waited {waited_s} s for a load"
        );
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} loop requests checked");
    // The run leaves nothing loaded that it loaded itself.
    assert_eq!(sim.get_json("/api/ps")["models"], serde_json::json!([]));
}

#[test]
fn review_loop_follows_its_edges_and_keeps_the_run_on_disk() {
    let sim = Sim::start(&[
        "--time-scale",
        "0.001",
        "--script",
        "workflows/sim/review.yaml",
    ]);
    let runs = tempfile::tempdir().expect("a temp dir");
    let runs_dir = runs.path().to_string_lossy().into_owned();
    let run = agentrun(&[
        "workflows/review.yaml",
        "--ollama",
        &sim.url,
        "--json",
        "-q",
        "--runs-dir",
        &runs_dir,
    ]);
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["status"], "completed", "{summary:#}");
    assert_eq!(summary["turns"], 4);
    assert_eq!(summary["agents"]["coder"]["turns"], 2);
    assert_eq!(summary["agents"]["reviewer"]["turns"], 2);

    // The run directory: the resolved workflow, one transcript line per turn, the
    // events and the summary; `agentrun runs` lists it.
    let kept = std::fs::read_dir(runs.path().join("runs"))
        .expect("a runs folder")
        .map(|entry| entry.expect("an entry").path())
        .collect::<Vec<_>>();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let dir = &kept[0];
    let transcript = std::fs::read_to_string(dir.join("transcript.jsonl")).expect("a transcript");
    let speakers: Vec<String> = transcript
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON")["agent"].to_string())
        .collect();
    assert_eq!(
        speakers,
        ["\"coder\"", "\"reviewer\"", "\"coder\"", "\"reviewer\""]
    );
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).expect("a summary"),
    )
    .expect("JSON");
    assert_eq!(saved, summary);
    assert!(dir.join("workflow.yaml").is_file() && dir.join("events.jsonl").is_file());
    let listed = agentrun(&["runs", "--runs-dir", &runs_dir]);
    listed.expect_code(0);
    assert!(listed.stdout().contains("completed"), "{}", listed.stdout());
}

#[test]
fn a_router_that_never_answers_properly_falls_back_and_says_so() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let script = dir.path().join("script.yaml");
    std::fs::write(
        &script,
        "rules:\n  - system: \"(?i)you are the reviewer\"\n    reply: { text: \"APPROVED\" }\n  \
         - system: \"(?i)you are the router\"\n    replies:\n      - text: \"I think we are done here.\"\n      \
         - json: { pick: done }\n      - json: { choice: ship-it }\n",
    )
    .expect("script written");
    let sim = Sim::start(&["--time-scale", "0", "--script", &script.to_string_lossy()]);
    let events_path = dir.path().join("events.jsonl");
    // The example project's tests pass as they are, so the loop goes on to review.
    let project = example_project();
    let run = agentrun(&[
        "workflows/tdd.yaml",
        "--ollama",
        &sim.url,
        "--workspace",
        &project.path().to_string_lossy(),
        "--non-interactive",
        "--json",
        "--events",
        &events_path.to_string_lossy(),
    ]);
    run.expect_code(0);
    let summary = run.json();
    // Three unusable answers: two repairs, then the fallback takes the choice the
    // first answer named ("done"), and the run ends there.
    assert_eq!(summary["router_repairs"], 2, "{summary:#}");
    assert_eq!(summary["router_fallbacks"], 1);
    assert_eq!(summary["status"], "completed");
    let events = events(&events_path);
    let decision = of_type(&events, "router_decision")[0];
    assert_eq!(decision["choice"], "done");
    assert_eq!(decision["fallback"], true);
    assert_eq!(of_type(&events, "router_repair").len(), 2);
    assert!(run.stderr().contains("taking 'done'"), "{}", run.stderr());
}

#[test]
fn the_built_in_simulator_runs_the_readme_command() {
    // The README's first command, with a faster clock, on a copy of the example project.
    let project = example_project();
    let run = agentrun(&[
        "workflows/tdd.yaml",
        "--sim",
        "--time-scale",
        "0.0005",
        "--workspace",
        &project.path().to_string_lossy(),
        "--json",
    ]);
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["turns"], 13);
    assert!(project.path().join("test_truncate.py").is_file());
    assert!(
        run.stderr()
            .contains("── architect (qwen3-coder-next:q4_K_M) · turn 1")
    );
    assert!(repo_root().join("workflows/sim/tdd.yaml").exists());
}

/// A scout on a small model hands over at once to a builder on a big one: the planner
/// preloads the builder's model during the scout's turn, and the builder's call waits for
/// the tail of that preload. A closer speaks after, once the preload has reported.
const HANDOVER: &str = "\
name: handover
task: Build it.
agents:
  scout: { model: 'qwen3:1.7b', prompt: You are the scout., options: { num_ctx: 8192 } }
  builder: { model: 'qwen3-coder:32b', prompt: You are the builder., options: { num_ctx: 8192 } }
  closer: { model: 'qwen3:1.7b', prompt: You are the closer., options: { num_ctx: 8192 } }
flow:
  start: scout
  edges:
    - { from: scout, to: builder }
    - { from: builder, to: closer }
    - { from: closer, to: end }
memory: { gpu_budget: 54GB }
";

const HANDOVER_REPLIES: &str = "\
rules:
  - { system: scout, reply: { eval_count: 2, text: 'Go.' } }
  - { system: builder, reply: { eval_count: 20, text: 'Built.' } }
  - { system: closer, reply: { eval_count: 2, text: 'Done.' } }
";

#[test]
fn a_preload_whose_tail_the_next_turn_waited_on_is_one_load() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflow = dir.path().join("handover.yaml");
    let script = dir.path().join("replies.yaml");
    std::fs::write(&workflow, HANDOVER).expect("written");
    std::fs::write(&script, HANDOVER_REPLIES).expect("written");
    let sim = Sim::start(&[
        "--time-scale",
        "0.02",
        "--script",
        &script.to_string_lossy(),
    ]);
    let events_path = dir.path().join("events.jsonl");
    let run = agentrun(&[
        &workflow.to_string_lossy(),
        "--ollama",
        &sim.url,
        "--json",
        "--events",
        &events_path.to_string_lossy(),
    ]);
    run.expect_code(0);
    let summary = run.json();
    let events = events(&events_path);

    // The setting: the builder's model was preloaded and its turn waited for the load.
    let preloads = of_type(&events, "load_started")
        .into_iter()
        .filter(|event| event["model"] == "qwen3-coder:32b" && event["cause"] == "preload")
        .count();
    assert_eq!(preloads, 1, "{events:#?}");
    let builder_turn = of_type(&events, "turn_finished")
        .into_iter()
        .find(|event| event["agent"] == "builder")
        .expect("the builder's turn");
    assert!(
        builder_turn["load_wait_s"].as_f64().expect("wait") > 0.5,
        "the builder did not wait for the preload's tail: {builder_turn:#}"
    );

    // The server loaded each model once; so say the summary and the events.
    let log = sim.log();
    for model in ["qwen3:1.7b", "qwen3-coder:32b"] {
        let server_loads = log
            .iter()
            .filter(|event| event["event"] == "load_started" && event["model"] == model)
            .count();
        assert_eq!(server_loads, 1, "{model}");
        assert_eq!(summary["models"][model]["loads"], 1, "{model}: {summary:#}");
        let finished = of_type(&events, "load_finished")
            .into_iter()
            .filter(|event| event["model"] == model)
            .count();
        assert_eq!(finished, 1, "{model}: load_finished events");
    }
    assert!(
        run.stderr().contains("qwen3-coder:32b")
            && run
                .stderr()
                .lines()
                .any(|line| line.trim_start().starts_with("qwen3-coder:32b")
                    && line.split_whitespace().nth(1) == Some("1")),
        "the per-model table shows one load:\n{}",
        run.stderr()
    );
}

/// A turn that fails after its model loaded (every reply all thinking, cut at a tiny
/// `num_predict`) still counts that load: the run did wait for it.
#[test]
fn a_failed_turn_still_counts_the_load_it_waited_for() {
    let sim = Sim::start(&["--time-scale", "0.01"]);
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflow = dir.path().join("terse.yaml");
    std::fs::write(
        &workflow,
        "name: terse\ntask: Explain mmap in one line.\nagents:\n  writer:\n    model: qwen3:8b\n    \
         prompt: You explain.\n    options: { num_ctx: 4096, num_predict: 2 }\n\
         flow:\n  start: writer\n  edges:\n    - { from: writer, to: end }\n\
         memory: { gpu_budget: 54GB }\n",
    )
    .expect("write the workflow");
    let events_path = dir.path().join("events.jsonl");
    let run = agentrun(&[
        &workflow.to_string_lossy(),
        "--ollama",
        &sim.url,
        "--non-interactive",
        "--json",
        "--events",
        &events_path.to_string_lossy(),
    ]);
    run.expect_code(1);
    let summary = run.json();
    assert_eq!(summary["status"], "failed", "{summary:#}");
    assert_eq!(summary["turns"], 0, "{summary:#}");
    let model = &summary["models"]["qwen3:8b"];
    assert_eq!(model["loads"], 1, "{summary:#}");
    assert!(
        model["load_s"]
            .as_f64()
            .is_some_and(|seconds| seconds > 0.5),
        "{summary:#}"
    );
    assert!(
        summary["load_wait_s"].as_f64().is_some_and(|s| s > 0.5),
        "{summary:#}"
    );
    let events = events(&events_path);
    let loads: Vec<&Value> = of_type(&events, "load_finished");
    assert_eq!(loads.len(), 1, "{loads:#?}");
    assert_eq!(loads[0]["model"], "qwen3:8b");
}
