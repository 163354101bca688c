//! Validation, learnt probabilities and load-mode pinning.

use super::*;
use crate::test_support::{agent, budget, edge, model};

fn two_agents() -> Workload {
    Workload::new(
        vec![model("m", 4.0)],
        vec![agent("a", Some("m"), 10.0), agent("b", None, 30.0)],
        vec![
            PlannedEdge {
                prior_weight: None,
                ..edge("a", "b", 1.0)
            },
            PlannedEdge {
                prior_weight: None,
                ..edge("a", "end", 1.0)
            },
            edge("b", "a", 3.0),
            edge("b", "b", 1.0),
        ],
        budget(16, 3),
    )
    .expect("valid")
}

#[test]
fn priors_are_uniform_or_weighted() {
    let workload = two_agents();
    assert_eq!(workload.transition_probability("a", Some("b")), Ok(0.5));
    assert_eq!(workload.transition_probability("a", None), Ok(0.5));
    assert_eq!(workload.transition_probability("b", Some("a")), Ok(0.75));
    assert_eq!(workload.transition_probability("b", Some("b")), Ok(0.25));
}

#[test]
fn learnt_counts_outweigh_the_prior_after_a_few_turns() {
    let mut workload = two_agents();
    for _ in 0..4 {
        workload
            .record_transition("a", Some("b"))
            .expect("known agents");
    }
    // (0.5 x 4 + 4) / (4 + 4)
    assert_eq!(workload.transition_probability("a", Some("b")), Ok(0.75));
    // A hand-over the graph did not declare becomes an edge.
    workload
        .record_transition("a", Some("a"))
        .expect("known agents");
    assert_eq!(
        workload.transition_probability("a", Some("a")),
        Ok(1.0 / 9.0)
    );
    let total: f64 = [Some("a"), Some("b"), None]
        .into_iter()
        .map(|to| workload.transition_probability("a", to).expect("known"))
        .sum();
    assert!((total - 1.0).abs() < 1e-12);
}

#[test]
fn turn_lengths_are_a_running_mean_seeded_by_the_workflow() {
    let mut workload = two_agents();
    workload
        .record_turn_seconds("a", 20.0)
        .expect("known agent");
    workload
        .record_turn_seconds("a", 30.0)
        .expect("known agent");
    assert_eq!(workload.mean_turn_seconds("a"), Ok(20.0));
}

#[test]
fn a_prior_weighed_as_several_turns_moves_less_per_turn() {
    // The seed of `a` is 10 s; counted as 4 turns, one 60 s turn moves it by a fifth.
    let mut workload = two_agents();
    workload.weigh_turn_prior("a", 4.0).expect("known agent");
    workload
        .record_turn_seconds("a", 60.0)
        .expect("known agent");
    assert_eq!(workload.mean_turn_seconds("a"), Ok(20.0));
    assert!(workload.weigh_turn_prior("a", f64::NAN).is_err());
    assert!(workload.weigh_turn_prior("nobody", 2.0).is_err());
}

#[test]
fn auto_picks_the_faster_mode_and_a_recorded_load_pins_it() {
    let mut workload = Workload::new(
        vec![ModelSpec {
            load_mode: LoadModeChoice::Auto,
            ..model("m", 4.0)
        }],
        vec![agent("a", Some("m"), 10.0)],
        vec![],
        budget(16, 3),
    )
    .expect("valid");
    assert_eq!(workload.load_mode("m"), Ok(LoadMode::NoMmap));
    workload
        .record_load("m", LoadMode::Mmap, 3.0)
        .expect("known model");
    assert_eq!(workload.load_mode("m"), Ok(LoadMode::Mmap));
    // The estimate moves toward the measurement: (2 + 4 / 0.8 = 7, then 3) -> 5.
    assert_eq!(
        workload.load_times("m").map(|times| times.mmap_seconds),
        Ok(5.0)
    );
}

#[test]
fn names_on_one_runner_share_the_largest_footprint_and_corrections() {
    let mut workload = Workload::new(
        vec![
            model("m", 4.0),
            ModelSpec {
                name: "m-long".to_owned(),
                ..model("m", 6.0)
            },
        ],
        vec![],
        vec![],
        budget(16, 3),
    )
    .expect("valid");
    assert_eq!(workload.footprint_bytes("m"), Ok(6_000_000_000));
    workload
        .correct_footprint("m-long", 5_500_000_000)
        .expect("known model");
    assert_eq!(workload.footprint_bytes("m"), Ok(5_500_000_000));
}

#[test]
fn invalid_workloads_are_rejected() {
    let duplicate = Workload::new(
        vec![model("m", 1.0), model("m", 2.0)],
        vec![],
        vec![],
        budget(8, 1),
    );
    assert_eq!(duplicate.err(), Some(Error::DuplicateModel("m".to_owned())));
    let unknown_model = Workload::new(
        vec![],
        vec![agent("a", Some("m"), 1.0)],
        vec![],
        budget(8, 1),
    );
    assert_eq!(
        unknown_model.err(),
        Some(Error::AgentModelUnknown {
            agent: "a".to_owned(),
            model: "m".to_owned()
        })
    );
    let unknown_agent = Workload::new(
        vec![],
        vec![agent("a", None, 1.0)],
        vec![edge("a", "z", 1.0)],
        budget(8, 1),
    );
    assert_eq!(
        unknown_agent.err(),
        Some(Error::UnknownAgent("z".to_owned()))
    );
    let negative = Workload::new(vec![], vec![agent("a", None, -1.0)], vec![], budget(8, 1));
    assert!(matches!(negative, Err(Error::InvalidNumber { value, .. }) if value == -1.0));
    let no_slots = Workload::new(vec![], vec![], vec![], budget(8, 0));
    assert_eq!(no_slots.err(), Some(Error::NoModelSlots));
    let mut workload = two_agents();
    assert!(workload.record_turn_seconds("a", f64::NAN).is_err());
    assert_eq!(
        workload.record_load("x", LoadMode::Mmap, 1.0),
        Err(Error::UnknownModel("x".to_owned()))
    );
}

#[test]
fn a_host_keeps_the_graph_and_what_was_learnt_but_only_its_models() {
    let mut workload = Workload::new(
        vec![model("m", 4.0), model("n", 6.0)],
        vec![agent("a", Some("m"), 10.0), agent("b", Some("n"), 30.0)],
        vec![
            edge("a", "b", 1.0),
            edge("b", "a", 1.0),
            edge("b", "end", 1.0),
        ],
        budget(16, 3),
    )
    .expect("valid");
    workload
        .record_transition("b", Some("a"))
        .expect("known agents");
    workload
        .record_turn_seconds("a", 20.0)
        .expect("known agent");
    workload
        .record_load("m", LoadMode::Mmap, 3.0)
        .expect("known model");
    let host = workload
        .for_host(&[("a", "m")], budget(8, 1))
        .expect("known names");
    assert_eq!(host.budget(), budget(8, 1));
    assert_eq!(host.models().len(), 1);
    assert_eq!(host.agents()[1].model, None);
    assert!(host.footprint_bytes("n").is_err());
    assert_eq!(
        host.transition_probability("b", Some("a")),
        workload.transition_probability("b", Some("a"))
    );
    assert_eq!(host.mean_turn_seconds("a"), Ok(15.0));
    assert_eq!(host.load_times("m"), workload.load_times("m"));
    assert_eq!(host.load_mode("m"), Ok(LoadMode::Mmap));
    // An agent may call another model there (a fallback).
    let fallback = workload
        .for_host(&[("a", "n")], budget(8, 1))
        .expect("known names");
    assert_eq!(fallback.agents()[0].model.as_deref(), Some("n"));
    assert_eq!(
        workload.for_host(&[("z", "m")], budget(8, 1)).err(),
        Some(Error::UnknownAgent("z".to_owned()))
    );
    assert_eq!(
        workload.for_host(&[("a", "x")], budget(8, 1)).err(),
        Some(Error::UnknownModel("x".to_owned()))
    );
    assert_eq!(
        workload.for_host(&[], budget(8, 0)).err(),
        Some(Error::NoModelSlots)
    );
}

/// A coder on 20 GB hands to a 40 s test command, which hands to a reviewer on 30 GB (or
/// back to the coder); an architect on 6 GB hands to the reviewer too, after a 10 s turn.
fn review_loop(budget_gb: u64) -> Workload {
    Workload::new(
        vec![
            model("coder", 20.0),
            model("reviewer", 30.0),
            model("architect", 6.0),
        ],
        vec![
            agent("coder", Some("coder"), 60.0),
            agent("tests", None, 40.0),
            agent("reviewer", Some("reviewer"), 60.0),
            agent("architect", Some("architect"), 10.0),
        ],
        vec![
            edge("coder", "tests", 1.0),
            edge("tests", "reviewer", 3.0),
            edge("tests", "coder", 1.0),
            edge("reviewer", "coder", 1.0),
            edge("architect", "reviewer", 1.0),
        ],
        budget(budget_gb, 3),
    )
    .expect("valid")
}

/// The turn before a model's use hides its load only when the model can load beside what
/// that turn holds: a command holds the models of the agents leading to it. Turns are
/// weighed by the edges into the model's agents (tests leads to the reviewer 3 times in 4,
/// the architect always).
#[test]
fn the_lead_before_a_use_counts_only_turns_the_model_can_load_beside() {
    let close = |got: f64, want: f64| assert!((got - want).abs() < 1e-9, "{got} != {want}");
    let reviewer = |workload: &Workload| workload.runner_named("reviewer").expect("known");
    // 64 GB: the reviewer loads beside the coder (30 <= 0.8 x 44) and the architect, so
    // both turns before it count.
    let roomy = review_loop(64);
    close(
        roomy.lead_seconds(reviewer(&roomy)),
        (0.75 * 40.0 + 10.0) / 1.75,
    );
    // 48 GB: not beside the coder (30 > 0.8 x 28), so the test command, which holds the
    // coder's model, hides nothing; the architect's turn still counts.
    let tight = review_loop(48);
    close(tight.lead_seconds(reviewer(&tight)), 10.0 / 1.75);
    // The coder is led to by the command (once in 4; it holds the coder's own model) and
    // by the reviewer, beside which it loads at 64 GB.
    let coder = roomy.runner_named("coder").expect("known");
    close(roomy.lead_seconds(coder), (0.25 * 40.0 + 60.0) / 1.25);
}
