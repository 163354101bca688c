//! Decision time of placement: 50 models over 64 hosts.
//!
//! Run with `cargo bench -p agentrun-memory --bench placement`. Prints the placement found
//! (search, expected wait beside the best one-host figure, hosts used), then criterion's
//! timing of `place` on that input, the target being under 5 ms; then the same for the
//! largest exact search (15 models over 2 hosts) and for a stress case, a dense graph where
//! every agent hands over to ten others and nothing hides a load.

use std::hint::black_box;

use agentrun_memory::{
    AgentLabels, Bandwidth, Budget, LoadModeChoice, LoadSpeed, LoadTimes, ModelSpec, PlacementHost,
    PlacementInput, PlannedAgent, PlannedEdge, PlannedTarget, Workload, place,
};
use criterion::Criterion;

mod support;
use support::Lcg;

const MODELS: usize = 50;
/// Every model has an agent; every fifth agent is followed by a command agent.
const COMMANDS: usize = MODELS / 5;
const HOSTS: usize = 64;
const GB: u64 = 1_000_000_000;

/// The models, 1 to 40 GB each, on weights of their own.
fn models(random: &mut Lcg) -> Vec<ModelSpec> {
    (0..MODELS)
        .map(|index| {
            let bytes = (1 + random.below(40)) * GB;
            ModelSpec {
                name: format!("model-{index}"),
                runner_key: format!("weights-{index}"),
                footprint_bytes: bytes,
                load_times: LoadTimes::from_bandwidth(bytes, 2.0, 0.8e9, 5e9),
                load_mode: LoadModeChoice::Auto,
            }
        })
        .collect()
}

/// Ten teams of five agents, each team a loop with a command agent, handing over to the
/// next team now and then; model sizes from 1 to 40 GB, turns from 5 to 45 s.
fn workload(random: &mut Lcg) -> Workload {
    let models = models(random);
    let mut agents: Vec<PlannedAgent> = (0..MODELS)
        .map(|index| PlannedAgent {
            name: format!("agent-{index}"),
            model: Some(format!("model-{index}")),
            mean_turn_seconds: 5.0 + random.below(40) as f64,
            static_keep_alive: None,
            num_ctx: None,
        })
        .collect();
    agents.extend((0..COMMANDS).map(|index| PlannedAgent {
        name: format!("command-{index}"),
        model: None,
        mean_turn_seconds: 10.0 + random.below(60) as f64,
        static_keep_alive: None,
        num_ctx: None,
    }));
    let mut edges = team_edges(COMMANDS, true, random);
    edges.push(PlannedEdge {
        from: "command-0".to_owned(),
        to: PlannedTarget::End,
        prior_weight: Some(0.05),
        count: 0,
    });
    Workload::new(
        models,
        agents,
        edges,
        Budget {
            gpu_bytes: 54 * GB,
            max_loaded_models: 3,
        },
    )
    .expect("the generated workload is valid")
}

/// The hand-overs of `teams` teams of five: a loop with random extra hand-overs, a command
/// after the fifth member (when `commands`), and a rare hand-over to the next team.
fn team_edges(teams: usize, commands: bool, random: &mut Lcg) -> Vec<PlannedEdge> {
    let edge = |from: String, to: String, weight: f64| PlannedEdge {
        from,
        to: PlannedTarget::Agent(to),
        prior_weight: Some(weight),
        count: 0,
    };
    let mut edges = Vec::new();
    for team in 0..teams {
        let member = |index: usize| format!("agent-{}", team * 5 + index);
        for index in 0..5 {
            edges.push(edge(member(index), member((index + 1) % 5), 4.0));
            edges.push(edge(
                member(index),
                member(random.below(5) as usize),
                1.0 + random.below(3) as f64,
            ));
        }
        if commands {
            edges.push(edge(member(4), format!("command-{team}"), 2.0));
            edges.push(edge(format!("command-{team}"), member(0), 1.0));
        }
        let next = (team + 1) % teams;
        edges.push(edge(member(2), format!("agent-{}", next * 5), 0.5));
    }
    edges
}

/// Four kinds of host (a 16 GB box, a 24 GB GPU, a 54 GB Mac, an 80 GB server), each
/// listing about four models in five, with labels and calibrated speeds of their kind.
fn hosts(random: &mut Lcg) -> Vec<PlacementHost> {
    let kinds = [
        (16, 2, "small", 0.5e9, 1e9),
        (24, 3, "linux", 1e9, 2e9),
        (54, 3, "mac", 0.8e9, 4e9),
        (80, 4, "server", 1e9, 3e9),
    ];
    (0..HOSTS)
        .map(|index| {
            let (gpu, cap, label, mmap, no_mmap) = kinds[index % kinds.len()];
            PlacementHost {
                name: format!("host-{index}"),
                budget: Budget {
                    gpu_bytes: gpu * GB,
                    max_loaded_models: cap,
                },
                labels: vec![label.to_owned()],
                models: (0..MODELS)
                    .filter(|_| random.below(5) != 0)
                    .map(|model| format!("model-{model}"))
                    .collect(),
                load_speed: LoadSpeed {
                    measured: Vec::new(),
                    bandwidth: Some(Bandwidth {
                        fixed_seconds: 2.0,
                        mmap_bytes_per_second: mmap,
                        no_mmap_bytes_per_second: no_mmap,
                    }),
                },
            }
        })
        .collect()
}

/// A few label wishes: some agents need a big host, some prefer a Mac.
fn labels() -> Vec<AgentLabels> {
    (0..MODELS)
        .step_by(7)
        .map(|index| AgentLabels {
            agent: format!("agent-{index}"),
            required: Vec::new(),
            preferred: vec!["mac".to_owned()],
        })
        .chain((3..MODELS).step_by(11).map(|index| AgentLabels {
            agent: format!("agent-{index}"),
            required: vec!["server".to_owned()],
            preferred: Vec::new(),
        }))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut random = Lcg(16);
    let workload = workload(&mut random);
    let hosts = hosts(&mut random);
    let labels = labels();
    let input = PlacementInput {
        workload: &workload,
        start: "agent-0",
        hosts: &hosts,
        labels: &labels,
    };
    let placement = place(&input).expect("the generated fleet can serve every model");
    let used = placement
        .hosts
        .iter()
        .filter(|host| !host.models.is_empty())
        .count();
    println!(
        "placement of {MODELS} models over {HOSTS} hosts: {:?} search, {used} hosts used, \
         expected load wait {:.2} s per 100 turns (best one host: {})",
        placement.search,
        100.0 * placement.wait_seconds_per_turn,
        placement.one_host.as_ref().map_or_else(
            || "none holds every model".to_owned(),
            |one| format!(
                "{:.2} s per 100 turns on {}",
                100.0 * one.wait_seconds_per_turn,
                one.host
            ),
        ),
    );
    c.bench_function("place 50 models over 64 hosts", |b| {
        b.iter(|| place(black_box(&input)).expect("placeable"));
    });
    // The largest exact search: 15 models (three teams) over 2 hosts, 2^15 assignments.
    let small = Workload::new(
        workload.models()[..15].to_vec(),
        workload.agents()[..15].to_vec(),
        team_edges(3, false, &mut random),
        workload.budget(),
    )
    .expect("the first three teams are a valid workload");
    let pair = [hosts[2].clone(), hosts[3].clone()];
    let pair_input = PlacementInput {
        workload: &small,
        start: "agent-0",
        hosts: &pair,
        labels: &[],
    };
    let exact = place(&pair_input).expect("the pair serves the first three teams");
    println!(
        "placement of 15 models over 2 hosts: {:?} search, expected load wait {:.2} s per 100 turns",
        exact.search,
        100.0 * exact.wait_seconds_per_turn
    );
    c.bench_function("place 15 models over 2 hosts (exact)", |b| {
        b.iter(|| place(black_box(&pair_input)).expect("placeable"));
    });
    // A stress case: every agent hands over to ten others, one-second turns (nothing hides a
    // load), so the whole graph is one phase and the paths are many.
    let dense = dense_workload(&mut random);
    let dense_input = PlacementInput {
        workload: &dense,
        start: "agent-0",
        hosts: &hosts,
        labels: &[],
    };
    match place(&dense_input) {
        Ok(placement) => println!(
            "dense graph, {MODELS} models over {HOSTS} hosts: {:?} search, expected load wait {:.2} s per 100 turns",
            placement.search,
            100.0 * placement.wait_seconds_per_turn
        ),
        Err(error) => println!("dense graph: {error}"),
    }
    let mut stress = c.benchmark_group("stress");
    stress.sample_size(20);
    stress.bench_function("place 50 models over 64 hosts, dense graph", |b| {
        b.iter(|| place(black_box(&dense_input)));
    });
    stress.finish();
}

/// The models of [`workload`] with one agent each, every agent handing over to ten random
/// others, one-second turns.
fn dense_workload(random: &mut Lcg) -> Workload {
    let models = models(random);
    let agents: Vec<PlannedAgent> = (0..MODELS)
        .map(|index| PlannedAgent {
            name: format!("agent-{index}"),
            model: Some(format!("model-{index}")),
            mean_turn_seconds: 1.0,
            static_keep_alive: None,
            num_ctx: None,
        })
        .collect();
    let edges = (0..MODELS)
        .flat_map(|from| (0..10).map(move |_| from))
        .map(|from| PlannedEdge {
            from: format!("agent-{from}"),
            to: PlannedTarget::Agent(format!("agent-{}", random.below(MODELS as u64))),
            prior_weight: Some(1.0),
            count: 0,
        })
        .collect();
    Workload::new(
        models,
        agents,
        edges,
        Budget {
            gpu_bytes: 54 * GB,
            max_loaded_models: 3,
        },
    )
    .expect("the dense workload is valid")
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
}
