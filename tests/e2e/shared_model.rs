//! Agents sharing a model: one `num_ctx` for all of them, the largest, as `plan` says and the
//! executor does.

use crate::support::{Sim, agentrun};

/// Three agents on one model, each asking for another context length.
const SHARED: &str = "\
name: shared-context
task: Write it.
agents:
  drafter: { model: 'qwen3:8b', prompt: You draft., options: { num_ctx: 4096 } }
  editor: { model: 'qwen3:8b', prompt: You edit., options: { num_ctx: 16384 } }
  closer: { model: 'qwen3:8b', prompt: You close., options: { num_ctx: 8192 } }
flow:
  start: drafter
  edges:
    - { from: drafter, to: editor }
    - { from: editor, to: closer }
    - { from: closer, to: drafter, when: { contains: AGAIN } }
    - { from: closer, to: end }
memory: { gpu_budget: 54GB }
";

const REPLIES: &str = "\
rules:
  - { system: You draft., reply: { eval_count: 30, text: Draft. } }
  - { system: You edit., reply: { eval_count: 30, text: Edited. } }
  - system: You close.
    replies:
      - { eval_count: 5, text: AGAIN }
      - { eval_count: 5, text: Done. }
";

#[test]
fn agents_on_one_model_all_send_the_largest_num_ctx_and_it_never_reloads() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflow = dir.path().join("shared.yaml");
    let script = dir.path().join("replies.yaml");
    std::fs::write(&workflow, SHARED).expect("written");
    std::fs::write(&script, REPLIES).expect("written");
    let sim = Sim::start(&[
        "--time-scale",
        "0.01",
        "--script",
        &script.to_string_lossy(),
    ]);

    // `plan` states the rule and the value instead of predicting reloads.
    let plan = agentrun(&["plan", &workflow.to_string_lossy(), "--ollama", &sim.url]);
    plan.expect_code(0);
    let stdout = plan.stdout();
    assert!(
        stdout.contains("sends the largest num_ctx")
            && stdout.contains(
                "qwen3:8b: num_ctx 16384 (asked: drafter 4096, editor 16384, closer 8192)"
            ),
        "{stdout}"
    );
    assert!(!stdout.contains("reloads the model whenever"), "{stdout}");

    let run = agentrun(&[&workflow.to_string_lossy(), "--ollama", &sim.url, "--json"]);
    run.expect_code(0);
    assert_eq!(run.json()["turns"], 6);

    // Every request that loads or calls the model sent the same num_ctx: the largest.
    let log = sim.log();
    let sent: Vec<Option<u64>> = log
        .iter()
        .filter(|event| event["event"] == "request_arrived" && event["model"] == "qwen3:8b")
        .map(|event| event["num_ctx"].as_u64())
        .collect();
    let with_options: Vec<u64> = sent.iter().flatten().copied().collect();
    // Six calls, plus at most the unload at the end (which sends no options).
    assert!(with_options.len() >= 6, "{sent:?}");
    assert!(
        with_options.iter().all(|&num_ctx| num_ctx == 16_384),
        "{sent:?}"
    );
    let loads = log
        .iter()
        .filter(|event| event["event"] == "load_started" && event["model"] == "qwen3:8b")
        .count();
    assert_eq!(loads, 1, "the model was loaded more than once: {log:#?}");
    assert!(
        !log.iter()
            .any(|event| event["event"] == "eviction" && event["reason"] == "reload"),
        "{log:#?}"
    );
}
