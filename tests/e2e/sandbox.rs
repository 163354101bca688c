//! The sandbox end to end: a test suite whose tests write outside the workspace, read a
//! planted secret under a temporary `HOME`, and connect to a listener on the host's
//! loopback, run by a command agent and through `run_command`, under the default sandbox
//! and under `sandbox: off`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Sim, agentrun_with, events, of_type};

/// A command agent runs the suite; then a coder runs the secret test through `run_command`.
const WORKFLOW: &str = r#"
name: confined
task: Run the tests.
agents:
  tests:
    kind: command
    command: [python3, -m, unittest, -v]
    timeout: 60s
  coder:
    model: qwen3:1.7b
    prompt: You are the coder under test.
    options: { num_ctx: 4096 }
    tools: [run_command]
    allow_commands: [[python3, -m, unittest]]
    max_tool_rounds: 2
flow:
  start: tests
  edges:
    - { from: tests, to: coder }
    - { from: coder, to: end }
memory: { gpu_budget: 24GB }
"#;

const SCRIPT: &str = r#"
rules:
  - system: "(?i)you are the coder under test"
    replies:
      - tool_calls:
          - { name: run_command, arguments: { argv: [python3, -m, unittest, test_read_secret] } }
      - text: "Done."
"#;

/// The suite, with the paths and port it probes written in.
fn suite(workspace: &Path, outside: &Path, port: u16) {
    let files = [
        (
            "test_write_outside.py",
            format!(
                "import unittest\n\nclass WriteOutside(unittest.TestCase):\n    def test_write(self):\n        with open({:?}, 'w') as f:\n            f.write('escaped')\n",
                outside.join("escaped.txt")
            ),
        ),
        (
            "test_read_secret.py",
            "import os, unittest\n\nclass ReadSecret(unittest.TestCase):\n    def test_read(self):\n        with open(os.path.expanduser('~/.ssh/id_ed25519')) as f:\n            self.assertIn('KEY', f.read())\n"
                .to_owned(),
        ),
        (
            "test_host_loopback.py",
            format!(
                "import socket, unittest\n\nclass HostLoopback(unittest.TestCase):\n    def test_connect(self):\n        socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
            ),
        ),
        (
            "test_own_loopback.py",
            "import socket, threading, unittest\n\nclass OwnLoopback(unittest.TestCase):\n    def test_serve_and_connect(self):\n        def answer(server):\n            connection, _ = server.accept()\n            with connection:\n                connection.sendall(b'pong')\n\n        with socket.socket() as server:\n            server.bind(('127.0.0.1', 0))\n            server.listen()\n            threading.Thread(target=answer, args=(server,), daemon=True).start()\n            with socket.create_connection(server.getsockname(), timeout=5) as client:\n                self.assertEqual(client.recv(4), b'pong')\n"
                .to_owned(),
        ),
    ];
    for (name, text) in files {
        std::fs::write(workspace.join(name), text).expect("a test file");
    }
}

/// A finished run of the suite.
struct Outcome {
    stderr: String,
    summary: Value,
    events: Vec<Value>,
    transcript: Vec<Value>,
    escaped: bool,
}

fn run_suite(agent_sandbox: Option<&str>) -> Outcome {
    let root = tempfile::tempdir().expect("a temp dir");
    let root_path = root.path().canonicalize().expect("canonical");
    let workspace = root_path.join("workspace");
    let home = root_path.join("home");
    let outside = root_path.join("outside");
    for dir in [&workspace, &home.join(".ssh"), &outside] {
        std::fs::create_dir_all(dir).expect("a directory");
    }
    std::fs::write(home.join(".ssh/id_ed25519"), "PRIVATE KEY").expect("the planted secret");
    let listener = TcpListener::bind("127.0.0.1:0").expect("a listener on the host");
    let port = listener.local_addr().expect("an address").port();
    suite(&workspace, &outside, port);

    let workflow_text = match agent_sandbox {
        Some(mode) => WORKFLOW
            .replace(
                "    timeout: 60s\n",
                &format!("    timeout: 60s\n    sandbox: {mode}\n"),
            )
            .replace(
                "    max_tool_rounds: 2\n",
                &format!("    max_tool_rounds: 2\n    sandbox: {mode}\n"),
            ),
        None => WORKFLOW.to_owned(),
    };
    let workflow = write(&root_path, "confined.yaml", &workflow_text);
    let script = write(&root_path, "script.yaml", SCRIPT);
    let sim = Sim::start(&["--time-scale", "0", "--script", &script.to_string_lossy()]);
    let events_path = root_path.join("events.jsonl");
    let runs = root_path.join("runs");
    let run = agentrun_with(
        &root_path,
        &[
            &workflow.to_string_lossy(),
            "--ollama",
            &sim.url,
            "--workspace",
            &workspace.to_string_lossy(),
            "--non-interactive",
            "--json",
            "--runs-dir",
            &runs.to_string_lossy(),
            "--events",
            &events_path.to_string_lossy(),
        ],
        &[("HOME", &home.to_string_lossy())],
    );
    run.expect_code(0);
    let run_dir = std::fs::read_dir(runs.join("runs"))
        .expect("a runs folder")
        .next()
        .expect("one run")
        .expect("an entry")
        .path();
    let transcript = std::fs::read_to_string(run_dir.join("transcript.jsonl"))
        .expect("a transcript")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    drop(listener);
    Outcome {
        stderr: run.stderr(),
        summary: run.json(),
        events: events(&events_path),
        transcript,
        escaped: outside.join("escaped.txt").exists(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

/// The text of the transcript entry of `agent`.
fn entry_text<'a>(outcome: &'a Outcome, agent: &str) -> &'a str {
    outcome
        .transcript
        .iter()
        .find(|entry| entry["agent"] == agent)
        .and_then(|entry| entry["text"].as_str())
        .unwrap_or_else(|| panic!("no transcript entry of {agent}: {:#?}", outcome.transcript))
}

fn run_command_output(outcome: &Outcome) -> String {
    let results = of_type(&outcome.events, "tool_result");
    assert_eq!(results.len(), 1, "{results:#?}");
    results[0]["output"].as_str().expect("an output").to_owned()
}

#[test]
fn the_default_sandbox_stops_escapes_and_the_run_goes_on() {
    let outcome = run_suite(None);
    assert_eq!(outcome.summary["status"], "completed", "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("tests runs its commands in sandbox `workspace-write`"),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.escaped, "a test wrote outside the workspace");

    let text = entry_text(&outcome, "tests");
    assert!(
        text.starts_with("`python3 -m unittest -v` failed"),
        "{text}"
    );
    assert!(text.contains("FAILED (errors=3)"), "{text}");
    for failed in ["test_write ", "test_read ", "test_connect "] {
        assert!(text.contains(&format!("ERROR: {failed}")), "{text}");
    }
    assert!(!text.contains("ERROR: test_serve_and_connect"), "{text}");
    assert!(text.contains("Permission denied"), "{text}");
    assert!(text.contains("Connection refused"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(text.contains("[sandbox: workspace-write]"), "{text}");
    // The turn's event carries the same text.
    let finished = of_type(&outcome.events, "turn_finished");
    assert!(finished.iter().any(|event| {
        event["agent"] == "tests"
            && event["text"]
                .as_str()
                .is_some_and(|event_text| event_text.contains("[sandbox: workspace-write]"))
    }));

    let output = run_command_output(&outcome);
    assert!(output.starts_with("exit status 1\n"), "{output}");
    assert!(output.contains("PermissionError"), "{output}");
    assert!(output.contains("[sandbox: workspace-write]"), "{output}");
    // The transcript keeps what went back to the model.
    let kept = outcome
        .transcript
        .iter()
        .find(|entry| entry["agent"] == "coder")
        .and_then(|entry| entry["tool_calls"][0]["output"].as_str())
        .unwrap_or_default();
    assert_eq!(kept, output);
}

#[test]
fn with_the_sandbox_off_the_same_tests_pass() {
    let outcome = run_suite(Some("off"));
    assert_eq!(outcome.summary["status"], "completed", "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("warning: tests runs its commands WITHOUT a sandbox"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.escaped,
        "with the sandbox off the test writes outside"
    );
    let text = entry_text(&outcome, "tests");
    assert!(
        text.starts_with("`python3 -m unittest -v` passed"),
        "{text}"
    );
    assert!(text.contains("Ran 4 tests"), "{text}");
    assert!(!text.contains("[sandbox"), "{text}");
    let output = run_command_output(&outcome);
    assert!(output.starts_with("exit status 0\n"), "{output}");
}

#[test]
fn plan_says_which_sandbox_each_agent_gets() {
    let root = tempfile::tempdir().expect("a temp dir");
    let text = WORKFLOW.replace(
        "    max_tool_rounds: 2\n",
        "    max_tool_rounds: 2\n    sandbox: network\n",
    );
    let workflow = write(root.path(), "confined.yaml", &text);
    let run = agentrun_with(
        root.path(),
        &[
            "plan",
            &workflow.to_string_lossy(),
            "--ollama",
            "http://127.0.0.1:9",
        ],
        &[],
    );
    run.expect_code(0);
    let stdout = run.stdout();
    assert!(
        stdout.contains("Sandboxes of the agents' commands:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tests runs its commands in sandbox `workspace-write`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("coder runs its commands in sandbox `network`"),
        "{stdout}"
    );
}
