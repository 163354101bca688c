//! `agentrun validate` on the shipped workflows and on the corpus of broken ones.
use crate::support::{agentrun, repo_root, runs_dir};

#[test]
fn shipped_workflows_are_valid() {
    let mut files = vec![];
    for dir in ["workflows", "workflows/scenarios"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).expect("the folder exists") {
            let path = entry.expect("readable entry").path();
            let name = path.to_string_lossy().into_owned();
            if name.ends_with(".yaml") {
                files.push(path);
            }
        }
    }
    assert!(
        files.len() >= 6,
        "expected the shipped workflows, found {files:?}"
    );
    let args: Vec<String> = std::iter::once("validate".to_owned())
        .chain(files.iter().map(|path| path.to_string_lossy().into_owned()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = agentrun(&args);
    run.expect_code(0);
    assert_eq!(
        run.stderr().matches(": ok (").count(),
        files.len(),
        "{}",
        run.stderr()
    );
}

/// Every broken workflow exits 2 and prints its expected diagnostics (file:line:col,
/// message and hint), and nothing panics.
#[test]
fn each_broken_workflow_gets_its_expected_message() {
    let corpus = repo_root().join("tests/workflows/broken");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).expect("the corpus exists") {
        let path = entry.expect("readable entry").path();
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let relative = path
            .strip_prefix(repo_root())
            .expect("inside the repository");
        let relative = relative.to_string_lossy();
        let run = agentrun(&["validate", &relative]);
        run.expect_code(2);
        let expected = std::fs::read_to_string(path.with_extension("expected"))
            .unwrap_or_else(|_| panic!("{relative} has no .expected file"));
        let stderr = run.stderr();
        for line in expected.lines().filter(|line| !line.trim().is_empty()) {
            assert!(
                stderr.contains(line),
                "{relative}: expected line\n  {line}\nnot in stderr:\n{stderr}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} broken workflows checked");
}

#[test]
fn running_a_broken_workflow_fails_before_any_request() {
    // Run directories of this workflow, wherever runs are kept.
    let kept = || -> Vec<String> {
        std::fs::read_dir(runs_dir().join("runs"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .filter(|name| name.contains("missing-start"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let before = kept();
    let run = agentrun(&["run", "tests/workflows/broken/missing-start.yaml", "--sim"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("missing-start.yaml:"),
        "{}",
        run.stderr()
    );
    assert_eq!(kept(), before, "no run directory is created");
}
