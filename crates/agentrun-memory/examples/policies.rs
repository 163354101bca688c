//! Compares the residency policies on the shipped scenarios in virtual time.
//!
//! Run with `cargo run --release -p agentrun-memory --example policies [SEED] [TURNS]`. For each
//! scenario it generates a speaker sequence (same seed, same sequence for every policy),
//! replays it under each policy and prints load wait, avoidable wait, loads and wall time.
//! With `DEBUG_POLICY=smart` (or another policy) it also lists that policy's every wait.

use agentrun_memory::{
    Budget, FutureTurn, KeepAlive, LoadModeChoice, LoadTimes, ModelSpec, PlannedAgent, PlannedEdge,
    PlannedTarget, Policy, ReplayConfig, Workload, classify_waits, replay,
};
use std::time::Duration;

const GB: u64 = 1_000_000_000;

/// A small deterministic generator (SplitMix64).
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

/// An agent: name, model, turn length range in seconds, static keep_alive.
struct AgentDef(
    &'static str,
    Option<&'static str>,
    (f64, f64),
    Option<KeepAlive>,
);

struct Scenario {
    name: &'static str,
    budget_gb: u64,
    models: Vec<(&'static str, f64)>,
    agents: Vec<AgentDef>,
    edges: Vec<(&'static str, &'static str, f64)>,
}

fn minutes(value: u64) -> Option<KeepAlive> {
    Some(KeepAlive::For(Duration::from_secs(60 * value)))
}

fn tdd(name: &'static str, budget_gb: u64, test_run: (f64, f64)) -> Scenario {
    Scenario {
        name,
        budget_gb,
        models: vec![
            ("qwen3:1.7b", 1.4),
            ("qwen3-coder-next:q4_K_M", 52.0),
            ("qwen3-coder:32b", 19.0),
            ("qwen3-coder:14b", 9.0),
        ],
        agents: vec![
            AgentDef(
                "router",
                Some("qwen3:1.7b"),
                (2.0, 8.0),
                Some(KeepAlive::Forever),
            ),
            AgentDef(
                "architect",
                Some("qwen3-coder-next:q4_K_M"),
                (120.0, 400.0),
                Some(KeepAlive::UnloadWhenIdle),
            ),
            AgentDef(
                "coder",
                Some("qwen3-coder:32b"),
                (30.0, 300.0),
                minutes(120),
            ),
            AgentDef("run_tests", None, test_run, None),
            AgentDef("tester", Some("qwen3-coder:14b"), (15.0, 60.0), minutes(30)),
            AgentDef(
                "reviewer",
                Some("qwen3-coder:14b"),
                (15.0, 60.0),
                minutes(30),
            ),
        ],
        edges: vec![
            ("router", "architect", 0.2),
            ("router", "coder", 0.8),
            ("architect", "router", 1.0),
            ("coder", "run_tests", 1.0),
            ("run_tests", "tester", 1.0),
            ("tester", "coder", 0.5),
            ("tester", "reviewer", 0.5),
            ("reviewer", "router", 0.7),
            ("reviewer", "coder", 0.3),
        ],
    }
}

fn team() -> Scenario {
    Scenario {
        name: "4: eight agents on five models, 54 GB",
        budget_gb: 54,
        models: vec![
            ("qwen3:1.7b", 1.4),
            ("qwen3-coder-next:q4_K_M", 52.0),
            ("qwen3-coder:32b", 19.0),
            ("qwen3-coder:14b", 9.0),
            ("qwen3:8b", 5.2),
        ],
        agents: vec![
            AgentDef(
                "router",
                Some("qwen3:1.7b"),
                (2.0, 8.0),
                Some(KeepAlive::Forever),
            ),
            AgentDef(
                "architect",
                Some("qwen3-coder-next:q4_K_M"),
                (120.0, 400.0),
                Some(KeepAlive::UnloadWhenIdle),
            ),
            AgentDef(
                "coder",
                Some("qwen3-coder:32b"),
                (30.0, 300.0),
                minutes(120),
            ),
            AgentDef("run_tests", None, (60.0, 120.0), None),
            AgentDef("tester", Some("qwen3-coder:14b"), (15.0, 60.0), minutes(30)),
            AgentDef(
                "reviewer",
                Some("qwen3-coder:14b"),
                (15.0, 60.0),
                minutes(30),
            ),
            AgentDef(
                "security",
                Some("qwen3-coder:14b"),
                (15.0, 60.0),
                minutes(30),
            ),
            AgentDef("docs", Some("qwen3:8b"), (20.0, 90.0), minutes(30)),
        ],
        edges: vec![
            ("router", "architect", 0.15),
            ("router", "coder", 0.7),
            ("router", "docs", 0.15),
            ("architect", "router", 1.0),
            ("coder", "run_tests", 1.0),
            ("run_tests", "tester", 1.0),
            ("tester", "coder", 0.5),
            ("tester", "reviewer", 0.5),
            ("reviewer", "security", 0.5),
            ("reviewer", "router", 0.3),
            ("reviewer", "coder", 0.2),
            ("security", "router", 0.6),
            ("security", "coder", 0.4),
            ("docs", "router", 1.0),
        ],
    }
}

fn workload(scenario: &Scenario, load_mode: LoadModeChoice) -> Workload {
    let models = scenario
        .models
        .iter()
        .map(|&(name, gb)| {
            let bytes = (gb * GB as f64) as u64;
            ModelSpec {
                name: name.to_owned(),
                runner_key: name.to_owned(),
                footprint_bytes: bytes,
                load_times: LoadTimes::from_bandwidth(bytes, 2.0, 0.8e9, 5e9),
                load_mode,
            }
        })
        .collect();
    let agents = scenario
        .agents
        .iter()
        .map(
            |AgentDef(name, model, (low, high), keep_alive)| PlannedAgent {
                name: (*name).to_owned(),
                model: model.map(str::to_owned),
                mean_turn_seconds: (low + high) / 2.0,
                static_keep_alive: *keep_alive,
                num_ctx: None,
            },
        )
        .collect();
    let edges = scenario
        .edges
        .iter()
        .map(|&(from, to, weight)| PlannedEdge {
            from: from.to_owned(),
            to: PlannedTarget::Agent(to.to_owned()),
            prior_weight: Some(weight),
            count: 0,
        })
        .collect();
    let budget = Budget {
        gpu_bytes: scenario.budget_gb * GB,
        max_loaded_models: 3,
    };
    Workload::new(models, agents, edges, budget).expect("the scenario is valid")
}

fn sequence(scenario: &Scenario, seed: u64, turns: usize) -> Vec<FutureTurn> {
    let mut random = Lcg(seed);
    let mut agent = "router";
    let mut result = Vec::with_capacity(turns);
    for _ in 0..turns {
        let def = scenario
            .agents
            .iter()
            .find(|def| def.0 == agent)
            .expect("known agent");
        result.push(FutureTurn {
            agent: agent.to_owned(),
            seconds: random.between(def.2.0, def.2.1),
        });
        let mut pick = random.unit();
        let outgoing: Vec<_> = scenario
            .edges
            .iter()
            .filter(|edge| edge.0 == agent)
            .collect();
        agent = outgoing.last().expect("every agent hands over").1;
        for edge in outgoing {
            if pick < edge.2 {
                agent = edge.1;
                break;
            }
            pick -= edge.2;
        }
    }
    result
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|text| text.parse().ok()).unwrap_or(1);
    let turns: usize = args
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(400);
    let scenarios = [
        tdd("1: target Mac, 54 GB", 54, (60.0, 120.0)),
        tdd("1b: target Mac, test runs 4-6 min", 54, (240.0, 360.0)),
        tdd("2: 32 GB", 32, (60.0, 120.0)),
        tdd("3: 24 GB", 24, (60.0, 120.0)),
        team(),
    ];
    let config = ReplayConfig {
        default_keep_alive: KeepAlive::For(Duration::from_secs(300)),
        learn: true,
    };
    for scenario in &scenarios {
        let turns = sequence(scenario, seed, turns);
        for (label, choice) in [
            ("mmap", LoadModeChoice::Mmap),
            ("auto", LoadModeChoice::Auto),
        ] {
            let workload = workload(scenario, choice);
            println!(
                "scenario {} (load mode {label}, {} turns)",
                scenario.name,
                turns.len()
            );
            let mut oracle_wait = None;
            for policy in [
                Policy::Oracle,
                Policy::Smart,
                Policy::Static,
                Policy::OllamaDefault,
            ] {
                let base = if matches!(policy, Policy::Static | Policy::OllamaDefault) {
                    self::workload(scenario, LoadModeChoice::Mmap)
                } else {
                    workload.clone()
                };
                let report = replay(policy, &base, &turns, &config).expect("valid replay");
                let waits = classify_waits(&report.turns, &base).expect("known models");
                if std::env::var("DEBUG_POLICY").ok().as_deref() == Some(policy.name()) {
                    for (index, (turn, class)) in report.turns.iter().zip(&waits.turns).enumerate()
                    {
                        if turn.waited {
                            let from = index.saturating_sub(8);
                            let window: Vec<_> = report.turns[from..index]
                                .iter()
                                .map(|t| t.agent.as_str())
                                .collect();
                            println!(
                                "    turn {index} {} waited {:.1} s {:?} after {:?}",
                                turn.agent, turn.wait_seconds, class, window
                            );
                        }
                    }
                }
                let oracle = *oracle_wait.get_or_insert(report.load_wait_seconds);
                println!(
                    "  {:<15} wait {:8.1} s  avoidable {:7.1} s  x{:5.2} of oracle  loads {:4}  unloads {:4}  GB {:7.1}  wall {:8.0} s  violations {}",
                    policy.name(),
                    report.load_wait_seconds,
                    waits.avoidable_seconds,
                    report.load_wait_seconds / oracle.max(1e-9),
                    report.loads,
                    report.unloads,
                    report.bytes_loaded as f64 / 1e9,
                    report.wall_seconds,
                    report.plan_violations.len()
                        + report.evictions
                            * usize::from(matches!(policy, Policy::Smart | Policy::Oracle)),
                );
            }
        }
    }
}
