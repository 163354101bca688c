//! `--sim` without a reply script: a dry run whose replies are drawn from the workflow's
//! `simulation` section, so any valid workflow walks its edges to its end.

use std::path::Path;

use crate::support::{agentrun_in, events, of_type};

/// A writer/critic/editor team with a command check and a publishing router; the check's
/// command would always fail if it ran.
const ESSAY: &str = r#"
name: essay
task: Write a short essay on running language models locally.
agents:
  writer: { model: 'qwen3:8b', prompt: You write the essay., options: { num_ctx: 8192 } }
  critic:
    model: 'qwen3:14b'
    prompt: You criticise the draft; say APPROVED when it is ready.
    options: { num_ctx: 8192 }
  editor: { model: 'qwen3:4b', prompt: You polish the approved draft., options: { num_ctx: 8192 } }
  check: { kind: command, command: ['false'] }
  publisher:
    model: 'qwen3:1.7b'
    prompt: You decide whether the essay is published.
    options: { num_ctx: 4096 }
    choices: [publish, revise]
flow:
  start: writer
  edges:
    - { from: writer, to: critic }
    - { from: critic, to: editor, when: { contains: APPROVED } }
    - { from: critic, to: writer }
    - { from: editor, to: check }
    - { from: check, to: publisher, when: pass }
    - { from: check, to: editor, when: fail }
    - { from: publisher, to: end, when: { choice: publish } }
    - { from: publisher, to: writer, when: { choice: revise } }
limits: { max_turns: 60 }
memory: { gpu_budget: 54GB }
"#;

const ESSAY_SIMULATION: &str = "\
simulation:
  agents:
    critic: { match_rate: 0.4 }
    check: { pass_rate: 0.8 }
    publisher: { choices: { publish: 0.7, revise: 0.3 } }
";

/// Runs `workflow` with `--sim` and no script from a fresh directory; its summary, events
/// and what it printed.
fn dry_run(dir: &Path, workflow: &str) -> (serde_json::Value, Vec<serde_json::Value>, String) {
    let path = dir.join("essay.yaml");
    std::fs::write(&path, workflow).expect("written");
    let events_path = dir.join("events.jsonl");
    let run = agentrun_in(
        dir,
        &[
            "essay.yaml",
            "--sim",
            "--time-scale",
            "0.0005",
            "--json",
            "--events",
            &events_path.to_string_lossy(),
        ],
    );
    run.expect_code(0);
    (run.json(), events(&events_path), run.stderr())
}

fn speakers(events: &[serde_json::Value]) -> Vec<String> {
    of_type(events, "turn_started")
        .iter()
        .map(|event| event["agent"].as_str().expect("agent").to_owned())
        .collect()
}

#[test]
fn a_dry_run_draws_replies_from_the_simulation_section_and_reaches_the_end() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (summary, events, stderr) = dry_run(dir.path(), &format!("{ESSAY}{ESSAY_SIMULATION}"));
    assert_eq!(summary["status"], "completed", "{summary:#}\n{stderr}");
    assert!(
        stderr.contains("the replies are simulated"),
        "the run says so:\n{stderr}"
    );
    let speakers = speakers(&events);
    // Every agent spoke, the loops back to the writer included, and the publisher ended
    // the run.
    for agent in ["writer", "critic", "editor", "check", "publisher"] {
        assert!(speakers.iter().any(|s| s == agent), "{agent}: {speakers:?}");
    }
    assert_eq!(speakers.last().map(String::as_str), Some("publisher"));
    let edges: Vec<(String, String)> = of_type(&events, "edge_taken")
        .iter()
        .map(|event| {
            (
                event["from"].as_str().expect("from").to_owned(),
                event["to"].as_str().expect("to").to_owned(),
            )
        })
        .collect();
    for (from, to) in [("critic", "writer"), ("publisher", "writer")] {
        assert!(
            edges.contains(&(from.to_owned(), to.to_owned())),
            "{from} -> {to}: {edges:?}"
        );
    }
    assert_eq!(
        edges.last(),
        Some(&("publisher".to_owned(), "end".to_owned()))
    );
    // The transcript reads as the edges taken: an approval says APPROVED, the router's
    // turn carries its choice, the command was not run.
    let finished = of_type(&events, "turn_finished");
    for turn in &finished {
        let text = turn["text"].as_str().expect("text");
        match turn["agent"].as_str().expect("agent") {
            "critic" if turn["next"] == "editor" => assert!(text.contains("APPROVED"), "{text}"),
            "publisher" => assert!(turn["choice"].is_string(), "{turn:#}"),
            "check" => assert!(text.contains("(simulated: not run)"), "{text}"),
            _ => {}
        }
    }
    // The models were really called on the simulator, with loads.
    assert!(summary["models"]["qwen3:14b"]["loads"].as_u64() >= Some(1));
    // Nothing was written beside the workflow but the run's own files.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("readable")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["essay.yaml", "events.jsonl"]);
}

#[test]
fn a_dry_run_of_a_workflow_without_a_simulation_section_uses_defaults_and_ends() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (summary, events, stderr) = dry_run(dir.path(), ESSAY);
    assert_eq!(summary["status"], "completed", "{summary:#}\n{stderr}");
    let speakers = speakers(&events);
    assert!(speakers.iter().any(|s| s == "editor"), "{speakers:?}");
    assert_eq!(speakers.last().map(String::as_str), Some("publisher"));
}
