//! When an idle model is worth more as page cache than resident.

use crate::page_cache::HostMemory;
use crate::plan::{LoadedModel, PlanContext, plan_turn};
use crate::policy::Policy;
use crate::test_support::{GB, agent, budget, edge, model};
use crate::workload::Workload;

fn host() -> HostMemory {
    HostMemory {
        ram_bytes: 64 * GB,
        os_reserve_bytes: 6 * GB,
        warm_bytes_per_second: 10e9,
        load_fixed_seconds: 2.0,
    }
}

/// A planner on a 33 GB model hands to a coder on 24 GB and back, mostly; now and then a
/// helper on a small model speaks after the coder. The three do not fit together in 54 GB.
fn team(helper_weight: f64) -> Workload {
    let mut workload = Workload::new(
        vec![
            model("planner-70b", 33.0),
            model("coder-32b", 20.0),
            model("helper-8b", 6.0),
        ],
        vec![
            agent("planner", Some("planner-70b"), 60.0),
            agent("coder", Some("coder-32b"), 60.0),
            agent("helper", Some("helper-8b"), 20.0),
        ],
        vec![
            edge("planner", "coder", 1.0),
            edge("coder", "planner", 1.0),
            edge("coder", "helper", helper_weight),
            edge("helper", "coder", 1.0),
        ],
        budget(54, 3),
    )
    .expect("valid");
    workload.set_host(host()).expect("valid host");
    for (name, gb) in [("planner-70b", 33), ("coder-32b", 20), ("helper-8b", 6)] {
        workload.set_file_bytes(name, gb * GB).expect("known");
    }
    workload
}

fn loaded(name: &str, gb: u64) -> LoadedModel {
    LoadedModel {
        model: name.to_owned(),
        bytes: gb * GB,
        busy: false,
        keep_alive: None,
    }
}

fn plan(workload: &Workload, speaker: &str, resident: &[LoadedModel]) -> crate::TurnPlan {
    let context = PlanContext {
        speaker,
        resident,
        future: &[],
    };
    plan_turn(Policy::Smart, workload, &context).expect("a plan")
}

/// The coder speaks with the planner and the helper resident: the planner must go to make
/// room. Kept, the helper's 6 GB leave 58 - 26 = 32 GB of cache, too little for the
/// planner's 33 GB file; unloaded first, the planner's file survives and reloads warm. The
/// helper is rarely needed, so its own reload costs less than the planner's cold one.
#[test]
fn a_rarely_used_idle_model_unloads_first_so_a_large_file_stays_cached() {
    let mut workload = team(0.1);
    let resident = [loaded("planner-70b", 33), loaded("helper-8b", 6)];
    workload.observe_residency(&resident);
    let plan = plan(&workload, "coder", &resident);
    let unloads: Vec<&str> = plan.unloads.iter().map(|u| u.model.as_str()).collect();
    assert_eq!(unloads, ["helper-8b", "planner-70b"], "{plan:#?}");
    assert!(plan.unloads[0].reason.contains("page cache"), "{plan:#?}");
}

#[test]
fn an_idle_model_needed_soon_stays() {
    // The helper speaks after the coder as often as the planner does.
    let mut workload = team(8.0);
    let resident = [loaded("planner-70b", 33), loaded("helper-8b", 6)];
    workload.observe_residency(&resident);
    let plan = plan(&workload, "coder", &resident);
    assert!(
        !plan.unloads.iter().any(|u| u.model == "helper-8b"),
        "{plan:#?}"
    );
}

#[test]
fn without_the_host_memory_the_cache_is_not_weighed() {
    let mut workload = team(0.1);
    workload.host = None;
    let resident = [loaded("planner-70b", 33), loaded("helper-8b", 6)];
    let plan = plan(&workload, "coder", &resident);
    assert!(
        !plan.unloads.iter().any(|u| u.model == "helper-8b"),
        "{plan:#?}"
    );
}

/// The estimate follows the server: a model gone since the last look left its file
/// behind, and a reload of it is then expected warm.
#[test]
fn a_model_unloaded_since_the_last_look_reloads_warm() {
    let mut workload = team(0.1);
    workload.observe_residency(&[loaded("planner-70b", 33)]);
    let planner = workload.runner_named("planner-70b").expect("known");
    let cold = workload.expected_load_seconds(planner);
    workload.observe_residency(&[loaded("coder-32b", 20)]);
    assert!(workload.file_cached("planner-70b").expect("known"));
    let warm = workload.expected_load_seconds(planner);
    assert!((warm - 5.3).abs() < 1e-9 && cold > 40.0, "{warm} {cold}");
    // A 54 GB wired load leaves 4 GB of cache: the file is gone.
    workload.observe_residency(&[loaded("coder-32b", 20), loaded("other", 34)]);
    assert!(!workload.file_cached("planner-70b").expect("known"));
}

/// A warm load measures the page cache, not the disk: it does not pull the cold estimate
/// down, while a cold one still teaches it.
#[test]
fn warm_loads_do_not_teach_the_cold_load_time() {
    use crate::load_mode::LoadMode;
    let mut workload = team(0.1);
    let cold = workload
        .load_times("planner-70b")
        .expect("known")
        .mmap_seconds;
    workload
        .record_load("planner-70b", LoadMode::Mmap, 5.3)
        .expect("recorded");
    assert_eq!(
        workload
            .load_times("planner-70b")
            .expect("known")
            .mmap_seconds,
        cold
    );
    workload
        .record_load("planner-70b", LoadMode::Mmap, 40.0)
        .expect("recorded");
    assert!(
        workload
            .load_times("planner-70b")
            .expect("known")
            .mmap_seconds
            < cold
    );
}
