//! Whole runs with command, human and tool-using agents, against a scripted model.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use agentrun_core::{
    Console, Executor, Message, Role, RunOptions, RunStatus, Tool, ToolCall, ToolContext,
    ToolError, ToolSpec, parse_arguments,
};
use agentrun_spec::Workflow;
use async_trait::async_trait;
use serde_json::json;

mod support;
use support::FakeServer;

/// A model server with one small model whose replies are scripted in order.
fn scripted(replies: Vec<Message>) -> Arc<FakeServer> {
    let replies = Mutex::new(VecDeque::from(replies));
    Arc::new(FakeServer::new(move |_| {
        replies
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or_else(|| Message::assistant("nothing more to say"))
    }))
}

fn calling(name: &str, arguments: serde_json::Value) -> Message {
    Message {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: None,
            name: name.to_owned(),
            arguments,
        }],
        ..Message::assistant("")
    }
}

fn workflow(yaml: &str) -> Workflow {
    Workflow::from_yaml_str(yaml, Path::new("w.yaml")).expect("a valid workflow")
}

fn options(workspace: &Path) -> RunOptions {
    let mut options = RunOptions::new("make the check pass");
    options.workspace = Some(workspace.to_path_buf());
    options.unload_at_end = false;
    options
}

const FIX_LOOP: &str = "\
name: fix
agents:
  check:
    kind: command
    command: [sh, -c, 'test -f ok && echo \"found ok; SECRET=$SECRET_TOKEN GIVEN=$GIVEN\"']
    env: { GIVEN: from-the-workflow }
  coder:
    model: tiny:1b
    prompt: You make the check pass.
    options: { num_ctx: 2048 }
    tools: [write_file]
flow:
  start: check
  edges:
    - { from: check, to: end, when: pass }
    - { from: check, to: coder, when: fail }
    - { from: coder, to: check }
memory: { gpu_budget: 24GB }
# About agent kinds; the sandbox is tested through its real launcher elsewhere.
sandbox: { mode: off }
";

#[tokio::test]
async fn a_command_agent_branches_on_its_result_in_the_workspace() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let backend = scripted(vec![
        calling("write_file", json!({"path": "ok", "content": ""})),
        Message::assistant("Created `ok`."),
    ]);
    let outcome = Executor::new(workflow(FIX_LOOP), backend)
        .run(options(dir.path()))
        .await
        .expect("the run starts");
    assert_eq!(
        outcome.summary.status,
        RunStatus::Completed,
        "{}",
        outcome.summary.reason
    );
    let turns: Vec<(&str, Option<bool>, usize)> = outcome
        .transcript
        .iter()
        .map(|e| (e.agent.as_str(), e.passed, e.tool_calls.len()))
        .collect();
    assert_eq!(
        turns,
        [
            ("check", Some(false), 0),
            ("coder", None, 1),
            ("check", Some(true), 0)
        ]
    );
    assert!(
        outcome.transcript[0].text.starts_with("`sh -c"),
        "{}",
        outcome.transcript[0].text
    );
    assert!(
        outcome.transcript[0]
            .text
            .contains("failed (exit status 1)")
    );
    let last = &outcome.transcript[2].text;
    assert!(last.contains("passed (exit status 0)"), "{last}");
    assert!(
        last.contains("SECRET= GIVEN=from-the-workflow"),
        "only the workflow's variables reach the command: {last}"
    );
    assert!(dir.path().join("ok").exists());
}

const SLOW_CHECK: &str = "\
name: slow-check
agents:
  check:
    kind: command
    command: [sh, -c, 'sleep 0.2; exit 1']
flow:
  start: check
  edges:
    - { from: check, to: end, when: pass }
memory: { gpu_budget: 24GB }
";

#[tokio::test]
async fn a_command_turn_reports_real_seconds_on_a_time_scaled_run_and_no_negative_zero() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut options = options(dir.path());
    // One reported second takes 10 ms: the clock of a time-scaled simulator.
    options.time_scale = 0.01;
    let outcome = Executor::new(workflow(SLOW_CHECK), scripted(Vec::new()))
        .run(options)
        .await
        .expect("the run starts");
    // The command fails and no edge takes a failure: the run fails after one turn.
    assert_eq!(outcome.summary.status, RunStatus::Failed);
    let seconds = outcome.transcript[0].generation_s;
    assert!(
        (0.2..5.0).contains(&seconds),
        "a 0.2 s command is reported as {seconds} s"
    );
    assert_eq!(outcome.summary.agents["check"].generation_s, seconds);
    // Scaled, the run's clock says the turn took about 20 s.
    assert!(outcome.summary.wall_s >= 20.0, "{}", outcome.summary.wall_s);
    let summary = &outcome.summary;
    for (field, value) in [
        ("avoidable_wait_s", summary.avoidable_wait_s),
        ("load_wait_s", summary.load_wait_s),
    ] {
        assert!(
            value == 0.0 && value.is_sign_positive(),
            "{field} is {value:?}"
        );
        assert_eq!(format!("{value:.1}"), "0.0", "{field}");
    }
}

#[tokio::test]
async fn a_missing_workspace_stops_the_run_before_it_starts() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let result = Executor::new(workflow(FIX_LOOP), scripted(Vec::new()))
        .run(options(&dir.path().join("nowhere")))
        .await;
    let error = result.expect_err("an error").to_string();
    assert!(error.starts_with("cannot use the workspace"), "{error}");
}

const HUMAN_GATE: &str = "\
name: gate
agents:
  check:
    kind: command
    command: [echo, checked]
  person:
    kind: human
    prompt: Ship it?
    choices: [ship, again]
    answers: [again]
flow:
  start: check
  edges:
    - { from: check, to: person }
    - { from: person, to: end, when: { choice: ship } }
    - { from: person, to: check, when: { choice: again } }
memory: { gpu_budget: 24GB }
# About agent kinds; the sandbox is tested through its real launcher elsewhere.
sandbox: { mode: off }
";

#[tokio::test]
async fn a_non_interactive_human_uses_its_answers_then_fails_clearly() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let outcome = Executor::new(workflow(HUMAN_GATE), scripted(Vec::new()))
        .run(options(dir.path()))
        .await
        .expect("the run starts");
    assert_eq!(outcome.summary.status, RunStatus::Failed);
    let reason = &outcome.summary.reason;
    assert!(
        reason.contains("'person' needs a person's answer")
            && reason.contains("--answer person=TEXT"),
        "{reason}"
    );
    let choices: Vec<Option<&str>> = outcome
        .transcript
        .iter()
        .map(|e| e.choice.as_deref())
        .collect();
    assert_eq!(
        choices,
        [None, Some("again"), None],
        "the canned answer was used once"
    );
}

/// A person who answers from a list and remembers what was asked.
struct Person {
    answers: Mutex<VecDeque<&'static str>>,
    asked: Mutex<Vec<String>>,
}

#[async_trait]
impl Console for Person {
    async fn ask(&self, agent: &str, question: &str) -> Option<String> {
        self.asked
            .lock()
            .expect("lock")
            .push(format!("{agent}: {question}"));
        self.answers
            .lock()
            .expect("lock")
            .pop_front()
            .map(str::to_owned)
    }
}

#[tokio::test]
async fn an_interactive_human_is_asked_until_the_answer_is_a_choice() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let person = Arc::new(Person {
        answers: Mutex::new(VecDeque::from(["maybe", "SHIP"])),
        asked: Mutex::default(),
    });
    let outcome = Executor::new(workflow(HUMAN_GATE), scripted(Vec::new()))
        .with_console(person.clone())
        .run(options(dir.path()))
        .await
        .expect("the run starts");
    assert_eq!(
        outcome.summary.status,
        RunStatus::Completed,
        "{}",
        outcome.summary.reason
    );
    let choices: Vec<Option<&str>> = outcome
        .transcript
        .iter()
        .map(|e| e.choice.as_deref())
        .collect();
    assert_eq!(choices, [None, Some("again"), None, Some("ship")]);
    let asked = person.asked.lock().expect("lock");
    assert_eq!(asked.len(), 2);
    assert!(
        asked[0].starts_with("person: Ship it?\n[check]: `echo checked` passed"),
        "{}",
        asked[0]
    );
    assert!(asked[0].ends_with("Choose one of: ship, again"));
    assert_eq!(
        asked[1],
        "person: `maybe` is not one of the choices; answer with one of: ship, again"
    );
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Shout {
    /// The words to shout.
    words: String,
}

/// A custom tool registered from Rust.
struct Shouter;

#[async_trait]
impl Tool for Shouter {
    fn spec(&self) -> ToolSpec {
        ToolSpec::for_parameters::<Shout>("shout", "Shouts the words.")
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        _: &ToolContext<'_>,
    ) -> Result<String, ToolError> {
        let shout: Shout = parse_arguments(arguments)?;
        Ok(shout.words.to_uppercase())
    }
}

#[tokio::test]
async fn a_custom_tool_registered_on_the_executor_is_called() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let yaml = "\
name: custom
agents:
  crier:
    model: tiny:1b
    prompt: You shout.
    options: { num_ctx: 2048 }
flow:
  start: crier
  edges:
    - { from: crier, to: end }
memory: { gpu_budget: 24GB }
";
    let backend = scripted(vec![
        calling("shout", json!({"words": "hello"})),
        Message::assistant("I shouted."),
    ]);
    let outcome = Executor::new(workflow(yaml), backend)
        .with_tool("crier", Arc::new(Shouter))
        .run(options(dir.path()))
        .await
        .expect("the run starts");
    assert_eq!(outcome.summary.status, RunStatus::Completed);
    let record = &outcome.transcript[0].tool_calls[0];
    assert_eq!(
        (record.tool.as_str(), record.ok, record.output.as_str()),
        ("shout", true, "HELLO")
    );
}

#[tokio::test]
async fn a_command_whose_sandbox_cannot_be_given_fails_its_turn_without_running() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut refused = workflow(
        "\
name: refused
agents:
  check:
    kind: command
    command: [sh, -c, 'touch ran']
flow:
  start: check
  edges:
    - { from: check, to: end }
memory: { gpu_budget: 24GB }
",
    );
    // A container without an image cannot be started (a loaded file would be refused
    // earlier, at validation).
    refused.sandbox.mode = agentrun_spec::SandboxMode::Container;
    let outcome = Executor::new(refused, scripted(Vec::new()))
        .run(options(dir.path()))
        .await
        .expect("the run starts");
    assert_eq!(outcome.summary.status, RunStatus::Completed);
    let entry = &outcome.transcript[0];
    assert_eq!(entry.passed, Some(false));
    assert!(entry.text.contains("it was not run"), "{}", entry.text);
    assert!(entry.text.contains("`sandbox: off`"), "{}", entry.text);
    assert!(!dir.path().join("ran").exists());
}
