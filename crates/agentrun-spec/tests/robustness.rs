//! Loading never panics: arbitrary text, and valid workflows with lines deleted, duplicated or
//! garbled, either load or fail with diagnostics that point into the file.

use std::path::Path;

use agentrun_spec::Workflow;
use proptest::prelude::*;

const VALID: &str = include_str!("../../../workflows/scenarios/big-team.yaml");

fn check(text: &str) {
    // Relative `use` paths resolve from the scenarios directory, as for the real file.
    let origin =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/scenarios/mutated.yaml");
    match Workflow::from_yaml_str(text, &origin) {
        Ok(workflow) => assert!(!workflow.agents.is_empty()),
        Err(error) => {
            assert!(!error.diagnostics.is_empty());
            let rendered = error.to_string();
            for diagnostic in error.errors() {
                assert!(!diagnostic.message.is_empty(), "{rendered}");
                if diagnostic.file == origin {
                    assert!(
                        diagnostic.line >= 1 && diagnostic.line <= text.lines().count() + 1,
                        "{rendered}"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        check(&text);
    }

    #[test]
    fn arbitrary_yaml_like_text_never_panics(text in "([a-z_]{1,8}: ?(\\[|\\{|-1|0|[a-z]{1,5}|\"x\"|\\*a|&a )?\n {0,6}){0,30}") {
        check(&text);
    }

    #[test]
    fn mutated_workflows_never_panic(line in 0usize..120, mutation in 0u8..4, junk in "[ -~]{0,12}") {
        let mut lines: Vec<String> = VALID.lines().map(str::to_owned).collect();
        let index = line % lines.len();
        match mutation {
            0 => { lines.remove(index); }
            1 => { let copy = lines[index].clone(); lines.insert(index, copy); }
            2 => { lines[index].push_str(&junk); }
            _ => { lines[index] = lines[index].replacen(':', &junk, 1); }
        }
        check(&lines.join("\n"));
    }
}
