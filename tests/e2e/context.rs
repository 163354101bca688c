//! Contexts that fit: a long TDD loop whose test command floods the conversation with
//! output, and whose coder reads a large file every turn. The simulator cuts every prompt to
//! `num_ctx` as Ollama does and answers the coder according to what it kept, so whether the
//! task and the design reached the model is the simulator's finding, not agentrun's.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Sim, agentrun, events, of_type};

/// The coder's model; no other agent uses it, so its slot's cache is the coder's alone.
const CODER_MODEL: &str = "qwen3-coder:14b";

/// Coder turns in a run.
const CODER_TURNS: usize = 12;

/// The mark of the architect's design, which the coder must always see.
const DESIGN_MARK: &str = "DESIGN-7f3a";

/// A workflow: architect, then coder and a failing test command in a loop. `context` is the
/// coder's `context:` line (or nothing).
fn workflow(dir: &Path, context: &str, num_ctx: u64) -> PathBuf {
    // About 12 KB of failing test output, capped by the run to its head and tail (8 KB).
    // Each run's output differs (its number), as real test output does from fix to fix.
    let failing = "import sys\nwith open('runs.txt', 'a+') as f: f.write('x'); f.seek(0); n = len(f.read())\n\
                   print(f'FAIL: test_slugify (test_textkit.SlugifyTest), run {n}')\n\
                   for i in range(300): print(f'  File \"textkit.py\", line {i + n}, in slugify')\n\
                   sys.exit(1)";
    let text = format!(
        r#"name: long-loop
task: Add slugify(title) to textkit.py, test-first.
agents:
  architect:
    model: "qwen3:8b"
    prompt: You are the software architect.
    options: {{ num_ctx: 8192 }}
    think: false
  coder:
    model: "{CODER_MODEL}"
    prompt: You are the programmer.
    options: {{ num_ctx: {num_ctx} }}
    tools: [read_file]
    {context}
  tests:
    kind: command
    command: [python3, -c, {failing:?}]
flow:
  start: architect
  edges:
    - {{ from: architect, to: coder }}
    - {{ from: coder, to: tests }}
    - {{ from: tests, to: end, when: pass }}
    - {{ from: tests, to: coder }}
limits:
  max_turns: {turns}
memory:
  gpu_budget: 54GB
"#,
        turns = 1 + 2 * CODER_TURNS,
    );
    let path = dir.join("long-loop.yaml");
    std::fs::write(&path, text).expect("written");
    path
}

/// The script: the architect's design; the coder reads a large file, then answers. When
/// `guarded`, only as long as the simulator kept the task and the design; once they are cut
/// it says so.
fn script(dir: &Path, guarded: bool) -> PathBuf {
    let design = format!(
        "{DESIGN_MARK}: slugify(title) lowercases the words of the title and joins them with \
         '-', dropping punctuation. {}",
        "Keep it a pure function in textkit.py. ".repeat(30)
    );
    let guard = if guarded {
        format!("kept: [\"^Task: Add slugify\", \"{DESIGN_MARK}\"]")
    } else {
        String::new()
    };
    let mut coder = String::new();
    for turn in 0..CODER_TURNS {
        coder.push_str(&format!(
            "      - tool_calls:\n          - name: read_file\n            arguments: {{ path: notes.txt }}\n      - text: \"Round {turn}: changed slugify; {}\"\n",
            "the tests should pass now. ".repeat(50)
        ));
    }
    let text = format!(
        r#"rules:
  - system: "(?i)you are the software architect"
    reply:
      text: {design:?}
  - system: "(?i)you are the programmer"
    {guard}
    replies:
{coder}  - system: "(?i)you are the programmer"
    reply:
      text: "CONTEXT-LOST: I no longer see the task or the design."
"#
    );
    let path = dir.join("script.yaml");
    std::fs::write(&path, text).expect("written");
    path
}

/// What one run left behind.
struct LoopRun {
    summary: Value,
    events: Vec<Value>,
    stderr: String,
    /// The HTML report of the run.
    report: String,
    /// The coder model's finished requests in `/sim/log`.
    coder_requests: Vec<Value>,
}

fn run_loop(context: &str) -> LoopRun {
    run_loop_with(context, true, 8192)
}

fn run_loop_with(context: &str, guarded: bool, num_ctx: u64) -> LoopRun {
    let scratch = tempfile::tempdir().expect("a temp dir");
    let workspace = scratch.path().join("project");
    std::fs::create_dir_all(&workspace).expect("a workspace");
    // A file the coder reads every turn: about 1,500 tokens.
    std::fs::write(
        workspace.join("notes.txt"),
        "slugify notes: words, dashes, no punctuation.\n".repeat(130),
    )
    .expect("written");
    let script = script(scratch.path(), guarded);
    let sim = Sim::start(&[
        "--time-scale",
        "0.01",
        "--script",
        &script.to_string_lossy(),
    ]);
    let events_path = scratch.path().join("events.jsonl");
    let report_path = scratch.path().join("report.html");
    let run = agentrun(&[
        &workflow(scratch.path(), context, num_ctx).to_string_lossy(),
        "--ollama",
        &sim.url,
        "--workspace",
        &workspace.to_string_lossy(),
        "--non-interactive",
        "--json",
        "--events",
        &events_path.to_string_lossy(),
        "--report",
        &report_path.to_string_lossy(),
    ]);
    assert!(
        !run.stdout().is_empty(),
        "agentrun failed:\n{}",
        run.stderr()
    );
    let summary = run.json();
    assert_eq!(
        summary["status"],
        "max-turns",
        "{summary:#}\n{}",
        run.stderr()
    );
    let coder_requests = sim
        .log()
        .into_iter()
        .filter(|event| {
            event["event"] == "request_finished"
                && event["model"] == CODER_MODEL
                && event["status"] == 200
                // Preloads and keep_alive refreshes have no prompt.
                && event.get("prompt_tokens_kept").is_some()
        })
        .collect();
    LoopRun {
        summary,
        events: events(&events_path),
        stderr: run.stderr(),
        report: std::fs::read_to_string(&report_path)
            .unwrap_or_else(|error| panic!("no report ({error}):\n{}", run.stderr())),
        coder_requests,
    }
}

fn coder_texts(run: &LoopRun) -> Vec<String> {
    of_type(&run.events, "turn_finished")
        .into_iter()
        .filter(|entry| entry["agent"] == "coder")
        .map(|entry| entry["text"].as_str().expect("text").to_owned())
        .collect()
}

/// Asserts the coder's model kept every message of every prompt, and so the task and the
/// pinned design; and that the run had to leave things out to manage it.
#[track_caller]
fn assert_fitted(run: &LoopRun, strategy: &str) {
    assert_eq!(run.coder_requests.len(), 2 * CODER_TURNS);
    for request in &run.coder_requests {
        assert_eq!(request["prompt_messages_dropped"], 0, "{request:#}");
        assert!(request["prompt_tokens_kept"].as_u64().expect("kept") <= 8192);
    }
    let texts = coder_texts(run);
    assert_eq!(texts.len(), CODER_TURNS);
    for text in &texts {
        assert!(
            text.starts_with("Round "),
            "the model lost its context: {text}"
        );
    }
    assert!(of_type(&run.events, "context_truncated").is_empty());
    assert_eq!(run.summary["context_cuts"], 0);
    let coder_context: Vec<&Value> = run.summary["context"]
        .as_array()
        .expect("per-turn context")
        .iter()
        .filter(|turn| turn["agent"] == "coder")
        .collect();
    assert_eq!(coder_context.len(), CODER_TURNS);
    for turn in &coder_context {
        assert_eq!(turn["strategy"], strategy);
        assert_eq!(turn["num_ctx"], 8192);
        assert!(
            turn["prompt_tokens"].as_u64().expect("tokens") <= 8192,
            "{turn:#}"
        );
    }
    let last = coder_context.last().expect("a turn");
    assert!(
        last["elided"].as_u64().expect("elided") > 0,
        "the loop outgrew the context, so old output was elided: {last:#}"
    );
    assert_eq!(
        last["pinned"], 2,
        "the design and the latest failing output"
    );
}

#[test]
fn a_budget_keeps_the_task_and_the_pinned_design_in_every_prompt_of_a_long_loop() {
    let run =
        run_loop("context: { strategy: budget, pin: [architect, { agent: tests, failed: true }] }");
    assert_fitted(&run, "budget");
    let last = run.summary["context"]
        .as_array()
        .expect("context")
        .last()
        .expect("a turn")
        .clone();
    assert!(last["dropped"].as_u64().expect("dropped") > 0, "{last:#}");
}

#[test]
fn a_summarized_context_folds_what_it_drops_into_a_running_summary() {
    let run = run_loop(
        "context: { strategy: summarize, summarizer: architect, pin: [architect, { agent: tests, failed: true }] }",
    );
    assert_fitted(&run, "summarize");
    let folded = of_type(&run.events, "context_summarized");
    assert!(!folded.is_empty());
    assert!(
        folded
            .iter()
            .all(|event| event["agent"] == "coder" && event["model"] == "qwen3:8b")
    );
    let last = run.summary["context"]
        .as_array()
        .expect("context")
        .iter()
        .rfind(|turn| turn["agent"] == "coder")
        .expect("a coder turn")
        .clone();
    assert!(
        last["summarized"].as_u64().expect("summarized") > 0,
        "{last:#}"
    );
}

#[test]
fn a_message_count_window_is_cut_by_the_server_and_the_run_says_so() {
    let run = run_loop("context_window: 12");
    // The simulator cut the oldest messages, the task first, and the model lost it.
    assert!(run.coder_requests.iter().any(|request| {
        request["prompt_messages_dropped"]
            .as_u64()
            .expect("dropped")
            > 0
    }));
    assert!(
        coder_texts(&run)
            .iter()
            .any(|text| text.starts_with("CONTEXT-LOST"))
    );
    let cuts = of_type(&run.events, "context_truncated");
    assert!(!cuts.is_empty());
    for cut in &cuts {
        assert_eq!(cut["agent"], "coder");
        assert_eq!(cut["num_ctx"], 8192);
        assert!(cut["sent_tokens"].as_u64().expect("sent") > 8192, "{cut:#}");
        assert!(
            cut["fix"]
                .as_str()
                .expect("fix")
                .contains("strategy: budget"),
            "{cut:#}"
        );
    }
    assert!(run.summary["context_cuts"].as_u64().expect("cuts") > 0);
    assert!(
        run.report
            .contains("cut by the server: the oldest messages went unseen")
    );
    assert!(
        run.stderr.contains("coder's prompt") && run.stderr.contains("strategy: budget"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_budget_evaluates_fewer_prompt_tokens_than_a_sliding_window() {
    let per_turn = |run: &LoopRun| -> Vec<u64> {
        run.coder_requests
            .iter()
            .map(|request| {
                request["prompt_tokens_evaluated"]
                    .as_u64()
                    .expect("evaluated")
            })
            .collect()
    };
    // The same replies whatever the model still sees, so both runs make the same requests;
    // a context that holds several turns, so a sliding window has something to re-read.
    let window = per_turn(&run_loop_with(
        "context: { strategy: window }",
        false,
        16_384,
    ));
    let budget = per_turn(&run_loop_with(
        "context: { strategy: budget, pin: [architect, { agent: tests, failed: true }] }",
        false,
        16_384,
    ));
    assert_eq!(window.len(), budget.len());
    let (window_total, budget_total): (u64, u64) = (window.iter().sum(), budget.iter().sum());
    eprintln!(
        "prompt tokens evaluated per coder request, window: {window:?} (total {window_total})"
    );
    eprintln!(
        "prompt tokens evaluated per coder request, budget: {budget:?} (total {budget_total})"
    );
    assert!(
        budget_total < window_total,
        "{budget_total} >= {window_total}"
    );
}
