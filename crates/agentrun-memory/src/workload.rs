//! The workload: models, agents, the conversation graph and the budget, plus what the run has
//! learnt about them (edge frequencies, turn lengths, load times, measured footprints).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::error::{Error, check_number};
use crate::keep_alive::KeepAlive;
use crate::load_mode::{LoadMode, LoadModeChoice};
use crate::page_cache::{CachedFiles, HostMemory};
use crate::plan::LoadedModel;

mod restrict;
#[cfg(test)]
mod tests;

/// How many observed turns the prior over a node's outgoing edges is worth: learnt counts
/// outweigh it after a few turns, yet one odd turn does not flip a forecast.
const PRIOR_STRENGTH: f64 = 4.0;

/// Estimated seconds to load a model, per load mode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadTimes {
    /// Seconds with memory-mapped weights.
    pub mmap_seconds: f64,
    /// Seconds with `use_mmap: false`.
    pub no_mmap_seconds: f64,
}

impl LoadTimes {
    /// The estimate for one mode.
    pub fn seconds(&self, mode: LoadMode) -> f64 {
        match mode {
            LoadMode::Mmap => self.mmap_seconds,
            LoadMode::NoMmap => self.no_mmap_seconds,
        }
    }

    /// `fixed_seconds + file_bytes / bandwidth` per mode: a starting estimate before any load
    /// has been measured. The figures are the caller's (calibration or the simulated machine).
    pub fn from_bandwidth(
        file_bytes: u64,
        fixed_seconds: f64,
        mmap_bytes_per_second: f64,
        no_mmap_bytes_per_second: f64,
    ) -> LoadTimes {
        let at = |rate: f64| {
            if rate > 0.0 {
                fixed_seconds + file_bytes as f64 / rate
            } else {
                f64::INFINITY
            }
        };
        LoadTimes {
            mmap_seconds: at(mmap_bytes_per_second),
            no_mmap_seconds: at(no_mmap_bytes_per_second),
        }
    }
}

/// A model as agents call it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The name requests use, e.g. `qwen3-coder:32b`.
    pub name: String,
    /// The weights' identity (e.g. the digest of the GGUF blob). Names with the same key share
    /// one runner and one footprint in Ollama, so the planner treats them as one model.
    pub runner_key: String,
    /// Predicted bytes ([`crate::predict_footprint`]) with the `num_batch` the calls send,
    /// or 512 when they send none (Ollama's automatic batch steps down to 512 when memory
    /// is tight, dropping its surcharge). The planner keeps this prediction for Ollama's fit
    /// test, and learns the size the model occupies once loaded from `/api/ps`
    /// ([`Workload::correct_footprint`]).
    pub footprint_bytes: u64,
    /// Estimated load time per mode.
    pub load_times: LoadTimes,
    /// The load mode for this run.
    pub load_mode: LoadModeChoice,
}

/// An agent of the workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAgent {
    /// Its unique name.
    pub name: String,
    /// The model it calls; `None` for command and human agents, which take time but no memory.
    pub model: Option<String>,
    /// Expected seconds a turn takes once the model is resident (generation or command time).
    pub mean_turn_seconds: f64,
    /// The `keep_alive` the workflow gives it, sent by the `static` policy.
    pub static_keep_alive: Option<KeepAlive>,
    /// The `num_ctx` its calls send, if known (only for [`crate::analyze`]'s warnings).
    pub num_ctx: Option<u64>,
}

/// Where an edge of the conversation graph leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlannedTarget {
    /// Another agent speaks next.
    Agent(String),
    /// The conversation ends.
    End,
}

/// A possible hand-over from one agent to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedEdge {
    /// The agent that has just spoken.
    pub from: String,
    /// Who speaks next, or the end.
    pub to: PlannedTarget,
    /// A prior weight from the workflow; when no edge of `from` has one, the prior is uniform
    /// over its edges, and an edge without one next to weighted edges weighs 1.
    pub prior_weight: Option<f64>,
    /// How often the edge has been taken already (e.g. restored from an earlier run).
    pub count: u64,
}

/// A validated, indexed workload, and what the run has learnt about it.
///
/// Build it once per run with [`Workload::new`]; feed it observations as the run goes
/// ([`Workload::record_transition`], [`Workload::record_turn_seconds`],
/// [`Workload::record_load`], [`Workload::correct_footprint`]); hand it to
/// [`crate::plan_turn`] before every turn.
#[derive(Debug, Clone)]
pub struct Workload {
    budget: Budget,
    models: Vec<ModelSpec>,
    agents: Vec<PlannedAgent>,
    model_index: HashMap<String, usize>,
    agent_index: HashMap<String, usize>,
    pub(crate) runners: Vec<Runner>,
    pub(crate) model_runner: Vec<usize>,
    pub(crate) agent_runner: Vec<Option<usize>>,
    pub(crate) turn_seconds: Vec<f64>,
    turn_samples: Vec<f64>,
    pub(crate) out: Vec<Vec<Edge>>,
    /// The machine's memory, when known: without it the planner takes every load as the
    /// load times say and ignores the page cache.
    pub(crate) host: Option<HostMemory>,
    /// The weights files the page cache likely holds ([`Workload::observe_residency`]).
    pub(crate) cache: CachedFiles,
    /// The runners resident at the last observation, with the bytes each held.
    observed: Vec<Option<u64>>,
}

/// One set of weights in Ollama: what is loaded, evicted and accounted.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    /// The first model name on these weights: the name preloads use.
    pub(crate) name: String,
    /// The bytes the runner occupies once loaded: the prediction, then what `/api/ps`
    /// measured.
    pub(crate) footprint_bytes: u64,
    /// The bytes Ollama's fit test compares when the runner loads beside others: the
    /// prediction, never a measurement. A measured size can hold the automatic batch's
    /// surcharge (up to 2 GiB with room to spare), which Ollama drops when memory is tight;
    /// testing with it would refuse a model that Ollama loads. 0 when the prediction is
    /// unknown: then the measured size stands in.
    fit_bytes: u64,
    pub(crate) load_times: LoadTimes,
    pub(crate) load_mode: LoadModeChoice,
    load_samples: [f64; 2],
    /// The weights file's size, bytes; 0 when unknown (then its file is never taken as
    /// cached).
    pub(crate) file_bytes: u64,
}

impl Runner {
    pub(crate) fn mode(&self) -> LoadMode {
        match self.load_mode.fixed() {
            Some(mode) => mode,
            None if self.load_times.no_mmap_seconds < self.load_times.mmap_seconds => {
                LoadMode::NoMmap
            }
            None => LoadMode::Mmap,
        }
    }

    /// The bytes Ollama's fit test compares when this runner loads beside other models
    /// ([`Runner::fit_bytes`]); the measured size when no prediction is known.
    pub(crate) fn admission_bytes(&self) -> u64 {
        if self.fit_bytes > 0 {
            self.fit_bytes
        } else {
            self.footprint_bytes
        }
    }

    pub(crate) fn load_seconds(&self) -> f64 {
        self.load_times.seconds(self.mode())
    }

    /// Seconds to load from the page cache; the cold figure when the host is unknown or a
    /// warm read would not be faster.
    pub(crate) fn warm_load_seconds(&self, host: Option<&HostMemory>) -> f64 {
        let cold = self.load_seconds();
        match host {
            Some(host) if self.file_bytes > 0 => host.warm_load_seconds(self.file_bytes).min(cold),
            _ => cold,
        }
    }

    /// Seconds a load from the page cache saves over one from disk (never negative).
    pub(crate) fn warm_saving(&self, host: Option<&HostMemory>) -> f64 {
        self.load_seconds() - self.warm_load_seconds(host)
    }
}

/// An outgoing edge with its current probability.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub(crate) to: Option<usize>,
    prior_share: f64,
    count: f64,
    pub(crate) probability: f64,
}

impl Workload {
    /// Validates and indexes a workload.
    ///
    /// Errors on duplicate names, agents or edges naming unknown agents or models, negative or
    /// non-finite numbers, and a budget without model slots.
    pub fn new(
        models: Vec<ModelSpec>,
        agents: Vec<PlannedAgent>,
        edges: Vec<PlannedEdge>,
        budget: Budget,
    ) -> Result<Workload, Error> {
        if budget.max_loaded_models == 0 {
            return Err(Error::NoModelSlots);
        }
        let mut model_index = HashMap::new();
        let mut runner_index: HashMap<&str, usize> = HashMap::new();
        let mut runners: Vec<Runner> = Vec::new();
        let mut model_runner = Vec::with_capacity(models.len());
        for (index, model) in models.iter().enumerate() {
            if model_index.insert(model.name.clone(), index).is_some() {
                return Err(Error::DuplicateModel(model.name.clone()));
            }
            check_number(
                || format!("mmap_seconds of model '{}'", model.name),
                model.load_times.mmap_seconds,
            )?;
            check_number(
                || format!("no_mmap_seconds of model '{}'", model.name),
                model.load_times.no_mmap_seconds,
            )?;
            let runner = *runner_index.entry(&model.runner_key).or_insert_with(|| {
                runners.push(Runner {
                    name: model.name.clone(),
                    footprint_bytes: 0,
                    fit_bytes: 0,
                    load_times: model.load_times,
                    load_mode: model.load_mode,
                    load_samples: [1.0, 1.0],
                    file_bytes: 0,
                });
                runners.len() - 1
            });
            // Names on one runner with different figures (a different num_ctx, say) would
            // reload each other; planning with the largest keeps every plan feasible.
            let shared = &mut runners[runner];
            shared.footprint_bytes = shared.footprint_bytes.max(model.footprint_bytes);
            shared.fit_bytes = shared.fit_bytes.max(model.footprint_bytes);
            model_runner.push(runner);
        }
        let mut agent_index = HashMap::new();
        let mut agent_runner = Vec::with_capacity(agents.len());
        for (index, agent) in agents.iter().enumerate() {
            if agent_index.insert(agent.name.clone(), index).is_some() {
                return Err(Error::DuplicateAgent(agent.name.clone()));
            }
            check_number(
                || format!("mean_turn_seconds of agent '{}'", agent.name),
                agent.mean_turn_seconds,
            )?;
            let runner = match &agent.model {
                None => None,
                Some(model) => match model_index.get(model) {
                    Some(&index) => Some(model_runner[index]),
                    None => {
                        return Err(Error::AgentModelUnknown {
                            agent: agent.name.clone(),
                            model: model.clone(),
                        });
                    }
                },
            };
            agent_runner.push(runner);
        }
        let out = build_edges(&agents, &agent_index, &edges)?;
        let turn_seconds = agents.iter().map(|agent| agent.mean_turn_seconds).collect();
        Ok(Workload {
            observed: vec![None; runners.len()],
            budget,
            turn_samples: vec![1.0; agents.len()],
            models,
            agents,
            model_index,
            agent_index,
            runners,
            model_runner,
            agent_runner,
            turn_seconds,
            out,
            host: None,
            cache: CachedFiles::default(),
        })
    }

    /// Gives the planner the machine's memory, so that it estimates the page cache: which
    /// reloads are warm, and what keeping an idle model resident takes from the cache.
    pub fn set_host(&mut self, host: HostMemory) -> Result<(), Error> {
        check_number(
            || "the host's warm_bytes_per_second".to_owned(),
            host.warm_bytes_per_second,
        )?;
        check_number(
            || "the host's load_fixed_seconds".to_owned(),
            host.load_fixed_seconds,
        )?;
        self.host = Some(host);
        Ok(())
    }

    /// Replaces a model's load times (and those of every model on its weights): one host
    /// of several plans with the load times measured there, not another host's.
    ///
    /// Errors on an unknown model or a time that is not a finite, non-negative number.
    pub fn set_load_times(&mut self, model: &str, times: LoadTimes) -> Result<(), Error> {
        let runner = self.runner_of_model(model)?;
        let mmap = check_number(
            || format!("mmap load seconds of model '{model}'"),
            times.mmap_seconds,
        )?;
        let no_mmap = check_number(
            || format!("no-mmap load seconds of model '{model}'"),
            times.no_mmap_seconds,
        )?;
        self.runners[runner].load_times = LoadTimes {
            mmap_seconds: mmap,
            no_mmap_seconds: no_mmap,
        };
        Ok(())
    }

    /// The size of a model's weights file (`/api/show`), which a warm load reads from the
    /// page cache and an unload leaves there.
    pub fn set_file_bytes(&mut self, model: &str, bytes: u64) -> Result<(), Error> {
        let runner = self.runner_of_model(model)?;
        self.runners[runner].file_bytes = bytes;
        Ok(())
    }

    /// Updates the page-cache estimate from what the server holds now (`/api/ps`): a model
    /// gone since the last observation left its file in the cache, as the most recently
    /// used one; a model that appeared took its file out; then the cache keeps what RAM
    /// leaves beside the wired models, dropping the least recently used files.
    pub fn observe_residency(&mut self, resident: &[LoadedModel]) {
        let mut now: Vec<Option<u64>> = vec![None; self.runners.len()];
        let mut wired: u64 = 0;
        for model in resident {
            wired = wired.saturating_add(model.bytes);
            if let Some(runner) = self.runner_named(&model.model) {
                let held = now[runner].get_or_insert(0);
                *held = (*held).max(model.bytes);
            }
        }
        let mut gone = Vec::new();
        for (runner, (before, now)) in self.observed.iter().zip(&now).enumerate() {
            match (before, now) {
                (Some(_), None) => gone.push(runner),
                (None, Some(_)) => self.cache.take(runner),
                _ => {}
            }
        }
        // The order of several unloads since the last look is unknown: the smaller files
        // are taken as the older ones, as the page-cache rule unloads small idle models
        // before the larger ones it keeps cached.
        gone.sort_by_key(|&runner| self.runners[runner].file_bytes);
        for runner in gone {
            self.cache.insert(runner, self.runners[runner].file_bytes);
        }
        self.observed = now;
        if let Some(host) = &self.host {
            self.cache.trim(host.cache_capacity(wired));
        }
    }

    /// Whether the page-cache estimate holds the model's weights file.
    pub fn file_cached(&self, model: &str) -> Result<bool, Error> {
        let runner = self.runner_of_model(model)?;
        Ok(self.host.is_some() && self.cache.contains(runner))
    }

    /// Seconds a load of the runner is expected to take now: warm when the page-cache
    /// estimate holds its file, cold otherwise.
    pub(crate) fn expected_load_seconds(&self, runner: usize) -> f64 {
        let spec = &self.runners[runner];
        if self.host.is_some() && self.cache.contains(runner) {
            spec.warm_load_seconds(self.host.as_ref())
        } else {
            spec.load_seconds()
        }
    }

    /// The expected length of the turn before a call to `runner` by an agent on another
    /// model: the time a preload of it has to hide its load, weighted by the edges into its
    /// agents. A turn counts only when the runner can be resident beside the model that turn
    /// holds: the agent's own, or for an agent without one (a command) every model of the
    /// agents leading to it. 0 when no other agent leads to it.
    pub(crate) fn lead_seconds(&self, runner: usize) -> f64 {
        let beside = |from: usize| match self.agent_runner[from] {
            Some(held) => self.coexist(runner, held),
            None => self.out.iter().enumerate().all(|(before, edges)| {
                !edges
                    .iter()
                    .any(|edge| edge.to == Some(from) && edge.probability > 0.0)
                    || self.agent_runner[before].is_none_or(|held| self.coexist(runner, held))
            }),
        };
        let (mut seconds, mut weight) = (0.0, 0.0);
        for (from, edges) in self.out.iter().enumerate() {
            if self.agent_runner[from] == Some(runner) {
                continue;
            }
            for edge in edges {
                if edge
                    .to
                    .is_some_and(|to| self.agent_runner[to] == Some(runner))
                {
                    weight += edge.probability;
                    if beside(from) {
                        seconds += edge.probability * self.turn_seconds[from];
                    }
                }
            }
        }
        if weight > 0.0 { seconds / weight } else { 0.0 }
    }

    /// The budget plans must respect.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The workload one host plans with when several hosts serve the workflow: the same
    /// graph, probabilities and learnt figures, the host's `budget`, only the models of
    /// `calls` (agent name, model it calls there: its own, or a fallback), and only the
    /// agents of `calls` keeping a model: every other agent takes time but no memory here, as
    /// a command does.
    ///
    /// Errors on an unknown agent or model, or a budget without model slots.
    pub fn for_host(&self, calls: &[(&str, &str)], budget: Budget) -> Result<Workload, Error> {
        let mut called = vec![None; self.agents.len()];
        let mut kept = vec![false; self.runners.len()];
        for &(agent, model) in calls {
            let runner = self.runner_of_model(model)?;
            called[self.agent_id(agent)?] = Some(model.to_owned());
            kept[runner] = true;
        }
        let models = self
            .models
            .iter()
            .zip(&self.model_runner)
            .filter(|(_, runner)| kept[**runner])
            .map(|(model, _)| model.clone())
            .collect();
        let agents = self
            .agents
            .iter()
            .zip(called)
            .map(|(agent, model)| PlannedAgent {
                model,
                ..agent.clone()
            })
            .collect();
        let mut host = Workload::new(models, agents, Vec::new(), budget)?;
        // What the run has learnt carries over: the graph with its counts, turn lengths, and
        // per model its load times, samples, pinned mode and corrected footprint.
        host.out = self.out.clone();
        host.turn_seconds = self.turn_seconds.clone();
        host.turn_samples = self.turn_samples.clone();
        for runner in &mut host.runners {
            let learnt = &self.runners[self.runner_of_model(&runner.name)?];
            *runner = learnt.clone();
        }
        Ok(host)
    }

    /// The models as given to [`Workload::new`] (learnt figures are read with the getters).
    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    /// The agents as given to [`Workload::new`].
    pub fn agents(&self) -> &[PlannedAgent] {
        &self.agents
    }

    /// The footprint the planner uses for a model: the largest of the names on its weights,
    /// or the last measured one.
    pub fn footprint_bytes(&self, model: &str) -> Result<u64, Error> {
        Ok(self.runners[self.runner_of_model(model)?].footprint_bytes)
    }

    /// The bytes Ollama's fit test compares when the model loads beside others: its
    /// prediction (with the automatic batch stepped down, as Ollama does when memory is
    /// tight), not the size measured after an earlier load; the measured size when no
    /// prediction is known.
    pub fn admission_bytes(&self, model: &str) -> Result<u64, Error> {
        Ok(self.runners[self.runner_of_model(model)?].admission_bytes())
    }

    /// Whether two runners can be resident together: the count cap allows two, and one of
    /// them loads beside the other (the fit test compares the newcomer's prediction with
    /// what the resident one occupies).
    pub(crate) fn coexist(&self, a: usize, b: usize) -> bool {
        if a == b {
            return true;
        }
        let (a, b) = (&self.runners[a], &self.runners[b]);
        self.budget.max_loaded_models >= 2
            && (self
                .budget
                .admits(a.admission_bytes(), 1, b.footprint_bytes)
                || self
                    .budget
                    .admits(b.admission_bytes(), 1, a.footprint_bytes))
    }

    /// The load mode every call of the model must use.
    pub fn load_mode(&self, model: &str) -> Result<LoadMode, Error> {
        Ok(self.runners[self.runner_of_model(model)?].mode())
    }

    /// The current load-time estimates of a model.
    pub fn load_times(&self, model: &str) -> Result<LoadTimes, Error> {
        Ok(self.runners[self.runner_of_model(model)?].load_times)
    }

    /// The learnt mean length of an agent's turns.
    pub fn mean_turn_seconds(&self, agent: &str) -> Result<f64, Error> {
        Ok(self.turn_seconds[self.agent_id(agent)?])
    }

    /// The current probability that `to` (an agent, or `None` for the end) follows `from`.
    pub fn transition_probability(&self, from: &str, to: Option<&str>) -> Result<f64, Error> {
        let from = self.agent_id(from)?;
        let to = to.map(|name| self.agent_id(name)).transpose()?;
        Ok(self.out[from]
            .iter()
            .filter(|edge| edge.to == to)
            .map(|edge| edge.probability)
            .sum())
    }

    /// Records that `to` (an agent, or `None` for the end) spoke after `from`.
    ///
    /// A hand-over the graph did not declare becomes a new edge with no prior weight.
    pub fn record_transition(&mut self, from: &str, to: Option<&str>) -> Result<(), Error> {
        let from = self.agent_id(from)?;
        let to = to.map(|name| self.agent_id(name)).transpose()?;
        let row = &mut self.out[from];
        match row.iter_mut().find(|edge| edge.to == to) {
            Some(edge) => edge.count += 1.0,
            None => row.push(Edge {
                to,
                prior_share: 0.0,
                count: 1.0,
                probability: 0.0,
            }),
        }
        normalise(row);
        Ok(())
    }

    /// Records a measured turn length; the mean counts the workflow's estimate as one turn.
    pub fn record_turn_seconds(&mut self, agent: &str, seconds: f64) -> Result<(), Error> {
        let agent = self.agent_id(agent)?;
        let seconds = check_number(
            || format!("turn seconds of agent '{}'", self.agents[agent].name),
            seconds,
        )?;
        let samples = &mut self.turn_samples[agent];
        *samples += 1.0;
        let mean = &mut self.turn_seconds[agent];
        *mean += (seconds - *mean) / *samples;
        Ok(())
    }

    /// Counts an agent's starting mean turn length as `turns` measured turns rather than one:
    /// for a mean that earlier runs measured, so a single turn of this run does not undo it.
    pub fn weigh_turn_prior(&mut self, agent: &str, turns: f64) -> Result<(), Error> {
        let agent = self.agent_id(agent)?;
        let turns = check_number(
            || format!("prior turns of agent '{}'", self.agents[agent].name),
            turns,
        )?;
        self.turn_samples[agent] = turns.max(1.0);
        Ok(())
    }

    /// Records a measured load (from `load_duration`) and pins the model's load mode to the
    /// one used, so later calls keep it.
    pub fn record_load(&mut self, model: &str, mode: LoadMode, seconds: f64) -> Result<(), Error> {
        let runner = self.runner_of_model(model)?;
        let seconds = check_number(|| format!("load seconds of model '{model}'"), seconds)?;
        let runner = &mut self.runners[runner];
        let slot = match mode {
            LoadMode::Mmap => 0,
            LoadMode::NoMmap => 1,
        };
        // A warm load (its file was in the page cache) says nothing about a cold one; the
        // warm figure comes from the host's read speed.
        let warm = runner.warm_load_seconds(self.host.as_ref());
        if self.host.is_some()
            && runner.file_bytes > 0
            && seconds < 0.5 * (warm + runner.load_times.seconds(mode))
        {
            runner.load_mode = mode.into();
            return Ok(());
        }
        runner.load_samples[slot] += 1.0;
        let estimate = match mode {
            LoadMode::Mmap => &mut runner.load_times.mmap_seconds,
            LoadMode::NoMmap => &mut runner.load_times.no_mmap_seconds,
        };
        *estimate += (seconds - *estimate) / runner.load_samples[slot];
        runner.load_mode = mode.into();
        Ok(())
    }

    /// Replaces a model's footprint with the size the server accounts for it (`/api/ps`).
    /// Ollama's fit test keeps comparing the prediction ([`Workload::admission_bytes`]).
    pub fn correct_footprint(&mut self, model: &str, bytes: u64) -> Result<(), Error> {
        let runner = self.runner_of_model(model)?;
        self.runners[runner].footprint_bytes = bytes;
        Ok(())
    }

    pub(crate) fn agent_id(&self, name: &str) -> Result<usize, Error> {
        self.agent_index
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownAgent(name.to_owned()))
    }

    pub(crate) fn runner_of_model(&self, name: &str) -> Result<usize, Error> {
        self.model_index
            .get(name)
            .map(|&model| self.model_runner[model])
            .ok_or_else(|| Error::UnknownModel(name.to_owned()))
    }

    /// The runner of a model name, `None` for a model the workload does not know.
    pub(crate) fn runner_named(&self, name: &str) -> Option<usize> {
        self.model_index
            .get(name)
            .map(|&model| self.model_runner[model])
    }
}

fn build_edges(
    agents: &[PlannedAgent],
    agent_index: &HashMap<String, usize>,
    edges: &[PlannedEdge],
) -> Result<Vec<Vec<Edge>>, Error> {
    let mut out: Vec<Vec<Edge>> = vec![Vec::new(); agents.len()];
    let mut weights: Vec<Vec<Option<f64>>> = vec![Vec::new(); agents.len()];
    for edge in edges {
        let from = *agent_index
            .get(&edge.from)
            .ok_or_else(|| Error::UnknownAgent(edge.from.clone()))?;
        let to = match &edge.to {
            PlannedTarget::End => None,
            PlannedTarget::Agent(name) => Some(
                *agent_index
                    .get(name)
                    .ok_or_else(|| Error::UnknownAgent(name.clone()))?,
            ),
        };
        if let Some(weight) = edge.prior_weight {
            check_number(
                || format!("prior_weight of edge from '{}'", edge.from),
                weight,
            )?;
        }
        let row = &mut out[from];
        match row.iter().position(|existing| existing.to == to) {
            Some(position) => {
                row[position].count += edge.count as f64;
                let merged = &mut weights[from][position];
                *merged = match (*merged, edge.prior_weight) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
            }
            None => {
                row.push(Edge {
                    to,
                    prior_share: 0.0,
                    count: edge.count as f64,
                    probability: 0.0,
                });
                weights[from].push(edge.prior_weight);
            }
        }
    }
    for (row, weights) in out.iter_mut().zip(&weights) {
        let any_weight = weights.iter().any(Option::is_some);
        let raw: Vec<f64> = weights
            .iter()
            .map(|weight| {
                if any_weight {
                    weight.unwrap_or(1.0)
                } else {
                    1.0
                }
            })
            .collect();
        let total: f64 = raw.iter().sum();
        for (edge, weight) in row.iter_mut().zip(&raw) {
            edge.prior_share = if total > 0.0 {
                weight / total
            } else {
                1.0 / raw.len() as f64
            };
        }
        normalise(row);
    }
    Ok(out)
}

/// The posterior mean of a Dirichlet prior worth [`PRIOR_STRENGTH`] turns plus the counts.
fn normalise(row: &mut [Edge]) {
    let counted: f64 = row.iter().map(|edge| edge.count).sum();
    let prior: f64 = row.iter().map(|edge| edge.prior_share).sum();
    let total = prior * PRIOR_STRENGTH + counted;
    if total <= 0.0 {
        return;
    }
    for edge in row.iter_mut() {
        edge.probability = (edge.prior_share * PRIOR_STRENGTH + edge.count) / total;
    }
}
