//! `agentrun mcp` driven by a real MCP client from a published SDK: the Python `mcp`
//! package starts the real binary over stdio, lists its tools, runs a workflow on the
//! simulator with progress notifications, reads the summary and the list of runs, plans the
//! workflow, and gets tool errors naming the file for workflows that are missing or invalid
//! and naming the server when no Ollama answers.

use std::process::Command;

use crate::support::{agentrun_binary, repo_root, runs_dir};

/// What the client saw, from `tests/mcp-clients/python_client.py`.
fn python_client(
    cwd: &std::path::Path,
    workflow: &std::path::Path,
    missing: &std::path::Path,
    invalid: &std::path::Path,
    runs: &std::path::Path,
) -> serde_json::Value {
    let output = Command::new("python3")
        .arg(repo_root().join("tests/mcp-clients/python_client.py"))
        .arg(agentrun_binary())
        .args([workflow, missing, invalid, runs])
        .current_dir(cwd)
        // Nothing answers on port 1: a run that does not ask for the simulator falls back to it.
        .env("OLLAMA_HOST", "http://127.0.0.1:1")
        .env("AGENTRUN_HOME", runs_dir().join("home"))
        .env("AGENTRUN_NO_LEARNING", "true")
        .env_remove("AGENTRUN_DIR")
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the client failed:\n{stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "the client printed no report ({error}):\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
#[ignore = "needs the Python MCP SDK: python3 -m pip install mcp==2.3.0, then run with --include-ignored; .ci/run does"]
fn a_python_mcp_client_runs_a_workflow_with_progress_and_reads_its_summary() {
    let cwd = tempfile::tempdir().expect("a temp dir");
    let runs = tempfile::tempdir_in(runs_dir().parent().expect("a parent")).expect("a runs dir");
    let invalid = cwd.path().join("invalid.yaml");
    std::fs::write(&invalid, "name: broken\nagents: [\n").expect("written");
    let missing = cwd.path().join("missing.yaml");
    let workflow = repo_root().join("workflows/review.yaml");
    // The client runs in `cwd`, which then holds only the invalid workflow.
    let report = python_client(cwd.path(), &workflow, &missing, &invalid, runs.path());

    assert_eq!(report["server_name"], "agentrun");
    assert_eq!(
        report["tools"],
        serde_json::json!(["plan", "ps", "run", "runs", "summary", "validate"])
    );

    // The run: completed on the simulator, progress after every turn, the summary its result.
    assert_eq!(report["run_is_error"], false, "{}", report["run"]);
    let run = &report["run"];
    let summary = &run["summary"];
    assert_eq!(summary["workflow"], "review");
    assert_eq!(summary["status"], "completed");
    let turns = summary["turns"].as_u64().expect("turns");
    assert!(
        turns >= 2,
        "the review loop takes a write and a review: {summary}"
    );
    let progress = report["progress"].as_array().expect("progress");
    let done: Vec<u64> = progress
        .iter()
        .map(|note| note["progress"].as_f64().expect("a number") as u64)
        .collect();
    assert!(
        done.windows(2).all(|pair| pair[0] <= pair[1]),
        "progress never goes back: {done:?}"
    );
    for turn in 1..=turns {
        assert!(
            done.contains(&turn),
            "no progress for turn {turn}: {progress:?}"
        );
    }
    assert!(
        progress
            .iter()
            .all(|note| note["total"].as_f64() == Some(20.0)),
        "the total is the workflow's turn limit: {progress:?}"
    );
    let last = progress.last().expect("progress was reported");
    assert_eq!(
        last["message"],
        format!("completed after {turns} turns"),
        "{progress:?}"
    );

    // Kept where the client said, with its own scratch workspace; the server's
    // directory is untouched.
    let run_dir = std::path::PathBuf::from(run["run_dir"].as_str().expect("run_dir"));
    assert!(run_dir.starts_with(runs.path()), "{}", run_dir.display());
    assert!(run_dir.join("workspace").is_dir());
    let left: Vec<_> = std::fs::read_dir(cwd.path())
        .expect("readable")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("invalid.yaml")]);

    // `summary` reads back what the run wrote, the same as its result.
    assert_eq!(report["summary_is_error"], false);
    assert_eq!(&report["summary"], summary);

    // No Ollama answers: a run that did not ask for the simulator says it used it.
    assert_eq!(report["fallback_is_error"], false, "{}", report["fallback"]);
    assert_eq!(report["fallback"]["summary"]["status"], "completed");
    let note = report["fallback"]["note"].as_str().expect("a note");
    assert!(
        note.contains("http://127.0.0.1:1") && note.contains("simulator"),
        "{note}"
    );

    // Both runs are listed, each with how it ended.
    let listed = report["runs"].as_array().expect("a list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|entry| entry["status"] == "completed"));
    assert!(
        listed
            .iter()
            .any(|entry| entry["run_dir"] == run["run_dir"] && entry["turns"] == turns)
    );

    assert_eq!(report["runs_is_error"], false);

    // The plan: the review loop's two models, one phase each way, as `plan --json` gives it.
    assert_eq!(report["plan_is_error"], false, "{}", report["plan"]);
    let phases = report["plan"]["phases"].as_array().expect("phases");
    assert!(!phases.is_empty(), "{}", report["plan"]);
    let models: std::collections::BTreeSet<&str> = phases
        .iter()
        .flat_map(|phase| phase["models"].as_array().expect("models"))
        .map(|model| model.as_str().expect("a name"))
        .collect();
    assert_eq!(
        models,
        ["qwen3-coder:14b", "qwen3-coder:32b"].into_iter().collect()
    );

    // `ps` with no Ollama server: the command line's error and hint.
    assert_eq!(report["ps"]["is_error"], true, "{}", report["ps"]);
    let text = report["ps"]["text"].as_str().expect("text");
    assert!(
        text.contains("http://127.0.0.1:1") && text.contains("hint: start Ollama"),
        "{text}"
    );

    // A time scale the simulator cannot keep is refused, naming the argument.
    assert_eq!(report["negative_time_scale"]["is_error"], true);
    let text = report["negative_time_scale"]["text"]
        .as_str()
        .expect("text");
    assert!(text.contains("`time_scale` is -1"), "{text}");

    // Bad input: tool errors naming the file, as the command line words them.
    for tool in ["validate", "run"] {
        let failed = &report[format!("{tool}_missing")];
        assert_eq!(failed["is_error"], true, "{tool}: {failed}");
        let text = failed["text"].as_str().expect("text");
        assert!(
            text.contains(&format!("{}", missing.display())) && text.contains("does not exist"),
            "{tool}: {text}"
        );
        let failed = &report[format!("{tool}_invalid")];
        assert_eq!(failed["is_error"], true, "{tool}: {failed}");
        let text = failed["text"].as_str().expect("text");
        assert!(
            text.contains(&format!("{}:2:", invalid.display()))
                && text.contains(&format!("error: {} has 1 problem", invalid.display())),
            "{tool}: {text}"
        );
    }
}
