//! Tests of the capability check.

use std::path::Path;

use super::*;

fn workflow(agent: &str) -> Workflow {
    let yaml = format!(
        "name: t\nagents:\n  coder:\n    model: m\n    prompt: p\n    options: {{ num_ctx: 2048 }}\n\
         {agent}flow:\n  start: coder\n  edges:\n    - {{ from: coder, to: end }}\n"
    );
    Workflow::from_yaml_str(&yaml, Path::new("t.yaml")).expect("a valid workflow")
}

fn model(capabilities: &[&str]) -> BTreeMap<String, ModelDetails> {
    let details = ModelDetails {
        name: "m".to_owned(),
        file_bytes: 1,
        capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        ..ModelDetails::default()
    };
    BTreeMap::from([("m".to_owned(), details)])
}

#[test]
fn tools_on_a_model_without_tool_calling_are_refused_with_the_fix() {
    let error = check_capabilities(
        &workflow("    tools: [read_file]\n"),
        &model(&["completion"]),
    )
    .expect_err("no tools capability");
    assert_eq!(error.capability, "tools");
    let message = error.to_string();
    assert!(
        message.contains("agent 'coder'") && message.contains("model 'm'"),
        "{message}"
    );
    assert!(message.contains("remove its `tools`"), "{message}");
}

#[test]
fn thinking_asked_of_a_model_that_cannot_is_refused() {
    for think in ["true", "high"] {
        let error = check_capabilities(
            &workflow(&format!("    think: {think}\n")),
            &model(&["completion", "tools"]),
        )
        .expect_err("no thinking capability");
        assert_eq!(error.capability, "thinking");
        assert!(error.to_string().contains("think: false"));
    }
    check_capabilities(&workflow("    think: false\n"), &model(&["completion"]))
        .expect("not thinking needs nothing");
}

#[test]
fn an_embedding_model_cannot_chat() {
    let error = check_capabilities(&workflow(""), &model(&["embedding"])).expect_err("embedding");
    assert_eq!(error.capability, "completion");
}

#[test]
fn what_a_model_can_do_passes_and_unknown_capabilities_are_not_checked() {
    check_capabilities(
        &workflow("    tools: [read_file]\n    think: true\n"),
        &model(&["completion", "tools", "thinking"]),
    )
    .expect("all there");
    check_capabilities(&workflow("    tools: [read_file]\n"), &model(&[])).expect("an old server");
}
