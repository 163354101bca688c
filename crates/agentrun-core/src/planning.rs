//! Residency: the bridge between the executor and the memory planner.
//!
//! It turns the workflow and the server's model details into the planner's
//! [`Workload`], feeds it what the run measures, and turns each [`TurnPlan`]
//! into the requests the executor sends: the call's keep_alive and options,
//! refreshes, unloads and preloads.

use std::collections::BTreeMap;

use agentrun_memory::{
    self as memory, Budget, FootprintInputs, HostMemory, LoadModeChoice, LoadTimes, LoadedModel,
    LoadingPreload, PlanContext, Policy, PreloadVerdict, TurnPlan, Workload,
};
use agentrun_spec::{
    AgentSimulation, EdgeTarget, GpuBudget, LlmAgentSpec, ModelOptionsSpec, Workflow,
};

pub use agentrun_memory::FutureTurn;

mod hosts;
#[cfg(test)]
mod tests;

use crate::backend::{KeepAlive, ModelDetails, ModelOptions, RunningModel};
use crate::num_ctx::{DEFAULT_NUM_CTX, shared_num_ctx};
use crate::observations::Observations;
use crate::turn_prior::{ModelFacts, turn_prior};

/// Ollama's default `OLLAMA_MAX_LOADED_MODELS` on a machine with one GPU.
const DEFAULT_MAX_LOADED_MODELS: usize = 3;

/// Load-time estimates before anything is measured: the target Mac's figures
/// (fixed cost, mmap and no-mmap cold bandwidth in bytes per second).
const PRIOR_LOAD_FIXED_S: f64 = 2.0;
const PRIOR_MMAP_BANDWIDTH: f64 = 0.8e9;
const PRIOR_NO_MMAP_BANDWIDTH: f64 = 5.0e9;

/// The most turns that earlier runs' mean turn length counts for: enough that one odd turn
/// does not move it, few enough that a run whose agents changed pace adapts within it.
const MAX_REMEMBERED_TURNS: u64 = 8;

/// The budget passive policies plan with when none is known: they never consult it.
const UNKNOWN_BUDGET: u64 = u64::MAX / 2;

/// A load shorter than this (seconds) is the server's fast path for a resident model.
pub(crate) const RESIDENT_LOAD_S: f64 = 0.1;

/// A model to unload before the turn's call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnloadStep {
    pub(crate) model: String,
    pub(crate) reason: String,
}

/// A model to preload (or, when resident, to send a new keep_alive) with its options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoadStep {
    pub(crate) model: String,
    pub(crate) options: ModelOptions,
    pub(crate) keep_alive: Option<KeepAlive>,
    pub(crate) reason: String,
}

/// What to do around one turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TurnResidency {
    /// keep_alive values for resident models, sent first.
    pub(crate) refreshes: Vec<LoadStep>,
    pub(crate) unloads: Vec<UnloadStep>,
    /// The speaker's call: its keep_alive and options.
    pub(crate) keep_alive: Option<KeepAlive>,
    pub(crate) call_options: ModelOptions,
    /// Loads to run, one at a time, once the call's model is resident.
    pub(crate) preloads: Vec<LoadStep>,
}

/// Why residency could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ResidencyError {
    /// The workflow asks for `gpu_budget: auto` and nothing resolved it.
    #[error(
        "the GPU budget is `auto` but this machine's GPU memory could not be read; \
         set `memory.gpu_budget` in the workflow (for example `54GB`)"
    )]
    UnknownBudget,
    /// The planner refused the workflow.
    #[error("the memory planner cannot use this workflow: {0}")]
    Planner(#[from] memory::Error),
}

pub(crate) struct Residency {
    policy: Policy,
    workload: Workload,
    agent_names: Vec<String>,
    agent_models: Vec<Option<String>>,
    /// Each model's load-time options (without `use_mmap`, which follows the load mode).
    load_options: BTreeMap<String, ModelOptions>,
    /// Each agent's sampling options.
    sampling_options: Vec<ModelOptions>,
    /// The last keep_alive sent per model: Ollama keeps the last writer's value.
    sent_keep_alive: BTreeMap<String, KeepAlive>,
    /// The load mode each model was last planned with.
    load_modes: BTreeMap<String, memory::LoadMode>,
    future: Vec<FutureTurn>,
    turns_done: usize,
    /// What this run measured, for later runs.
    observations: Observations,
    /// With several hosts: each host's share, planned alone; `None` plans one server.
    hosts: Option<Vec<hosts::HostShare>>,
    /// With several hosts: the loads measured on each (earlier runs' and this run's, in
    /// `Observations::hosts`), so each host plans with its own load times.
    host_loads: Observations,
}

impl Residency {
    pub(crate) fn new(
        workflow: &Workflow,
        details: &BTreeMap<String, ModelDetails>,
        settings: ResidencySettings,
    ) -> Result<Residency, ResidencyError> {
        let policy = settings.policy;
        let passive = matches!(policy, Policy::Static | Policy::OllamaDefault);
        let gpu_budget = match (settings.gpu_budget, workflow.memory.gpu_budget) {
            // Passive policies never consult the budget.
            (None, GpuBudget::Auto) if passive => Some(UNKNOWN_BUDGET),
            (budget, _) => budget,
        };
        let host_loads_known = Observations {
            hosts: settings.experience.hosts.clone(),
            ..Observations::default()
        };
        let workload = build_workload(
            workflow,
            details,
            &WorkloadSettings {
                gpu_budget,
                load_mode: settings.load_mode,
                // A passive policy leaves Ollama's default loading unless the run names a
                // load mode (simulations compare every policy at the same one).
                fixed_mmap: passive && settings.load_mode.is_none(),
                measured_load_times: settings.measured_load_times,
                experience: settings.experience,
                host_memory: settings.host_memory,
            },
        )?;
        let load_options = model_load_time_options(workflow, details);
        Ok(Residency {
            policy,
            workload,
            agent_names: workflow.agents.iter().map(|a| a.name.clone()).collect(),
            agent_models: workflow
                .agents
                .iter()
                .map(|a| a.model().map(str::to_owned))
                .collect(),
            load_options,
            sampling_options: workflow
                .agents
                .iter()
                .map(|spec| {
                    spec.llm()
                        .map(|llm| sampling_options(&llm.options))
                        .unwrap_or_default()
                })
                .collect(),
            sent_keep_alive: BTreeMap::new(),
            load_modes: BTreeMap::new(),
            future: settings.future.unwrap_or_default(),
            turns_done: 0,
            observations: Observations::default(),
            hosts: None,
            host_loads: host_loads_known,
        })
    }

    /// Whether the preload `model`, loading for `loading_seconds`, should be aborted
    /// before the speaker's turn; `Some(reason)` if so.
    pub(crate) fn abort_preload(
        &self,
        speaker: usize,
        running: &[RunningModel],
        model: &str,
        loading_seconds: f64,
    ) -> Option<String> {
        let resident = self.resident_beside(model, self.loaded_models(running, Some(model)));
        let future = self.future_from(speaker);
        let context = PlanContext {
            speaker: &self.agent_names[speaker],
            resident: &resident,
            future: &future,
        };
        let preload = LoadingPreload {
            model,
            loading_seconds,
        };
        match memory::judge_preload(self.policy, &self.workload_of(model), &context, &preload) {
            Ok(PreloadVerdict::Keep) => None,
            Ok(PreloadVerdict::Abort { reason }) => Some(reason),
            Err(error) => {
                tracing::warn!(%error, "the memory planner could not judge a loading preload; it goes on");
                None
            }
        }
    }

    /// The known future from the speaker's turn on. Inside a parallel region turns start
    /// before the ones ahead of them in the future have finished: the speaker's own turn is
    /// brought to the front, the turns it passed keep their order behind it.
    fn future_from(&self, speaker: usize) -> std::borrow::Cow<'_, [FutureTurn]> {
        let future = self.future.get(self.turns_done..).unwrap_or(&[]);
        let name = &self.agent_names[speaker];
        match future.iter().position(|turn| &turn.agent == name) {
            None | Some(0) => std::borrow::Cow::Borrowed(future),
            Some(found) => {
                let mut reordered = Vec::with_capacity(future.len());
                reordered.push(future[found].clone());
                reordered.extend(future[..found].iter().cloned());
                reordered.extend(future[found + 1..].iter().cloned());
                std::borrow::Cow::Owned(reordered)
            }
        }
    }

    /// What the server holds, as the planner sees it: a model still loading is busy.
    fn loaded_models(&self, running: &[RunningModel], loading: Option<&str>) -> Vec<LoadedModel> {
        running
            .iter()
            .map(|model| LoadedModel {
                model: model.name.clone(),
                bytes: model.size_bytes,
                busy: loading == Some(model.name.as_str()),
                keep_alive: self.sent_keep_alive.get(&model.name).copied(),
            })
            .collect()
    }

    /// Plans the requests around the speaker's turn from what the server holds now.
    pub(crate) fn before_turn(
        &mut self,
        speaker: usize,
        running: &[RunningModel],
        loading: Option<&str>,
    ) -> TurnResidency {
        let mut resident = self.loaded_models(running, loading);
        for model in running {
            if self.workload.footprint_bytes(&model.name).is_ok() && model.size_bytes > 0 {
                let corrected = self
                    .workload
                    .correct_footprint(&model.name, model.size_bytes);
                not_learnt(corrected, "the measured size of a model");
            }
        }
        if let Some(loading) = loading
            && !resident.iter().any(|model| model.model == loading)
        {
            resident.push(LoadedModel {
                model: loading.to_owned(),
                bytes: self.workload.footprint_bytes(loading).unwrap_or(0),
                busy: true,
                keep_alive: self.sent_keep_alive.get(loading).copied(),
            });
        }
        self.workload.observe_residency(&resident);
        let future = self.future_from(speaker);
        let context = PlanContext {
            speaker: &self.agent_names[speaker],
            resident: &resident,
            future: &future,
        };
        let plan = match self.plan(&context) {
            Ok(plan) => plan,
            Err(error) => {
                tracing::warn!(%error, "the memory planner failed; this turn sends no residency requests");
                TurnPlan::default()
            }
        };
        self.turn_residency(speaker, plan)
    }

    fn turn_residency(&mut self, speaker: usize, plan: TurnPlan) -> TurnResidency {
        let mut turn = TurnResidency {
            call_options: self.sampling_options[speaker].clone(),
            ..TurnResidency::default()
        };
        if let Some(call) = plan.call {
            turn.call_options
                .extend(self.load_options_for(&call.model, call.load_mode));
            turn.keep_alive = call.keep_alive;
            self.remember(&call.model, call.keep_alive, call.load_mode);
        } else if let Some(model) = &self.agent_models[speaker] {
            let mode = self.load_mode_of(model);
            turn.call_options.extend(self.load_options_for(model, mode));
        }
        for refresh in plan.refreshes {
            let mode = self.load_mode_of(&refresh.model);
            turn.refreshes.push(LoadStep {
                options: self.load_options_for(&refresh.model, mode),
                model: refresh.model.clone(),
                keep_alive: Some(refresh.keep_alive),
                reason: refresh.reason,
            });
            self.sent_keep_alive
                .insert(refresh.model, refresh.keep_alive);
        }
        for unload in plan.unloads {
            self.sent_keep_alive.remove(&unload.model);
            turn.unloads.push(UnloadStep {
                model: unload.model,
                reason: unload.reason,
            });
        }
        for preload in plan.preloads {
            turn.preloads.push(LoadStep {
                options: self.load_options_for(&preload.model, preload.load_mode),
                model: preload.model.clone(),
                keep_alive: preload.keep_alive,
                reason: preload.reason,
            });
            self.remember(&preload.model, preload.keep_alive, preload.load_mode);
        }
        turn
    }

    fn remember(&mut self, model: &str, keep_alive: Option<KeepAlive>, mode: memory::LoadMode) {
        if let Some(keep_alive) = keep_alive {
            self.sent_keep_alive.insert(model.to_owned(), keep_alive);
        }
        self.load_modes.insert(model.to_owned(), mode);
    }

    fn load_mode_of(&self, model: &str) -> memory::LoadMode {
        self.load_modes
            .get(model)
            .copied()
            .or_else(|| self.workload.load_mode(model).ok())
            .unwrap_or(memory::LoadMode::Mmap)
    }

    /// A model's load-time options for a load mode: identical for every call in
    /// that mode, so Ollama never reloads a resident model because of them.
    fn load_options_for(&self, model: &str, mode: memory::LoadMode) -> ModelOptions {
        let mut options = self.load_options.get(model).cloned().unwrap_or_default();
        if mode == memory::LoadMode::NoMmap {
            options.insert("use_mmap".into(), false.into());
        }
        options
    }

    /// Learns from a finished turn: the edge taken and how long the turn took.
    /// A call of `agent`'s model outside its own turn (the summary it writes for another
    /// agent's context): the same load-time options as its turns, so the call never reloads
    /// the model, and the keep_alive last sent for it, so the call changes nothing the
    /// planner decided.
    pub(crate) fn side_call(
        &self,
        agent: usize,
    ) -> Option<(String, ModelOptions, Option<KeepAlive>)> {
        let model = self.agent_models.get(agent)?.clone()?;
        let mut options = self.sampling_options[agent].clone();
        options.extend(self.load_options_for(&model, self.load_mode_of(&model)));
        let keep_alive = self.sent_keep_alive.get(&model).copied();
        Some((model, options, keep_alive))
    }

    /// Learns from a finished turn: `next` is the agent the planner takes to speak next (a
    /// fan-out's first branch), `taken` the edge's target as the flow names it.
    pub(crate) fn after_turn(
        &mut self,
        speaker: usize,
        next: Option<usize>,
        taken: &EdgeTarget,
        turn_seconds: f64,
    ) {
        let from = &self.agent_names[speaker];
        let to = next.map(|index| self.agent_names[index].as_str());
        self.observations.edge(from, taken);
        self.observations.turn(from, turn_seconds);
        not_learnt(
            self.workload.record_transition(from, to),
            "the edge a turn took",
        );
        not_learnt(
            self.workload.record_turn_seconds(from, turn_seconds),
            "how long a turn took",
        );
        self.turns_done += 1;
    }

    /// Learns a model's measured load time.
    pub(crate) fn record_load(&mut self, model: &str, seconds: f64) {
        if seconds < RESIDENT_LOAD_S {
            return;
        }
        let mode = self.load_mode_of(model);
        self.observations.load(model, mode, seconds);
        if let Some(url) = self.loading_host(model) {
            self.host_loads.load_on(&url, model, mode, seconds);
            self.observations.load_on(&url, model, mode, seconds);
        }
        not_learnt(
            self.workload.record_load(model, mode, seconds),
            "a model's load time",
        );
    }

    /// Learns a model's generation speed from a turn: `tokens` in `seconds` (prompt included).
    pub(crate) fn record_generation(&mut self, model: &str, tokens: u64, seconds: f64) {
        if tokens > 0 && seconds > 0.0 {
            self.observations.decode(model, tokens, seconds);
        }
    }

    /// Hands over what the run has measured so far and starts afresh: a resumed run drops
    /// what replaying its saved turns taught, which the first start already reported.
    pub(crate) fn take_observations(&mut self) -> Observations {
        std::mem::take(&mut self.observations)
    }

    /// The expected load time of a model, for progress lines: on several hosts, that of
    /// the host it loads on.
    pub(crate) fn expected_load_s(&self, model: &str) -> Option<f64> {
        let times = self.workload_of(model).load_times(model).ok()?;
        Some(times.seconds(self.load_mode_of(model)))
    }

    /// The agent most likely to call `model` next after `speaker`'s turn: of the agents
    /// using it, the one the graph leads to most often from `speaker` (the first of
    /// equals). A preload runs as that agent's, so on several hosts it warms its copy.
    pub(crate) fn next_caller(&self, speaker: &str, model: &str) -> Option<String> {
        let mut best: Option<(&str, f64)> = None;
        for (name, uses) in self.agent_names.iter().zip(&self.agent_models) {
            if uses.as_deref() != Some(model) {
                continue;
            }
            let chance = self
                .workload
                .transition_probability(speaker, Some(name))
                .unwrap_or(0.0);
            if best.is_none_or(|(_, known)| chance > known) {
                best = Some((name, chance));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    /// The GPU budget, when the workflow or the caller gave one.
    pub(crate) fn gpu_budget_bytes(&self) -> Option<u64> {
        let bytes = self.workload.budget().gpu_bytes;
        (bytes != UNKNOWN_BUDGET).then_some(bytes)
    }

    /// The planner's workload, for classifying the run's waits.
    pub(crate) fn workload(&self) -> &Workload {
        &self.workload
    }
}

/// Logs what the planner refused to learn. Its inputs come from this run's own workflow and
/// server, so a refusal is a bug worth a warning, not a reason to stop the run: the plan
/// goes on with what it knew.
fn not_learnt(result: Result<(), memory::Error>, what: &str) {
    if let Err(error) = result {
        tracing::warn!(%error, "the planner did not learn {what}");
    }
}

/// What a run asks of residency, beyond the workflow.
#[derive(Debug, Clone)]
pub(crate) struct ResidencySettings {
    pub(crate) policy: Policy,
    pub(crate) gpu_budget: Option<u64>,
    pub(crate) load_mode: Option<LoadModeChoice>,
    pub(crate) future: Option<Vec<FutureTurn>>,
    pub(crate) measured_load_times: BTreeMap<String, LoadTimes>,
    pub(crate) experience: Observations,
    pub(crate) host_memory: Option<HostMemory>,
}

/// What a run knows beyond the workflow when it builds the planner's workload.
#[derive(Debug, Clone, Default)]
pub struct WorkloadSettings {
    /// Overrides the workflow's `memory.gpu_budget` (needed when it is `auto`).
    pub gpu_budget: Option<u64>,
    /// Overrides every agent's load mode.
    pub load_mode: Option<LoadModeChoice>,
    /// Pins every model to Ollama's default loading (the passive policies).
    pub fixed_mmap: bool,
    /// Measured load times by model (`agentrun calibrate`), used instead of estimates.
    pub measured_load_times: BTreeMap<String, LoadTimes>,
    /// What earlier runs of the workflow on this server measured: turn lengths, edges taken,
    /// load times and decode speeds replace the priors they cover.
    pub experience: Observations,
    /// The server machine's memory, for the planner's page-cache estimate; `None` plans
    /// every load with the load times alone.
    pub host_memory: Option<HostMemory>,
}

/// The planner's view of a workflow: models with predicted footprints and load
/// times, agents, edges and the budget.
pub fn build_workload(
    workflow: &Workflow,
    details: &BTreeMap<String, ModelDetails>,
    settings: &WorkloadSettings,
) -> Result<Workload, ResidencyError> {
    let WorkloadSettings {
        gpu_budget,
        load_mode,
        fixed_mmap,
        measured_load_times,
        experience,
        host_memory,
    } = settings;
    let (gpu_budget, load_mode, fixed_mmap) = (*gpu_budget, *load_mode, *fixed_mmap);
    let gpu_bytes = match (gpu_budget, workflow.memory.gpu_budget) {
        (Some(bytes), _) | (None, GpuBudget::Bytes(bytes)) => bytes,
        (None, GpuBudget::Auto) => return Err(ResidencyError::UnknownBudget),
    };
    let budget = Budget {
        gpu_bytes,
        max_loaded_models: workflow
            .memory
            .max_loaded_models
            .map_or(DEFAULT_MAX_LOADED_MODELS, |n| n as usize),
    };
    let num_parallel = u64::from(workflow.memory.num_parallel.unwrap_or(1));
    let num_ctx = shared_num_ctx(workflow, details);
    let mut models: Vec<memory::ModelSpec> = Vec::new();
    for spec in workflow.agents.iter().filter_map(|agent| agent.llm()) {
        let model = &spec.model;
        if models.iter().any(|known| &known.name == model) {
            continue;
        }
        let found = details.get(model);
        let trained = found
            .and_then(|d| d.context_length)
            .unwrap_or(DEFAULT_NUM_CTX);
        let file_bytes = found.map_or(0, |d| d.file_bytes);
        let footprint = memory::predict_footprint(&FootprintInputs {
            file_bytes,
            block_count: found.and_then(|d| d.block_count).unwrap_or(0),
            head_count: found.and_then(|d| d.head_count).unwrap_or(1),
            head_count_kv: found.and_then(|d| d.head_count_kv).unwrap_or(0),
            embedding_length: found.and_then(|d| d.embedding_length).unwrap_or(0),
            trained_context: trained,
            num_ctx: num_ctx[model],
            num_parallel,
            num_batch: spec.options.num_batch.unwrap_or(512),
        });
        let mode = load_mode
            .or(spec.residency.load_mode)
            .unwrap_or(workflow.memory.load_mode);
        models.push(memory::ModelSpec {
            name: model.clone(),
            runner_key: found
                .and_then(|d| d.digest.clone())
                .unwrap_or_else(|| model.clone()),
            footprint_bytes: footprint,
            load_times: learnt_load_times(
                model,
                measured_load_times.get(model).copied().unwrap_or_else(|| {
                    LoadTimes::from_bandwidth(
                        file_bytes,
                        PRIOR_LOAD_FIXED_S,
                        PRIOR_MMAP_BANDWIDTH,
                        PRIOR_NO_MMAP_BANDWIDTH,
                    )
                }),
                experience,
            ),
            load_mode: if fixed_mmap {
                LoadModeChoice::Mmap
            } else {
                mode
            },
        });
    }
    let agents = workflow
        .agents
        .iter()
        .map(|spec| {
            let llm = spec.llm();
            memory::PlannedAgent {
                name: spec.name.clone(),
                model: llm.map(|llm| llm.model.clone()),
                mean_turn_seconds: experience
                    .turns
                    .get(&spec.name)
                    .and_then(|samples| samples.mean())
                    .unwrap_or_else(|| expected_turn(workflow, spec, details, experience).seconds),
                static_keep_alive: llm.and_then(|llm| llm.residency.keep_alive),
                // Every agent of a model sends the shared value, so none reloads another's.
                num_ctx: llm.map(|llm| num_ctx[&llm.model]),
            }
        })
        .collect();
    let edges = workflow
        .flow
        .edges
        .iter()
        // The planner sees a fan-out as a hand-over to one of its branches.
        .flat_map(|edge| {
            planned_targets(&edge.to).map(|to| memory::PlannedEdge {
                from: edge.from.clone(),
                to,
                prior_weight: None,
                count: 0,
            })
        })
        .chain(
            experience
                .edges
                .iter()
                // Counts for an edge the workflow no longer has would invent one.
                .filter(|(from, to, _)| {
                    workflow
                        .flow
                        .edges
                        .iter()
                        .any(|edge| &edge.from == from && &edge.to == to)
                })
                .flat_map(|(from, to, count)| {
                    planned_targets(to).map(|to| memory::PlannedEdge {
                        from: from.clone(),
                        to,
                        prior_weight: None,
                        count: *count,
                    })
                }),
        )
        .collect();
    let mut workload = Workload::new(models, agents, edges, budget)?;
    if let Some(host) = host_memory {
        workload.set_host(*host)?;
        for (model, found) in details {
            if workload.footprint_bytes(model).is_ok() {
                workload.set_file_bytes(model, found.file_bytes)?;
            }
        }
    }
    for (agent, samples) in &experience.turns {
        if samples.count > 1 && workload.mean_turn_seconds(agent).is_ok() {
            let turns = samples.count.min(MAX_REMEMBERED_TURNS);
            not_learnt(
                workload.weigh_turn_prior(agent, turns as f64),
                "how long earlier runs' turns took",
            );
        }
    }
    Ok(workload)
}

/// An agent's expected turn length before anything is measured ([`turn_prior`]), with the
/// decode speed earlier runs measured for its model when there is one.
pub fn expected_turn(
    workflow: &Workflow,
    agent: &agentrun_spec::AgentSpec,
    details: &BTreeMap<String, ModelDetails>,
    experience: &Observations,
) -> crate::turn_prior::TurnPrior {
    let default;
    let behaviour = match workflow.simulation.agents.get(&agent.name) {
        Some(behaviour) => behaviour,
        None => {
            default = AgentSimulation::default_for(agent);
            &default
        }
    };
    let facts = agent
        .model()
        .map_or_else(ModelFacts::default, |model| ModelFacts {
            file_bytes: details.get(model).map_or(0, |d| d.file_bytes),
            measured_tokens_per_second: experience
                .decode
                .get(model)
                .and_then(|decode| decode.tokens_per_second()),
        });
    turn_prior(agent, behaviour, facts)
}

/// A model's load times with the modes earlier runs measured replaced by their mean.
fn learnt_load_times(model: &str, mut times: LoadTimes, experience: &Observations) -> LoadTimes {
    if let Some(seconds) = experience.load_seconds(model, memory::LoadMode::Mmap) {
        times.mmap_seconds = seconds;
    }
    if let Some(seconds) = experience.load_seconds(model, memory::LoadMode::NoMmap) {
        times.no_mmap_seconds = seconds;
    }
    times
}

/// A model's load-time options as its first agent sets them (without `use_mmap`,
/// which follows the load mode), with the model's shared `num_ctx`.
fn model_load_options(spec: &LlmAgentSpec, num_ctx: u64) -> ModelOptions {
    let mut options = spec.options.load_time_options();
    options.remove("use_mmap");
    options.insert("num_ctx".into(), num_ctx.into());
    options
}

fn sampling_options(options: &ModelOptionsSpec) -> ModelOptions {
    let mut options = options.to_json_map();
    options.retain(|key, _| !ModelOptionsSpec::LOAD_TIME_OPTIONS.contains(&key.as_str()));
    options
}

/// Splits each model's load wait into avoidable and unavoidable seconds.
pub(crate) fn classify_waits(
    mut trace: Vec<memory::TraceTurn>,
    workload: &Workload,
) -> BTreeMap<String, (f64, f64)> {
    for turn in &mut trace {
        // A fallback model the workflow does not plan for has no place in the
        // classification (it was loaded only because the planned one did not fit).
        if turn
            .model
            .as_ref()
            .is_some_and(|model| workload.footprint_bytes(model).is_err())
        {
            turn.model = None;
        }
    }
    match memory::classify_waits(&trace, workload) {
        Ok(report) => report
            .models
            .into_iter()
            .map(|(model, waits)| (model, (waits.avoidable_seconds, waits.unavoidable_seconds)))
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "could not classify load waits");
            BTreeMap::new()
        }
    }
}

/// Each model's load-time options as the run sends them (the first agent naming
/// a model sets them; `num_ctx` always explicit, the largest its agents ask for, see
/// [`crate::shared_num_ctx`]), without `use_mmap`.
pub fn model_load_time_options(
    workflow: &Workflow,
    details: &BTreeMap<String, ModelDetails>,
) -> BTreeMap<String, ModelOptions> {
    let num_ctx = shared_num_ctx(workflow, details);
    let mut options = BTreeMap::new();
    for spec in workflow.agents.iter().filter_map(|agent| agent.llm()) {
        if !options.contains_key(&spec.model) {
            let model_options = model_load_options(spec, num_ctx[&spec.model]);
            options.insert(spec.model.clone(), model_options);
        }
    }
    options
}

/// The planner's targets of an edge: `end`, an agent, or each branch of a fan-out.
fn planned_targets(target: &EdgeTarget) -> impl Iterator<Item = memory::PlannedTarget> + '_ {
    let end = matches!(target, EdgeTarget::End).then_some(memory::PlannedTarget::End);
    end.into_iter().chain(
        target
            .agents()
            .iter()
            .map(|name| memory::PlannedTarget::Agent(name.clone())),
    )
}
