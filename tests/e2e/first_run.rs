//! What a first run does to the user's files: a simulated run keeps to its run directory,
//! and a real run warns before it works in a git work tree with uncommitted changes.

use std::path::Path;
use std::process::Command;

use crate::support::{Sim, agentrun_with, repo_root};

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("a readable directory")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_simulated_run_from_an_empty_directory_leaves_only_its_run_directory() {
    let empty = tempfile::tempdir().expect("a temp dir");
    let workflow = repo_root().join("workflows/tdd.yaml");
    let run = agentrun_with(
        empty.path(),
        &[
            &workflow.to_string_lossy(),
            "--sim",
            "--time-scale",
            "0.001",
            "--json",
        ],
        // The default place for runs: `.agentrun` in the current directory.
        &[("AGENTRUN_DIR", ".agentrun")],
    );
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["status"], "completed", "{summary:#}");
    assert_eq!(names(empty.path()), [".agentrun"]);

    // It worked on a fresh copy of the example project, kept in the run's directory, and
    // said so.
    let runs = empty.path().join(".agentrun/runs");
    let run_dirs = names(&runs);
    assert_eq!(run_dirs.len(), 1, "{run_dirs:?}");
    let workspace = runs.join(&run_dirs[0]).join("workspace");
    assert!(workspace.join("test_slugify.py").is_file());
    assert!(workspace.join("textkit.py").is_file());
    let stderr = run.stderr();
    assert!(
        stderr.contains("the simulated run works on a fresh copy of")
            && stderr.contains("examples/tdd-project"),
        "{stderr}"
    );
    // The example project itself is untouched.
    assert!(
        !repo_root()
            .join("examples/tdd-project/test_slugify.py")
            .exists()
    );

    // The test command ran for real, for about as long as python3 takes, not a hundred
    // times that on the simulator's scaled clock.
    let tests = &summary["agents"]["tests"];
    let seconds = tests["generation_s"].as_f64().expect("seconds");
    let turns = tests["turns"].as_f64().expect("turns");
    assert!(
        seconds > 0.0 && seconds / turns < 10.0,
        "the test command took {seconds} s over {turns} turns: {summary:#}"
    );
}

const TOUCH: &str = "\
name: touch
task: Touch the project.
agents:
  touch:
    kind: command
    command: [touch, touched]
flow:
  start: touch
  edges:
    - { from: touch, to: end }
memory: { gpu_budget: 24GB }
";

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=agentrun",
            "-c",
            "user.email=agentrun@localhost",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(status.status.success(), "git {args:?}: {status:?}");
}

#[test]
fn a_run_warns_before_working_in_a_git_tree_with_uncommitted_changes() {
    let sim = Sim::start(&[]);
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflow = dir.path().join("touch.yaml");
    std::fs::write(&workflow, TOUCH).expect("written");
    let repo = dir.path().join("project");
    std::fs::create_dir(&repo).expect("a directory");
    if Command::new("git").arg("--version").output().is_err() {
        // Without git there is no work tree to protect: the run goes on without a word.
        eprintln!("git is not installed: only checking that a run goes on without it");
        let run = agentrun_with(
            dir.path(),
            &[
                &workflow.to_string_lossy(),
                "--ollama",
                &sim.url,
                "--workspace",
                &repo.to_string_lossy(),
            ],
            &[],
        );
        run.expect_code(0);
        assert!(!run.stderr().contains("uncommitted"), "{}", run.stderr());
        return;
    }
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("notes.txt"), "draft").expect("written");
    let start = || {
        agentrun_with(
            dir.path(),
            &[
                &workflow.to_string_lossy(),
                "--ollama",
                &sim.url,
                "--workspace",
                &repo.to_string_lossy(),
            ],
            &[],
        )
    };

    let run = start();
    run.expect_code(0);
    let stderr = run.stderr();
    let warning = stderr
        .find("is a git work tree with 1 uncommitted change,")
        .unwrap_or_else(|| panic!("no warning:\n{stderr}"));
    let first_turn = stderr.find("── touch · turn 1").expect("the first turn");
    assert!(warning < first_turn, "the warning comes first:\n{stderr}");
    assert!(stderr.contains("--copy-workspace"), "{stderr}");

    // Committed, the tree is clean and the run says nothing about it.
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "start"]);
    let run = start();
    run.expect_code(0);
    assert!(!run.stderr().contains("uncommitted"), "{}", run.stderr());
    // Not a git work tree: nothing to say either.
    let plain = tempfile::tempdir().expect("a temp dir");
    let run = agentrun_with(
        dir.path(),
        &[
            &workflow.to_string_lossy(),
            "--ollama",
            &sim.url,
            "--workspace",
            &plain.path().to_string_lossy(),
        ],
        &[],
    );
    run.expect_code(0);
    assert!(!run.stderr().contains("uncommitted"), "{}", run.stderr());
}
