//! The shared `num_ctx` rule.

use std::collections::BTreeMap;
use std::path::Path;

use agentrun_spec::Workflow;

use super::{SharedContext, shared_contexts, shared_num_ctx};
use crate::backend::ModelDetails;

/// A workflow whose agents (YAML lines under `agents:`) speak in turn, then end.
fn workflow(agents: &str) -> Workflow {
    let names: Vec<&str> = agents
        .lines()
        .filter_map(|line| line.trim().split_once(':').map(|(name, _)| name))
        .collect();
    let mut edges = String::new();
    for (index, name) in names.iter().enumerate() {
        let next = names.get(index + 1).copied().unwrap_or("end");
        edges.push_str(&format!("    - {{ from: {name}, to: {next} }}\n"));
    }
    let yaml = format!("name: t\nagents:\n{agents}flow:\n  start: a\n  edges:\n{edges}");
    Workflow::from_yaml_str(&yaml, Path::new("t.yaml")).expect("a valid workflow")
}

fn details(entries: &[(&str, &str, u64)]) -> BTreeMap<String, ModelDetails> {
    entries
        .iter()
        .map(|(name, digest, context)| {
            let details = ModelDetails {
                name: (*name).to_owned(),
                digest: Some((*digest).to_owned()),
                file_bytes: 0,
                context_length: Some(*context),
                ..ModelDetails::default()
            };
            ((*name).to_owned(), details)
        })
        .collect()
}

#[test]
fn agents_on_one_model_send_the_largest_num_ctx() {
    let workflow = workflow(
        "  a: { model: m, prompt: p, options: { num_ctx: 4096 } }\n  \
         b: { model: m, prompt: p, options: { num_ctx: 32768 } }\n  \
         c: { model: m, prompt: p }\n  \
         d: { model: n, prompt: p, options: { num_ctx: 2048 } }\n",
    );
    let sent = shared_num_ctx(&workflow, &BTreeMap::new());
    assert_eq!(sent["m"], 32_768);
    assert_eq!(sent["n"], 2048);
    assert_eq!(
        shared_contexts(&workflow, &BTreeMap::new()),
        vec![SharedContext {
            models: vec!["m".to_owned()],
            agents: vec![
                ("a".to_owned(), 4096),
                ("b".to_owned(), 32_768),
                ("c".to_owned(), 8192)
            ],
            num_ctx: 32_768,
        }]
    );
}

#[test]
fn names_on_the_same_weights_are_one_group() {
    let workflow = workflow(
        "  a: { model: 'm:latest', prompt: p, options: { num_ctx: 4096 } }\n  \
         b: { model: 'm:alias', prompt: p, options: { num_ctx: 16384 } }\n",
    );
    let details = details(&[
        ("m:latest", "sha256:1", 40_960),
        ("m:alias", "sha256:1", 40_960),
    ]);
    let sent = shared_num_ctx(&workflow, &details);
    assert_eq!(sent["m:latest"], 16_384);
    assert_eq!(sent["m:alias"], 16_384);
    let groups = shared_contexts(&workflow, &details);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].models, ["m:latest", "m:alias"]);
}

#[test]
fn the_default_is_capped_at_the_trained_context_and_agreeing_agents_are_not_reported() {
    let workflow = workflow("  a: { model: m, prompt: p }\n  b: { model: m, prompt: p }\n");
    let details = details(&[("m", "sha256:2", 4096)]);
    assert_eq!(shared_num_ctx(&workflow, &details)["m"], 4096);
    assert!(shared_contexts(&workflow, &details).is_empty());
}
