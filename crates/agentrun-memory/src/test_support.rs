//! Builders shared by the unit tests: models, agents and edges in a line each.

use std::time::Duration;

use crate::LoadModeChoice;
use crate::budget::Budget;
use crate::keep_alive::KeepAlive;
use crate::plan::{FutureTurn, LoadedModel};
use crate::workload::{LoadTimes, ModelSpec, PlannedAgent, PlannedEdge, PlannedTarget, Workload};

pub(crate) const GB: u64 = 1_000_000_000;

/// A model on its own weights, loading at 2 s + 0.8 GB/s (mmap) or 5 GB/s (no mmap).
pub(crate) fn model(name: &str, gb: f64) -> ModelSpec {
    let bytes = (gb * GB as f64) as u64;
    ModelSpec {
        name: name.to_owned(),
        runner_key: name.to_owned(),
        footprint_bytes: bytes,
        load_times: LoadTimes::from_bandwidth(bytes, 2.0, 0.8e9, 5e9),
        load_mode: LoadModeChoice::Mmap,
    }
}

pub(crate) fn agent(name: &str, model: Option<&str>, seconds: f64) -> PlannedAgent {
    PlannedAgent {
        name: name.to_owned(),
        model: model.map(str::to_owned),
        mean_turn_seconds: seconds,
        static_keep_alive: None,
        num_ctx: None,
    }
}

pub(crate) fn edge(from: &str, to: &str, weight: f64) -> PlannedEdge {
    PlannedEdge {
        from: from.to_owned(),
        to: if to == "end" {
            PlannedTarget::End
        } else {
            PlannedTarget::Agent(to.to_owned())
        },
        prior_weight: Some(weight),
        count: 0,
    }
}

pub(crate) fn budget(gb: u64, max_loaded_models: usize) -> Budget {
    Budget {
        gpu_bytes: gb * GB,
        max_loaded_models,
    }
}

pub(crate) fn minutes(value: u64) -> Option<KeepAlive> {
    Some(KeepAlive::For(Duration::from_secs(60 * value)))
}

/// The TDD team of the design document: router, architect, coder, a test command, tester and
/// reviewer (both on the 14b model).
pub(crate) fn tdd_workload(budget_gb: u64) -> Workload {
    let mut agents = vec![
        agent("router", Some("qwen3:1.7b"), 5.0),
        agent("architect", Some("architect-80b"), 260.0),
        agent("coder", Some("coder-32b"), 165.0),
        agent("run_tests", None, 90.0),
        agent("tester", Some("coder-14b"), 37.0),
        agent("reviewer", Some("coder-14b"), 37.0),
    ];
    agents[0].static_keep_alive = Some(KeepAlive::Forever);
    agents[1].static_keep_alive = Some(KeepAlive::UnloadWhenIdle);
    agents[2].static_keep_alive = minutes(120);
    agents[4].static_keep_alive = minutes(30);
    agents[5].static_keep_alive = minutes(30);
    Workload::new(
        vec![
            model("qwen3:1.7b", 1.4),
            model("architect-80b", 52.0),
            model("coder-32b", 19.0),
            model("coder-14b", 9.0),
        ],
        agents,
        vec![
            edge("router", "architect", 0.2),
            edge("router", "coder", 0.8),
            edge("architect", "router", 1.0),
            edge("coder", "run_tests", 1.0),
            edge("run_tests", "tester", 1.0),
            edge("tester", "coder", 0.5),
            edge("tester", "reviewer", 0.5),
            edge("reviewer", "router", 0.7),
            edge("reviewer", "coder", 0.3),
        ],
        budget(budget_gb, 3),
    )
    .expect("the TDD workload is valid")
}

/// The loop of the shipped `tdd.yaml` at a 24 GB budget (footprints at 8k context), where the
/// architect designs on the coder's model: a passing test run hands over to the reviewer (on
/// the tester's model), a failing one back to the coder, and the coder and the 14b never fit
/// together.
pub(crate) fn shipped_tdd_workload_24gb() -> Workload {
    Workload::new(
        vec![
            model("qwen3:1.7b", 2.3),
            model("coder-32b", 20.6),
            model("coder-14b", 10.3),
        ],
        vec![
            agent("architect", Some("coder-32b"), 250.0),
            agent("tester", Some("coder-14b"), 60.0),
            agent("coder", Some("coder-32b"), 150.0),
            agent("tests", None, 90.0),
            agent("reviewer", Some("coder-14b"), 25.0),
            agent("router", Some("qwen3:1.7b"), 1.0),
        ],
        vec![
            edge("architect", "tester", 1.0),
            edge("tester", "coder", 1.0),
            edge("coder", "tests", 1.0),
            edge("tests", "reviewer", 0.6),
            edge("tests", "coder", 0.4),
            edge("reviewer", "router", 0.6),
            edge("reviewer", "coder", 0.4),
            edge("router", "tester", 0.7),
            edge("router", "architect", 0.25),
            edge("router", "end", 0.05),
        ],
        budget(24, 3),
    )
    .expect("the shipped TDD loop is valid")
}

pub(crate) fn resident(workload: &Workload, models: &[&str]) -> Vec<LoadedModel> {
    models
        .iter()
        .map(|model| LoadedModel {
            model: (*model).to_owned(),
            bytes: workload
                .footprint_bytes(model)
                .expect("a model of the workload"),
            busy: false,
            keep_alive: None,
        })
        .collect()
}

/// A speaker sequence from a SplitMix64 walk over the workload's learnt probabilities, turn
/// lengths uniform in [0.5, 1.5] x the agent's mean.
pub(crate) fn walk(workload: &Workload, start: &str, turns: usize, seed: u64) -> Vec<FutureTurn> {
    let mut state = seed;
    let mut unit = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut agent = workload.agent_id(start).expect("a known start");
    let mut result = Vec::with_capacity(turns);
    for _ in 0..turns {
        let mean = workload.turn_seconds[agent];
        result.push(FutureTurn {
            agent: workload.agents()[agent].name.clone(),
            seconds: mean * (0.5 + unit()),
        });
        let mut pick = unit();
        let edges = &workload.out[agent];
        let mut next = edges.iter().rev().find_map(|edge| edge.to);
        for edge in edges {
            if pick < edge.probability {
                next = edge.to;
                break;
            }
            pick -= edge.probability;
        }
        match next {
            Some(to) => agent = to,
            None => break,
        }
    }
    result
}
