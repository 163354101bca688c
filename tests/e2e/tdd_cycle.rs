//! The TDD loop on a real project: scripted models call the real file and command tools
//! over HTTP, the real test command runs, and the files on disk are checked afterwards.
//! Also every refusal a model can meet, and human agents at a terminal.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Sim, agentrun, agentrun_binary, events, of_type, repo_root, top_level};

/// A copy of `examples/tdd-project` in a temporary directory.
pub(crate) fn example_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    copy_dir(&repo_root().join("examples/tdd-project"), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("the example project exists") {
        let entry = entry.expect("an entry");
        let name = entry.file_name();
        if name == "__pycache__" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().expect("a file type").is_dir() {
            std::fs::create_dir_all(&target).expect("a directory");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
        }
    }
}

/// Writes a simulator script (or workflow) into `dir` and returns its path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path
}

/// One TDD cycle: a failing test, a wrong implementation, a fix, green, approval, done.
const ONE_CYCLE: &str = r#"
rules:
  - system: "(?i)you are the software architect"
    reply:
      eval_count: 200
      text: "Feature: `slugify(title)` in textkit.py, lowercase words joined by `-`. Tests first."
  - system: "(?i)you are the tester"
    replies:
      - eval_count: 260
        tool_calls:
          - name: write_file
            arguments:
              path: test_slugify.py
              content: |
                import unittest

                from textkit import slugify


                class SlugifyTest(unittest.TestCase):
                    def test_words_are_lowercased_and_joined_with_dashes(self):
                        self.assertEqual(slugify("Hello World"), "hello-world")

                    def test_punctuation_and_extra_spaces_are_dropped(self):
                        self.assertEqual(slugify("  Tests, first!  "), "tests-first")
      - eval_count: 40
        text: "Wrote test_slugify.py; it fails until `slugify` exists."
  - system: "(?i)you are the programmer"
    replies:
      - eval_count: 400
        tool_calls:
          - name: write_file
            arguments:
              path: textkit.py
              content: |
                """Small text functions, grown test-first by the agentrun TDD workflow."""


                def word_count(text):
                    """The number of words in `text`, separated by any whitespace."""
                    return len(text.split())


                def slugify(title):
                    """The title's words joined by `-`, punctuation dropped."""
                    words = "".join(c if c.isalnum() else " " for c in title).split()
                    return "-".join(words)
      - eval_count: 40
        text: "Added `slugify`."
      - eval_count: 100
        tool_calls:
          - name: edit_file
            arguments:
              path: textkit.py
              old_text: '    return "-".join(words)'
              new_text: '    return "-".join(word.lower() for word in words)'
      - eval_count: 30
        tool_calls:
          - name: run_command
            arguments: { argv: [python3, -m, unittest] }
      - eval_count: 40
        text: "Fixed: the words are lowercased. The tests pass."
  - system: "(?i)you are the reviewer"
    replies:
      - eval_count: 30
        tool_calls:
          - name: read_file
            arguments: { path: textkit.py }
      - eval_count: 60
        text: |
          It does what the tests say.
          APPROVED
  - system: "(?i)you are the router"
    reply:
      eval_count: 24
      json: { choice: done, reason: "slugify is built, tested and approved" }
"#;

const SLUGIFY_TEST: &str = r#"import unittest

from textkit import slugify


class SlugifyTest(unittest.TestCase):
    def test_words_are_lowercased_and_joined_with_dashes(self):
        self.assertEqual(slugify("Hello World"), "hello-world")

    def test_punctuation_and_extra_spaces_are_dropped(self):
        self.assertEqual(slugify("  Tests, first!  "), "tests-first")
"#;

#[test]
fn a_whole_tdd_cycle_changes_the_project_until_its_real_tests_pass() {
    let project = example_project();
    let scratch = tempfile::tempdir().expect("a temp dir");
    let script = write(scratch.path(), "script.yaml", ONE_CYCLE);
    let sim = Sim::start(&[
        "--time-scale",
        "0.02",
        "--script",
        &script.to_string_lossy(),
    ]);
    let events_path = scratch.path().join("events.jsonl");
    let repo_before = top_level(repo_root());
    let run = agentrun(&[
        "workflows/tdd.yaml",
        "--ollama",
        &sim.url,
        "--workspace",
        &project.path().to_string_lossy(),
        "--task",
        "Add `slugify(title)` to textkit.py.",
        "--non-interactive",
        "--json",
        "--events",
        &events_path.to_string_lossy(),
    ]);
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["status"], "completed", "{summary:#}");

    let events = events(&events_path);
    // A finished turn's event carries its transcript entry.
    let turns: Vec<&Value> = of_type(&events, "turn_finished");
    let speakers: Vec<&str> = turns
        .iter()
        .map(|entry| entry["agent"].as_str().expect("agent"))
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
            "router"
        ]
    );
    // The real test command: red after the wrong implementation, green after the fix.
    assert_eq!(turns[3]["passed"], false);
    let red = turns[3]["text"].as_str().expect("text");
    assert!(
        red.starts_with("`python3 -m unittest` failed (exit status 1)"),
        "{red}"
    );
    assert!(
        red.contains("AssertionError: 'Hello-World' != 'hello-world'"),
        "{red}"
    );
    assert_eq!(turns[5]["passed"], true);
    assert!(
        turns[5]["text"]
            .as_str()
            .expect("text")
            .contains("Ran 4 tests")
    );

    // Every tool call did what it was asked, and the transcript keeps each one.
    let calls: Vec<(&str, &str, bool)> = of_type(&events, "tool_result")
        .iter()
        .map(|event| {
            (
                event["agent"].as_str().expect("agent"),
                event["tool"].as_str().expect("tool"),
                event["ok"].as_bool().expect("ok"),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("tester", "write_file", true),
            ("coder", "write_file", true),
            ("coder", "edit_file", true),
            ("coder", "run_command", true),
            ("reviewer", "read_file", true),
        ]
    );
    let coder_fix = &turns[4]["tool_calls"];
    assert_eq!(coder_fix[1]["tool"], "run_command");
    assert!(
        coder_fix[1]["output"]
            .as_str()
            .expect("output")
            .starts_with("exit status 0\n"),
        "{coder_fix:#}"
    );
    assert_eq!(of_type(&events, "tool_call").len(), 5);

    // The files on disk, and the project's tests run again here.
    let read = |name: &str| std::fs::read_to_string(project.path().join(name)).expect("a file");
    assert_eq!(read("test_slugify.py"), SLUGIFY_TEST);
    let code = read("textkit.py");
    assert!(code.contains("def word_count(text):"), "{code}");
    assert!(
        code.contains(r#"    return "-".join(word.lower() for word in words)"#),
        "{code}"
    );
    let rerun = Command::new("python3")
        .args(["-m", "unittest", "-v"])
        .current_dir(project.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{report}");
    assert!(
        report.contains("Ran 4 tests")
            && report.contains("test_punctuation_and_extra_spaces_are_dropped"),
        "{report}"
    );
    // The run worked in the workspace only: nothing landed in, or changed in, the
    // directory it ran from (whatever was there before).
    assert_eq!(top_level(repo_root()), repo_before);

    // Residency around the command turns: the coder's model stayed loaded while the tests
    // ran, so its calls after the first found it resident.
    let log = sim.log();
    let coder_requests: Vec<u64> = log
        .iter()
        .filter(|event| {
            event["event"] == "request_arrived"
                && event["endpoint"] == "chat"
                && event["model"] == "qwen3-coder:32b"
        })
        .map(|event| event["request_id"].as_u64().expect("request id"))
        .collect();
    assert_eq!(
        coder_requests.len(),
        5,
        "two chats in the first coder turn, three in the second"
    );
    for event in log
        .iter()
        .filter(|event| event["event"] == "request_finished")
    {
        let id = event["request_id"].as_u64().expect("request id");
        if coder_requests[1..].contains(&id) {
            // Loading the coder's model takes seconds of simulated time; a busy machine
            // adds only scheduling jitter (well under a simulated second).
            let waited_s = event["load_duration_ns"].as_u64().unwrap_or(0) as f64 / 1e9;
            assert!(
                waited_s < 1.0,
                "coder request {id} waited {waited_s} s for a load"
            );
        }
    }
}

/// A workflow whose agents meet every refusal: a coder with file tools and a small
/// allow-list, and a careful agent whose commands need a person's approval.
const REFUSALS: &str = r#"
name: refusals
task: Try everything.
agents:
  coder:
    model: qwen3:1.7b
    prompt: You are the coder under test.
    options: { num_ctx: 4096 }
    tools: [read_file, write_file, run_command]
    allow_commands: [[sleep], [sh, -c]]
    timeout: 1s
    max_tool_rounds: 3
  careful:
    model: qwen3:1.7b
    prompt: You are the careful one.
    options: { num_ctx: 4096 }
    tools: [run_command]
    allow_commands: [[echo]]
    approve: ask
flow:
  start: coder
  edges:
    - { from: coder, to: careful }
    - { from: careful, to: end }
memory: { gpu_budget: 24GB }
"#;

const REFUSAL_SCRIPT: &str = r#"
rules:
  - system: "(?i)you are the coder under test"
    replies:
      - tool_calls:
          - { name: read_file, arguments: { path: ../outside/secret.txt } }
          - { name: read_file, arguments: { path: /etc/hostname } }
          - { name: read_file, arguments: { path: out/secret.txt } }
          - { name: write_file, arguments: { path: out/planted.txt, content: gotcha } }
          - { name: write_file, arguments: { path: notes.txt } }
          - { name: delete_everything, arguments: {} }
          - { name: run_command, arguments: { argv: [rm, -rf, .] } }
          - { name: run_command, arguments: { argv: [sleep, "30"] } }
          - { name: run_command, arguments: { argv: [sh, -c, "yes 0123456789 | head -c 3000000"] } }
      - text: "Let me look once more."
        tool_calls:
          - { name: read_file, arguments: { path: kept.txt } }
  - system: "(?i)you are the careful one"
    replies:
      - tool_calls:
          - { name: run_command, arguments: { argv: [echo, hi] } }
      - text: "Nobody approved; I stop here."
"#;

#[test]
fn every_refusal_goes_back_to_the_model_and_the_run_goes_on() {
    let root = tempfile::tempdir().expect("a temp dir");
    let workspace = root.path().join("workspace");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&workspace).expect("a workspace");
    std::fs::create_dir_all(&outside).expect("a directory outside");
    std::fs::write(outside.join("secret.txt"), "the secret").expect("written");
    std::fs::write(workspace.join("kept.txt"), "still here").expect("written");
    std::os::unix::fs::symlink(&outside, workspace.join("out")).expect("a link out");
    let workflow = write(root.path(), "refusals.yaml", REFUSALS);
    let script = write(root.path(), "script.yaml", REFUSAL_SCRIPT);
    let sim = Sim::start(&["--time-scale", "0", "--script", &script.to_string_lossy()]);
    let events_path = root.path().join("events.jsonl");
    let run = agentrun(&[
        &workflow.to_string_lossy(),
        "--ollama",
        &sim.url,
        "--workspace",
        &workspace.to_string_lossy(),
        "--non-interactive",
        "--json",
        "--events",
        &events_path.to_string_lossy(),
    ]);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "completed", "{}", run.stderr());

    let events = events(&events_path);
    let results: Vec<(&str, bool, &str)> = of_type(&events, "tool_result")
        .iter()
        .map(|event| {
            (
                event["tool"].as_str().expect("tool"),
                event["ok"].as_bool().expect("ok"),
                event["output"].as_str().expect("output"),
            )
        })
        .collect();
    let expected_gists = [
        (
            "read_file",
            false,
            "goes up with `..`; paths must stay inside the workspace",
        ),
        ("read_file", false, "`/etc/hostname` is an absolute path"),
        (
            "read_file",
            false,
            "`out/secret.txt` leads outside the workspace through a symbolic link",
        ),
        (
            "write_file",
            false,
            "`out/planted.txt` leads outside the workspace",
        ),
        (
            "write_file",
            false,
            "error: invalid arguments: missing field `content`",
        ),
        (
            "delete_everything",
            false,
            "there is no tool `delete_everything`; the tools are: read_file, write_file, run_command",
        ),
        (
            "run_command",
            false,
            "`rm -rf .` is not on the allow-list; a command must start with one of: `sleep`, `sh -c`",
        ),
        (
            "run_command",
            false,
            "`sleep 30` timed out after 1s and was stopped",
        ),
        ("run_command", true, "exit status 0\n0123456789\n"),
    ];
    for (index, (tool, ok, gist)) in expected_gists.iter().enumerate() {
        let (found_tool, found_ok, output) = results[index];
        assert_eq!(
            (found_tool, found_ok),
            (*tool, *ok),
            "call {index}: {output}"
        );
        assert!(
            output.contains(gist),
            "call {index}: `{output}` does not say `{gist}`"
        );
    }
    // The flood came back capped, head and tail kept.
    let flood = results[8].2;
    assert!(
        flood.len() < 9_000 && flood.contains("bytes omitted"),
        "{} bytes",
        flood.len()
    );
    // The model that never stops: two more rounds of reads make three, then its turn is
    // cut off.
    let reads = results[9..11]
        .iter()
        .filter(|r| r.0 == "read_file" && r.1)
        .count();
    assert_eq!(reads, 2, "{results:#?}");
    let limit = of_type(&events, "tool_limit");
    assert_eq!(limit.len(), 1);
    assert_eq!(limit[0]["rounds"], 3);
    let coder_turn = of_type(&events, "turn_finished")[0];
    assert!(
        coder_turn["text"]
            .as_str()
            .expect("text")
            .ends_with("[cut off: still calling tools after 3 rounds (max_tool_rounds); the last calls (read_file) were not run]"),
        "{coder_turn:#}"
    );
    // Approval needed, nobody to ask.
    assert_eq!(results.len(), 12, "{results:#?}");
    assert_eq!(results[11].0, "run_command");
    assert!(results[11].2.contains(
        "`echo hi` needs a person's approval (`approve: ask`), and this run is non-interactive"
    ));
    // Nothing outside was read into the conversation or changed; nothing inside was removed.
    assert!(!results.iter().any(|r| r.2.contains("the secret")));
    assert!(!outside.join("planted.txt").exists());
    assert!(!workspace.join("notes.txt").exists());
    assert_eq!(
        std::fs::read_to_string(workspace.join("kept.txt")).expect("kept"),
        "still here"
    );
    assert!(
        run.stderr()
            .contains("coder was still calling tools after 3 rounds"),
        "{}",
        run.stderr()
    );
}

/// A gate a person keeps: a check, then a human router.
const GATE: &str = r#"
name: gate
task: Decide.
agents:
  check:
    kind: command
    command: [echo, all green]
  person:
    kind: human
    prompt: Ship it?
    choices: [ship, again]
flow:
  start: check
  edges:
    - { from: check, to: person }
    - { from: person, to: end, when: { choice: ship } }
    - { from: person, to: check, when: { choice: again } }
memory: { gpu_budget: 24GB }
"#;

#[test]
fn a_human_agent_answers_from_the_command_line_or_the_terminal() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflow = write(dir.path(), "gate.yaml", GATE);
    let workflow = workflow.to_string_lossy().into_owned();
    let sim = Sim::start(&["--time-scale", "0"]);
    let common = [
        workflow.as_str(),
        "--ollama",
        &sim.url,
        "--workspace",
        &dir.path().to_string_lossy(),
        "--json",
    ]
    .map(str::to_owned);
    let with = |extra: &[&str]| -> Vec<String> {
        common
            .iter()
            .cloned()
            .chain(extra.iter().map(|arg| (*arg).to_owned()))
            .collect()
    };

    // Canned answers from the command line, in order.
    let args = with(&[
        "--non-interactive",
        "--answer",
        "person=again",
        "--answer",
        "person=ship",
    ]);
    let run = agentrun(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(0);
    assert_eq!(run.json()["turns"], 4);

    // No answer left and nobody to ask: the run fails and says how to give one.
    let args = with(&["--non-interactive", "--answer", "person=again"]);
    let run = agentrun(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(1);
    assert_eq!(run.json()["status"], "failed");
    assert!(
        run.stderr().contains("--answer person=TEXT"),
        "{}",
        run.stderr()
    );

    // A person at the terminal: a wrong answer is asked again, then taken.
    let mut child = Command::new(agentrun_binary())
        .args(with(&[]))
        .current_dir(repo_root())
        .env_remove("OLLAMA_HOST")
        .env("AGENTRUN_DIR", dir.path().join("runs"))
        .env("AGENTRUN_HOME", dir.path().join("home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentrun starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(b"maybe\nship\n")
        .expect("answers written");
    let output = child.wait_with_output().expect("agentrun ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("? person asks you:"), "{stderr}");
    assert!(
        stderr.contains("[check]: `echo all green` passed (exit status 0)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`maybe` is not one of the choices"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(summary["turns"], 2);

    // An answer for an agent that is not a person is refused before the run.
    let args = with(&["--answer", "check=yes"]);
    let run = agentrun(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.expect_code(2);
    assert!(
        run.stderr().contains("answers are for human agents"),
        "{}",
        run.stderr()
    );
}
