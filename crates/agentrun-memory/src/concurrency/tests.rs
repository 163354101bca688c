//! The fan-out decision, one rule at a time.

use super::*;
use crate::test_support::{GB, agent, budget, edge, model};

/// An M4 Pro: 273 GB/s, one stream reaches 70 %, all streams together 85 %.
fn mac() -> MemoryBandwidth {
    MemoryBandwidth::from_efficiency(273e9, 0.7, 0.85)
}

/// A machine whose memory one stream already saturates.
fn saturated() -> MemoryBandwidth {
    MemoryBandwidth::from_efficiency(273e9, 0.7, 0.7)
}

fn branch(name: &str, model: &str, gb: u64, load_seconds: f64, turn_seconds: f64) -> BranchStart {
    BranchStart {
        name: name.to_owned(),
        model: Some(BranchModel {
            name: model.to_owned(),
            footprint_bytes: gb * GB,
            load_seconds,
            decode: DecodeBytes {
                weights_per_token: (gb * GB) as f64,
                slot_per_token: 0.05 * (gb * GB) as f64,
            },
        }),
        turn_seconds,
    }
}

fn command(name: &str, turn_seconds: f64) -> BranchStart {
    BranchStart {
        name: name.to_owned(),
        model: None,
        turn_seconds,
    }
}

fn loaded(name: &str, gb: u64) -> LoadedModel {
    LoadedModel {
        model: name.to_owned(),
        bytes: gb * GB,
        busy: false,
        keep_alive: None,
    }
}

fn decide(
    branches: &[BranchStart],
    resident: &[LoadedModel],
    budget_gb: u64,
    num_parallel: usize,
    bandwidth: MemoryBandwidth,
) -> FanOutPlan {
    plan_fan_out(&FanOut {
        branches,
        resident,
        budget: budget(budget_gb, 3),
        num_parallel,
        bandwidth,
    })
    .expect("a valid fan-out")
}

fn option(plan: &FanOutPlan, concurrency: Concurrency) -> &FanOutOption {
    plan.options
        .iter()
        .find(|option| option.concurrency == concurrency)
        .expect("the option was considered")
}

#[track_caller]
fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "expected {expected}, got {actual}"
    );
}

#[test]
fn models_that_fit_and_gain_from_the_bandwidth_run_concurrently() {
    let branches = [
        branch("security", "coder-32b", 20, 30.0, 100.0),
        branch("style", "coder-14b", 10, 15.0, 60.0),
    ];
    let resident = [loaded("coder-32b", 20), loaded("coder-14b", 10)];
    let plan = decide(&branches, &resident, 54, 1, mac());
    assert_eq!(plan.chosen.concurrency, Concurrency::Concurrent);
    assert_eq!(plan.chosen.groups, vec![vec![0, 1]]);
    // Two streams: each at 1 / (2 x 0.7 / 0.85) until the 60 s turn's work is done, then
    // the rest of the 100 s turn alone.
    let shared = 2.0 * 0.7 / 0.85;
    close(plan.chosen.wall_seconds, 60.0 * shared + 40.0);
    close(option(&plan, Concurrency::Serialized).wall_seconds, 160.0);
    assert_eq!(plan.chosen.load_wait_seconds, 0.0);
    assert!(
        plan.reason
            .starts_with("concurrent: coder-32b and coder-14b fit together (30.0 GB)"),
        "{}",
        plan.reason
    );
}

#[test]
fn models_that_cannot_be_resident_together_are_serialized() {
    // 40 GB beside 30 GB in 54 GB: 30 > 0.8 x 14 in either order.
    let branches = [
        branch("architect", "architect-80b", 40, 50.0, 100.0),
        branch("coder", "coder-32b", 30, 40.0, 100.0),
    ];
    let plan = decide(&branches, &[], 54, 1, mac());
    assert_eq!(plan.chosen.concurrency, Concurrency::Serialized);
    assert_eq!(plan.options.len(), 1, "no concurrent option is feasible");
    assert_eq!(plan.chosen.groups, vec![vec![0], vec![1]]);
    // architect loads (50), runs (100); the coder cannot load beside it: 40 more, then 100.
    close(plan.chosen.wall_seconds, 290.0);
    close(plan.chosen.load_wait_seconds, 90.0);
    assert_eq!(
        plan.reason,
        "serialized: architect-80b and coder-32b cannot be resident together \
         (~290 s, 90 s load wait)"
    );
}

#[test]
fn two_big_models_that_share_a_saturated_bandwidth_are_serialized() {
    let branches = [
        branch("first", "big-a", 24, 30.0, 120.0),
        branch("second", "big-b", 24, 30.0, 120.0),
    ];
    let resident = [loaded("big-a", 24)];
    let plan = decide(&branches, &resident, 80, 1, saturated());
    // Together they decode no faster than one after the other, and the second model's load
    // hides behind the first turn either way.
    let concurrent = option(&plan, Concurrency::Concurrent);
    close(concurrent.wall_seconds, 240.0);
    close(plan.chosen.wall_seconds, 240.0);
    assert_eq!(plan.chosen.concurrency, Concurrency::Serialized);
    assert_eq!(plan.chosen.load_order, vec!["big-b".to_owned()]);
    assert_eq!(
        plan.reason,
        "serialized: concurrent big-a and big-b would take ~240 s, 30 s load wait (the loads \
         and the shared memory bandwidth) against ~240 s, 0 s load wait one after the other"
    );
}

#[test]
fn a_small_gain_within_the_margin_stays_serialized() {
    // With a little bandwidth to spare, two big models gain a little, but less than the 3 %
    // margin once the second must load first.
    let bandwidth = MemoryBandwidth::from_efficiency(273e9, 0.7, 0.72);
    let branches = [
        branch("first", "big-a", 24, 30.0, 120.0),
        branch("second", "big-b", 24, 30.0, 120.0),
    ];
    let plan = decide(&branches, &[loaded("big-a", 24)], 80, 1, bandwidth);
    let concurrent = option(&plan, Concurrency::Concurrent);
    assert!(concurrent.wall_seconds < 240.0);
    assert_eq!(plan.chosen.concurrency, Concurrency::Serialized);
}

#[test]
fn a_command_branch_always_overlaps() {
    // One model branch and a test command: the command starts at once beside it.
    let branches = [
        command("tests", 90.0),
        branch("reviewer", "coder-14b", 10, 15.0, 60.0),
    ];
    let plan = decide(&branches, &[], 54, 1, saturated());
    assert_eq!(plan.chosen.groups, vec![vec![0, 1]]);
    assert_eq!(plan.chosen.overlap, vec![0]);
    // The command's 90 s spread over 45..135 s against the reviewer's 75 s:
    // (75 + 75 + 90 + 112.5 + 135) / 5.
    close(plan.chosen.wall_seconds, 97.5);
    close(plan.chosen.load_wait_seconds, 15.0);
    assert!(
        plan.reason.ends_with("; tests overlap (no model)"),
        "{}",
        plan.reason
    );

    // Beside two models that must take turns, it still runs from the start.
    let branches = [
        branch("architect", "architect-80b", 40, 50.0, 100.0),
        command("lint", 30.0),
        branch("coder", "coder-32b", 30, 40.0, 100.0),
    ];
    let plan = decide(&branches, &[], 54, 1, mac());
    assert_eq!(plan.chosen.groups, vec![vec![0, 1], vec![2]]);
    close(plan.chosen.wall_seconds, 290.0);
}

#[test]
fn parallel_slots_of_one_model_pay_and_one_slot_does_not() {
    let branches = [
        branch("tester-a", "coder-14b", 10, 15.0, 100.0),
        branch("tester-b", "coder-14b", 10, 15.0, 100.0),
    ];
    let resident = [loaded("coder-14b", 10)];
    // Two slots: one batched step reads the weights once and two KV caches (5 % each).
    let plan = decide(&branches, &resident, 54, 2, mac());
    assert_eq!(plan.chosen.concurrency, Concurrency::Concurrent);
    close(plan.chosen.wall_seconds, 105.0);
    assert!(
        plan.reason
            .starts_with("concurrent: 2 requests to coder-14b fit together"),
        "{}",
        plan.reason
    );
    // One slot: the second request queues for it, no faster than one after the other.
    let plan = decide(&branches, &resident, 54, 1, mac());
    assert_eq!(plan.chosen.concurrency, Concurrency::Serialized);
    close(option(&plan, Concurrency::Concurrent).wall_seconds, 200.0);
}

#[test]
fn the_load_order_passes_the_fit_test() {
    // 20 GB and 10 GB in 34 GB fit only largest first (20 > 0.8 x 24), although the small
    // one loads sooner and starting it first would be faster.
    let branches = [
        branch("style", "coder-14b", 10, 5.0, 100.0),
        branch("security", "coder-32b", 20, 40.0, 100.0),
    ];
    let plan = decide(&branches, &[], 34, 1, mac());
    let concurrent = option(&plan, Concurrency::Concurrent);
    assert_eq!(
        concurrent.load_order,
        vec!["coder-32b".to_owned(), "coder-14b".to_owned()]
    );
    // With room for either order, the quick load goes first.
    let plan = decide(&branches, &[], 80, 1, mac());
    let concurrent = option(&plan, Concurrency::Concurrent);
    assert_eq!(
        concurrent.load_order,
        vec!["coder-14b".to_owned(), "coder-32b".to_owned()]
    );
    // Both loads are waits: 5 s for the style branch, 45 s for the security branch.
    close(concurrent.load_wait_seconds, 50.0);
}

#[test]
fn models_that_fit_in_groups_run_group_after_group() {
    // 20 + 10 fit in 54 GB; 40 fits beside neither.
    let branches = [
        branch("architect", "architect-80b", 40, 50.0, 100.0),
        branch("security", "coder-32b", 20, 25.0, 100.0),
        branch("style", "coder-14b", 10, 12.0, 100.0),
    ];
    let resident = [loaded("coder-32b", 20), loaded("coder-14b", 10)];
    let plan = decide(&branches, &resident, 54, 1, mac());
    assert_eq!(plan.chosen.concurrency, Concurrency::Grouped);
    // The resident pair first; the architect loads after them.
    assert_eq!(plan.chosen.groups, vec![vec![1, 2], vec![0]], "{plan}");
    assert_eq!(plan.chosen.load_order, vec!["architect-80b".to_owned()]);
    let shared = 2.0 * 0.7 / 0.85;
    close(plan.chosen.wall_seconds, 100.0 * shared + 50.0 + 100.0);
    assert!(plan.reason.starts_with("grouped: "), "{}", plan.reason);
    assert!(
        plan.options
            .iter()
            .all(|option| option.concurrency != Concurrency::Concurrent)
    );
}

#[test]
fn a_resident_model_of_another_client_makes_room() {
    // A 30 GB stranger is resident: the pair can only be co-resident after it is unloaded.
    let branches = [
        branch("security", "coder-32b", 20, 25.0, 100.0),
        branch("style", "coder-14b", 10, 12.0, 100.0),
    ];
    let plan = decide(&branches, &[loaded("stranger", 30)], 54, 1, mac());
    assert_eq!(plan.chosen.concurrency, Concurrency::Concurrent);
    assert_eq!(plan.chosen.load_order.len(), 2);
}

#[test]
fn every_option_keeps_every_branch_once() {
    let branches = [
        branch("a", "m-40", 40, 50.0, 80.0),
        command("c", 10.0),
        branch("b", "m-20", 20, 25.0, 70.0),
        branch("d", "m-10", 10, 12.0, 60.0),
        branch("e", "m-10", 10, 12.0, 50.0),
    ];
    for num_parallel in [1, 2, 4] {
        for budget_gb in [40, 54, 80, 200] {
            let plan = decide(&branches, &[], budget_gb, num_parallel, mac());
            for option in &plan.options {
                let mut seen: Vec<usize> = option.groups.iter().flatten().copied().collect();
                seen.sort_unstable();
                assert_eq!(seen, vec![0, 1, 2, 3, 4], "{plan}");
                let mut loads = option.load_order.clone();
                loads.sort();
                loads.dedup();
                assert_eq!(
                    loads.len(),
                    option.load_order.len(),
                    "a model loads twice: {plan}"
                );
                // No option beats the longest turn alone, and none is slower than every
                // turn one after the other with every load waited for.
                assert!(option.wall_seconds >= 80.0 - 1e-9, "{plan}");
                assert!(
                    option.wall_seconds <= 80.0 + 70.0 + 60.0 + 50.0 + 87.0 + 1e-9,
                    "{plan}"
                );
            }
            let fastest = plan
                .options
                .iter()
                .map(|option| option.wall_seconds)
                .fold(f64::INFINITY, f64::min);
            assert!(plan.chosen.wall_seconds <= fastest * 1.03 + 1.0, "{plan}");
        }
    }
}

#[test]
fn bad_numbers_name_the_branch_and_field() {
    let branches = [branch("style", "coder-14b", 10, 15.0, -1.0)];
    let error = plan_fan_out(&FanOut {
        branches: &branches,
        resident: &[],
        budget: budget(54, 3),
        num_parallel: 1,
        bandwidth: mac(),
    })
    .expect_err("a negative turn");
    assert_eq!(
        error.to_string(),
        "turn_seconds of branch 'style' must be a finite number >= 0, got -1"
    );
    let error = plan_fan_out(&FanOut {
        branches: &[],
        resident: &[],
        budget: budget(54, 0),
        num_parallel: 1,
        bandwidth: mac(),
    })
    .expect_err("no model slots");
    assert_eq!(error, Error::NoModelSlots);
}

#[test]
fn a_workload_agent_becomes_a_branch() {
    let workload = Workload::new(
        vec![model("coder-14b", 10.0)],
        vec![
            agent("reviewer", Some("coder-14b"), 40.0),
            agent("tests", None, 90.0),
        ],
        vec![
            edge("reviewer", "tests", 1.0),
            edge("tests", "reviewer", 1.0),
        ],
        budget(54, 3),
    )
    .expect("valid");
    let decode = DecodeBytes {
        weights_per_token: 9e9,
        slot_per_token: 1e8,
    };
    let reviewer = workload
        .fan_out_branch("reviewer", decode)
        .expect("a known agent");
    let model = reviewer.model.expect("the reviewer calls a model");
    assert_eq!(model.name, "coder-14b");
    assert_eq!(model.footprint_bytes, 10 * GB);
    close(model.load_seconds, 2.0 + 10.0 / 0.8);
    close(reviewer.turn_seconds, 40.0);
    let tests = workload
        .fan_out_branch("tests", decode)
        .expect("a known agent");
    assert_eq!(tests.model, None);
    assert!(workload.fan_out_branch("nobody", decode).is_err());
}

#[test]
fn decode_bytes_come_from_the_footprint_inputs() {
    let inputs = FootprintInputs {
        file_bytes: 20_000_000_000,
        block_count: 64,
        head_count: 64,
        head_count_kv: 8,
        embedding_length: 5120,
        trained_context: 40_960,
        num_ctx: 8192,
        num_parallel: 1,
        num_batch: 512,
    };
    let decode = DecodeBytes::from_footprint_inputs(&inputs, 4096);
    assert_eq!(decode.weights_per_token, 20e9);
    // 2 (K and V) x 64 layers x 8 heads x 80 dims x 2 bytes x 4096 tokens.
    assert_eq!(decode.slot_per_token, (2 * 64 * 8 * 80 * 2 * 4096) as f64);
    // Capped by num_ctx.
    let capped = DecodeBytes::from_footprint_inputs(&inputs, 100_000);
    assert_eq!(capped.slot_per_token, (2 * 64 * 8 * 80 * 2 * 8192) as f64);
}

#[test]
fn the_slowdown_counts_streams_against_the_peak() {
    let bandwidth = mac();
    close(bandwidth.slowdown(0), 1.0);
    close(bandwidth.slowdown(1), 1.0);
    close(bandwidth.slowdown(2), 1.4 / 0.85);
    close(saturated().slowdown(3), 3.0);
}

proptest::proptest! {
    /// Any fan-out: every option runs every branch once, loads a model at most once per
    /// group, and the chosen option is within the margin of the fastest.
    #[test]
    fn every_fan_out_gets_a_complete_plan(
        specs in proptest::collection::vec((0usize..5, 1u64..40, 0.0f64..60.0, 0.0f64..200.0), 1..6),
        resident_models in proptest::collection::vec(0usize..6, 0..4),
        budget_gb in 8u64..120,
        cap in 1usize..4,
        num_parallel in 0usize..4,
    ) {
        // Model 4 stands for a command; a model's size and load time are its first branch's.
        let sizes: Vec<(u64, f64)> = (0..4)
            .map(|id| {
                specs
                    .iter()
                    .find(|spec| spec.0 == id)
                    .map_or((10, 10.0), |spec| (spec.1, spec.2))
            })
            .collect();
        let branches: Vec<BranchStart> = specs
            .iter()
            .enumerate()
            .map(|(index, &(id, _, _, turn))| {
                if id == 4 {
                    command(&format!("b{index}"), turn)
                } else {
                    branch(&format!("b{index}"), &format!("m{id}"), sizes[id].0, sizes[id].1, turn)
                }
            })
            .collect();
        let resident: Vec<LoadedModel> = resident_models
            .iter()
            .map(|&id| if id < 4 { loaded(&format!("m{id}"), sizes[id].0) } else { loaded(&format!("other{id}"), 5) })
            .collect();
        let plan = plan_fan_out(&FanOut {
            branches: &branches,
            resident: &resident,
            budget: budget(budget_gb, cap),
            num_parallel,
            bandwidth: mac(),
        })
        .expect("a valid fan-out");
        let longest = branches.iter().map(|branch| branch.turn_seconds).fold(0.0, f64::max);
        for option in &plan.options {
            let mut seen: Vec<usize> = option.groups.iter().flatten().copied().collect();
            seen.sort_unstable();
            proptest::prop_assert_eq!(seen, (0..branches.len()).collect::<Vec<_>>());
            proptest::prop_assert!(option.wall_seconds >= longest - 1e-6);
            proptest::prop_assert!(option.load_wait_seconds >= -1e-6);
        }
        let fastest = plan.options.iter().map(|option| option.wall_seconds).fold(f64::INFINITY, f64::min);
        proptest::prop_assert!(plan.chosen.wall_seconds <= fastest * 1.03 + 1.0 + 1e-6);
        proptest::prop_assert!(!plan.reason.is_empty());
    }
}

#[test]
fn the_model_branches_count_when_the_command_may_end_first() {
    // A test command of 40 s on average beside two models that take ~32 s together and 36 s
    // one after the other: at the command's mean both end with it, but it may end first,
    // and then running the models together pays.
    let branches = [
        command("tests", 40.0),
        branch("reviewer", "coder-14b", 10, 0.0, 24.0),
        branch("security", "qwen-8b", 5, 0.0, 12.0),
    ];
    let resident = [loaded("coder-14b", 10), loaded("qwen-8b", 5)];
    let plan = decide(&branches, &resident, 54, 1, mac());
    let serialized = option(&plan, Concurrency::Serialized);
    let concurrent = option(&plan, Concurrency::Concurrent);
    assert!(
        concurrent.wall_seconds + 1.0 < serialized.wall_seconds,
        "{concurrent:?} against {serialized:?}"
    );
    assert_eq!(plan.chosen.concurrency, Concurrency::Concurrent, "{plan}");
}
