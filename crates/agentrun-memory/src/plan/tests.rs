//! Planner decisions on small scenarios: scenario in, rendered plan out.

use std::time::Duration;

use insta::assert_snapshot;

use super::*;
use crate::test_support::{
    GB, agent, budget, edge, model, resident, shipped_tdd_workload_24gb, tdd_workload,
};

fn coder_tester(budget_gb: u64) -> Workload {
    Workload::new(
        vec![model("coder-32b", 20.0), model("tester-14b", 10.0)],
        vec![
            agent("coder", Some("coder-32b"), 120.0),
            agent("tester", Some("tester-14b"), 60.0),
        ],
        vec![edge("coder", "tester", 1.0), edge("tester", "coder", 1.0)],
        budget(budget_gb, 3),
    )
    .expect("valid")
}

#[track_caller]
fn check(policy: Policy, workload: &Workload, speaker: &str, resident: &[LoadedModel]) -> String {
    let context = PlanContext {
        speaker,
        resident,
        future: &[],
    };
    let plan = plan_turn(policy, workload, &context).expect("a valid context");
    crate::audit::audit_plan(workload, &context, &plan).expect("the plan keeps the rules");
    plan.to_string()
}

#[test]
fn the_larger_model_loads_first_so_both_fit() {
    // 34 GB: coder (20) then tester (10 <= 0.8 x 14) fits; the other order does not.
    let workload = coder_tester(34);
    assert_snapshot!(check(Policy::Smart, &workload, "coder", &[]), @r"
call coder-32b keep_alive=1day 1m mode=mmap loads (coder speaks; coder-32b loads now)
preload tester-14b keep_alive=1day mode=mmap (p=1.00 within 8 turns, in ~120 s; loads while coder's turn runs)
");
}

#[test]
fn a_smaller_model_loaded_first_blocks_the_larger_until_the_next_turn() {
    let workload = coder_tester(34);
    // The tester speaks first: the coder cannot load beside it (20 > 0.8 x 24) while the
    // tester is busy, so nothing is preloaded; at the coder's turn the tester makes room and is
    // preloaded back beside the coder.
    assert_snapshot!(check(Policy::Smart, &workload, "tester", &[]), @"call tester-14b keep_alive=1day mode=mmap loads (tester speaks; tester-14b loads now)");
    let after = resident(&workload, &["tester-14b"]);
    assert_snapshot!(check(Policy::Smart, &workload, "coder", &after), @r"
unload tester-14b (make room for coder-32b (20.0 GB), which coder calls now; tester-14b p=1.00 within 8 turns, in ~120 s)
call coder-32b keep_alive=1day 1m mode=mmap loads (coder speaks; coder-32b loads now)
preload tester-14b keep_alive=1day mode=mmap (p=1.00 within 8 turns, in ~120 s; loads while coder's turn runs)
");
}

#[test]
fn the_architect_clears_the_server_and_the_router_comes_back_beside_it() {
    let workload = tdd_workload(54);
    let loop_models = resident(&workload, &["qwen3:1.7b", "coder-32b", "coder-14b"]);
    assert_snapshot!(check(Policy::Smart, &workload, "architect", &loop_models), @r"
unload coder-14b (make room for architect-80b (52.0 GB), which architect calls now; coder-14b p=0.99 within 8 turns, in ~580 s)
unload coder-32b (make room for architect-80b (52.0 GB), which architect calls now; coder-32b p=1.00 within 8 turns, in ~330 s)
unload qwen3:1.7b (make room for architect-80b (52.0 GB), which architect calls now; qwen3:1.7b p=1.00 within 8 turns, in ~260 s)
call architect-80b keep_alive=1day 1m mode=mmap loads (architect speaks; architect-80b loads now)
preload qwen3:1.7b keep_alive=1day mode=mmap (p=1.00 within 8 turns, in ~260 s; loads while architect's turn runs)
");
}

#[test]
fn a_test_run_hides_the_swap_when_coder_and_tester_cannot_share() {
    // 24 GB: the coder (19) and the 14b (9) never fit together; the test command runs for
    // minutes with no model, so the tester's model replaces the coder's during it.
    let workload = tdd_workload(24);
    let loaded = resident(&workload, &["qwen3:1.7b", "coder-32b"]);
    assert_snapshot!(check(Policy::Smart, &workload, "run_tests", &loaded), @r"
refresh qwen3:1.7b keep_alive=1day (evicted #1 of 2 if Ollama needs room (p=0.58 within 8 turns, in ~282 s); shortest keep_alive goes first)
unload coder-32b (make room to preload coder-14b (9.0 GB); coder-32b p=1.00 within 8 turns, in ~168 s)
no call
preload coder-14b keep_alive=1day 1m mode=mmap (p=1.00 within 8 turns, in ~90 s; loads while run_tests's turn runs)
");
}

#[test]
fn the_loop_stays_resident_through_a_test_run() {
    let workload = tdd_workload(54);
    let loaded = resident(&workload, &["qwen3:1.7b", "coder-32b", "coder-14b"]);
    let plan = plan_turn(
        Policy::Smart,
        &workload,
        &PlanContext {
            speaker: "run_tests",
            resident: &loaded,
            future: &[],
        },
    )
    .expect("valid");
    assert!(plan.call.is_none());
    assert!(plan.unloads.is_empty());
    assert!(plan.preloads.is_empty());
    // Every loop model gets a keep_alive of a day or more, distinct, the tester (next) last.
    let mut refreshes: Vec<(String, Duration)> = plan
        .refreshes
        .iter()
        .map(|refresh| {
            (
                refresh.model.clone(),
                refresh.keep_alive.duration().expect("finite"),
            )
        })
        .collect();
    refreshes.sort_by_key(|(_, duration)| *duration);
    assert_eq!(refreshes.len(), 3);
    assert!(
        refreshes
            .iter()
            .all(|(_, duration)| *duration >= Duration::from_secs(24 * 3600))
    );
    assert_eq!(refreshes[2].0, "coder-14b");
    assert!(refreshes[0].1 < refreshes[1].1 && refreshes[1].1 < refreshes[2].1);
}

#[test]
fn refreshes_are_only_sent_when_the_keep_alive_changes() {
    let workload = tdd_workload(54);
    let context_models = resident(&workload, &["qwen3:1.7b", "coder-32b", "coder-14b"]);
    let first = plan_turn(
        Policy::Smart,
        &workload,
        &PlanContext {
            speaker: "run_tests",
            resident: &context_models,
            future: &[],
        },
    )
    .expect("valid");
    let remembered: Vec<LoadedModel> = context_models
        .iter()
        .map(|model| LoadedModel {
            keep_alive: first
                .refreshes
                .iter()
                .find(|refresh| refresh.model == model.model)
                .map(|refresh| refresh.keep_alive),
            ..model.clone()
        })
        .collect();
    let second = plan_turn(
        Policy::Smart,
        &workload,
        &PlanContext {
            speaker: "run_tests",
            resident: &remembered,
            future: &[],
        },
    )
    .expect("valid");
    assert!(second.refreshes.is_empty(), "{second}");
}

#[test]
fn passive_policies_only_call() {
    let workload = tdd_workload(54);
    let loaded = resident(&workload, &["qwen3:1.7b"]);
    assert_snapshot!(check(Policy::Static, &workload, "coder", &loaded), @"call coder-32b keep_alive=2h mode=mmap loads (coder speaks; keep_alive 2h, Ollama decides residency)");
    assert_snapshot!(check(Policy::OllamaDefault, &workload, "router", &loaded), @"call qwen3:1.7b keep_alive=none mode=mmap (router speaks; no keep_alive, Ollama decides residency)");
    assert_snapshot!(check(Policy::Static, &workload, "run_tests", &loaded), @"no call");
}

#[test]
fn the_oracle_evicts_the_model_needed_furthest_ahead() {
    // Budget for two of three equal models, cap 2: the oracle keeps the one needed next.
    let workload = Workload::new(
        vec![model("a", 10.0), model("b", 10.0), model("c", 10.0)],
        vec![
            agent("a", Some("a"), 60.0),
            agent("b", Some("b"), 60.0),
            agent("c", Some("c"), 60.0),
        ],
        vec![
            edge("a", "b", 1.0),
            edge("b", "c", 1.0),
            edge("c", "a", 1.0),
        ],
        budget(100, 2),
    )
    .expect("valid");
    let future: Vec<FutureTurn> = ["c", "b", "a", "c"]
        .iter()
        .map(|agent| FutureTurn {
            agent: (*agent).to_owned(),
            seconds: 60.0,
        })
        .collect();
    let loaded = resident(&workload, &["a", "b"]);
    let context = PlanContext {
        speaker: "c",
        resident: &loaded,
        future: &future,
    };
    let plan = plan_turn(Policy::Oracle, &workload, &context).expect("valid");
    crate::audit::audit_plan(&workload, &context, &plan).expect("the plan keeps the rules");
    assert_snapshot!(plan.to_string(), @r"
refresh b keep_alive=1day (evicted #1 of 2 if Ollama needs room (needed in 60 s); shortest keep_alive goes first)
unload a (make room for c (10.0 GB), which c calls now; a needed in 120 s)
call c keep_alive=1day 1m mode=mmap loads (c speaks; c loads now)
");
}

#[test]
fn an_unknown_test_outcome_keeps_the_coder_through_the_test_run() {
    // 24 GB: the coder (20.6) and the 14b (10.3) never fit together. A passing run hands over
    // to the reviewer (14b), a failing one back to the coder, and nothing tells which before
    // the run ends. Swapping during the run would make every failure reload a coder that could
    // have stayed, so smart keeps it; only the oracle, which knows the outcome, swaps.
    let workload = shipped_tdd_workload_24gb();
    let loaded = resident(&workload, &["coder-32b", "qwen3:1.7b"]);
    let smart = plan_turn(
        Policy::Smart,
        &workload,
        &PlanContext {
            speaker: "tests",
            resident: &loaded,
            future: &[],
        },
    )
    .expect("valid");
    assert!(smart.call.is_none());
    assert!(smart.unloads.is_empty(), "{smart}");
    assert!(smart.preloads.is_empty(), "{smart}");

    let future = |next: &str| -> Vec<FutureTurn> {
        [("tests", 90.0), (next, 60.0), ("coder", 150.0)]
            .iter()
            .map(|&(agent, seconds)| FutureTurn {
                agent: agent.to_owned(),
                seconds,
            })
            .collect()
    };
    let passes = future("reviewer");
    let oracle = plan_turn(
        Policy::Oracle,
        &workload,
        &PlanContext {
            speaker: "tests",
            resident: &loaded,
            future: &passes,
        },
    )
    .expect("valid");
    let unloaded: Vec<&str> = oracle.unloads.iter().map(|u| u.model.as_str()).collect();
    let preloaded: Vec<&str> = oracle.preloads.iter().map(|p| p.model.as_str()).collect();
    assert_eq!(unloaded, ["coder-32b"], "{oracle}");
    assert_eq!(preloaded, ["coder-14b"], "{oracle}");

    let fails = future("coder");
    let oracle = plan_turn(
        Policy::Oracle,
        &workload,
        &PlanContext {
            speaker: "tests",
            resident: &loaded,
            future: &fails,
        },
    )
    .expect("valid");
    assert!(
        oracle.unloads.is_empty() && oracle.preloads.is_empty(),
        "{oracle}"
    );
}

#[test]
fn foreign_models_go_first() {
    let workload = coder_tester(34);
    let loaded = vec![LoadedModel {
        model: "someone-elses:70b".to_owned(),
        bytes: 30 * GB,
        busy: false,
        keep_alive: None,
    }];
    assert_snapshot!(check(Policy::Smart, &workload, "coder", &loaded), @r"
unload someone-elses:70b (make room for coder-32b (20.0 GB), which coder calls now; someone-elses:70b is not a model of this workflow)
call coder-32b keep_alive=1day 1m mode=mmap loads (coder speaks; coder-32b loads now)
preload tester-14b keep_alive=1day mode=mmap (p=1.00 within 8 turns, in ~120 s; loads while coder's turn runs)
");
}

#[test]
fn bad_input_is_an_error() {
    let workload = coder_tester(34);
    let context = PlanContext {
        speaker: "nobody",
        resident: &[],
        future: &[],
    };
    assert_eq!(
        plan_turn(Policy::Smart, &workload, &context),
        Err(Error::UnknownAgent("nobody".to_owned()))
    );
    let context = PlanContext {
        speaker: "coder",
        resident: &[],
        future: &[],
    };
    assert_eq!(
        plan_turn(Policy::Oracle, &workload, &context),
        Err(Error::FutureMismatch {
            speaker: "coder".to_owned(),
            found: None
        })
    );
    assert_eq!("smart".parse::<Policy>(), Ok(Policy::Smart));
    assert_eq!(
        "ollama-default".parse::<Policy>(),
        Ok(Policy::OllamaDefault)
    );
    assert!("lru".parse::<Policy>().is_err());
}

#[test]
fn plans_serialize_keep_alive_as_ollama_reads_it() {
    let workload = coder_tester(34);
    let plan = plan_turn(
        Policy::Smart,
        &workload,
        &PlanContext {
            speaker: "coder",
            resident: &[],
            future: &[],
        },
    )
    .expect("valid");
    let json = serde_json::to_value(&plan).expect("serializable");
    assert_eq!(json["call"]["keep_alive"], serde_json::json!(86_460));
    assert_eq!(json["call"]["load_mode"], serde_json::json!("mmap"));
    assert_eq!(json["preloads"][0]["keep_alive"], serde_json::json!(86_400));
}

/// A 16 GB hub-and-experts workload whose measured sizes carry Ollama's automatic batch
/// surcharge (2.1 GB above the predictions), as after loads with memory to spare.
fn hub_with_measured_surcharge() -> Workload {
    let mut workload = Workload::new(
        vec![
            model("hub-7b", 5.0),
            model("expert-a", 6.5),
            model("expert-b", 6.5),
        ],
        vec![
            agent("hub", Some("hub-7b"), 10.0),
            agent("a", Some("expert-a"), 60.0),
            agent("b", Some("expert-b"), 60.0),
        ],
        vec![
            edge("hub", "a", 1.0),
            edge("hub", "b", 1.0),
            edge("a", "hub", 1.0),
            edge("b", "hub", 1.0),
        ],
        budget(16, 3),
    )
    .expect("valid");
    for (name, gb) in [("hub-7b", 7.1), ("expert-a", 8.6), ("expert-b", 8.6)] {
        workload
            .correct_footprint(name, (gb * GB as f64) as u64)
            .expect("a model of the workload");
    }
    workload
}

#[test]
fn the_fit_test_compares_the_prediction_not_a_measured_batch_surcharge() {
    let workload = hub_with_measured_surcharge();
    // Measured with the surcharge, an expert (8.6 GB) would not fit beside the hub (7.1 GB):
    // 8.6 > 0.8 x 8.9. Ollama steps the automatic batch down and tests its prediction,
    // 6.5 <= 7.12, so it loads beside the hub.
    assert_eq!(
        workload.admission_bytes("expert-b").expect("known"),
        13 * GB / 2
    );
    assert_eq!(
        workload.footprint_bytes("expert-b").expect("known"),
        86 * GB / 10
    );
    let loaded = |name: &str, gb: f64| LoadedModel {
        model: name.to_owned(),
        bytes: (gb * GB as f64) as u64,
        busy: false,
        keep_alive: None,
    };
    // The hub and expert a are resident; expert b speaks: only expert a makes room, the hub
    // (needed right after) stays.
    let resident = [loaded("hub-7b", 7.1), loaded("expert-a", 8.6)];
    let plan = check(Policy::Smart, &workload, "b", &resident);
    assert!(plan.contains("unload expert-a"), "{plan}");
    assert!(!plan.contains("unload hub-7b"), "{plan}");
    assert!(plan.contains("call expert-b"), "{plan}");
}

#[test]
fn two_models_coexist_when_either_loads_beside_the_other() {
    let workload = hub_with_measured_surcharge();
    let runner = |name: &str| workload.runner_named(name).expect("known");
    // An expert (6.5 GB predicted) loads beside the hub (7.1 GB resident): 6.5 <= 7.12.
    assert!(workload.coexist(runner("hub-7b"), runner("expert-a")));
    // Two experts: 6.5 > 0.8 x (16 - 8.6) = 5.92 either way.
    assert!(!workload.coexist(runner("expert-a"), runner("expert-b")));
}
