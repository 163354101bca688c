//! When an idle model is worth more as page cache than resident.

use crate::budget::Budget;
use crate::page_cache::HostMemory;
use crate::plan::{LoadedModel, PlanContext, plan_turn};
use crate::policy::Policy;
use crate::test_support::{GB, agent, budget, edge, model};
use crate::workload::{PlannedAgent, PlannedEdge, Workload};

fn host() -> HostMemory {
    HostMemory {
        ram_bytes: 64 * GB,
        os_reserve_bytes: 6 * GB,
        warm_bytes_per_second: 10e9,
        load_fixed_seconds: 2.0,
    }
}

/// A workload on `ram_gb` of RAM whose models' weights files are as large as the models.
fn with_files(
    models: &[(&str, f64)],
    agents: Vec<PlannedAgent>,
    edges: Vec<PlannedEdge>,
    budget: Budget,
    ram_gb: u64,
) -> Workload {
    let specs = models.iter().map(|&(name, gb)| model(name, gb)).collect();
    let mut workload = Workload::new(specs, agents, edges, budget).expect("valid");
    workload
        .set_host(HostMemory {
            ram_bytes: ram_gb * GB,
            ..host()
        })
        .expect("valid host");
    for &(name, gb) in models {
        workload
            .set_file_bytes(name, (gb * GB as f64) as u64)
            .expect("known");
    }
    workload
}

/// One agent per model of `models`, named after it, each turn 60 s.
fn agent_per_model(models: &[(&str, f64)]) -> Vec<PlannedAgent> {
    models
        .iter()
        .map(|&(name, _)| agent(name, Some(name), 60.0))
        .collect()
}

/// A planner on a 33 GB model hands to a coder on 24 GB and back, mostly; now and then a
/// helper on a small model speaks after the coder. The three do not fit together in 54 GB.
fn team(helper_weight: f64) -> Workload {
    team_timed(helper_weight, 60.0, 54)
}

/// [`team`] with the coder's turns lasting `coder_seconds`, on `budget_gb` of GPU memory.
fn team_timed(helper_weight: f64, coder_seconds: f64, budget_gb: u64) -> Workload {
    with_files(
        &[
            ("planner-70b", 33.0),
            ("coder-32b", 20.0),
            ("helper-8b", 6.0),
        ],
        vec![
            agent("planner", Some("planner-70b"), 60.0),
            agent("coder", Some("coder-32b"), coder_seconds),
            agent("helper", Some("helper-8b"), 20.0),
        ],
        vec![
            edge("planner", "coder", 1.0),
            edge("coder", "planner", 1.0),
            edge("coder", "helper", helper_weight),
            edge("helper", "coder", 1.0),
        ],
        budget(budget_gb, 3),
        64,
    )
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

/// An outlook with stated odds, so that the rule's arithmetic is checked on its own.
struct Stated {
    /// Per runner: keep priority and chance of use.
    priority: Vec<f64>,
    use_probability: Vec<f64>,
    /// `before[candidate][rival]`: the chance that `rival` is needed before `candidate`.
    before: Vec<Vec<f64>>,
    /// What any preload saves.
    preload_saving: f64,
}

impl crate::forecast::Outlook for Stated {
    fn priority(&self, runner: usize) -> f64 {
        self.priority[runner]
    }
    fn use_probability(&self, runner: usize) -> f64 {
        self.use_probability[runner]
    }
    fn gap_seconds(&self, _: usize) -> f64 {
        60.0
    }
    fn turn_seconds(&self) -> f64 {
        60.0
    }
    fn needed_before(&self, candidate: usize, rival: usize) -> f64 {
        self.before[candidate][rival]
    }
    fn likely_before(&self, candidate: usize, rival: usize) -> f64 {
        self.before[candidate][rival]
    }
    fn preload_saving(&self, _: usize, _: f64, _: f64) -> f64 {
        self.preload_saving
    }
    fn load_demand(&self, _: &[bool]) -> Vec<crate::speculation::Demand> {
        Vec::new()
    }
    fn describe(&self, _: usize) -> String {
        String::new()
    }
    fn strict_order(&self) -> bool {
        false
    }
}

/// A 30 GB planner, three 8 GB workers taking turns, a 6 GB helper; two models at most.
/// The first worker speaks with the planner and the helper resident: the planner goes.
fn relay() -> Workload {
    let names = [
        ("planner", 30.0),
        ("worker-a", 8.0),
        ("worker-b", 8.0),
        ("worker-c", 8.0),
        ("helper", 6.0),
    ];
    with_files(
        &names,
        agent_per_model(&names),
        vec![edge("planner", "worker-a", 1.0)],
        budget(54, 2),
        64,
    )
}

/// The runners of [`relay`] in order: planner, worker-a, worker-b, worker-c, helper.
fn relay_outlook(worker_c_first: f64, helper_use: f64) -> Stated {
    // Before the planner: workers b and c (c with the stated chance), never the helper.
    let mut before = vec![vec![0.0; 5]; 5];
    before[0][2] = 1.0;
    before[0][3] = worker_c_first;
    // Before the helper: the planner and every worker.
    before[4] = vec![1.0, 1.0, 1.0, 1.0, 0.0];
    Stated {
        // The helper ranks above the planner: making room for worker-a takes the planner.
        priority: vec![0.1, 1.0, 0.8, 0.7, 0.5],
        use_probability: vec![1.0, 1.0, 1.0, 1.0, helper_use],
        before,
        preload_saving: 0.0,
    }
}

fn relay_plan(outlook: &Stated) -> crate::TurnPlan {
    let mut workload = relay();
    let resident = [loaded("planner", 30), loaded("helper", 6)];
    workload.observe_residency(&resident);
    let context = PlanContext {
        speaker: "worker-a",
        resident: &resident,
        future: &[],
    };
    crate::lookahead::plan_ahead(&workload, &context, 1, outlook)
}

/// The planner's file survives this turn's load and the next (30 + 6 + 8 + 8 = 52 GB of
/// 58), but not the third worker's (60): kept, the helper costs it a cold reload, unloaded
/// first it leaves 54 GB. The judgement runs over the whole gap to the planner's next use.
#[test]
fn an_idle_model_goes_when_a_later_load_before_the_large_models_use_would_push_its_file_out() {
    let plan = relay_plan(&relay_outlook(1.0, 0.5));
    let unloads: Vec<&str> = plan.unloads.iter().map(|u| u.model.as_str()).collect();
    assert_eq!(unloads, ["helper", "planner"], "{plan:#?}");
    assert!(plan.unloads[0].reason.contains("page cache"), "{plan:#?}");
}

/// Without the third worker before the planner's next use, its file survives with the helper
/// kept: nothing to gain.
#[test]
fn an_idle_model_stays_when_the_loads_before_the_large_models_use_leave_its_file_cached() {
    let plan = relay_plan(&relay_outlook(0.0, 0.5));
    let unloads: Vec<&str> = plan.unloads.iter().map(|u| u.model.as_str()).collect();
    assert_eq!(unloads, ["planner"], "{plan:#?}");
}

/// The saving scales with the chance that the load pushing the file out comes first: a
/// small one does not pay for a helper that is sure to be needed and then reloads cold.
#[test]
fn an_unlikely_push_does_not_pay_for_a_sure_reload() {
    let plan = relay_plan(&relay_outlook(0.02, 1.0));
    let unloads: Vec<&str> = plan.unloads.iter().map(|u| u.model.as_str()).collect();
    assert_eq!(unloads, ["planner"], "{plan:#?}");
}

#[test]
fn the_chance_that_loads_fit_adds_independent_chances() {
    use super::fits;
    // Nothing to add, or no room at all.
    assert_eq!(fits(10 * GB, 4 * GB, &[]), 1.0);
    assert_eq!(fits(10 * GB, 11 * GB, &[]), 0.0);
    // One load that fits only alone: it must not come with the other.
    let p = fits(10 * GB, 2 * GB, &[(5 * GB, 0.5), (4 * GB, 0.4)]);
    assert!((p - (1.0 - 0.5 * 0.4)).abs() < 1e-9, "{p}");
    // A load larger than the room fits only when it does not come.
    let p = fits(10 * GB, 2 * GB, &[(9 * GB, 0.3)]);
    assert!((p - 0.7).abs() < 1e-9, "{p}");
}

/// Models that went together since the last look: the larger file is taken as the newer,
/// so the smaller one goes first when the cache is short.
#[test]
fn of_models_gone_together_the_larger_file_is_taken_as_the_newer() {
    let mut workload = team(0.1);
    workload.observe_residency(&[loaded("planner-70b", 33), loaded("helper-8b", 6)]);
    // 20 GB wired leaves 38 GB: the planner's 33 GB stay, the helper's 6 GB do not.
    workload.observe_residency(&[loaded("coder-32b", 20)]);
    assert!(workload.file_cached("planner-70b").expect("known"));
    assert!(!workload.file_cached("helper-8b").expect("known"));
}

/// The coder speaks, alone resident, with the planner's 33 GB file cached beside its 20 GB
/// (53 of 58). Preloading the 6 GB helper would push the file out: the preload saves 3 s,
/// the planner's warm reload is worth 38 s, so the preload is withdrawn unless the planner
/// is not expected.
fn preload_plan(planner_use: f64) -> crate::TurnPlan {
    let mut workload = team(0.1);
    workload.observe_residency(&[loaded("planner-70b", 33)]);
    let resident = [loaded("coder-32b", 20)];
    workload.observe_residency(&resident);
    let mut before = vec![vec![0.0; 3]; 3];
    before[0][2] = 0.1;
    let outlook = Stated {
        priority: vec![0.5, 1.0, 0.4],
        use_probability: vec![planner_use, 1.0, 0.5],
        before,
        preload_saving: 3.0,
    };
    let context = PlanContext {
        speaker: "coder",
        resident: &resident,
        future: &[],
    };
    crate::lookahead::plan_ahead(&workload, &context, 1, &outlook)
}

#[test]
fn a_preload_that_would_push_a_large_cached_file_out_is_withdrawn() {
    let plan = preload_plan(1.0);
    assert!(plan.preloads.is_empty(), "{plan:#?}");
}

#[test]
fn a_preload_stays_when_the_cached_file_is_not_expected() {
    let plan = preload_plan(0.0);
    let preloads: Vec<&str> = plan.preloads.iter().map(|p| p.model.as_str()).collect();
    assert!(preloads.contains(&"helper-8b"), "{plan:#?}");
}

/// The coder speaks, alone resident, with the planner's 33 GB file cached beside its 20 GB
/// (53 of 58), and two 6 GB helpers to preload. Either one alone pushes the file out, so
/// withdrawing either alone saves nothing: only the two together keep it.
fn two_helpers_plan(planner_use: f64) -> crate::TurnPlan {
    let names = [
        ("planner-70b", 33.0),
        ("coder-32b", 20.0),
        ("helper-a", 6.0),
        ("helper-b", 6.0),
    ];
    let mut workload = with_files(
        &names,
        agent_per_model(&names),
        vec![edge("planner-70b", "coder-32b", 1.0)],
        budget(54, 4),
        64,
    );
    workload.observe_residency(&[loaded("planner-70b", 33)]);
    let resident = [loaded("coder-32b", 20)];
    workload.observe_residency(&resident);
    let mut before = vec![vec![0.0; 4]; 4];
    before[0][2] = 0.1;
    before[0][3] = 0.1;
    let outlook = Stated {
        priority: vec![0.5, 1.0, 0.4, 0.3],
        use_probability: vec![planner_use, 1.0, 0.5, 0.5],
        before,
        preload_saving: 3.0,
    };
    let context = PlanContext {
        speaker: "coder-32b",
        resident: &resident,
        future: &[],
    };
    crate::lookahead::plan_ahead(&workload, &context, 1, &outlook)
}

#[test]
fn preloads_that_push_a_large_cached_file_out_only_together_are_withdrawn_together() {
    let plan = two_helpers_plan(1.0);
    assert!(plan.preloads.is_empty(), "{plan:#?}");
}

#[test]
fn preloads_stay_together_when_the_cached_file_is_not_expected() {
    let plan = two_helpers_plan(0.0);
    let mut preloads: Vec<&str> = plan.preloads.iter().map(|p| p.model.as_str()).collect();
    preloads.sort_unstable();
    assert_eq!(preloads, ["helper-a", "helper-b"], "{plan:#?}");
}

/// The helper speaks (its 6 GB held through the turn) with the planner's 33 GB idle beside it;
/// the coder comes next for sure. Preloading the coder now evicts the planner while the helper
/// still holds its memory: 6 + 20 GB wired leave 32 GB of cache, too little for the planner's
/// file, which is pushed out at once. Loaded at the coder's call instead, with the helper idle
/// and gone first, the file keeps 38 GB and the planner reloads warm: worth more than the 10 s
/// the preload hides, unless the planner is not expected again, or the coder's turn before
/// the planner's use can hide even a cold reload (it must be long enough, and the planner must
/// fit beside the coder: `budget_gb` 60 rather than 54; Ollama admits a model needing 80 % of
/// what is free).
fn preload_evicting_beside_a_busy_model(
    planner_use: f64,
    coder_seconds: f64,
    budget_gb: u64,
) -> crate::TurnPlan {
    let mut workload = team_timed(0.1, coder_seconds, budget_gb);
    let resident = [loaded("planner-70b", 33), loaded("helper-8b", 6)];
    workload.observe_residency(&resident);
    let outlook = Stated {
        priority: vec![0.5, 1.0, 0.4],
        use_probability: vec![planner_use, 1.0, 0.1],
        before: vec![vec![0.0; 3]; 3],
        preload_saving: 10.0,
    };
    let context = PlanContext {
        speaker: "helper",
        resident: &resident,
        future: &[],
    };
    crate::lookahead::plan_ahead(&workload, &context, 2, &outlook)
}

#[test]
fn a_preload_that_evicts_a_file_the_busy_models_would_push_out_waits_for_the_call() {
    let plan = preload_evicting_beside_a_busy_model(1.0, 5.0, 60);
    assert!(plan.preloads.is_empty(), "{plan:#?}");
    assert!(plan.unloads.is_empty(), "{plan:#?}");
}

#[test]
fn a_preload_evicts_when_the_turn_before_the_evicted_models_use_hides_a_cold_reload() {
    let plan = preload_evicting_beside_a_busy_model(1.0, 60.0, 60);
    let preloads: Vec<&str> = plan.preloads.iter().map(|p| p.model.as_str()).collect();
    assert_eq!(preloads, ["coder-32b"], "{plan:#?}");
}

#[test]
fn a_long_turn_before_the_evicted_models_use_hides_nothing_when_it_cannot_load_beside() {
    let plan = preload_evicting_beside_a_busy_model(1.0, 60.0, 54);
    assert!(plan.preloads.is_empty(), "{plan:#?}");
}

#[test]
fn a_preload_evicts_when_the_evicted_model_is_not_expected() {
    let plan = preload_evicting_beside_a_busy_model(0.0, 5.0, 60);
    let preloads: Vec<&str> = plan.preloads.iter().map(|p| p.model.as_str()).collect();
    assert_eq!(preloads, ["coder-32b"], "{plan:#?}");
    let unloads: Vec<&str> = plan.unloads.iter().map(|u| u.model.as_str()).collect();
    assert_eq!(unloads, ["planner-70b"], "{plan:#?}");
}

/// A chain of three steps on 26, 17 and 12 GB models, 48 GB of GPU memory: step1's model
/// fits beside either other but not both. Step1 speaks with the other two idle: step2's
/// model goes to make room (the two others do not pass the fit test together) and is
/// preloaded again once step3's goes. Its file must be the newer in the cache when step1's
/// model loads (26 GB wired leave 25 GB of cache, room for it but not for both files), so
/// step3's model, needed last, unloads first.
#[test]
fn the_model_needed_last_unloads_first_so_the_file_needed_soonest_stays_cached() {
    let names = [("step1-m", 26.0), ("step2-m", 17.0), ("step3-m", 12.0)];
    let mut workload = with_files(
        &names,
        vec![
            agent("step1", Some("step1-m"), 90.0),
            agent("step2", Some("step2-m"), 90.0),
            agent("step3", Some("step3-m"), 60.0),
        ],
        vec![
            edge("step1", "step2", 1.0),
            edge("step2", "step3", 1.0),
            edge("step3", "step1", 1.0),
        ],
        budget(48, 4),
        57,
    );
    let resident = [loaded("step2-m", 17), loaded("step3-m", 12)];
    workload.observe_residency(&resident);
    let plan = plan(&workload, "step1", &resident);
    let unloads: Vec<&str> = plan.unloads.iter().map(|u| u.model.as_str()).collect();
    assert_eq!(unloads, ["step3-m", "step2-m"], "{plan:#?}");
}
