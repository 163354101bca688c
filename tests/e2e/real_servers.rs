//! The binary against what real Ollama servers send: recorded responses replayed
//! over HTTP, and `ollama-sim` where a scripted reply produces the case today.
//! An empty reply cut at its length limit stops the run with the fix; a model without
//! a capability the workflow needs stops it before the first turn; reasoning is kept
//! apart from the answer; a reply cut at its length limit is marked; the server
//! address is read as Ollama's client reads `OLLAMA_HOST`.

use std::path::Path;

use serde_json::Value;

use crate::replay_server::{ReplayServer, Reply};
use crate::support::{Sim, agentrun, agentrun_with, events, of_type, repo_root};

/// A workflow file in a temp dir, with the budget of the target Mac (this machine's
/// GPU cannot be read).
fn workflow(dir: &Path, yaml: &str) -> String {
    let path = dir.join("w.yaml");
    std::fs::write(&path, format!("{yaml}memory:\n  gpu_budget: 54GB\n"))
        .expect("workflow written");
    path.to_string_lossy().into_owned()
}

/// Runs a workflow as a user would (terminal output on stderr), keeping events and
/// the run directory; returns the run, its events and its transcript.
fn run(dir: &Path, workflow: &str, url: &str) -> (crate::support::Run, Vec<Value>, Vec<Value>) {
    let events_path = dir.join("events.jsonl");
    let runs = dir.join("runs");
    let run = agentrun(&[
        workflow,
        "--ollama",
        url,
        "--non-interactive",
        "--runs-dir",
        &runs.to_string_lossy(),
        "--events",
        &events_path.to_string_lossy(),
    ]);
    let events = events(&events_path);
    let transcript = std::fs::read_dir(runs.join("runs"))
        .ok()
        .and_then(|mut entries| entries.next())
        .and_then(|entry| std::fs::read_to_string(entry.ok()?.path().join("transcript.jsonl")).ok())
        .map(|text| {
            text.lines()
                .map(|line| serde_json::from_str(line).expect("a transcript line"))
                .collect()
        })
        .unwrap_or_default();
    (run, events, transcript)
}

/// A qwen3:8b as a 0.11.0 server described it (tags, show, ps), answering every
/// chat with `chat`.
fn qwen3_server(chat: Reply) -> ReplayServer {
    ReplayServer::start(vec![
        ("GET /api/version", Reply::recorded("version-0.11.0.json")),
        ("GET /api/tags", Reply::recorded("tags-0.11.0.json")),
        ("POST /api/show", Reply::recorded("show-0.11.0-qwen3.json")),
        ("GET /api/ps", Reply::recorded("ps-0.11.0.json")),
        (
            "POST /api/generate",
            Reply::recorded("generate-0.13.5-all-thinking-length.json"),
        ),
        ("POST /api/chat", chat),
    ])
}

const WRITER: &str = "name: haiku\ntask: write a haiku\nagents:\n  writer:\n    model: qwen3:8b\n    \
     prompt: You write haiku.\n    options: { num_ctx: 8192, num_predict: 20 }\n\
     flow:\n  start: writer\n  edges:\n    - { from: writer, to: end }\n";

#[test]
fn an_all_thinking_reply_cut_at_length_never_completes_the_run() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = qwen3_server(Reply::streamed(
        "chat-0.13.5-stream-all-thinking-length.ndjson",
    ));
    let workflow = workflow(dir.path(), WRITER);
    let (run, events, transcript) = run(dir.path(), &workflow, &server.url);
    // The terminal as a user sees it, kept in the test output for reading.
    eprintln!("--- agentrun's terminal output\n{}", run.stderr());
    run.expect_code(1);
    let stderr = run.stderr();
    for needed in [
        "'writer'",
        "qwen3:8b",
        "only thinking",
        "done_reason: length",
        "think: false",
        "num_predict",
    ] {
        assert!(
            stderr.contains(needed),
            "{needed:?} missing from:\n{stderr}"
        );
    }
    assert!(!stderr.contains("completed"), "{stderr}");
    let finished = of_type(&events, "run_finished");
    assert_eq!(
        finished[0]["summary"]["status"], "failed",
        "{:#}",
        finished[0]
    );
    assert!(
        transcript.is_empty(),
        "no empty turn is kept: {transcript:?}"
    );
    let limits: Vec<Value> = server
        .received_for("POST /api/chat")
        .iter()
        .map(|body| body["options"]["num_predict"].clone())
        .collect();
    assert_eq!(limits, [20, 40, 80], "each retry had more room");
}

#[test]
fn what_a_model_cannot_do_stops_the_run_before_any_load() {
    for (asked, capability, fix) in [
        ("    tools: [read_file]\n", "tools", "remove its `tools`"),
        ("    think: true\n", "thinking", "set `think: false`"),
    ] {
        let dir = tempfile::tempdir().expect("a temp dir");
        let server = ReplayServer::start(vec![
            ("GET /api/version", Reply::recorded("version-0.11.6.json")),
            ("GET /api/tags", Reply::recorded("tags-0.11.6.json")),
            (
                "POST /api/show",
                Reply::recorded("show-0.11.6-gemma3n.json"),
            ),
            ("GET /api/ps", Reply::recorded("ps-0.11.6-two-models.json")),
        ]);
        let workflow = workflow(
            dir.path(),
            &format!(
                "name: code\ntask: fix it\nagents:\n  coder:\n    model: gemma3n:e2b\n    prompt: You code.\n    \
                 options: {{ num_ctx: 8192 }}\n{asked}\
                 flow:\n  start: coder\n  edges:\n    - {{ from: coder, to: end }}\n"
            ),
        );
        let (run, _, transcript) = run(dir.path(), &workflow, &server.url);
        assert_ne!(run.code(), Some(0), "{}", run.stderr());
        let stderr = run.stderr();
        for needed in ["agent 'coder'", "gemma3n:e2b", capability, fix] {
            assert!(
                stderr.contains(needed),
                "{needed:?} missing from:\n{stderr}"
            );
        }
        assert!(transcript.is_empty());
        assert!(
            server.received_for("POST /api/chat").is_empty(),
            "no call was made"
        );
        assert!(
            server.received_for("POST /api/generate").is_empty(),
            "no model was loaded"
        );
    }
}

/// `ollama-sim` with a reply script, on a fast clock.
fn scripted_sim(dir: &Path, script: &str) -> Sim {
    let path = dir.join("script.yaml");
    std::fs::write(&path, script).expect("script written");
    Sim::start(&["--time-scale", "0.001", "--script", &path.to_string_lossy()])
}

#[test]
fn reasoning_written_inline_takes_no_edge_and_is_kept_apart() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sim = scripted_sim(
        dir.path(),
        "rules:\n  - system: \"(?i)you write\"\n    replies:\n      - text: \"A first draft.\"\n\
         \x20     - text: \"A second draft.\"\n\
         \x20 - system: \"(?i)you review\"\n    replies:\n\
         \x20     - text: \"<think>Could this be APPROVED? Not yet.</think>\\nToo long.\"\n\
         \x20     - text: \"APPROVED\"\n",
    );
    let workflow = workflow(
        dir.path(),
        "name: review\ntask: write\nagents:\n  writer:\n    model: qwen3:8b\n    prompt: You write.\n    \
         options: { num_ctx: 8192 }\n  reviewer:\n    model: qwen3:8b\n    prompt: You review.\n    \
         options: { num_ctx: 8192 }\nflow:\n  start: writer\n  edges:\n    - { from: writer, to: reviewer }\n    \
         - { from: reviewer, to: end, when: { contains: APPROVED } }\n    - { from: reviewer, to: writer }\n",
    );
    let (run, events, transcript) = run(dir.path(), &workflow, &sim.url);
    run.expect_code(0);
    let turns: Vec<(&str, &str, &str)> = transcript
        .iter()
        .map(|t| {
            (
                t["agent"].as_str().unwrap_or(""),
                t["text"].as_str().unwrap_or(""),
                t["next"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        turns,
        [
            ("writer", "A first draft.", "reviewer"),
            ("reviewer", "Too long.", "writer"),
            ("writer", "A second draft.", "reviewer"),
            ("reviewer", "APPROVED", "end"),
        ],
        "the reasoning's APPROVED took no edge"
    );
    assert_eq!(
        transcript[1]["thinking"],
        "Could this be APPROVED? Not yet."
    );
    let finished = of_type(&events, "turn_finished");
    assert_eq!(finished[1]["thinking"], "Could this be APPROVED? Not yet.");
    // The writer's next prompt carries the review, never the reasoning.
    let log = sim.log();
    let prompts: Vec<String> = log
        .iter()
        .filter(|event| event["event"] == "request_arrived" && event["endpoint"] == "chat")
        .map(|event| event.to_string())
        .collect();
    assert!(
        prompts
            .iter()
            .all(|prompt| !prompt.contains("Could this be")),
        "reasoning reached another agent"
    );
}

#[test]
fn thinking_is_kept_in_the_transcript_and_shown_apart_in_the_terminal() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sim = scripted_sim(
        dir.path(),
        "rules:\n  - system: \"(?i)you write\"\n    replies:\n\
         \x20     - text: \"Autumn moonlight\"\n        thinking: \"Five syllables first.\"\n",
    );
    let workflow = workflow(
        dir.path(),
        "name: haiku\ntask: write\nagents:\n  writer:\n    model: qwen3:8b\n    prompt: You write.\n    \
         options: { num_ctx: 8192 }\n    think: true\nflow:\n  start: writer\n  edges:\n    - { from: writer, to: end }\n",
    );
    let (run, _, transcript) = run(dir.path(), &workflow, &sim.url);
    run.expect_code(0);
    assert_eq!(transcript[0]["text"], "Autumn moonlight");
    assert_eq!(transcript[0]["thinking"], "Five syllables first.");
    let stderr = run.stderr();
    assert!(stderr.contains("thinking (1 lines):"), "{stderr}");
    assert!(stderr.contains("│ Five syllables first."), "{stderr}");
}

#[test]
fn a_reply_cut_at_its_length_limit_is_kept_and_marked() {
    let dir = tempfile::tempdir().expect("a temp dir");
    // Unscripted, the simulator fills `num_predict` and says `length`.
    let sim = Sim::start(&["--time-scale", "0.001"]);
    let workflow = workflow(
        dir.path(),
        "name: long\ntask: write\nagents:\n  writer:\n    model: qwen3:8b\n    prompt: You write.\n    \
         options: { num_ctx: 8192, num_predict: 12 }\n    think: false\n\
         flow:\n  start: writer\n  edges:\n    - { from: writer, to: end }\n",
    );
    let (run, events, transcript) = run(dir.path(), &workflow, &sim.url);
    run.expect_code(0);
    assert_eq!(transcript[0]["cut_off"], true, "{:#}", transcript[0]);
    assert!(!transcript[0]["text"].as_str().unwrap_or("").is_empty());
    assert_eq!(of_type(&events, "turn_finished")[0]["cut_off"], true);
    assert!(
        run.stderr()
            .contains("[cut off: the reply reached its length limit"),
        "{}",
        run.stderr()
    );
}

#[test]
fn ollama_host_is_read_as_ollamas_client_reads_it() {
    let server = ReplayServer::start(vec![(
        "GET /api/ps",
        Reply::recorded("ps-0.11.6-partial-offload.json"),
    )]);
    let port = server.url.rsplit(':').next().expect("a port").to_owned();
    for host in [
        format!(":{port}"),
        format!("127.0.0.1:{port}"),
        format!("0.0.0.0:{port}"),
        format!("http://localhost:{port}"),
        format!("\"127.0.0.1:{port}\""),
    ] {
        let run = agentrun_with(repo_root(), &["ps"], &[("OLLAMA_HOST", host.as_str())]);
        run.expect_code(0);
        assert!(
            run.stdout().contains("mistral:7b"),
            "OLLAMA_HOST={host}: {}",
            run.stdout()
        );
    }
    // Set but empty, as shell profiles leave it: the default server, not an error
    // about the address.
    let run = agentrun_with(repo_root(), &["ps"], &[("OLLAMA_HOST", "")]);
    let stderr = run.stderr();
    assert!(!stderr.contains("empty"), "{stderr}");
    if run.code() != Some(0) {
        assert!(stderr.contains("127.0.0.1:11434"), "{stderr}");
    }
}
