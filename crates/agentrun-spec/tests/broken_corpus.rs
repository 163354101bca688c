//! Every workflow under `tests/workflows/broken/` fails to load with exactly the diagnostics
//! in its sibling `.expected` file, paths relative to the repository root.
//!
//! After a deliberate change to the messages, regenerate the files with
//! `AGENTRUN_UPDATE_EXPECTED=1 cargo test -p agentrun-spec --test broken_corpus` and review
//! the diff.

use std::path::{Path, PathBuf};

use agentrun_spec::Workflow;

const CORPUS: &str = "tests/workflows/broken";

/// Runs from the repository root, so diagnostics name `tests/workflows/broken/...` exactly as
/// `agentrun validate` run from there does. This test binary holds only this test, so the
/// working directory changes for nothing else.
fn enter_repo_root() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::set_current_dir(&root).expect("the repository root exists");
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the corpus directory exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| Path::new(CORPUS).join(path.file_name().expect("a file name")))
        .collect();
    files.sort();
    files
}

#[test]
fn every_broken_workflow_reports_its_expected_diagnostics() {
    enter_repo_root();
    let update = std::env::var_os("AGENTRUN_UPDATE_EXPECTED").is_some();
    let files = corpus_files();
    assert!(files.len() >= 15, "the corpus has {} files", files.len());
    let mut mismatches = Vec::new();
    for path in &files {
        let error = match Workflow::from_yaml_file(path) {
            Ok(_) => {
                mismatches.push(format!("{} loaded without an error", path.display()));
                continue;
            }
            Err(error) => error,
        };
        let rendered = format!("{error}\n");
        assert!(
            error.errors().count() > 0,
            "{}: no error among {rendered}",
            path.display()
        );
        for diagnostic in error.errors() {
            assert!(
                diagnostic.file.starts_with(CORPUS),
                "{}: names {}",
                path.display(),
                diagnostic.file.display()
            );
            assert!(
                !diagnostic.message.is_empty() && diagnostic.hint.is_some(),
                "{}: {diagnostic}",
                path.display()
            );
        }
        let expected_path = path.with_extension("expected");
        if update {
            std::fs::write(&expected_path, &rendered).expect("writable corpus");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != rendered {
            mismatches.push(format!(
                "{}:\n--- expected\n{expected}--- found\n{rendered}",
                path.display()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_file_with_several_problems_reports_them_all() {
    enter_repo_root();
    let error = Workflow::from_yaml_file(Path::new("tests/workflows/broken/several-problems.yaml"))
        .expect_err("broken");
    assert!(error.errors().count() >= 8, "{error}");
    let fields: Vec<&str> = error
        .errors()
        .map(|diagnostic| diagnostic.field.as_str())
        .collect();
    for field in [
        "agents.architect.prompt_file",
        "agents.coder.options.temperature",
        "agents.reviewer.modle",
        "flow.edges[1].when",
        "flow.edges[3].when.matches",
        "flow.edges[4].to",
        "flow.edges[6].when.choice",
        "limits.max_turns",
        "memory.gpu_budget",
        "memory.max_loaded_models",
        "memory.policy",
    ] {
        assert!(fields.contains(&field), "{field} is not reported:\n{error}");
    }
}

#[test]
fn a_gigantic_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("huge.yaml");
    let mut text = String::from("name: huge\ndescription: \"");
    text.push_str(&"x".repeat(5 << 20));
    text.push_str("\"\n");
    std::fs::write(&path, &text).expect("writable");
    let error = Workflow::from_yaml_file(&path).expect_err("too large");
    assert!(error.to_string().contains("larger than 4 MiB"), "{error}");
    let error = Workflow::from_yaml_str(&text, Path::new("huge.yaml")).expect_err("too large");
    assert!(error.to_string().contains("larger than 4 MiB"), "{error}");
}
