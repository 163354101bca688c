//! Parallel branches against the real simulator: a fan-out's branches run at the same time
//! (their requests overlap in `/sim/log`), each branch sees only its own turns, the join sees
//! every branch's reply, and a run killed in the middle of a branch resumes to the
//! transcript of an uninterrupted run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::resume::{
    assert_events_follow_the_schema, run_dir, spawn, transcript_lines, wait, wait_for_turns,
};
use crate::support::{Sim, agentrun, repo_root};

/// Turns of the uninterrupted run: two rounds of coder, security, style, fixer, style, lead.
const TURNS: usize = 12;

fn workflow() -> PathBuf {
    repo_root().join("tests/workflows/parallel/fan-out.yaml")
}

fn start_sim() -> Sim {
    let script = repo_root().join("tests/workflows/parallel/fan-out-replies.yaml");
    Sim::start(&[
        "--time-scale",
        "0.01",
        "--script",
        &script.to_string_lossy(),
    ])
}

/// (agent, text, next, branch start) of each turn, in the transcript's deterministic order:
/// each parallel region's turns by branch.
fn deterministic(lines: &[String]) -> Vec<(String, String, String, String)> {
    let entries: Vec<agentrun::TranscriptEntry> = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("a transcript line"))
        .collect();
    agentrun::deterministic_order(&entries)
        .into_iter()
        .map(|entry| {
            (
                entry.agent,
                entry.text,
                entry.next.to_string(),
                entry.branch.map(|branch| branch.start).unwrap_or_default(),
            )
        })
        .collect()
}

/// The run directory of the one run under `runs`.
fn only_run(runs: &Path) -> PathBuf {
    std::fs::read_dir(runs.join("runs"))
        .expect("a runs folder")
        .next()
        .expect("one run")
        .expect("an entry")
        .path()
}

/// The chat requests of `/sim/log` as (model, arrival position, finish position).
fn requests(log: &[Value]) -> Vec<(String, usize, usize)> {
    let mut arrived: BTreeMap<u64, (String, usize)> = BTreeMap::new();
    let mut spans = Vec::new();
    for (position, event) in log.iter().enumerate() {
        let id = event["request_id"].as_u64();
        match (event["event"].as_str(), id) {
            (Some("request_arrived"), Some(id)) if event["endpoint"] == "chat" => {
                let model = event["model"].as_str().unwrap_or_default().to_owned();
                arrived.insert(id, (model, position));
            }
            (Some("request_finished"), Some(id)) => {
                if let Some((model, start)) = arrived.remove(&id) {
                    spans.push((model, start, position));
                }
            }
            _ => {}
        }
    }
    spans
}

#[test]
fn a_fan_out_runs_its_branches_at_once_and_the_join_sees_every_reply() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sim = start_sim();
    let runs = dir.path().join("runs");
    let run = agentrun(&[
        &workflow().to_string_lossy(),
        "--ollama",
        &sim.url,
        "--runs-dir",
        &runs.to_string_lossy(),
    ]);
    run.expect_code(0);
    let path = only_run(&runs);
    let said = deterministic(&transcript_lines(&path));
    assert_eq!(said.len(), TURNS, "{said:#?}");
    assert!(
        said.iter().all(|(_, text, ..)| text != "LEAKED"),
        "a branch saw another branch's turns: {said:#?}"
    );
    // The join answered from both branches' replies, in both rounds.
    let lead: Vec<&str> = said
        .iter()
        .filter(|(agent, ..)| agent == "lead")
        .map(|(_, text, ..)| text.as_str())
        .collect();
    assert_eq!(lead, ["AGAIN", "Done."], "{said:#?}");
    let branches: Vec<(&str, &str)> = said[1..5]
        .iter()
        .map(|(agent, _, _, branch)| (agent.as_str(), branch.as_str()))
        .collect();
    assert_eq!(
        branches,
        [
            ("security", "security"),
            ("style", "style"),
            ("fixer", "style"),
            ("style", "style")
        ]
    );
    assert_eq!(said[0].2, "[security, style]");

    // The security review (qwen3:14b) was answering while the style loop (qwen3:4b) ran.
    let spans = requests(&sim.log());
    let overlapping =
        spans
            .iter()
            .filter(|(model, ..)| model == "qwen3:14b")
            .any(|(_, start, end)| {
                spans.iter().any(|(other, other_start, other_end)| {
                    other == "qwen3:4b" && other_start < end && start < other_end
                })
            });
    assert!(
        overlapping,
        "no overlapping requests in /sim/log: {spans:?}"
    );

    let stderr = run.stderr();
    assert!(
        stderr.contains("⇉ coder fans out to security, style (at once); they meet at lead")
            && stderr.contains("[style] │ style: CLEAN draft 1")
            && stderr.contains("⇶ lead joins the branches"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(path.join("summary.json")).expect("a summary"),
    )
    .expect("JSON");
    assert_eq!(summary["status"], "completed", "{summary:#}");
    assert_events_follow_the_schema(&path);
    assert_eq!(sim.get_json("/api/ps")["models"], serde_json::json!([]));
}

#[test]
fn a_run_killed_inside_a_branch_resumes_to_the_uninterrupted_transcript() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let reference = {
        let sim = start_sim();
        let runs = dir.path().join("reference");
        agentrun(&[
            &workflow().to_string_lossy(),
            "--ollama",
            &sim.url,
            "-q",
            "--runs-dir",
            &runs.to_string_lossy(),
        ])
        .expect_code(0);
        deterministic(&transcript_lines(&only_run(&runs)))
    };
    assert_eq!(reference.len(), TURNS);
    // Inside the first region (turns 2 to 5 complete there) and inside the second.
    for kill_after in [2, 3, 8] {
        let sim = start_sim();
        let runs = dir.path().join(format!("killed-{kill_after}"));
        let log = dir.path().join(format!("killed-{kill_after}.log"));
        let mut child = spawn(
            &[
                &workflow().to_string_lossy(),
                "--ollama",
                &sim.url,
                "--runs-dir",
                &runs.to_string_lossy(),
            ],
            &log,
        );
        let path = run_dir(&runs, &mut child);
        wait_for_turns(&path, &mut child, kill_after);
        child.kill().expect("SIGKILL is sent");
        child.wait().expect("the killed process is reaped");
        let at_kill = transcript_lines(&path);
        let log = dir.path().join(format!("resumed-{kill_after}.log"));
        let mut resumed = spawn(&["resume", &path.to_string_lossy()], &log);
        let status = wait(&mut resumed);
        assert!(
            status.success(),
            "resume ended with {status}:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let lines = transcript_lines(&path);
        assert_eq!(
            lines[..at_kill.len()],
            at_kill[..],
            "a line on disk at the kill was lost"
        );
        let turns: Vec<u64> = lines
            .iter()
            .map(|line| {
                serde_json::from_str::<Value>(line).expect("JSON")["turn"]
                    .as_u64()
                    .expect("a turn")
            })
            .collect();
        assert_eq!(
            turns,
            (1..=TURNS as u64).collect::<Vec<_>>(),
            "no turn lost or repeated (killed after {} turns)",
            at_kill.len()
        );
        assert_eq!(
            deterministic(&lines),
            reference,
            "killed after {} turns",
            at_kill.len()
        );
        assert_events_follow_the_schema(&path);
        assert_eq!(sim.get_json("/api/ps")["models"], serde_json::json!([]));
    }
}

#[test]
fn simulate_compares_the_shipped_parallel_workflow_with_its_branches_forced_sequential() {
    let run = agentrun(&[
        "simulate",
        "workflows/tdd-parallel.yaml",
        "--policy",
        "smart",
    ]);
    run.expect_code(0);
    let stdout = run.stdout();
    assert!(
        stdout.contains(
            "parallel branches as the planner decides vs forced sequential vs forced all at once"
        ),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|line| {
            line.starts_with("smart: ") && line.contains("as the planner runs the branches")
        })
        .unwrap_or_else(|| panic!("no comparison line in:\n{stdout}"));
    let seconds: Vec<f64> = line
        .split_whitespace()
        .filter_map(|word| word.trim_end_matches(',').parse::<f64>().ok())
        .collect();
    let (planned, alone, together) = (seconds[0], seconds[1], seconds[2]);
    // The test command overlaps the reviews whatever the planner decides for the models.
    assert!(planned < alone && together < alone, "{line}");
    assert!(stdout.contains("parallelism pays +"), "{stdout}");

    let sequential = agentrun(&[
        "simulate",
        "workflows/tdd-parallel.yaml",
        "--policy",
        "smart",
        "--sequential",
        "--json",
    ]);
    sequential.expect_code(0);
    let report: Value = serde_json::from_str(&sequential.stdout()).expect("JSON");
    let fan_outs = &report["policies"]["smart"]["fan_outs"];
    assert!(
        fan_outs["sequential"].as_u64().unwrap_or(0) > 0
            && fan_outs.as_object().map(|o| o.len()) == Some(1),
        "{fan_outs}"
    );
    let wall = report["policies"]["smart"]["wall_s"]
        .as_f64()
        .expect("wall");
    assert!((wall - alone).abs() < 1.0, "{wall} vs {alone}");
}

#[test]
fn ctrl_c_inside_a_branch_stops_every_branch_and_unloads_what_the_run_loaded() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sim = start_sim();
    let runs = dir.path().join("interrupted");
    let log = dir.path().join("interrupted.log");
    let mut child = spawn(
        &[
            &workflow().to_string_lossy(),
            "--ollama",
            &sim.url,
            "--runs-dir",
            &runs.to_string_lossy(),
        ],
        &log,
    );
    let path = run_dir(&runs, &mut child);
    // Turn 2 is the style loop's first turn: the security review is still answering.
    wait_for_turns(&path, &mut child, 2);
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = wait(&mut child);
    let stderr = std::fs::read_to_string(&log).expect("a log");
    assert_eq!(status.code(), Some(130), "{stderr}");
    let at_stop = transcript_lines(&path);
    assert!(at_stop.len() < TURNS, "{stderr}");
    // No request is left running and nothing the run loaded stays resident.
    let spans = requests(&sim.log());
    let arrived = sim
        .log()
        .iter()
        .filter(|event| event["event"] == "request_arrived" && event["endpoint"] == "chat")
        .count();
    assert_eq!(spans.len(), arrived, "a request never finished: {spans:?}");
    // The security review, still answering at the interrupt, was cut off (499: the client
    // went away), not left to finish.
    let cut: Vec<Value> = sim
        .log()
        .into_iter()
        .filter(|event| event["event"] == "request_finished" && event["status"] == 499)
        .collect();
    assert!(
        cut.iter().any(|event| event["model"] == "qwen3:14b"),
        "{cut:?}"
    );
    assert_eq!(sim.get_json("/api/ps")["models"], serde_json::json!([]));
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(path.join("summary.json")).expect("a summary"),
    )
    .expect("JSON");
    assert_eq!(summary["status"], "cancelled");
}
