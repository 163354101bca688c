//! The four-specialist case: a router picking uniformly among four specialists on four models
//! that do not fit together. A preload guessed during the router's short turn is wrong three
//! times in four; smart must still wait no longer than the policies that never guess.
//! Also the executor's abort of such a preload, over HTTP against the simulator.

use serde_json::Value;

use crate::support::{Sim, agentrun, events, of_type, repo_root};

const WORKFLOW: &str = "workflows/cases/four-specialists.yaml";

/// `agentrun simulate` of the case with one seed, every policy at Ollama's default (mmap)
/// loading, so that smart and the baselines load at the same speed.
fn simulate(seed: u64) -> Value {
    let seed = seed.to_string();
    let run = agentrun(&[
        "simulate",
        WORKFLOW,
        "--policy",
        "all",
        "--load-mode",
        "mmap",
        "--seed",
        &seed,
        "--json",
    ]);
    run.expect_code(0);
    run.json()
}

fn wait(report: &Value, policy: &str) -> f64 {
    report["policies"][policy]["load_wait_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("{policy} has a load wait: {report:#}"))
}

#[test]
fn smart_waits_no_longer_than_static_or_ollama_default_in_any_seed() {
    let mut losses = Vec::new();
    for seed in 1..=8 {
        let report = simulate(seed);
        let (smart, fixed, default) = (
            wait(&report, "smart"),
            wait(&report, "static"),
            wait(&report, "ollama-default"),
        );
        eprintln!(
            "seed {seed}: smart {smart:.1} s, static {fixed:.1} s, ollama-default {default:.1} s, \
             oracle {:.1} s",
            wait(&report, "oracle")
        );
        if smart > fixed || smart > default {
            losses.push(seed);
        }
    }
    assert!(losses.is_empty(), "smart waited longer in seeds {losses:?}");
}

/// A router the workflow describes as slow (2 tokens a second, so its first turn is expected
/// to last half a minute) makes the planner preload a specialist's model during it; the
/// router answers at the server's real speed instead, in a fraction of a second, and picks a
/// specialist on another model. The executor aborts the preload and the simulator abandons
/// that load at once instead of finishing it first.
#[test]
fn a_preload_the_next_speaker_does_not_need_is_aborted_and_its_load_abandoned() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let script = dir.path().join("script.yaml");
    std::fs::write(
        &script,
        r#"
rules:
  - system: "(?i)you are the router"
    replies:
      - eval_count: 64
        json: { choice: docs, reason: "a documentation question" }
      - eval_count: 30
        json: { choice: done, reason: "answered" }
  - system: "(?i)documentation"
    reply:
      eval_count: 200
      text: "Here is the section, rewritten."
"#,
    )
    .expect("written");
    let sim = Sim::start(&[
        "--time-scale",
        "0.05",
        "--script",
        &script.to_string_lossy(),
    ]);
    // The case, with the router described as slow to the planner.
    let workflow = dir.path().join("four-specialists.yaml");
    let case = std::fs::read_to_string(repo_root().join(WORKFLOW)).expect("the case");
    let router_file = repo_root().join("agents/router.yaml");
    std::fs::write(
        &workflow,
        case.replace("../../agents/router.yaml", &router_file.to_string_lossy())
            .replace(
                "    router: { choices:",
                "    router: { tokens_per_second: 2, choices:",
            ),
    )
    .expect("written");
    let events_path = dir.path().join("events.jsonl");
    let run = agentrun(&[
        &workflow.to_string_lossy(),
        "--ollama",
        &sim.url,
        "--non-interactive",
        "--json",
        "-q",
        "--events",
        &events_path.to_string_lossy(),
    ]);
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["status"], "completed", "{summary:#}");

    let events = events(&events_path);
    let aborted = of_type(&events, "preload_aborted");
    assert_eq!(aborted.len(), 1, "{events:#?}");
    let model = aborted[0]["model"].as_str().expect("a model");
    assert_ne!(
        model, "qwen3:8b",
        "the docs agent's own model is not aborted"
    );
    assert!(
        aborted[0]["reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("docs needs qwen3:8b")),
        "{:#}",
        aborted[0]
    );

    // The simulator abandoned that load before it finished, and loaded the docs model
    // right after the abort rather than behind a finished preload.
    let log = sim.log();
    let position = |kind: &str, name: &str| {
        log.iter()
            .position(|event| event["event"] == kind && event["model"] == name)
    };
    let abandoned = position("load_aborted", model).expect("the simulator abandoned the load");
    assert_eq!(position("load_finished", model), None, "{log:#?}");
    let docs_load = position("load_started", "qwen3:8b").expect("the docs model loaded");
    assert!(abandoned < docs_load, "{log:#?}");
}
