//! Killing runs and resuming them: a run killed with SIGKILL after any turn, or
//! stopped with Ctrl-C, and resumed with `agentrun resume` ends with the transcript
//! of a run that was never interrupted, losing and repeating no turn.
//!
//! The simulator's replies are functions of the conversation (each rule matches the
//! last message), so they do not depend on how many requests the server saw across
//! the processes; a request cut off by the kill changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::events_schema::validate;
use crate::support::{Sim, agentrun, agentrun_binary, repo_root, runs_dir};

/// Drafts the coder writes before the reviewer approves: two turns each.
const DRAFTS: u32 = 7;
const TURNS: usize = 2 * DRAFTS as usize;

/// The simulator script: the coder answers the reviewer's last words with the next
/// draft, and the reviewer asks for changes to every draft but the last.
fn conversation_script() -> String {
    let mut script = String::from("rules:\n");
    script.push_str(
        "  - { system: \"(?i)you are the programmer\", message: \"^Task:\", \
         reply: { text: \"draft 1: a first parser\", eval_count: 120 } }\n",
    );
    for draft in 1..DRAFTS {
        script.push_str(&format!(
            "  - {{ system: \"(?i)you are the programmer\", \
             message: \"^\\\\[reviewer\\\\]: changes to draft {draft}:\", \
             reply: {{ text: \"draft {}: draft {draft} with the changes asked for\", eval_count: 120 }} }}\n",
            draft + 1
        ));
        script.push_str(&format!(
            "  - {{ system: \"(?i)you are the reviewer\", message: \"^\\\\[coder\\\\]: draft {draft}:\", \
             reply: {{ text: \"changes to draft {draft}: handle case {draft}\", eval_count: 60 }} }}\n"
        ));
    }
    script.push_str(&format!(
        "  - {{ system: \"(?i)you are the reviewer\", message: \"^\\\\[coder\\\\]: draft {DRAFTS}:\", \
         reply: {{ text: \"Good.\\nAPPROVED\", eval_count: 20 }} }}\n"
    ));
    script
}

/// A simulator serving the conversation script; one simulated second takes 10 ms.
fn start_sim(dir: &Path) -> Sim {
    let script = dir.join("script.yaml");
    std::fs::write(&script, conversation_script()).expect("script written");
    Sim::start(&[
        "--time-scale",
        "0.01",
        "--script",
        &script.to_string_lossy(),
    ])
}

/// `agentrun` as a child process, for the tests to stop.
pub(crate) fn spawn(args: &[&str], log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("a log file");
    Command::new(agentrun_binary())
        .args(args)
        .current_dir(repo_root())
        .env_remove("OLLAMA_HOST")
        .env("AGENTRUN_DIR", runs_dir())
        .env("AGENTRUN_HOME", runs_dir().join("home"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("agentrun starts")
}

fn start_run(sim: &Sim, runs: &Path, log: &Path) -> Child {
    spawn(
        &[
            "workflows/review.yaml",
            "--ollama",
            &sim.url,
            "--runs-dir",
            &runs.to_string_lossy(),
        ],
        log,
    )
}

/// The run directory under `runs`, once it exists.
pub(crate) fn run_dir(runs: &Path, child: &mut Child) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = std::fs::read_dir(runs.join("runs"))
            .ok()
            .and_then(|mut entries| entries.next())
        {
            return found.expect("an entry").path();
        }
        assert!(
            child.try_wait().expect("waitable").is_none(),
            "agentrun ended before creating its run directory"
        );
        assert!(Instant::now() < deadline, "no run directory after a minute");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The transcript's complete lines.
pub(crate) fn transcript_lines(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("transcript.jsonl")).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |last| &text[..=last]);
    complete.lines().map(str::to_owned).collect()
}

/// Waits until the run has completed `turns` turns; panics if it ends first.
pub(crate) fn wait_for_turns(dir: &Path, child: &mut Child, turns: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while transcript_lines(dir).len() < turns {
        if let Some(status) = child.try_wait().expect("waitable") {
            panic!("agentrun ended ({status}) before turn {turns}");
        }
        assert!(Instant::now() < deadline, "no turn {turns} after a minute");
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) fn wait(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("agentrun did not end within two minutes");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// (turn, agent, text, next) of each transcript line.
fn said(lines: &[String]) -> Vec<(u64, String, String, String)> {
    lines
        .iter()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).expect("a transcript line is JSON");
            let text = |field: &str| entry[field].as_str().expect("a string").to_owned();
            (
                entry["turn"].as_u64().expect("a turn number"),
                text("agent"),
                text("text"),
                text("next"),
            )
        })
        .collect()
}

/// An uninterrupted run's transcript.
fn reference(dir: &Path) -> Vec<(u64, String, String, String)> {
    let sim = start_sim(dir);
    let runs = dir.join("reference");
    agentrun(&[
        "workflows/review.yaml",
        "--ollama",
        &sim.url,
        "-q",
        "--runs-dir",
        &runs.to_string_lossy(),
    ])
    .expect_code(0);
    let entries = std::fs::read_dir(runs.join("runs"))
        .expect("a runs folder")
        .next()
        .expect("one run")
        .expect("an entry")
        .path();
    let said = said(&transcript_lines(&entries));
    assert_eq!(said.len(), TURNS, "{said:#?}");
    assert_eq!(said.last().map(|s| s.3.as_str()), Some("end"));
    said
}

pub(crate) fn assert_events_follow_the_schema(dir: &Path) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("docs/events.schema.json")).expect("schema"),
    )
    .expect("JSON");
    let text = std::fs::read_to_string(dir.join("events.jsonl")).expect("events");
    let complete = text.rfind('\n').map_or("", |last| &text[..=last]);
    for line in complete.lines() {
        let event: Value = serde_json::from_str(line).expect("an event line is JSON");
        if let Err(problem) = validate(&schema, &event) {
            panic!("{problem}: {line}");
        }
    }
}

#[test]
fn runs_killed_after_random_turns_resume_to_the_uninterrupted_transcript() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let expected = reference(dir.path());
    let mut rng = StdRng::seed_from_u64(20_260_601);
    let (mut killed_after, mut resumed, mut lost) = (Vec::new(), 0, 0);
    for scenario in 0..3 {
        let sim = start_sim(dir.path());
        let runs = dir.path().join(format!("killed-{scenario}"));
        let kills = rng.random_range(1..=3_usize);
        let mut points: Vec<usize> = (0..kills).map(|_| rng.random_range(1..TURNS)).collect();
        points.sort_unstable();
        points.dedup();
        let mut log = dir.path().join(format!("killed-{scenario}.log"));
        let mut child = start_run(&sim, &runs, &log);
        let path = run_dir(&runs, &mut child);
        let path_text = path.to_string_lossy().into_owned();
        let mut at_kills = Vec::new();
        for (index, &after) in points.iter().enumerate() {
            wait_for_turns(&path, &mut child, after);
            child.kill().expect("SIGKILL is sent");
            let status = child.wait().expect("the killed process is reaped");
            assert_eq!(status.code(), None, "killed by a signal");
            let at_kill = transcript_lines(&path);
            killed_after.push(at_kill.len());
            at_kills.push(at_kill);
            // The next start goes on from here; it is killed in turn, or runs to the end.
            log = dir.path().join(format!("resumed-{scenario}-{index}.log"));
            child = spawn(&["resume", &path_text], &log);
            resumed += 1;
        }
        let status = wait(&mut child);
        assert!(
            status.success(),
            "the last resume ended with {status}:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let lines = transcript_lines(&path);
        // A line on disk at a kill is lost if the final transcript does not have it.
        for at_kill in &at_kills {
            lost += at_kill
                .iter()
                .enumerate()
                .filter(|(index, line)| lines.get(*index) != Some(*line))
                .count();
        }
        let turns: Vec<u64> = said(&lines).iter().map(|s| s.0).collect();
        assert_eq!(
            turns,
            (1..=TURNS as u64).collect::<Vec<_>>(),
            "no turn lost or repeated (killed after {points:?})"
        );
        assert_eq!(said(&lines), expected, "killed after {points:?}");
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(path.join("summary.json")).expect("a summary"),
        )
        .expect("JSON");
        assert_eq!(summary["status"], "completed", "{summary:#}");
        assert_eq!(summary["turns"], TURNS as u64);
        assert_events_follow_the_schema(&path);
        // What the first start loaded, the last one unloaded.
        assert_eq!(sim.get_json("/api/ps")["models"], serde_json::json!([]));
    }
    eprintln!(
        "killed {} runs with SIGKILL after {killed_after:?} completed turns, resumed {resumed} \
         times, {lost} transcript lines lost",
        killed_after.len()
    );
    assert_eq!(lost, 0);
    assert!(killed_after.len() >= 3);
}

#[test]
fn ctrl_c_stops_cleanly_and_prints_the_resume_command() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let expected = reference(dir.path());
    let sim = start_sim(dir.path());
    let runs = dir.path().join("interrupted");
    let log = dir.path().join("interrupted.log");
    let mut child = start_run(&sim, &runs, &log);
    let path = run_dir(&runs, &mut child);
    wait_for_turns(&path, &mut child, 3);
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = wait(&mut child);
    let stderr = std::fs::read_to_string(&log).expect("a log");
    assert_eq!(status.code(), Some(130), "{stderr}");
    let at_stop = transcript_lines(&path);
    assert!(at_stop.len() >= 3 && at_stop.len() < TURNS, "{stderr}");
    assert_eq!(said(&at_stop)[..], expected[..at_stop.len()]);
    // The models the run loaded were unloaded before it exited.
    assert_eq!(sim.get_json("/api/ps")["models"], serde_json::json!([]));
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(path.join("summary.json")).expect("a summary"),
    )
    .expect("JSON");
    assert_eq!(summary["status"], "cancelled");

    let command = stderr
        .lines()
        .find_map(|line| line.strip_prefix("resume it with: "))
        .unwrap_or_else(|| panic!("no resume command in:\n{stderr}"));
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..2], ["agentrun", "resume"], "{command}");
    assert_eq!(Path::new(words[2]), path, "{command}");
    let resumed = agentrun(&words[1..]);
    resumed.expect_code(0);
    assert!(
        resumed
            .stderr()
            .contains(&format!("after turn {}", at_stop.len())),
        "{}",
        resumed.stderr()
    );
    assert_eq!(said(&transcript_lines(&path)), expected);
    let again = agentrun(&words[1..]);
    again.expect_code(0);
    assert!(
        again.stderr().contains("nothing to resume"),
        "{}",
        again.stderr()
    );
}
