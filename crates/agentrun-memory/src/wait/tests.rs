//! The avoidable-wait classifier on hand-made traces.

use super::*;
use crate::test_support::{agent, budget, edge, model};
use crate::workload::ModelSpec;

/// A (20 GB), B (10 GB), Big (30 GB) and A2 (another name on A's weights), 34 GB, cap 2.
fn workload() -> Workload {
    let a2 = ModelSpec {
        name: "a2".to_owned(),
        ..model("a", 20.0)
    };
    Workload::new(
        vec![
            model("a", 20.0),
            model("b", 10.0),
            model("big", 30.0),
            model("c", 1.0),
            a2,
        ],
        vec![
            agent("a", Some("a"), 10.0),
            agent("a2", Some("a2"), 10.0),
            agent("b", Some("b"), 10.0),
            agent("big", Some("big"), 10.0),
            agent("c", Some("c"), 10.0),
            agent("cmd", None, 10.0),
        ],
        vec![edge("a", "b", 1.0)],
        budget(34, 2),
    )
    .expect("valid")
}

fn turn(agent: &str, model: Option<&str>, wait_seconds: f64) -> TraceTurn {
    TraceTurn {
        agent: agent.to_owned(),
        model: model.map(str::to_owned),
        waited: wait_seconds > 0.0,
        wait_seconds,
    }
}

#[track_caller]
fn classes(trace: &[TraceTurn]) -> Vec<WaitClass> {
    classify_waits(trace, &workload())
        .expect("known models")
        .turns
}

#[test]
fn a_first_use_is_unavoidable() {
    let trace = [turn("a", Some("a"), 5.0), turn("cmd", None, 0.0)];
    assert_eq!(classes(&trace), [WaitClass::FirstUse, WaitClass::NoWait]);
}

#[test]
fn a_reload_is_avoidable_when_everything_used_since_fits_with_it() {
    // A (20) and B (10) fit together on 34 GB (largest first: 10 <= 0.8 x 14).
    let trace = [
        turn("a", Some("a"), 5.0),
        turn("b", Some("b"), 3.0),
        turn("cmd", None, 0.0),
        turn("a", Some("a"), 7.0),
    ];
    let report = classify_waits(&trace, &workload()).expect("known models");
    assert_eq!(
        report.turns,
        [
            WaitClass::FirstUse,
            WaitClass::FirstUse,
            WaitClass::NoWait,
            WaitClass::Avoidable
        ]
    );
    assert_eq!(report.avoidable_seconds, 7.0);
    assert_eq!(report.unavoidable_seconds, 8.0);
    assert_eq!(report.models["a"].avoidable_waits, 1);
    assert_eq!(report.models["a"].unavoidable_waits, 1);
    assert_eq!(report.models["b"].unavoidable_seconds, 3.0);
}

#[test]
fn a_reload_is_unavoidable_when_the_models_used_since_do_not_fit_with_it() {
    // A (20) and Big (30) exceed 34 GB in any order.
    let trace = [
        turn("a", Some("a"), 5.0),
        turn("big", Some("big"), 9.0),
        turn("a", Some("a"), 7.0),
    ];
    assert_eq!(
        classes(&trace),
        [
            WaitClass::FirstUse,
            WaitClass::FirstUse,
            WaitClass::Unavoidable
        ]
    );
}

#[test]
fn the_model_count_cap_makes_a_reload_unavoidable() {
    // B, C and A fit in memory (20 + 10 + 1) but the cap is 2.
    let trace = [
        turn("b", Some("b"), 1.0),
        turn("a", Some("a"), 1.0),
        turn("c", Some("c"), 1.0),
        turn("b", Some("b"), 4.0),
    ];
    assert_eq!(classes(&trace)[3], WaitClass::Unavoidable);
}

#[test]
fn names_on_the_same_weights_are_one_model() {
    let trace = [
        turn("a", Some("a"), 5.0),
        turn("b", Some("b"), 0.0),
        turn("a2", Some("a2"), 2.0),
    ];
    assert_eq!(classes(&trace)[2], WaitClass::Avoidable);
}

#[test]
fn a_turn_without_a_wait_is_no_wait_even_after_an_eviction() {
    let trace = [
        turn("a", Some("a"), 5.0),
        turn("big", Some("big"), 9.0),
        turn("a", Some("a"), 0.0),
    ];
    assert_eq!(classes(&trace)[2], WaitClass::NoWait);
}

#[test]
fn an_unknown_model_is_an_error() {
    let trace = [turn("a", Some("mystery"), 5.0)];
    assert_eq!(
        classify_waits(&trace, &workload()),
        Err(Error::UnknownModel("mystery".to_owned()))
    );
}
