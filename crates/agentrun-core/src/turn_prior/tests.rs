//! The prior rule per kind of agent, with the figures it gives.

use std::path::Path;

use agentrun_spec::{AgentSimulation, Workflow};

use super::{ModelFacts, turn_prior};

/// A workflow with one agent described by `agent` (YAML under `agents:`) and, when given, its
/// `simulation` entry. A router's choices all end the run.
fn workflow(agent: &str, simulation: &str) -> Workflow {
    let simulation = if simulation.is_empty() {
        String::new()
    } else {
        format!("simulation:\n  agents:\n    a: {simulation}\n")
    };
    let edges = if agent.contains("choices") {
        "    - { from: a, to: end, when: { choice: x } }\n    - { from: a, to: end, when: { choice: y } }\n"
    } else {
        "    - { from: a, to: end }\n"
    };
    let yaml =
        format!("name: t\nagents:\n  a: {agent}\nflow:\n  start: a\n  edges:\n{edges}{simulation}");
    Workflow::from_yaml_str(&yaml, Path::new("t.yaml")).expect("a valid workflow")
}

fn prior_of(workflow: &Workflow, model: ModelFacts) -> f64 {
    let agent = &workflow.agents[0];
    let behaviour: &AgentSimulation = &workflow.simulation.agents[&agent.name];
    turn_prior(agent, behaviour, model).seconds
}

const GB: u64 = 1_000_000_000;

#[test]
fn a_model_agent_takes_its_mean_reply_at_the_bandwidth_bound_of_its_size() {
    // 19.1 GB of weights: 0.7 x 273 GB/s / 19.1 GB = 10.0 tokens/s; 900 tokens by default.
    let workflow = workflow("{ model: m, prompt: p, options: { num_ctx: 2048 } }", "");
    let seconds = prior_of(
        &workflow,
        ModelFacts {
            file_bytes: 19_110_000_000,
            measured_tokens_per_second: None,
        },
    );
    let decode = 900.0 / 10.0;
    let prompt = 900.0 / (10.0 * 20.0);
    assert!((seconds - (decode + prompt)).abs() < 0.01, "{seconds}");
}

#[test]
fn a_smaller_model_is_expected_to_answer_sooner() {
    let workflow = workflow("{ model: m, prompt: p, options: { num_ctx: 2048 } }", "");
    let big = prior_of(&workflow, facts(19 * GB));
    let small = prior_of(&workflow, facts(GB));
    assert!((big / small - 19.0).abs() < 1e-3, "{big} vs {small}");
}

#[test]
fn num_predict_caps_the_reply() {
    let workflow = workflow(
        "{ model: m, prompt: p, options: { num_ctx: 2048, num_predict: 90 } }",
        "",
    );
    let capped = prior_of(&workflow, facts(19_110_000_000));
    assert!((capped - (9.0 + 0.45)).abs() < 0.01, "{capped}");
    // A limit above the expected reply changes nothing.
    let loose = workflow_prior(
        "{ model: m, prompt: p, options: { num_ctx: 2048, num_predict: 5000 } }",
        "",
    );
    let free = workflow_prior("{ model: m, prompt: p, options: { num_ctx: 2048 } }", "");
    assert_eq!(loose, free);
}

#[test]
fn a_router_answers_in_a_few_dozen_tokens() {
    let router = workflow_prior(
        "{ model: m, prompt: p, options: { num_ctx: 2048 }, choices: [x, y] }",
        "",
    );
    let writer = workflow_prior("{ model: m, prompt: p, options: { num_ctx: 2048 } }", "");
    // 25 tokens against 900.
    assert!(
        (writer / router - 36.0).abs() < 0.05,
        "{writer} vs {router}"
    );
}

#[test]
fn the_workflows_speed_beats_a_measured_one_which_beats_the_size() {
    let given = workflow(
        "{ model: m, prompt: p, options: { num_ctx: 2048 } }",
        "{ reply_tokens: 100, tokens_per_second: 50 }",
    );
    let measured = ModelFacts {
        file_bytes: 19 * GB,
        measured_tokens_per_second: Some(25.0),
    };
    assert!((prior_of(&given, measured) - (2.0 + 0.1)).abs() < 1e-3);
    let plain = workflow(
        "{ model: m, prompt: p, options: { num_ctx: 2048 } }",
        "{ reply_tokens: 100 }",
    );
    assert!((prior_of(&plain, measured) - (4.0 + 0.2)).abs() < 1e-3);
}

#[test]
fn a_long_role_prompt_costs_its_evaluation() {
    let prompt = "x".repeat(8001); // 2000 tokens more than `p`
    let long = workflow(
        &format!("{{ model: m, prompt: {prompt}, options: {{ num_ctx: 2048 }} }}"),
        "{ reply_tokens: 100, tokens_per_second: 10 }",
    );
    let short = workflow(
        "{ model: m, prompt: p, options: { num_ctx: 2048 } }",
        "{ reply_tokens: 100, tokens_per_second: 10 }",
    );
    let extra = prior_of(&long, facts(GB)) - prior_of(&short, facts(GB));
    assert!((extra - 2000.0 / 200.0).abs() < 1e-3, "{extra}");
}

#[test]
fn an_unknown_model_size_falls_back_to_a_documented_speed() {
    let workflow = workflow(
        "{ model: m, prompt: p, options: { num_ctx: 2048 } }",
        "{ reply_tokens: 200 }",
    );
    let seconds = prior_of(&workflow, ModelFacts::default());
    assert!((seconds - (10.0 + 0.5)).abs() < 1e-3, "{seconds}");
}

#[test]
fn a_command_takes_its_mean_duration_within_its_timeout() {
    let plain = workflow("{ kind: command, command: [make, test] }", "");
    assert_eq!(prior_of(&plain, ModelFacts::default()), 60.0);
    let described = workflow(
        "{ kind: command, command: [make, test] }",
        "{ duration: [10s, 20s] }",
    );
    assert_eq!(prior_of(&described, ModelFacts::default()), 15.0);
    let short = workflow("{ kind: command, command: [make, test], timeout: 20s }", "");
    assert_eq!(prior_of(&short, ModelFacts::default()), 20.0);
}

#[test]
fn a_person_takes_the_mean_of_their_simulated_answer() {
    let person = workflow("{ kind: human, prompt: Decide. }", "");
    assert_eq!(prior_of(&person, ModelFacts::default()), 75.0);
}

fn facts(file_bytes: u64) -> ModelFacts {
    ModelFacts {
        file_bytes,
        measured_tokens_per_second: None,
    }
}

fn workflow_prior(agent: &str, simulation: &str) -> f64 {
    prior_of(&workflow(agent, simulation), facts(19_110_000_000))
}
