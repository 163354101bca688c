//! Server faults injected through `ollama-sim`'s `/sim/faults`: each one either is
//! survived (the run completes with nothing partial kept) or stops the run clearly.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Run, Sim, agentrun, events, of_type};

/// The scripted review loop's coder replies (`workflows/sim/review.yaml`), whole.
const FIRST_CODER_REPLY: &str = "```rust\npub fn parse_duration(text: &str) -> Result<Duration, String> {\n    \
     humantime::parse_duration(text).map_err(|e| e.to_string())\n}\n```\n";
const SECOND_CODER_REPLY: &str = "Rewritten without a dependency: a loop over number/unit pairs, with tests for `90s`, `30m`, `1h30m` and `1x`.";

/// A finished review run with its events and its run directory.
struct Outcome {
    run: Run,
    events: Vec<Value>,
    runs: tempfile::TempDir,
}

impl Outcome {
    /// The run's directory under `--runs-dir`.
    fn dir(&self) -> PathBuf {
        let kept: Vec<PathBuf> = std::fs::read_dir(self.runs.path().join("runs"))
            .expect("a runs folder")
            .map(|entry| entry.expect("an entry").path())
            .collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        kept[0].clone()
    }

    /// The transcript's lines, parsed.
    fn transcript(&self) -> Vec<Value> {
        transcript_of(&self.dir())
    }

    fn summary(&self) -> Value {
        self.run.json()
    }
}

fn transcript_of(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("transcript.jsonl"))
        .expect("a transcript")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// A simulator for the review loop with its scripted replies.
fn review_sim(time_scale: &str) -> Sim {
    Sim::start(&[
        "--time-scale",
        time_scale,
        "--script",
        "workflows/sim/review.yaml",
    ])
}

/// Runs `workflow` against `sim` with events and a run directory kept.
fn run_workflow(sim: &Sim, workflow: &str) -> Outcome {
    let runs = tempfile::tempdir().expect("a temp dir");
    let events_path = runs.path().join("events.jsonl");
    let run = agentrun(&[
        workflow,
        "--ollama",
        &sim.url,
        "--json",
        "-q",
        "--runs-dir",
        &runs.path().to_string_lossy(),
        "--events",
        &events_path.to_string_lossy(),
    ]);
    let events = events(&events_path);
    Outcome { run, events, runs }
}

fn inject(sim: &Sim, faults: Value) {
    let answer = sim.post_json("/sim/faults", &faults);
    let echoed: Value = serde_json::from_str(&answer).expect("the faults are echoed as JSON");
    assert!(echoed.get("error").is_none(), "faults refused: {answer}");
}

/// The simulator's `request_finished` events with a given status.
fn finished_with_status(sim: &Sim, status: u64) -> usize {
    sim.log()
        .iter()
        .filter(|event| event["event"] == "request_finished" && event["status"] == status)
        .count()
}

/// The review loop ran to its scripted end: four turns, the coder's two replies
/// kept whole.
#[track_caller]
fn assert_review_completed(outcome: &Outcome) {
    outcome.run.expect_code(0);
    let summary = outcome.summary();
    assert_eq!(summary["status"], "completed", "{summary:#}");
    assert_eq!(summary["turns"], 4, "{summary:#}");
    let transcript = outcome.transcript();
    assert_eq!(transcript.len(), 4);
    let coder: Vec<&str> = transcript
        .iter()
        .filter(|entry| entry["agent"] == "coder")
        .map(|entry| entry["text"].as_str().expect("text"))
        .collect();
    assert_eq!(coder.len(), 2);
    // A broken attempt still consumes a scripted reply, so the second may repeat; what
    // matters is that every kept reply is a whole one, never the part that streamed.
    for text in coder {
        assert!(
            text == FIRST_CODER_REPLY || text == SECOND_CODER_REPLY,
            "a partial or unknown reply was kept: {text:?}"
        );
    }
}

#[test]
fn a_full_queue_is_retried_and_the_run_completes() {
    let sim = review_sim("0.001");
    inject(&sim, json!({ "unavailable_requests": 2 }));
    let outcome = run_workflow(&sim, "workflows/review.yaml");
    assert_review_completed(&outcome);
    let retries = of_type(&outcome.events, "retry");
    assert_eq!(retries.len(), 2, "{retries:?}");
    assert!(
        retries
            .iter()
            .all(|retry| retry["error"].as_str().unwrap_or("").contains("busy")),
        "{retries:?}"
    );
    assert_eq!(finished_with_status(&sim, 503), 2);
}

#[test]
fn an_error_line_mid_stream_retries_the_turn_and_keeps_no_partial_reply() {
    let sim = review_sim("0.001");
    inject(
        &sim,
        json!({ "stream_errors": [
            { "model": "qwen3-coder:32b", "after_chunks": 2, "message": "runner crashed", "times": 1 }
        ] }),
    );
    let outcome = run_workflow(&sim, "workflows/review.yaml");
    assert_review_completed(&outcome);
    let retries = of_type(&outcome.events, "retry");
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert!(
        retries[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("runner crashed"),
        "{retries:?}"
    );
    // The server did send part of a reply before the error line.
    let broken: Vec<Value> = sim
        .log()
        .into_iter()
        .filter(|event| event["event"] == "request_finished" && event["error"].is_string())
        .collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(broken[0]["model"], "qwen3-coder:32b");
}

#[test]
fn a_dropped_connection_retries_the_turn_and_keeps_no_partial_reply() {
    let sim = review_sim("0.001");
    inject(
        &sim,
        json!({ "disconnects": [ { "model": "qwen3-coder:32b", "after_chunks": 1, "times": 1 } ] }),
    );
    let outcome = run_workflow(&sim, "workflows/review.yaml");
    assert_review_completed(&outcome);
    let retries = of_type(&outcome.events, "retry");
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert!(
        retries[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("broke off"),
        "{retries:?}"
    );
}

#[test]
fn a_load_that_fails_once_is_retried_and_the_run_completes() {
    let sim = review_sim("0.001");
    inject(
        &sim,
        json!({ "load_failures": [ { "model": "qwen3-coder:32b", "times": 1 } ] }),
    );
    let outcome = run_workflow(&sim, "workflows/review.yaml");
    assert_review_completed(&outcome);
    let log = sim.log();
    let failed = log
        .iter()
        .filter(|event| event["event"] == "load_failed")
        .count();
    assert_eq!(failed, 1);
    let retries = of_type(&outcome.events, "retry");
    assert!(
        retries.iter().any(|retry| retry["error"]
            .as_str()
            .unwrap_or("")
            .contains("more system memory")),
        "{retries:?}"
    );
}

#[test]
fn a_run_survives_another_client_loading_a_model_behind_its_back() {
    // Slow enough a clock that the other client's load lands in the middle of the run.
    let sim = review_sim("0.01");
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| {
            // Once the run's first turn is answered (or, if the run broke, soon anyway:
            // the assertions below then say what went wrong instead of the test hanging)...
            let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while std::time::Instant::now() < give_up
                && !sim
                    .log()
                    .iter()
                    .any(|event| event["event"] == "request_finished" && event["status"] == 200)
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // A chat UI loads the small model and keeps it forever.
            sim.post_json(
                "/api/generate",
                &json!({ "model": "qwen3:1.7b", "prompt": "", "keep_alive": -1 }),
            )
        });
        run_workflow(&sim, "workflows/review.yaml")
    });
    assert_review_completed(&outcome);
    // The other client's load landed while the run still had turns to take.
    let log = sim.log();
    let position = |wanted: &dyn Fn(&Value) -> bool| log.iter().rposition(wanted);
    let intruder_loaded =
        position(&|event| event["event"] == "load_finished" && event["model"] == "qwen3:1.7b")
            .expect("the other client's model loaded");
    let last_chat =
        position(&|event| event["event"] == "request_arrived" && event["endpoint"] == "chat")
            .expect("the run chatted");
    assert!(
        intruder_loaded < last_chat,
        "the other load came after the run's last turn"
    );
    // No thrashing: each of the run's models loads at most twice.
    for model in ["qwen3-coder:32b", "qwen3-coder:14b"] {
        let loads = log
            .iter()
            .filter(|event| event["event"] == "load_started" && event["model"] == model)
            .count();
        assert!(loads <= 2, "{model} loaded {loads} times");
    }
    // The other client's model was never the run's to unload.
    let ps = sim.get_json("/api/ps");
    let names: Vec<&str> = ps["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|model| model["name"].as_str())
        .collect();
    assert!(names.contains(&"qwen3:1.7b"), "{names:?}");
}

#[test]
fn a_model_that_never_fits_falls_back_to_the_agents_fallback_model() {
    let sim = review_sim("0.001");
    // The coder's qwen3-coder:32b never fits; its fallback (agents/coder.yaml) is the 14b.
    inject(
        &sim,
        json!({ "load_failures": [ { "model": "qwen3-coder:32b" } ] }),
    );
    let outcome = run_workflow(&sim, "workflows/review.yaml");
    assert_review_completed(&outcome);
    let retries = of_type(&outcome.events, "retry");
    let fallbacks: Vec<_> = retries
        .iter()
        .filter(|retry| retry["model"] == "qwen3-coder:14b")
        .collect();
    assert_eq!(fallbacks.len(), 2, "one per coder turn: {retries:?}");
    // The transcript names the model that answered.
    let coder_models: Vec<&serde_json::Value> = of_type(&outcome.events, "turn_finished")
        .into_iter()
        .filter(|turn| turn["agent"] == "coder")
        .map(|turn| &turn["model"])
        .collect();
    assert_eq!(
        coder_models,
        [&json!("qwen3-coder:14b"), &json!("qwen3-coder:14b")]
    );
    assert!(
        fallbacks[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("fallback model 'qwen3-coder:14b'"),
        "{fallbacks:?}"
    );
    // Every coder request the server answered went to the fallback, and before it the
    // big model was tried again only once per turn, after the others were unloaded.
    let log = sim.log();
    let answered_32b = log
        .iter()
        .filter(|event| {
            event["event"] == "request_finished"
                && event["model"] == "qwen3-coder:32b"
                && event["status"] == 200
        })
        .count();
    assert_eq!(answered_32b, 0);
    let chats_32b = log
        .iter()
        .filter(|event| {
            event["event"] == "request_arrived"
                && event["endpoint"] == "chat"
                && event["model"] == "qwen3-coder:32b"
                && event["request_id"].is_u64()
        })
        .count();
    assert!(
        chats_32b <= 4,
        "the big model was retried {chats_32b} times"
    );
}

#[test]
fn a_model_that_never_fits_without_a_fallback_stops_the_run_clearly() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflow = dir.path().join("solo.yaml");
    std::fs::write(
        &workflow,
        "name: solo\ntask: say hi\nagents:\n  writer:\n    model: qwen3-coder:32b\n    prompt: You say hi.\n\
         flow:\n  start: writer\n  edges:\n    - { from: writer, to: end }\nmemory:\n  gpu_budget: 54GB\n",
    )
    .expect("workflow written");
    let sim = Sim::start(&["--time-scale", "0.001"]);
    inject(
        &sim,
        json!({ "load_failures": [ { "model": "qwen3-coder:32b" } ] }),
    );
    let outcome = run_workflow(&sim, &workflow.to_string_lossy());
    outcome.run.expect_code(1);
    let summary = outcome.summary();
    assert_eq!(summary["status"], "failed", "{summary:#}");
    // A run without a single completed turn has nothing avoidable, and says 0.0, not -0.0.
    let stderr = outcome.run.stderr();
    assert!(stderr.contains("(0.0 s avoidable)"), "{stderr}");
    assert!(!stderr.contains("-0.0"), "{stderr}");
    let reason = summary["reason"].to_string();
    assert!(reason.contains("more system memory"), "{summary:#}");
    assert!(
        reason.contains("give agent 'writer' a `fallback`"),
        "{summary:#}"
    );
    // Tried twice, not more: once as planned, once after freeing memory.
    let chats = sim
        .log()
        .iter()
        .filter(|event| event["event"] == "request_arrived" && event["endpoint"] == "chat")
        .count();
    assert_eq!(chats, 2);
    assert_eq!(outcome.transcript().len(), 0);
}
