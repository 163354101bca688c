//! Decision time of the planner per turn on a 50-agent graph.
//!
//! Run with `cargo bench -p agentrun-memory --bench decision_time`; prints the mean and the
//! 99th percentile of `plan_turn` per policy over the turns of a generated run (each turn's
//! fastest of several timings), and of a turn that also judges a preload still loading
//! (`judge_preload`, then `plan_turn`). The planner knows the host's memory, so every plan
//! also weighs the page cache; each turn's cache estimate follows the residency before it.

use std::hint::black_box;
use std::time::Instant;

use agentrun_memory::{
    Budget, DecodeBytes, FanOut, FutureTurn, HostMemory, LoadModeChoice, LoadTimes, LoadedModel,
    LoadingPreload, MemoryBandwidth, ModelSpec, PlanContext, PlannedAgent, PlannedEdge,
    PlannedTarget, Policy, Workload, judge_preload, plan_fan_out, plan_turn,
};

mod support;
use support::Lcg;

const AGENTS: usize = 50;
const MODELS: usize = 12;
const TURNS: usize = 2_000;
/// Each turn is timed this many times and its fastest time kept: a slower time only says the
/// machine was busy with something else (preemption, another process), not that the planner
/// did more work, and on a shared machine those pauses would dominate the tail.
const REPEATS: usize = 5;
const GB: u64 = 1_000_000_000;

fn workload(random: &mut Lcg) -> Workload {
    let models: Vec<ModelSpec> = (0..MODELS)
        .map(|index| {
            let bytes = (1 + random.below(20)) * GB;
            ModelSpec {
                name: format!("model-{index}"),
                runner_key: format!("weights-{index}"),
                footprint_bytes: bytes,
                load_times: LoadTimes::from_bandwidth(bytes, 2.0, 0.8e9, 5e9),
                load_mode: LoadModeChoice::Auto,
            }
        })
        .collect();
    let agents: Vec<PlannedAgent> = (0..AGENTS)
        .map(|index| PlannedAgent {
            name: format!("agent-{index}"),
            model: (index % 10 != 9).then(|| format!("model-{}", random.below(MODELS as u64))),
            mean_turn_seconds: 5.0 + random.below(120) as f64,
            static_keep_alive: None,
            num_ctx: None,
        })
        .collect();
    let mut edges = Vec::new();
    for from in 0..AGENTS {
        for _ in 0..3 {
            edges.push(PlannedEdge {
                from: format!("agent-{from}"),
                to: PlannedTarget::Agent(format!("agent-{}", random.below(AGENTS as u64))),
                prior_weight: Some(1.0 + random.below(5) as f64),
                count: random.below(20),
            });
        }
    }
    let files: Vec<(String, u64)> = models
        .iter()
        .map(|model| (model.name.clone(), model.footprint_bytes / 10 * 9))
        .collect();
    let mut workload = Workload::new(
        models,
        agents,
        edges,
        Budget {
            gpu_bytes: 54 * GB,
            max_loaded_models: 3,
        },
    )
    .expect("the generated workload is valid");
    workload
        .set_host(HostMemory {
            ram_bytes: 64 * GB,
            os_reserve_bytes: 6 * GB,
            warm_bytes_per_second: 10e9,
            load_fixed_seconds: 2.0,
        })
        .expect("a valid host");
    for (model, bytes) in files {
        workload
            .set_file_bytes(&model, bytes)
            .expect("a model of the workload");
    }
    workload
}

fn main() {
    let mut random = Lcg(7);
    let mut workload = workload(&mut random);
    // A speaker sequence: a walk over the graph.
    let mut sequence = Vec::with_capacity(TURNS);
    let mut agent = 0usize;
    for _ in 0..TURNS {
        sequence.push(FutureTurn {
            agent: format!("agent-{agent}"),
            seconds: 5.0 + random.below(120) as f64,
        });
        agent = (agent * 7 + 1 + random.below(3) as usize * 13) % AGENTS;
    }
    // Realistic residency per turn: apply each smart plan to a picture of the server.
    let mut resident: Vec<LoadedModel> = Vec::new();
    let mut contexts: Vec<(usize, Vec<LoadedModel>)> = Vec::with_capacity(TURNS);
    for (index, turn) in sequence.iter().enumerate() {
        contexts.push((index, resident.clone()));
        workload.observe_residency(&resident);
        let context = PlanContext {
            speaker: &turn.agent,
            resident: &resident,
            future: &sequence[index..],
        };
        let plan = plan_turn(Policy::Smart, &workload, &context).expect("known speaker");
        resident.retain(|model| {
            !plan
                .unloads
                .iter()
                .any(|unload| unload.model == model.model)
        });
        let loads = plan
            .call
            .iter()
            .filter(|call| call.loads)
            .map(|call| call.model.clone())
            .chain(plan.preloads.iter().map(|preload| preload.model.clone()));
        for model in loads {
            let bytes = workload
                .footprint_bytes(&model)
                .expect("a planned model is known");
            resident.push(LoadedModel {
                model,
                bytes,
                busy: false,
                keep_alive: None,
            });
        }
    }
    println!("plan_turn decision time, {AGENTS} agents, {MODELS} models, {TURNS} turns:");
    for policy in [Policy::Smart, Policy::Oracle, Policy::Static] {
        let mut samples = vec![f64::INFINITY; contexts.len()];
        for _ in 0..REPEATS {
            for ((index, resident), best) in contexts.iter().zip(&mut samples) {
                workload.observe_residency(resident);
                let context = PlanContext {
                    speaker: &sequence[*index].agent,
                    resident,
                    future: &sequence[*index..],
                };
                let start = Instant::now();
                let plan = plan_turn(policy, &workload, black_box(&context));
                *best = best.min(start.elapsed().as_nanos() as f64 / 1000.0);
                black_box(plan.expect("known speaker"));
            }
        }
        print_figures(&policy.to_string(), samples);
    }
    // A turn that starts while a preload loads: a model neither resident nor the speaker's.
    let mut samples = vec![f64::INFINITY; contexts.len()];
    for _ in 0..REPEATS {
        for ((index, resident), best) in contexts.iter().zip(&mut samples) {
            workload.observe_residency(resident);
            let speaker = &sequence[*index].agent;
            let speaker_model = workload
                .agents()
                .iter()
                .find(|agent| agent.name == *speaker)
                .and_then(|agent| agent.model.as_ref());
            let Some(loading) = workload
                .models()
                .iter()
                .map(|model| &model.name)
                .find(|name| {
                    Some(*name) != speaker_model
                        && !resident.iter().any(|model| &model.model == *name)
                })
            else {
                continue;
            };
            let context = PlanContext {
                speaker,
                resident,
                future: &sequence[*index..],
            };
            let preload = LoadingPreload {
                model: loading,
                loading_seconds: 1.0,
            };
            let start = Instant::now();
            let verdict = judge_preload(Policy::Smart, &workload, black_box(&context), &preload);
            let plan = plan_turn(Policy::Smart, &workload, black_box(&context));
            *best = best.min(start.elapsed().as_nanos() as f64 / 1000.0);
            black_box((
                verdict.expect("known speaker"),
                plan.expect("known speaker"),
            ));
        }
    }
    print_figures("smart + judge", samples);
    fan_out_figures(&workload, &contexts, &mut random);
}

/// The fan-out decision at every turn of the walk: two to four branches drawn from the
/// agents, against the residency of that turn.
fn fan_out_figures(workload: &Workload, contexts: &[(usize, Vec<LoadedModel>)], random: &mut Lcg) {
    let bandwidth = MemoryBandwidth::from_efficiency(273e9, 0.7, 0.85);
    let fan_outs: Vec<Vec<_>> = contexts
        .iter()
        .map(|_| {
            let count = 2 + random.below(3) as usize;
            (0..count)
                .map(|_| {
                    let agent = format!("agent-{}", random.below(AGENTS as u64));
                    let weights = (1 + random.below(20)) as f64 * GB as f64;
                    let decode = DecodeBytes {
                        weights_per_token: weights,
                        slot_per_token: 0.05 * weights,
                    };
                    workload
                        .fan_out_branch(&agent, decode)
                        .expect("a known agent")
                })
                .collect()
        })
        .collect();
    let mut samples = Vec::with_capacity(TURNS);
    for _ in 0..3 {
        for ((_, resident), branches) in contexts.iter().zip(&fan_outs) {
            let fan_out = FanOut {
                branches,
                resident,
                budget: workload.budget(),
                num_parallel: 2,
                bandwidth,
            };
            let start = Instant::now();
            let plan = plan_fan_out(black_box(&fan_out));
            samples.push(start.elapsed().as_nanos() as f64 / 1000.0);
            black_box(plan.expect("a valid fan-out"));
        }
    }
    print_figures("fan-out 2-4", samples);
}

fn print_figures(label: &str, mut samples: Vec<f64>) {
    // Turns without a loading preload to judge were never timed.
    samples.retain(|sample| sample.is_finite());
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let p99 = samples[samples.len() * 99 / 100];
    println!("  {label:<15} mean {mean:7.1} us   p99 {p99:7.1} us");
}
