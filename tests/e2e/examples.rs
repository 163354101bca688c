//! The library examples (`examples/*.rs`) run to the end a user expects: `completed`.

use std::process::Command;

use crate::support::{agentrun_binary, repo_root};

#[test]
fn every_example_runs_to_completion() {
    // `cargo test` builds the examples, but `cargo test --test e2e` does not: build them
    // here (a no-op when they are fresh) so the ones run are the current ones.
    let status = Command::new(env!("CARGO"))
        .args(["build", "--examples"])
        .current_dir(repo_root())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the examples failed");
    let examples = agentrun_binary()
        .parent()
        .expect("the binary is in a directory")
        .join("examples");
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("examples"))
        .expect("the examples folder")
        .filter_map(|entry| {
            let name = entry.expect("an entry").file_name();
            name.to_string_lossy()
                .strip_suffix(".rs")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert_eq!(names, ["custom_agent", "custom_tool", "embed"]);
    for name in &names {
        let output = Command::new(examples.join(name))
            .current_dir(repo_root())
            .output()
            .unwrap_or_else(|error| panic!("example {name} does not start: {error}"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "example {name} failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        let last = stdout.lines().last().unwrap_or_default();
        assert!(
            last.contains("completed ("),
            "example {name} ends with `{last}`:\n{stdout}"
        );
    }
}
