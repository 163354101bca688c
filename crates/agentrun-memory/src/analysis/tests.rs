//! Phases, transitions and warnings of known workflows.

use super::*;
use crate::test_support::{agent, budget, edge, model, tdd_workload};
use crate::workload::ModelSpec;

fn phase_names(analysis: &Analysis) -> Vec<&str> {
    analysis
        .phases
        .iter()
        .map(|phase| phase.name.as_str())
        .collect()
}

#[test]
fn the_tdd_team_has_a_loop_phase_and_a_design_phase() {
    let analysis = analyze(&tdd_workload(54));
    assert_eq!(
        phase_names(&analysis),
        [
            "router + coder + run_tests + tester + reviewer",
            "architect"
        ]
    );
    let tdd_loop = &analysis.phases[0];
    assert_eq!(tdd_loop.models, ["qwen3:1.7b", "coder-32b", "coder-14b"]);
    assert!(tdd_loop.fits);
    assert_eq!(
        tdd_loop.load_order,
        ["coder-32b", "coder-14b", "qwen3:1.7b"]
    );
    // 19 + 9 + 1.4 x 1.25 = 29.75 < 19 + 9 x 1.25 = 30.25
    assert_eq!(tdd_loop.min_gpu_bytes, 30_250_000_000);
    // The router (1.4 GB) stays beside the architect (52 GB): 1.4 <= 0.8 x 2.
    assert_eq!(analysis.phases[1].also_resident, ["qwen3:1.7b"]);
    assert!(analysis.warnings.is_empty());
}

#[test]
fn entering_the_design_phase_clears_the_server() {
    let analysis = analyze(&tdd_workload(54));
    let design = &analysis.transitions[0];
    assert_eq!(design.via, ["router -> architect"]);
    // The architect needs an empty server: 52 > 0.8 x (54 - 1.4).
    assert_eq!(design.unloads, ["qwen3:1.7b", "coder-32b", "coder-14b"]);
    assert_eq!(design.loads.len(), 1);
    assert_eq!(design.loads[0].model, "architect-80b");
    // 2 s + 52 GB / 0.8 GB/s, all of it waited for.
    assert_eq!(design.load_seconds, 67.0);
    assert_eq!(design.exposed_seconds, 67.0);
}

#[test]
fn leaving_the_design_phase_hides_the_second_load() {
    let analysis = analyze(&tdd_workload(54));
    let back = &analysis.transitions[1];
    assert_eq!(back.via, ["architect -> router"]);
    assert_eq!(back.unloads, ["architect-80b"]);
    let loads: Vec<(&str, f64, f64)> = back
        .loads
        .iter()
        .map(|load| (load.model.as_str(), load.seconds, load.exposed_seconds))
        .collect();
    // The coder loads while the router's 5 s turn runs; the 14b while the coder generates.
    assert_eq!(
        loads,
        [("coder-32b", 25.75, 20.75), ("coder-14b", 13.25, 0.0)]
    );
}

#[test]
fn a_small_budget_warns_with_the_budget_that_fixes_it() {
    let analysis = analyze(&tdd_workload(24));
    let kinds: Vec<&WarningKind> = analysis
        .warnings
        .iter()
        .map(|warning| &warning.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            &WarningKind::BudgetUnderLargestModel {
                model: "architect-80b".to_owned(),
                footprint_bytes: 52_000_000_000
            },
            &WarningKind::PhaseDoesNotFit {
                phase: "router + coder + run_tests + tester + reviewer".to_owned(),
                needed_gpu_bytes: 30_250_000_000
            },
        ]
    );
    assert!(
        analysis.warnings[1].fix.contains("at least 30.2 GB"),
        "{}",
        analysis.warnings[1].fix
    );
    assert!(!analysis.phases[0].fits);
    assert!(analysis.phases[0].load_order.is_empty());
}

#[test]
fn a_phase_over_the_model_cap_names_the_setting() {
    let workload = tdd_workload(54);
    let capped = Workload::new(
        workload.models().to_vec(),
        workload.agents().to_vec(),
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
        budget(54, 2),
    )
    .expect("valid");
    let analysis = analyze(&capped);
    assert_eq!(analysis.warnings.len(), 1);
    assert_eq!(
        analysis.warnings[0].kind,
        WarningKind::TooManyModels {
            phase: "router + coder + run_tests + tester + reviewer".to_owned(),
            needed: 3,
            max_loaded_models: 2
        }
    );
    assert!(
        analysis.warnings[0]
            .fix
            .contains("OLLAMA_MAX_LOADED_MODELS=3")
    );
    let json = serde_json::to_value(&analysis.warnings[0]).expect("serializable");
    assert_eq!(json["kind"]["kind"], "too-many-models");
}

#[test]
fn agents_on_shared_weights_must_send_one_num_ctx() {
    let mut tester = agent("tester", Some("coder-14b"), 30.0);
    tester.num_ctx = Some(32_768);
    let mut reviewer = agent("reviewer", Some("coder-14b-review"), 30.0);
    reviewer.num_ctx = Some(8192);
    let review_model = ModelSpec {
        name: "coder-14b-review".to_owned(),
        ..model("coder-14b", 9.0)
    };
    let workload = Workload::new(
        vec![model("coder-14b", 9.0), review_model],
        vec![tester, reviewer],
        vec![
            edge("tester", "reviewer", 1.0),
            edge("reviewer", "tester", 1.0),
        ],
        budget(54, 3),
    )
    .expect("valid");
    let analysis = analyze(&workload);
    assert_eq!(analysis.warnings.len(), 1);
    assert_eq!(
        analysis.warnings[0].kind,
        WarningKind::SharedWeightsDifferentNumCtx {
            models: vec!["coder-14b".to_owned(), "coder-14b-review".to_owned()],
            agents: vec![("tester".to_owned(), 32_768), ("reviewer".to_owned(), 8192)],
        }
    );
    assert_eq!(
        analysis.warnings[0].fix,
        "give tester, reviewer the same num_ctx (e.g. 32768 for all)"
    );
}
