//! Property tests (random graphs, budgets and model sizes: every plan keeps Ollama's rules) and
//! the policies compared on the TDD team.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::LoadModeChoice;
use crate::budget::Budget;
use crate::plan::{LoadedModel, PlanContext};
use crate::test_support::{GB, shipped_tdd_workload_24gb, tdd_workload, walk};
use crate::wait::classify_waits;
use crate::workload::{LoadTimes, ModelSpec, PlannedAgent, PlannedEdge, PlannedTarget};

const CONFIG: ReplayConfig = ReplayConfig {
    default_keep_alive: KeepAlive::For(Duration::from_secs(300)),
    learn: true,
};

/// A random workload and a random speaker sequence over it (not necessarily along its edges:
/// the planner must cope with any speaker).
#[derive(Debug, Clone)]
struct Case {
    workload: Workload,
    turns: Vec<FutureTurn>,
}

fn case() -> impl Strategy<Value = Case> {
    let models = prop::collection::vec((1u64..=120, any::<bool>(), 0u8..3), 1..=5);
    let agents = prop::collection::vec((prop::option::weighted(0.8, 0usize..5), 1u32..=300), 1..=7);
    (models, agents, 4u64..=80, 1usize..=4, any::<u64>())
        .prop_flat_map(|(models, agents, budget_gb, cap, seed)| {
            let agent_count = agents.len();
            let edges = prop::collection::vec(
                (
                    0..agent_count,
                    prop::option::weighted(0.9, 0..agent_count),
                    1u32..50,
                ),
                0..=agent_count * 3,
            );
            let turns = prop::collection::vec((0..agent_count, 1u32..=400), 1..=40);
            (Just((models, agents, budget_gb, cap, seed)), edges, turns)
        })
        .prop_map(|((models, agents, budget_gb, cap, _), edges, turns)| {
            let model_count = models.len();
            let models: Vec<ModelSpec> = models
                .iter()
                .enumerate()
                .map(|(index, &(half_gb, shares_first, mode))| {
                    let bytes = half_gb * GB / 2;
                    ModelSpec {
                        name: format!("m{index}"),
                        runner_key: if shares_first {
                            "m0".to_owned()
                        } else {
                            format!("m{index}")
                        },
                        footprint_bytes: bytes,
                        load_times: LoadTimes::from_bandwidth(bytes, 2.0, 0.8e9, 5e9),
                        load_mode: match mode {
                            0 => LoadModeChoice::Auto,
                            1 => LoadModeChoice::Mmap,
                            _ => LoadModeChoice::NoMmap,
                        },
                    }
                })
                .collect();
            let agents: Vec<PlannedAgent> = agents
                .iter()
                .enumerate()
                .map(|(index, &(model, seconds))| PlannedAgent {
                    name: format!("a{index}"),
                    model: model.map(|model| format!("m{}", model % model_count)),
                    mean_turn_seconds: f64::from(seconds),
                    static_keep_alive: None,
                    num_ctx: None,
                })
                .collect();
            let edges: Vec<PlannedEdge> = edges
                .iter()
                .map(|&(from, to, weight)| PlannedEdge {
                    from: format!("a{from}"),
                    to: to.map_or(PlannedTarget::End, |to| {
                        PlannedTarget::Agent(format!("a{to}"))
                    }),
                    prior_weight: Some(f64::from(weight) / 10.0),
                    count: 0,
                })
                .collect();
            let budget = Budget {
                gpu_bytes: budget_gb * GB,
                max_loaded_models: cap,
            };
            let workload = Workload::new(models, agents, edges, budget).expect("generated valid");
            let turns = turns
                .iter()
                .map(|&(agent, seconds)| FutureTurn {
                    agent: format!("a{agent}"),
                    seconds: f64::from(seconds),
                })
                .collect();
            Case { workload, turns }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Replayed against the model of Ollama's scheduler, smart and oracle plans never need the
    /// server to evict on its own (every load passes the cap and the fit test in the planned
    /// order against what is really resident), never break a plan rule, never change a
    /// model's load mode and never let a model expire.
    #[test]
    fn plans_keep_ollamas_rules(case in case()) {
        for policy in [Policy::Smart, Policy::Oracle] {
            let report = replay(policy, &case.workload, &case.turns, &CONFIG).expect("valid replay");
            prop_assert!(report.plan_violations.is_empty(), "{policy}: {:?}", report.plan_violations);
            prop_assert_eq!(report.evictions, 0, "{} made the server evict", policy);
            prop_assert_eq!(report.load_mode_changes, 0);
            prop_assert_eq!(report.expiries, 0);
        }
    }

    /// From any residency (foreign models, busy models, over-full servers), a plan's unloads,
    /// call and preloads keep the rules.
    #[test]
    fn plans_from_any_residency_keep_the_rules(
        case in case(),
        picks in prop::collection::vec((0usize..6, any::<bool>(), 0u64..80), 0..5),
    ) {
        let names: Vec<String> = case.workload.models().iter().map(|model| model.name.clone()).collect();
        let resident: Vec<LoadedModel> = picks
            .iter()
            .map(|&(pick, busy, gb)| LoadedModel {
                model: names.get(pick).cloned().unwrap_or_else(|| format!("foreign-{pick}")),
                bytes: gb * GB,
                busy,
                keep_alive: None,
            })
            .collect();
        for policy in [Policy::Smart, Policy::Oracle] {
            let context = PlanContext {
                speaker: &case.turns[0].agent,
                resident: &resident,
                future: &case.turns,
            };
            let plan = crate::plan::plan_turn(policy, &case.workload, &context).expect("valid context");
            let verdict = crate::audit::audit_plan(&case.workload, &context, &plan);
            prop_assert!(verdict.is_ok(), "{policy}: {verdict:?}\n{plan}");
            let mut modes = plan.preloads.iter().map(|preload| (&preload.model, preload.load_mode))
                .chain(plan.call.iter().map(|call| (&call.model, call.load_mode)));
            prop_assert!(modes.all(|(model, mode)| case.workload.load_mode(model) == Ok(mode)));
        }
    }
}

/// Each policy's load wait on a 300-turn run of the TDD team (a fixed walk).
fn tdd_waits(budget_gb: u64) -> Vec<(Policy, f64, f64)> {
    let workload = tdd_workload(budget_gb);
    let turns = walk(&workload, "router", 300, 7);
    Policy::ALL
        .iter()
        .map(|&policy| {
            let report = replay(policy, &workload, &turns, &CONFIG).expect("valid replay");
            let waits = classify_waits(&report.turns, &workload).expect("known models");
            (policy, report.load_wait_seconds, waits.avoidable_seconds)
        })
        .collect()
}

#[test]
fn smart_has_no_avoidable_wait_and_beats_the_passive_policies() {
    for budget_gb in [54, 32, 24] {
        let waits = tdd_waits(budget_gb);
        let wait = |policy: Policy| {
            waits
                .iter()
                .find(|(other, ..)| *other == policy)
                .expect("all policies")
        };
        let (_, smart, smart_avoidable) = *wait(Policy::Smart);
        let (_, oracle, oracle_avoidable) = *wait(Policy::Oracle);
        let (_, static_wait, _) = *wait(Policy::Static);
        let (_, default_wait, _) = *wait(Policy::OllamaDefault);
        assert_eq!(smart_avoidable, 0.0, "{budget_gb} GB: {waits:?}");
        assert_eq!(oracle_avoidable, 0.0, "{budget_gb} GB: {waits:?}");
        assert!(oracle <= smart + 1e-9, "{budget_gb} GB: {waits:?}");
        assert!(smart <= 1.10 * oracle, "{budget_gb} GB: {waits:?}");
        assert!(smart * 1.1 <= static_wait, "{budget_gb} GB: {waits:?}");
        assert!(smart * 1.25 <= default_wait, "{budget_gb} GB: {waits:?}");
    }
}

#[test]
fn ollamas_five_minute_default_expires_the_loop_during_long_test_runs() {
    let workload = tdd_workload(54);
    let mut turns = walk(&workload, "router", 200, 3);
    for turn in turns.iter_mut().filter(|turn| turn.agent == "run_tests") {
        turn.seconds = 330.0;
    }
    let default = replay(Policy::OllamaDefault, &workload, &turns, &CONFIG).expect("valid replay");
    let smart = replay(Policy::Smart, &workload, &turns, &CONFIG).expect("valid replay");
    assert!(default.expiries > 10, "{} expiries", default.expiries);
    assert_eq!(smart.expiries, 0);
    assert!(smart.load_wait_seconds * 1.5 <= default.load_wait_seconds);
}

#[test]
fn the_replay_serializes_loads_and_counts_them() {
    // The oracle knows the coder follows the router: the coder's preload starts once the router
    // is resident (loads never overlap) and the router's 1 s turn hides 1 s of it.
    let workload = tdd_workload(54);
    let turns = vec![
        FutureTurn {
            agent: "router".to_owned(),
            seconds: 1.0,
        },
        FutureTurn {
            agent: "coder".to_owned(),
            seconds: 100.0,
        },
    ];
    let report = replay(Policy::Oracle, &workload, &turns, &CONFIG).expect("valid replay");
    let waits: Vec<f64> = report.turns.iter().map(|turn| turn.wait_seconds).collect();
    assert_eq!(waits, [3.75, 3.75 + 25.75 - 3.75 - 1.0]);
    assert_eq!(report.loads, 2);
    assert_eq!(report.bytes_loaded, 20_400_000_000);
    assert_eq!(report.wall_seconds, 3.75 + 25.75 + 100.0);
}

#[test]
fn on_the_shipped_loop_smart_trails_the_oracle_only_where_a_test_outcome_decides() {
    // The shipped TDD loop at 24 GB: after a passing test run the reviewer needs the 14b, which
    // cannot load beside the coder; after a failing one the coder speaks again. Smart cannot
    // know the outcome before the run ends, so it keeps the coder (zero avoidable wait) and the
    // reviewer waits for the 14b. On every other turn it waits exactly as long as the oracle.
    let workload = shipped_tdd_workload_24gb();
    let tester_load = workload
        .load_times("coder-14b")
        .expect("a model of the workload")
        .mmap_seconds;
    for seed in [1, 2, 3] {
        let turns = walk(&workload, "architect", 300, seed);
        let smart = replay(Policy::Smart, &workload, &turns, &CONFIG).expect("valid replay");
        let oracle = replay(Policy::Oracle, &workload, &turns, &CONFIG).expect("valid replay");
        let waits = classify_waits(&smart.turns, &workload).expect("known models");
        assert_eq!(waits.avoidable_seconds, 0.0, "seed {seed}");
        assert!(
            smart.plan_violations.is_empty(),
            "{:?}",
            smart.plan_violations
        );
        let mut gaps = 0;
        for (index, (mine, best)) in smart.turns.iter().zip(&oracle.turns).enumerate() {
            if (mine.wait_seconds - best.wait_seconds).abs() < 1e-6 {
                continue;
            }
            let after_tests = index > 0 && turns[index - 1].agent == "tests";
            assert!(
                mine.agent == "reviewer" && after_tests,
                "seed {seed}, turn {index} ({}): smart {:.2} s, oracle {:.2} s",
                mine.agent,
                mine.wait_seconds,
                best.wait_seconds
            );
            assert_eq!(best.wait_seconds, 0.0, "seed {seed}, turn {index}");
            assert!(
                (mine.wait_seconds - tester_load).abs() < 1e-6,
                "seed {seed}, turn {index}: {:.2} s",
                mine.wait_seconds
            );
            gaps += 1;
        }
        let passes = turns
            .windows(2)
            .filter(|pair| pair[0].agent == "tests" && pair[1].agent == "reviewer")
            .count();
        assert!(passes > 0, "seed {seed}: the walk has passing test runs");
        assert_eq!(gaps, passes, "seed {seed}");
    }
}
