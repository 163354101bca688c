//! Untrusted model output through the whole path (simulator, HTTP backend, tool loop,
//! tools): shell metacharacters stay literal arguments, oversized or mistyped arguments
//! are refused, and what is recorded stays bounded.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Sim, agentrun, events, of_type};

const WORKFLOW: &str = r#"
name: untrusted
task: Try everything.
agents:
  coder:
    model: qwen3:1.7b
    prompt: You are the coder under test.
    options: { num_ctx: 4096 }
    tools: [write_file, run_command]
    allow_commands: [[echo]]
    max_tool_rounds: 2
flow:
  start: coder
  edges:
    - { from: coder, to: end }
memory: { gpu_budget: 24GB }
"#;

/// The shell-looking arguments a model sends to an allowed `echo`.
const ATTACKS: [&str; 6] = [
    "; rm -rf kept.txt",
    "&& rm kept.txt",
    "$(touch pwned)",
    "`touch pwned`",
    "| tee pwned",
    "> pwned",
];

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

/// The script: one round of hostile calls, then a plain answer.
fn script(huge_bytes: usize) -> String {
    let mut calls = String::new();
    for attack in ATTACKS {
        calls.push_str(&format!(
            "          - {{ name: run_command, arguments: {{ argv: [echo, {}] }} }}\n",
            serde_json::to_string(attack).expect("a JSON string is a YAML string")
        ));
    }
    calls.push_str(
        "          - { name: run_command, arguments: { argv: [\"echo;touch\", pwned] } }\n\
         \x20         - { name: write_file, arguments: { path: 42, content: text } }\n",
    );
    calls.push_str(&format!(
        "          - {{ name: write_file, arguments: {{ path: big.txt, content: \"{}\" }} }}\n",
        "x".repeat(huge_bytes)
    ));
    format!(
        "rules:\n  - system: \"(?i)you are the coder under test\"\n    replies:\n      \
         - tool_calls:\n{calls}      - text: \"I stop here.\"\n"
    )
}

#[test]
fn hostile_tool_calls_are_refused_or_kept_literal_and_recorded_bounded() {
    let root = tempfile::tempdir().expect("a temp dir");
    let workspace = root.path().join("workspace");
    std::fs::create_dir_all(&workspace).expect("a workspace");
    std::fs::write(workspace.join("kept.txt"), "still here").expect("written");
    let workflow = write(root.path(), "untrusted.yaml", WORKFLOW);
    // Over the 1 MiB a call's arguments may take.
    let script = write(root.path(), "script.yaml", &script(1_100_000));
    let sim = Sim::start(&["--time-scale", "0", "--script", &script.to_string_lossy()]);
    let events_path = root.path().join("events.jsonl");
    let runs = root.path().join("runs");
    let run = agentrun(&[
        &workflow.to_string_lossy(),
        "--ollama",
        &sim.url,
        "--workspace",
        &workspace.to_string_lossy(),
        "--non-interactive",
        "--json",
        "-q",
        "--runs-dir",
        &runs.to_string_lossy(),
        "--events",
        &events_path.to_string_lossy(),
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "completed", "{}", run.stderr());

    let events = events(&events_path);
    let results: Vec<(bool, &str)> = of_type(&events, "tool_result")
        .iter()
        .map(|event| {
            (
                event["ok"].as_bool().expect("ok"),
                event["output"].as_str().expect("output"),
            )
        })
        .collect();
    assert_eq!(results.len(), ATTACKS.len() + 3, "{results:?}");
    for (index, attack) in ATTACKS.iter().enumerate() {
        assert_eq!(
            results[index],
            (true, format!("exit status 0\n{attack}\n").as_str()),
            "echo printed its argument as is"
        );
    }
    let rest = &results[ATTACKS.len()..];
    assert!(
        !rest[0].0
            && rest[0]
                .1
                .contains("`echo;touch pwned` is not on the allow-list")
    );
    assert!(!rest[1].0 && rest[1].1.contains("invalid type: integer `42`"));
    assert!(
        !rest[2].0 && rest[2].1.contains("more than the 1048576 allowed"),
        "{}",
        rest[2].1
    );
    assert_eq!(
        std::fs::read_to_string(workspace.join("kept.txt")).expect("kept.txt"),
        "still here"
    );
    assert!(!workspace.join("pwned").exists());
    assert!(!workspace.join("big.txt").exists());

    // Neither the events nor the transcript keep the megabyte.
    let events_bytes = std::fs::metadata(&events_path).expect("events").len();
    assert!(events_bytes < 100_000, "{events_bytes} bytes of events");
    let run_dir = std::fs::read_dir(runs.join("runs"))
        .expect("a runs folder")
        .next()
        .expect("one run")
        .expect("an entry")
        .path();
    let transcript = std::fs::read_to_string(run_dir.join("transcript.jsonl")).expect("transcript");
    assert!(
        transcript.len() < 100_000,
        "{} bytes of transcript",
        transcript.len()
    );
    let entry: Value =
        serde_json::from_str(transcript.lines().next().expect("a turn")).expect("JSON");
    let recorded = &entry["tool_calls"][ATTACKS.len() + 2]["arguments"];
    assert_eq!(
        recorded["omitted_bytes"].as_u64().map(|n| n > 1_100_000),
        Some(true),
        "{recorded}"
    );
}
