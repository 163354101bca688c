//! The preload rule: the expected delay it imposes, when it pays, and when a loading one is
//! aborted.

use super::*;
use crate::plan::{FutureTurn, LoadedModel, plan_turn};
use crate::test_support::{GB, agent, budget, edge, model};

/// A router (0.2 s turns) picking uniformly among four specialists (90 s turns) on four
/// models that do not fit together in 32 GB; every specialist hands back to the router.
fn four_specialists() -> Workload {
    let specialists = [
        ("rust", "coder-32b", 20.0),
        ("python", "coder-14b", 10.0),
        ("docs", "general-8b", 6.0),
        ("math", "general-14b", 10.0),
    ];
    let mut models = vec![model("router-2b", 2.0)];
    let mut agents = vec![agent("router", Some("router-2b"), 0.2)];
    let mut edges = Vec::new();
    for (name, model_name, gb) in specialists {
        models.push(model(model_name, gb));
        agents.push(agent(name, Some(model_name), 90.0));
        edges.push(edge("router", name, 1.0));
        edges.push(edge(name, "router", 1.0));
    }
    Workload::new(models, agents, edges, budget(32, 3)).expect("valid")
}

fn loaded(name: &str, gb: u64) -> LoadedModel {
    LoadedModel {
        model: name.to_owned(),
        bytes: gb * GB,
        busy: false,
        keep_alive: None,
    }
}

fn context<'a>(speaker: &'a str, resident: &'a [LoadedModel]) -> PlanContext<'a> {
    PlanContext {
        speaker,
        resident,
        future: &[],
    }
}

/// The expectation by a fine Riemann sum over the exponential density.
fn numeric_delay(start: f64, load: f64, mean: f64) -> f64 {
    let steps = 200_000;
    let end = start + load;
    let width = end / steps as f64;
    (0..steps)
        .map(|step| {
            let time = (step as f64 + 0.5) * width;
            let delay = if time >= start { end - time } else { 0.0 };
            delay * (-time / mean).exp() / mean * width
        })
        .sum()
}

#[test]
fn a_certain_demand_waits_for_the_rest_of_the_load_only_inside_it() {
    let delay = |at| expected_delay(5.0, 10.0, DemandTime::Certain(at));
    assert_eq!(
        delay(4.0),
        0.0,
        "before the start: the preload is withdrawn"
    );
    assert_eq!(delay(5.0), 10.0);
    assert_eq!(delay(12.0), 3.0);
    assert_eq!(delay(15.0), 0.0);
    assert_eq!(delay(40.0), 0.0);
}

#[test]
fn an_uncertain_demand_costs_the_exponential_expectation() {
    for (start, load, mean) in [(0.0, 13.0, 0.2), (0.0, 13.0, 60.0), (4.0, 13.0, 20.0)] {
        let closed = expected_delay(start, load, DemandTime::Mean(mean));
        let numeric = numeric_delay(start, load, mean);
        assert!(
            (closed - numeric).abs() < 1e-3,
            "start {start} load {load} mean {mean}: {closed} vs {numeric}"
        );
    }
    // A demand right away waits for nearly all of the load; one expected much later, little.
    assert!(expected_delay(0.0, 13.0, DemandTime::Mean(0.2)) > 12.7);
    assert!(expected_delay(0.0, 13.0, DemandTime::Mean(600.0)) < 0.2);
    assert_eq!(expected_delay(0.0, 13.0, DemandTime::Mean(0.0)), 13.0);
    assert_eq!(expected_delay(1.0, 13.0, DemandTime::Mean(0.0)), 0.0);
    // Starting later can only lower the expected wait.
    let early = expected_delay(0.0, 13.0, DemandTime::Mean(30.0));
    let late = expected_delay(10.0, 13.0, DemandTime::Mean(30.0));
    assert!(late < early);
}

#[test]
fn the_delay_cost_weighs_every_other_demand_and_skips_the_candidate() {
    let demand = |runner, probability| Demand {
        runner,
        probability,
        at: DemandTime::Certain(2.0),
    };
    let demands = [demand(1, 0.25), demand(2, 0.25), demand(3, 0.5)];
    // Held from 0 to 10 s: a demand at 2 s waits 8 s.
    assert_eq!(delay_cost(1, 0.0, 10.0, demands), 0.75 * 8.0);
    assert_eq!(delay_cost(3, 0.0, 10.0, demands), 0.5 * 8.0);
    assert_eq!(delay_cost(4, 3.0, 10.0, demands), 0.0);
}

#[test]
fn a_preload_pays_only_when_the_saving_exceeds_both_costs() {
    assert!(preload_pays(10.0, 4.0, 5.0));
    assert!(!preload_pays(9.0, 4.0, 5.0));
    assert!(!preload_pays(3.0, 0.0, 5.0));
    assert!(
        !preload_pays(0.0, 0.0, 0.0),
        "nothing to gain is not worth a load"
    );
    assert!(loading_pays(4.0, 4.0));
    assert!(!loading_pays(4.1, 4.0));
}

#[test]
fn no_specialist_is_preloaded_during_the_routers_short_turn() {
    let workload = four_specialists();
    let resident = [loaded("router-2b", 2)];
    let plan = plan_turn(Policy::Smart, &workload, &context("router", &resident)).expect("plan");
    assert!(
        plan.preloads.is_empty(),
        "a 0.2 s turn cannot hide a load, and three in four guesses delay the next one: {plan}"
    );
}

#[test]
fn a_specialists_long_turn_may_preload_what_fits_beside_it() {
    let workload = four_specialists();
    let resident = [loaded("router-2b", 2), loaded("coder-14b", 10)];
    let plan = plan_turn(Policy::Smart, &workload, &context("python", &resident)).expect("plan");
    // 90 s hides a whole load, and the router's turn after it demands no load.
    assert!(!plan.preloads.is_empty(), "{plan}");
    assert!(plan.unloads.is_empty(), "{plan}");
}

#[test]
fn a_preload_the_speaker_does_not_need_is_aborted_when_its_rest_outweighs_it() {
    let workload = four_specialists();
    let resident = [loaded("router-2b", 2)];
    let preload = LoadingPreload {
        model: "coder-14b",
        loading_seconds: 0.2,
    };
    let verdict = judge_preload(
        Policy::Smart,
        &workload,
        &context("math", &resident),
        &preload,
    )
    .expect("ok");
    assert!(
        matches!(&verdict, PreloadVerdict::Abort { reason } if reason.contains("general-14b")),
        "{verdict:?}"
    );
}

#[test]
fn a_preload_is_kept_when_the_speaker_needs_it_or_needs_no_load() {
    let workload = four_specialists();
    let resident = [loaded("router-2b", 2)];
    let preload = LoadingPreload {
        model: "coder-14b",
        loading_seconds: 0.2,
    };
    for speaker in ["python", "router"] {
        let verdict = judge_preload(
            Policy::Smart,
            &workload,
            &context(speaker, &resident),
            &preload,
        )
        .expect("ok");
        assert_eq!(verdict, PreloadVerdict::Keep, "{speaker}");
    }
    // Passive policies never abort.
    let verdict = judge_preload(
        Policy::Static,
        &workload,
        &context("math", &resident),
        &preload,
    )
    .expect("ok");
    assert_eq!(verdict, PreloadVerdict::Keep);
}

#[test]
fn a_preload_nearly_done_and_needed_soon_is_kept() {
    let workload = four_specialists();
    let resident = [loaded("router-2b", 2)];
    // 13.5 s to load coder-14b; 13 s in, half a second is left.
    let preload = LoadingPreload {
        model: "coder-14b",
        loading_seconds: 13.0,
    };
    let future = [
        FutureTurn {
            agent: "docs".into(),
            seconds: 60.0,
        },
        FutureTurn {
            agent: "router".into(),
            seconds: 0.2,
        },
        FutureTurn {
            agent: "python".into(),
            seconds: 60.0,
        },
    ];
    let context = PlanContext {
        speaker: "docs",
        resident: &resident,
        future: &future,
    };
    let verdict = judge_preload(Policy::Oracle, &workload, &context, &preload).expect("ok");
    assert_eq!(verdict, PreloadVerdict::Keep);
    // A model the future never needs again is not worth half a second of the docs agent's wait.
    let preload = LoadingPreload {
        model: "general-14b",
        loading_seconds: 13.0,
    };
    let verdict = judge_preload(Policy::Oracle, &workload, &context, &preload).expect("ok");
    assert!(
        matches!(verdict, PreloadVerdict::Abort { .. }),
        "{verdict:?}"
    );
}

#[test]
fn a_preload_that_cannot_stay_beside_the_speakers_model_is_aborted() {
    let workload = four_specialists();
    let resident = [loaded("router-2b", 2)];
    // coder-32b (20 GB) and coder-14b (10 GB): 10 > 0.8 x 12.
    let preload = LoadingPreload {
        model: "coder-14b",
        loading_seconds: 12.0,
    };
    let verdict = judge_preload(
        Policy::Smart,
        &workload,
        &context("rust", &resident),
        &preload,
    )
    .expect("ok");
    assert!(
        matches!(&verdict, PreloadVerdict::Abort { reason } if reason.contains("cannot be resident")),
        "{verdict:?}"
    );
}
