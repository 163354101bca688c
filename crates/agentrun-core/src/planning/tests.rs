//! The planner's inputs: informed priors, the shared `num_ctx`, and what earlier runs learnt.

use std::collections::BTreeMap;
use std::path::Path;

use agentrun_memory::LoadMode;
use agentrun_spec::{EdgeTarget, Workflow};

use super::{WorkloadSettings, build_workload, model_load_time_options};
use crate::backend::ModelDetails;
use crate::observations::Observations;

const WORKFLOW: &str = "\
name: pair
agents:
  writer: { model: 'm:8b', prompt: p, options: { num_ctx: 4096, num_predict: 100 } }
  reviewer: { model: 'm:8b', prompt: p, options: { num_ctx: 16384 } }
  tests: { kind: command, command: [make, test], timeout: 10s }
flow:
  start: writer
  edges:
    - { from: writer, to: reviewer }
    - { from: reviewer, to: tests, when: { contains: OK } }
    - { from: reviewer, to: writer }
    - { from: tests, to: end }
simulation:
  agents:
    writer: { tokens_per_second: 50 }
";

fn workflow() -> Workflow {
    Workflow::from_yaml_str(WORKFLOW, Path::new("pair.yaml")).expect("a valid workflow")
}

fn details() -> BTreeMap<String, ModelDetails> {
    let details = ModelDetails {
        name: "m:8b".to_owned(),
        file_bytes: 5_000_000_000,
        digest: Some("sha256:8b".to_owned()),
        block_count: Some(36),
        head_count: Some(32),
        head_count_kv: Some(8),
        embedding_length: Some(4096),
        context_length: Some(40_960),
        capabilities: Vec::new(),
    };
    BTreeMap::from([("m:8b".to_owned(), details)])
}

fn settings(experience: Observations) -> WorkloadSettings {
    WorkloadSettings {
        gpu_budget: Some(54_000_000_000),
        experience,
        ..WorkloadSettings::default()
    }
}

#[test]
fn each_agent_starts_from_its_own_prior_not_a_flat_constant() {
    let workload = build_workload(&workflow(), &details(), &settings(Observations::default()))
        .expect("a workload");
    // 100 tokens (num_predict) at 50 tokens/s, plus 100.25 prompt tokens at 1000 tokens/s.
    let writer = workload.mean_turn_seconds("writer").expect("known");
    assert!((writer - 2.1).abs() < 1e-3, "{writer}");
    // The command: the default 60 s, capped at its 10 s timeout.
    assert_eq!(workload.mean_turn_seconds("tests"), Ok(10.0));
    let reviewer = workload.mean_turn_seconds("reviewer").expect("known");
    assert!(reviewer > writer && reviewer != 60.0, "{reviewer}");
}

#[test]
fn every_call_of_a_shared_model_sends_the_largest_num_ctx() {
    let options = model_load_time_options(&workflow(), &details());
    assert_eq!(options["m:8b"]["num_ctx"], 16_384);
    let workload = build_workload(&workflow(), &details(), &settings(Observations::default()))
        .expect("a workload");
    assert!(
        workload
            .agents()
            .iter()
            .filter(|agent| agent.model.is_some())
            .all(|agent| agent.num_ctx == Some(16_384))
    );
}

#[test]
fn what_earlier_runs_measured_replaces_the_priors_it_covers() {
    let mut experience = Observations::default();
    for _ in 0..20 {
        experience.turn("reviewer", 40.0);
        experience.edge("reviewer", &EdgeTarget::Agent("tests".into()));
    }
    // An edge the workflow does not have is not invented.
    experience.edge("writer", &EdgeTarget::End);
    experience.load("m:8b", LoadMode::NoMmap, 7.5);
    let workload =
        build_workload(&workflow(), &details(), &settings(experience)).expect("a workload");
    assert_eq!(workload.mean_turn_seconds("reviewer"), Ok(40.0));
    // 20 approvals against a uniform prior worth 4 turns: (2 + 20) / 24.
    let approve = workload
        .transition_probability("reviewer", Some("tests"))
        .expect("known");
    assert!((approve - 22.0 / 24.0).abs() < 1e-9, "{approve}");
    assert_eq!(workload.transition_probability("writer", None), Ok(0.0));
    let times = workload.load_times("m:8b").expect("known");
    assert_eq!(times.no_mmap_seconds, 7.5);
    // The mode not measured keeps its estimate: 2 s + 5 GB at 0.8 GB/s.
    assert!((times.mmap_seconds - 8.25).abs() < 1e-9);

    // Remembered turns outweigh one odd turn of this run: counted as 8 turns, not 20 or 1.
    let mut learning = workload.clone();
    learning
        .record_turn_seconds("reviewer", 130.0)
        .expect("known");
    assert_eq!(learning.mean_turn_seconds("reviewer"), Ok(50.0));
}

#[test]
fn a_preload_runs_as_the_agent_the_graph_leads_to_most_often() {
    let residency = super::Residency::new(
        &workflow(),
        &details(),
        super::ResidencySettings {
            policy: agentrun_memory::Policy::Smart,
            gpu_budget: Some(54_000_000_000),
            load_mode: None,
            future: None,
            measured_load_times: BTreeMap::new(),
            experience: Observations::default(),
            host_memory: None,
        },
    )
    .expect("a workload");
    // Both model agents share the model; the writer's turn leads to the reviewer.
    assert_eq!(
        residency.next_caller("writer", "m:8b").as_deref(),
        Some("reviewer")
    );
    // The reviewer's leads back to the writer (or to the tests, which use no model).
    assert_eq!(
        residency.next_caller("reviewer", "m:8b").as_deref(),
        Some("writer")
    );
    assert_eq!(residency.next_caller("writer", "other:1b"), None);
}
