//! `simulate`: a workflow in virtual time on the simulated machine, under each residency policy.
//!
//! The run's future is drawn once from the workflow's `simulation:` section
//! (router choices, test outcomes, reply lengths, command durations) and then
//! replayed under every policy, so all of them face the same speaker sequence.
//! Each replay runs the real executor against the in-process simulator on a
//! paused tokio clock: an hour of simulated work takes milliseconds and is
//! identical from run to run.
//!
//! Beside the policies stands a lower bound ([`agentrun_memory::lower_bound`]): the load
//! wait no policy can go below on the same future, computed from the turns' measured lengths,
//! the models' measured footprints and the machine's load times. Each policy's wait is
//! reported against it, unclamped, and split into what foresight removes (the wait above the
//! oracle's, which is this planner given the future, not an optimum) and the planner's error
//! (the rest: the oracle's own excess over the bound).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentrun_core::{
    Agent, AgentError, AgentReply, ChatRequest, Event, EventSink, Executor, Fleet, FutureTurn,
    HostSpec, ModelBackend, RunOptions, RunStatus, TurnContext,
};
use agentrun_memory::{BoundInstance, BoundModel, BoundTurn, LoadModeChoice, Policy, lower_bound};
use agentrun_spec::{AgentKind, Condition, GpuBudget, Workflow};
use async_trait::async_trait;
use ollama_sim::{Event as SimEvent, SimConfig, Simulator, UnloadReason};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::SimBackend;

/// How to simulate.
#[derive(Debug, Clone)]
pub struct SimulationOptions {
    /// The seed of the drawn future; `None` takes the workflow's `simulation.seed`.
    pub seed: Option<u64>,
    /// The policies to compare.
    pub policies: Vec<Policy>,
    /// The load mode of every policy, so that they compare at equal loading; `None` takes
    /// the workflow's for `smart` and `oracle` and leaves `static` and `ollama-default` on
    /// Ollama's default (mmap).
    pub load_mode: Option<LoadModeChoice>,
    /// The simulated machine.
    pub machine: SimConfig,
    /// Keep every policy's events in the report, for its timeline
    /// ([`crate::simulation_report_html`]).
    pub keep_events: bool,
    /// How fan-outs run their branches: as the planner decides, or forced one after the other
    /// or all at once.
    pub branches: agentrun_core::BranchMode,
    /// Several simulated hosts instead of `machine`: the workflow's models are placed on
    /// them and each plans its own residency. Empty: the one machine.
    pub hosts: Vec<crate::SimHost>,
}

/// One policy's figures, in simulated seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyFigures {
    /// Seconds turns waited for model loads.
    pub load_wait_s: f64,
    /// How the run's fan-outs ran: how many ran each way (`concurrent`, `grouped`,
    /// `serialized`, `sequential`, `all-at-once`).
    pub fan_outs: BTreeMap<String, usize>,
    /// Why fan-outs ran other than all at once, each reason once, in the order first given.
    pub serialized_because: Vec<String>,
    /// Seconds branches waited at their joins for the other branches, summed.
    pub join_wait_s: f64,
    /// Load wait beyond the lower bound on the same future (never negative: the bound is
    /// below every policy).
    pub excess_over_bound_s: f64,
    /// The part of that excess that foresight removes: the wait above the oracle's (this
    /// planner given the future), within `0..=excess_over_bound_s` (0 when the oracle was not
    /// simulated). For `smart` it is what not knowing the future costs; for the baselines it
    /// also holds what not planning costs.
    pub foresight_s: f64,
    /// The rest of the excess: the oracle's own excess over the bound, which knowing the
    /// future did not remove. It is the planner's error, up to the bound's own distance
    /// from the optimum (the bound is a relaxation, exact only on small instances).
    pub planner_error_s: f64,
    /// Load wait beyond the oracle's (this planner with foresight), unclamped: negative
    /// when the policy waited less than the oracle.
    pub excess_over_oracle_s: Option<f64>,
    /// Models loaded.
    pub loads: u32,
    /// Models unloaded (asked for, expired or evicted).
    pub unloads: u32,
    /// Of those, the unloads of an idle model whose keep_alive ran out (the server's own
    /// expiry, which no amount of memory prevents).
    pub expiries: u32,
    /// Gigabytes read from disk by cold loads (warm loads read the page cache).
    pub gb_read: f64,
    /// Simulated seconds from start to end.
    pub wall_s: f64,
    /// Turns taken.
    pub turns: u32,
    /// How the run ended.
    pub status: RunStatus,
    /// Each turn's load wait above the bound's share of that turn (negative where the
    /// policy waited less there than the bound charges to it).
    pub excess_per_turn_s: Vec<f64>,
}

/// The comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimulationReport {
    /// The workflow's name.
    pub workflow: String,
    /// The seed used.
    pub seed: u64,
    /// Turns in the drawn future.
    pub turns: usize,
    /// The load mode every policy used (`None`: each policy's own).
    pub load_mode: Option<LoadModeChoice>,
    /// The simulated hosts the workflow's models were placed on; empty for the one machine.
    pub hosts: Vec<String>,
    /// The lower bound on any policy's load wait on this future, seconds. The bound models
    /// one machine: with several hosts it is 0 (the trivial bound), since the one machine's
    /// figure does not bound what several hosts loading at once can reach.
    pub bound_s: f64,
    /// Whether the bound is the exact optimum (futures of at most 8 turns and 3 models).
    pub bound_exact: bool,
    /// Seconds the bound took to compute.
    pub bound_compute_s: f64,
    /// Figures per policy, in report order.
    pub policies: BTreeMap<Policy, PolicyFigures>,
    /// Each policy's events, when the options asked to keep them.
    #[serde(skip)]
    pub events: BTreeMap<Policy, Vec<Event>>,
}

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The virtual-time runtime could not start.
    #[error("cannot start the simulation runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The executor refused to start.
    #[error("the {policy} run could not start")]
    Run {
        /// The policy.
        policy: Policy,
        /// Why.
        source: agentrun_core::RunError,
    },
}

/// A turn of the drawn future.
#[derive(Debug, Clone, PartialEq)]
struct SyntheticTurn {
    agent: usize,
    /// Tokens to generate (model agents).
    tokens: u64,
    /// Time the turn takes besides generation (command and human agents).
    duration: Duration,
    /// The outgoing edge the turn takes, by its position in the file.
    edge: usize,
    passed: Option<bool>,
    choice: Option<String>,
}

/// Simulates the workflow under each policy.
pub fn simulate(
    workflow: &Workflow,
    options: &SimulationOptions,
) -> Result<SimulationReport, SimulateError> {
    let seed = options.seed.unwrap_or(workflow.simulation.seed);
    let script = draw_future(workflow, seed);
    let mut policies = BTreeMap::new();
    let mut events = BTreeMap::new();
    let mut observed = Observed::default();
    for &policy in &options.policies {
        let (figures, kept) = run_policy(workflow, options, policy, &script, &mut observed)?;
        policies.insert(policy, figures);
        if options.keep_events {
            events.insert(policy, kept);
        }
    }
    let clock = std::time::Instant::now();
    let bound = if options.hosts.is_empty() {
        lower_bound(&bound_instance(workflow, options, &script, &observed))
    } else {
        // The relaxation models one server's memory; several hosts load in parallel, each
        // with its own memory, so its figure would not bound them. Nothing waits less than 0.
        agentrun_memory::Bound {
            wait_s: 0.0,
            exact: false,
            per_turn_s: vec![0.0; script.len()],
            windows: Vec::new(),
        }
    };
    let bound_compute_s = clock.elapsed().as_secs_f64();
    let oracle = policies.get(&Policy::Oracle).map(|f| f.load_wait_s);
    for (policy, figures) in &mut policies {
        figures.excess_over_bound_s = figures.load_wait_s - bound.wait_s;
        figures.excess_over_oracle_s = oracle.map(|oracle| figures.load_wait_s - oracle);
        figures.foresight_s = oracle
            .map_or(0.0, |oracle| figures.load_wait_s - oracle)
            .clamp(0.0, figures.excess_over_bound_s.max(0.0));
        figures.planner_error_s = figures.excess_over_bound_s - figures.foresight_s;
        let waits = observed.waits.get(policy).cloned().unwrap_or_default();
        figures.excess_per_turn_s = bound
            .per_turn_s
            .iter()
            .enumerate()
            .map(|(turn, share)| waits.get(turn).copied().unwrap_or(0.0) - share)
            .collect();
    }
    Ok(SimulationReport {
        workflow: workflow.name.clone(),
        seed,
        turns: script.len(),
        load_mode: options.load_mode,
        hosts: options.hosts.iter().map(|host| host.name.clone()).collect(),
        bound_s: bound.wait_s,
        bound_exact: bound.exact,
        bound_compute_s,
        policies,
        events,
    })
}

/// What the replays measured that the bound needs: per turn the longest busy time and gap
/// after it, per model the smallest footprints, per policy each turn's wait.
#[derive(Debug, Default)]
struct Observed {
    busy_s: Vec<f64>,
    gap_s: Vec<f64>,
    /// `(predicted, resident)` bytes by model name.
    footprints: BTreeMap<String, (u64, u64)>,
    waits: BTreeMap<Policy, Vec<f64>>,
}

impl Observed {
    fn record_turns(&mut self, policy: Policy, transcript: &[agentrun_core::TranscriptEntry]) {
        let grow = |values: &mut Vec<f64>, len: usize| {
            if values.len() < len {
                values.resize(len, 0.0);
            }
        };
        grow(&mut self.busy_s, transcript.len());
        grow(&mut self.gap_s, transcript.len());
        for (index, entry) in transcript.iter().enumerate() {
            self.busy_s[index] = self.busy_s[index].max(entry.generation_s);
            if let Some(next) = transcript.get(index + 1) {
                let gap = next.started_s - entry.started_s - entry.load_wait_s - entry.generation_s;
                self.gap_s[index] = self.gap_s[index].max(gap);
            }
        }
        self.waits
            .insert(policy, transcript.iter().map(|e| e.load_wait_s).collect());
    }

    fn record_footprint(&mut self, model: &str, predicted: Option<u64>, resident: Option<u64>) {
        let entry = self
            .footprints
            .entry(model.to_owned())
            .or_insert((u64::MAX, u64::MAX));
        if let Some(bytes) = predicted {
            entry.0 = entry.0.min(bytes);
        }
        if let Some(bytes) = resident {
            entry.1 = entry.1.min(bytes);
        }
    }
}

/// The bound's view of the drawn future: the turns as the replays measured them, the
/// models' footprints as the simulator accounted them, load times from the machine's
/// physics in the fastest load mode the run allows.
fn bound_instance(
    workflow: &Workflow,
    options: &SimulationOptions,
    script: &[SyntheticTurn],
    observed: &Observed,
) -> BoundInstance {
    let machine = machine_for(workflow, &options.machine, true, script.len());
    let physics = &machine.load;
    let mut names: Vec<String> = Vec::new();
    let turns = script
        .iter()
        .enumerate()
        .map(|(index, turn)| {
            let model = workflow.agents[turn.agent].model().map(|model| {
                names
                    .iter()
                    .position(|known| known == model)
                    .unwrap_or_else(|| {
                        names.push(model.to_owned());
                        names.len() - 1
                    })
            });
            BoundTurn {
                model,
                busy_s: observed.busy_s.get(index).copied().unwrap_or(0.0),
                gap_s: observed.gap_s.get(index).copied().unwrap_or(0.0),
            }
        })
        .collect();
    let cache_room = machine.ram_bytes.saturating_sub(machine.os_reserve_bytes);
    // Cold loads in the faster mode, unless every policy was held to Ollama's default.
    let cold_bandwidth = if options.load_mode == Some(LoadModeChoice::Mmap) {
        physics.cold_mmap_bytes_per_second
    } else {
        physics
            .cold_mmap_bytes_per_second
            .max(physics.cold_no_mmap_bytes_per_second)
    };
    let models = names
        .iter()
        .map(|name| {
            let size = machine
                .models
                .iter()
                .find(|m| m.name == *name)
                .map_or(0, |m| m.size_bytes);
            let cold = physics.fixed_seconds + size as f64 / cold_bandwidth;
            // A file larger than RAM less the OS reserve never stays in the page cache.
            let warm = if size <= cache_room {
                physics.fixed_seconds + size as f64 / physics.warm_bytes_per_second
            } else {
                cold
            };
            // A model no replay loaded to the end counts at its file size.
            let (predicted, resident) = observed
                .footprints
                .get(name)
                .copied()
                .unwrap_or((u64::MAX, u64::MAX));
            let predicted = if predicted == u64::MAX {
                size
            } else {
                predicted
            };
            let resident = if resident == u64::MAX {
                predicted
            } else {
                resident
            };
            BoundModel {
                name: name.clone(),
                resident_bytes: resident,
                predicted_bytes: predicted,
                cold_load_s: cold,
                fastest_load_s: warm.min(cold),
                file_bytes: size,
            }
        })
        .collect();
    BoundInstance {
        models,
        capacity_bytes: machine.gpu_memory_bytes.min(cache_room),
        max_loaded_models: machine.max_loaded_models,
        ram_bytes: cache_room,
        turns,
    }
}

/// Walks the graph with seeded draws until `end` or the simulation's turn limit.
fn draw_future(workflow: &Workflow, seed: u64) -> Vec<SyntheticTurn> {
    let graph = agentrun_core::ConversationGraph::new(workflow);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut turns = Vec::new();
    let mut agent = graph.start();
    let limit = workflow.simulation.max_turns as usize;
    while turns.len() < limit {
        let Some(next) = draw_into(workflow, &graph, agent, &mut rng, &mut turns) else {
            break;
        };
        match next {
            agentrun_core::Node::Agent(index) => agent = index,
            agentrun_core::Node::End => break,
            // Each branch is drawn to its join in branch order; the replay hands each agent
            // its own turns, so the order the branches run in does not change them.
            agentrun_core::Node::FanOut(index) => {
                let fan_out = graph.fan_out(index);
                for &start in &fan_out.branches {
                    let mut at = start;
                    while turns.len() < limit && at != fan_out.join {
                        match draw_into(workflow, &graph, at, &mut rng, &mut turns) {
                            Some(agentrun_core::Node::Agent(next)) => at = next,
                            _ => break,
                        }
                    }
                }
                agent = fan_out.join;
            }
        }
    }
    turns
}

/// Draws one turn of `agent` onto `turns`; where it leads, or `None` when no edge held.
fn draw_into(
    workflow: &Workflow,
    graph: &agentrun_core::ConversationGraph,
    agent: usize,
    rng: &mut StdRng,
    turns: &mut Vec<SyntheticTurn>,
) -> Option<agentrun_core::Node> {
    let drawn = draw_turn(workflow, graph, agent, rng);
    let (edge, next) = drawn.taken?;
    turns.push(SyntheticTurn {
        agent,
        tokens: drawn.tokens,
        duration: drawn.duration,
        edge,
        passed: drawn.passed,
        choice: drawn.choice,
    });
    Some(next)
}

/// One turn of an agent, drawn from the workflow's `simulation` section.
#[derive(Debug, Clone)]
pub(crate) struct DrawnTurn {
    /// Tokens to generate (model agents).
    pub(crate) tokens: u64,
    /// Time the turn takes besides generation (command and human agents).
    pub(crate) duration: Duration,
    /// A router's choice.
    pub(crate) choice: Option<String>,
    /// A command's outcome.
    pub(crate) passed: Option<bool>,
    /// The outgoing edge taken (its position in the file) and where it leads; `None` when
    /// no condition held.
    pub(crate) taken: Option<(usize, agentrun_core::Node)>,
}

/// Draws one turn of `agent`: reply length, duration, router choice and command outcome,
/// then the edge, each text condition holding with the agent's match rate in file order.
pub(crate) fn draw_turn(
    workflow: &Workflow,
    graph: &agentrun_core::ConversationGraph,
    agent: usize,
    rng: &mut StdRng,
) -> DrawnTurn {
    let spec = &workflow.agents[agent];
    let behaviour = workflow.simulation.agents.get(&spec.name);
    let tokens = behaviour.map_or(0, |b| {
        draw_u64(rng, *b.reply_tokens.start(), *b.reply_tokens.end())
    });
    let duration = behaviour.map_or(Duration::ZERO, |b| {
        let (low, high) = (
            b.duration.start().as_millis() as u64,
            b.duration.end().as_millis() as u64,
        );
        Duration::from_millis(draw_u64(rng, low, high))
    });
    let choice = spec.is_router().then(|| {
        let weights: Vec<(String, f64)> = spec
            .choices()
            .iter()
            .map(|choice| {
                let weight = behaviour
                    .and_then(|b| b.choices.get(choice))
                    .copied()
                    .unwrap_or(1.0);
                (choice.clone(), weight)
            })
            .collect();
        draw_weighted(rng, &weights)
    });
    let passed = matches!(spec.kind, AgentKind::Command(_))
        .then(|| rng.random::<f64>() < behaviour.map_or(0.7, |b| b.pass_rate));
    let match_rate = behaviour.map_or(0.5, |b| b.match_rate);
    // Text conditions hold with the agent's match rate, each drawn in file order;
    // choices and outcomes were drawn above.
    let taken = graph
        .outgoing(agent)
        .find(|step| match step.condition {
            Condition::Contains(_) | Condition::Matches(_) => rng.random::<f64>() < match_rate,
            other => other.matches("", choice.as_deref(), passed),
        })
        .map(|step| (step.rank, step.to));
    DrawnTurn {
        tokens,
        duration,
        choice,
        passed,
        taken,
    }
}

fn draw_u64(rng: &mut StdRng, low: u64, high: u64) -> u64 {
    if high <= low {
        low
    } else {
        rng.random_range(low..=high)
    }
}

fn draw_weighted(rng: &mut StdRng, weights: &[(String, f64)]) -> String {
    let total: f64 = weights.iter().map(|(_, weight)| weight.max(0.0)).sum();
    let mut point = rng.random::<f64>() * total;
    for (choice, weight) in weights {
        point -= weight.max(0.0);
        if point < 0.0 {
            return choice.clone();
        }
    }
    weights
        .last()
        .map(|(choice, _)| choice.clone())
        .unwrap_or_default()
}

/// Replays the drawn future under one policy on a fresh simulator; its events too
/// when the options keep them.
fn run_policy(
    workflow: &Workflow,
    options: &SimulationOptions,
    policy: Policy,
    script: &[SyntheticTurn],
    observed: &mut Observed,
) -> Result<(PolicyFigures, Vec<Event>), SimulateError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()?;
    let machine = machine_for(workflow, &options.machine, true, script.len());
    // One simulator per host (or the one machine), each with its own clock-driven scheduler.
    let simulators: Vec<Simulator> = if options.hosts.is_empty() {
        vec![Simulator::new(machine.clone())]
    } else {
        options
            .hosts
            .iter()
            .map(|host| Simulator::new(machine_for(workflow, &host.machine, false, script.len())))
            .collect()
    };
    let replay: Arc<dyn Agent> = Arc::new(Replay::new(workflow, script));
    let mut executor = if options.hosts.is_empty() {
        Executor::new(
            workflow.clone(),
            Arc::new(SimBackend::new(simulators[0].clone())),
        )
    } else {
        let members = options
            .hosts
            .iter()
            .zip(&simulators)
            .map(|(host, simulator)| {
                let config = simulator.config();
                let spec = HostSpec {
                    name: host.name.clone(),
                    url: format!("simulated host {}", host.name),
                    budget_bytes: config.gpu_memory_bytes,
                    max_loaded_models: config.max_loaded_models,
                    labels: host.labels.clone(),
                    // The simulated machine's own load speeds: cold reads, as a placed
                    // model's first load is.
                    load_speed: Some(agentrun_memory::Bandwidth {
                        fixed_seconds: config.load.fixed_seconds,
                        mmap_bytes_per_second: config.load.cold_mmap_bytes_per_second,
                        no_mmap_bytes_per_second: config.load.cold_no_mmap_bytes_per_second,
                    }),
                    load_times: Vec::new(),
                };
                let backend: Arc<dyn ModelBackend> = Arc::new(SimBackend::new(simulator.clone()));
                (spec, backend)
            })
            .collect();
        Executor::new(
            workflow.clone(),
            Arc::new(SimBackend::new(simulators[0].clone())),
        )
        .with_fleet(Arc::new(Fleet::new(members)))
    };
    // Every run's events are read for its fan-outs; kept whole only when asked.
    let (sink, mut receiver) = EventSink::channel();
    executor = executor.with_events(sink);
    for agent in &workflow.agents {
        executor = executor.with_agent(&agent.name, replay.clone());
    }
    let mut run = RunOptions::new("simulated task");
    // The bound and the per-turn figures need every turn.
    run.keep_transcript = true;
    run.policy = Some(policy);
    run.max_turns = Some(script.len() as u32);
    run.unload_at_end = false;
    // Several hosts plan with their own budgets; the largest stands for the run's.
    run.gpu_budget = Some(
        simulators
            .iter()
            .map(|simulator| simulator.config().gpu_memory_bytes)
            .max()
            .unwrap_or(machine.gpu_memory_bytes),
    );
    // The planner knows the simulated machine as it would know a real one: its RAM and
    // reserve, and how fast a load reads a file still in the page cache. Several hosts have
    // one page cache each, which one machine's figure does not describe.
    run.host_memory = options
        .hosts
        .is_empty()
        .then(|| crate::sim_backend::host_memory_of(&machine));
    run.load_mode = options.load_mode;
    run.branches = options.branches;
    if policy == Policy::Oracle {
        run.future = Some(future_of(workflow, &machine, script));
    }
    let outcome = runtime
        .block_on(executor.run(run))
        .map_err(|source| SimulateError::Run { policy, source })?;
    let mut figures = PolicyFigures {
        load_wait_s: outcome.summary.load_wait_s,
        fan_outs: BTreeMap::new(),
        serialized_because: Vec::new(),
        join_wait_s: 0.0,
        excess_over_bound_s: 0.0,
        foresight_s: 0.0,
        planner_error_s: 0.0,
        excess_over_oracle_s: None,
        loads: 0,
        unloads: 0,
        expiries: 0,
        gb_read: 0.0,
        wall_s: outcome.summary.wall_s,
        turns: outcome.summary.turns,
        status: outcome.summary.status,
        excess_per_turn_s: Vec::new(),
    };
    observed.record_turns(policy, &outcome.transcript);
    for entry in simulators.iter().flat_map(Simulator::log) {
        match entry.event {
            SimEvent::LoadStarted {
                disk_bytes,
                ref model,
                bytes,
                ..
            } => {
                observed.record_footprint(model, Some(bytes), None);
                figures.loads += 1;
                // Only cold reads touch the disk; warm loads come from the page cache.
                figures.gb_read += disk_bytes as f64 / 1e9;
            }
            SimEvent::LoadFinished {
                ref model,
                measured_bytes,
                ..
            } => observed.record_footprint(model, None, Some(measured_bytes)),
            SimEvent::Unloaded { .. } => figures.unloads += 1,
            SimEvent::UnloadStarted {
                reason: UnloadReason::Expired,
                ..
            } => figures.expiries += 1,
            _ => {}
        }
    }
    let mut events = Vec::new();
    let mut arrived: Vec<f64> = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        match &event {
            Event::BranchesStarted {
                concurrency,
                reason,
                ..
            } => {
                *figures.fan_outs.entry(concurrency.clone()).or_default() += 1;
                if concurrency != "concurrent" && !figures.serialized_because.contains(reason) {
                    figures.serialized_because.push(reason.clone());
                }
            }
            Event::BranchArrived { at_s, .. } => arrived.push(*at_s),
            Event::JoinOpened { at_s, .. } => {
                figures.join_wait_s += arrived.drain(..).map(|since| at_s - since).sum::<f64>();
            }
            _ => {}
        }
        if options.keep_events {
            events.push(event);
        }
    }
    Ok((figures, events))
}

/// The simulated machine of a replay: `base` in virtual time, with the parallel slots and
/// model speeds the workflow describes, and (for the one machine, `own_budget`) its budget
/// and count cap; a host of a fleet keeps its own.
fn machine_for(workflow: &Workflow, base: &SimConfig, own_budget: bool, turns: usize) -> SimConfig {
    let mut machine = base.clone();
    machine.time_scale = 1.0;
    // The drawn future fixes each turn's length and sends it as num_predict: the reply
    // must run to it rather than stop at a length the simulator draws.
    machine.replies.exact_length = true;
    // The simulated machine has the GPU memory the workflow plans for.
    if own_budget {
        if let GpuBudget::Bytes(bytes) = workflow.memory.gpu_budget {
            machine.gpu_memory_bytes = bytes;
        }
        if let Some(max) = workflow.memory.max_loaded_models {
            machine.max_loaded_models = max as usize;
        }
    }
    // ... and the server settings and model speeds the workflow describes.
    if let Some(parallel) = workflow.memory.num_parallel {
        machine.num_parallel = (parallel as usize).max(1);
    }
    for agent in &workflow.agents {
        let speed = workflow
            .simulation
            .agents
            .get(&agent.name)
            .and_then(|behaviour| behaviour.tokens_per_second);
        if let (Some(speed), Some(model)) = (speed, agent.model()) {
            machine.set_decode_speed(model, speed);
        }
    }
    // Every event of the run is needed to count loads, so the log must not wrap.
    machine.log_capacity = machine.log_capacity.max(64 * (turns + 16) + 1024);
    machine
}

/// The oracle's knowledge: every turn's agent and how long it takes once its model is resident.
fn future_of(
    workflow: &Workflow,
    machine: &SimConfig,
    script: &[SyntheticTurn],
) -> Vec<FutureTurn> {
    script
        .iter()
        .map(|turn| {
            let spec = &workflow.agents[turn.agent];
            let speed = workflow
                .simulation
                .agents
                .get(&spec.name)
                .and_then(|b| b.tokens_per_second)
                .or_else(|| {
                    let model = spec.model()?;
                    let bytes = machine.models.iter().find(|m| m.name == model)?.size_bytes;
                    Some(
                        machine.decode.efficiency
                            * machine.decode.memory_bandwidth_bytes_per_second
                            / bytes as f64,
                    )
                });
            let generation = match speed {
                Some(speed) if speed > 0.0 => turn.tokens as f64 / speed,
                _ => 0.0,
            };
            FutureTurn {
                agent: spec.name.clone(),
                seconds: generation + turn.duration.as_secs_f64(),
            }
        })
        .collect()
}

/// Every agent of a simulated run: replays the drawn future, each agent its own turns in
/// order (parallel branches' turns interleave however their timing falls).
struct Replay {
    turns: Mutex<BTreeMap<String, std::collections::VecDeque<SyntheticTurn>>>,
}

impl Replay {
    fn new(workflow: &Workflow, script: &[SyntheticTurn]) -> Replay {
        let mut turns: BTreeMap<String, std::collections::VecDeque<SyntheticTurn>> =
            BTreeMap::new();
        for turn in script {
            turns
                .entry(workflow.agents[turn.agent].name.clone())
                .or_default()
                .push_back(turn.clone());
        }
        Replay {
            turns: Mutex::new(turns),
        }
    }
}

#[async_trait]
impl Agent for Replay {
    async fn respond(&self, context: TurnContext<'_>) -> Result<AgentReply, AgentError> {
        let turn = self
            .turns
            .lock()
            .expect("replay lock poisoned")
            .get_mut(&context.spec.name)
            .and_then(|queue| queue.pop_front());
        let Some(turn) = turn else {
            return Err(AgentError::custom("the simulated future has no more turns"));
        };
        let mut reply = AgentReply {
            forced_edge: Some(turn.edge),
            passed: turn.passed,
            choice: turn.choice.clone(),
            ..AgentReply::default()
        };
        if let Some(call) = context.call {
            let mut options = call.options.clone();
            options.insert("num_predict".into(), turn.tokens.max(1).into());
            let request = ChatRequest {
                model: call.model,
                messages: vec![agentrun_core::Message::user("simulated turn")],
                options,
                keep_alive: call.keep_alive,
                format: None,
                tools: Vec::new(),
                think: None,
            };
            let response = context.backend.chat(&request, &mut |_| {}).await?;
            reply.load_wait = response.metrics.load.unwrap_or_default();
            reply.generation = response.metrics.eval.unwrap_or_default()
                + response.metrics.prompt_eval.unwrap_or_default();
            reply.tokens = response.metrics.eval_count.unwrap_or_default();
            reply.text = response.message.content;
        }
        if !turn.duration.is_zero() {
            tokio::time::sleep(turn.duration).await;
            reply.generation += turn.duration;
        }
        Ok(reply)
    }
}
