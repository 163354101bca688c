//! The JSON Schemas kept in `docs/` are the ones the code generates, and every shipped
//! workflow and agent file points an editor at the right one on its first line.

use std::path::Path;

use serde_json::Value;

use crate::support::{agentrun, repo_root};

#[test]
fn the_kept_schemas_are_the_ones_the_code_generates() {
    for (file, args) in [
        ("docs/workflow.schema.json", &["schema"][..]),
        ("docs/agent.schema.json", &["schema", "--agent"][..]),
        ("docs/events.schema.json", &["schema", "--events"][..]),
    ] {
        let printed = agentrun(args);
        printed.expect_code(0);
        let generated: Value = serde_json::from_str(&printed.stdout()).expect("JSON");
        let text = std::fs::read_to_string(repo_root().join(file)).expect("the schema is kept");
        let kept: Value = serde_json::from_str(&text).expect("the kept schema is JSON");
        assert!(
            generated == kept,
            "{file} is out of date; regenerate it with `cargo run -- {} > {file}`",
            args.join(" ")
        );
    }
}

/// The YAML files directly in `dir`.
fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("a shipped folder")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_workflow_and_agent_names_its_schema_on_its_first_line() {
    let mut checked = 0;
    for (dir, schema) in [
        ("workflows", "docs/workflow.schema.json"),
        ("workflows/scenarios", "docs/workflow.schema.json"),
        ("agents", "docs/agent.schema.json"),
    ] {
        for file in yaml_files(&repo_root().join(dir)) {
            let text = std::fs::read_to_string(&file).expect("readable");
            let first = text.lines().next().unwrap_or_default();
            let target = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| panic!("{}: first line is `{first}`", file.display()));
            let resolved = file.parent().expect("a folder").join(target);
            assert_eq!(
                resolved.canonicalize().expect("the schema it names exists"),
                repo_root().join(schema).canonicalize().expect("exists"),
                "{}",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} files checked");
}
