//! Placement: which Ollama host serves each model of a workflow, when there are several.
//!
//! [`place`] takes the hosts ([`PlacementHost`]: budget, count cap, labels, the models of its
//! `/api/tags`, its load speeds), the [`Workload`] (models with their footprints, agents,
//! the conversation graph with its learnt probabilities and turn lengths), the agents' label
//! wishes ([`AgentLabels`]) and the agent the workflow starts with, and returns a
//! [`Placement`]: the host (or hosts) of every model, the host every agent's calls go to, the
//! expected load wait of the placement and of the best one-host placement, and per host what
//! lives there and which phases force loads there. [`replace_lost_host`] places the models of
//! a host that stopped answering on the hosts that remain.
//!
//! # The rule
//!
//! The unit placed is an *item*: a model (one set of weights) within one phase of the
//! workflow (the phases of [`crate::analyze`]: agents that alternate). A model used by
//! several phases has one item per phase; items of one model on different hosts are replicas,
//! so a model lives on several hosts exactly when that lowers the expected wait.
//!
//! The objective is the expected load wait per turn, over the long-run turn shares of the
//! agents (the conversation graph as a Markov chain that restarts at the start agent when it
//! ends). Hosts load in parallel and each plans its own residency as today, so a load is only
//! forced where one model is needed after another on the *same* host with which it conflicts
//! (turns of command and human agents, which take time but no memory, are skipped):
//!
//! - the two are *exclusive* there (the count cap is below two, or the fit test fails for
//!   the pair, largest first): the load starts when the earlier turn ends, so it is waited
//!   for less only the turns in between;
//! - or they fit as a pair but the later model does not fit beside the working set the
//!   earlier model's phase keeps on that host (*crowded*): the load can also be preloaded
//!   while the earlier model generates, so that turn hides part of it too;
//! - or the earlier model and those of the turns in between on that host leave no room for
//!   the later model (with it they exceed the count cap, or no load order of them all passes
//!   the fit test, although every pair does): it was resident before them and unused since,
//!   so the least recently used, and they evicted it (charged as *exclusive*);
//!
//! and no turn in between used the later model on that host (it was resident) or conflicted
//! with it there, nor do the turns in between alone leave it no room (a later use is charged
//! instead: each load is charged once, to the latest conflicting use before it). Paths whose turns in between already hide the longest load of
//! the model on any host can never make a turn wait and are not followed; nor are paths
//! taken under 1 % as often as their first turn, or longer than six model turns, so the
//! number of paths stays small even on dense graphs.
//!
//! Each host's load times are its own (measured, calibrated or the workload's estimates), in
//! the model's load mode. A model's first load on a host is charged once per run (the
//! expected run length from the graph, at most [`MAX_RUN_TURNS`] turns), so a replica must
//! pay for its own first load. Preferred labels break ties: each one a host lacks costs
//! [`PREFERENCE_SECONDS`].
//!
//! Hard rules, each an error when nothing satisfies it: a model goes only to a host whose
//! `/api/tags` lists it, whose labels include every label its agents require, and whose GPU
//! budget holds it alone (a model larger than the budget spills to the CPU).
//!
//! # The search
//!
//! Exact (depth-first over every assignment, identical empty hosts tried once) when the
//! number of assignments is at most [`EXACT_ASSIGNMENTS`]; otherwise greedy (items by
//! decreasing weight, each to the host that adds the least wait) followed by a local search
//! of single moves, swaps of related items, merges of a model's replicas and, when those are
//! stuck, repartitions of the items of two hosts, until nothing lowers the wait. A move is
//! priced by re-evaluating only the terms that read the moved item's phase. Both searches are
//! deterministic: ties go to the earlier host in the caller's order. On small random fleets
//! the heuristic finds the exact optimum (tested on 500).

mod cost;
mod instance;
mod items;
mod report;
mod search;
mod terms;

use std::fmt;

use serde::Serialize;

use crate::budget::{Budget, gigabytes};
use crate::error::Error;
use crate::workload::{LoadTimes, Workload};

use instance::Instance;

#[cfg(test)]
mod tests;

/// Above this many assignments to enumerate (over items, the product of their eligible
/// hosts, counting identical empty hosts once), the heuristic search replaces the exact one:
/// 2^15, 15 models over two hosts, which the benchmark enumerates in about 4 ms.
pub const EXACT_ASSIGNMENTS: u64 = 32_768;

/// The longest run the cold loads are spread over, in turns: a graph that never ends would
/// otherwise make first loads free.
pub const MAX_RUN_TURNS: f64 = 1_000.0;

/// The cost, in seconds per turn, of each preferred label a serving host lacks: small
/// enough never to outweigh a real wait, large enough to break ties.
pub const PREFERENCE_SECONDS: f64 = 1e-6;

/// One Ollama host as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementHost {
    /// The host's unique name (the hosts file's name, or its URL).
    pub name: String,
    /// Its GPU budget and `OLLAMA_MAX_LOADED_MODELS`.
    pub budget: Budget,
    /// Its labels, such as `big` or `linux`.
    pub labels: Vec<String>,
    /// The model names its `/api/tags` lists (`name:latest` and `name` are the same model).
    pub models: Vec<String>,
    /// How fast it loads models.
    pub load_speed: LoadSpeed,
}

/// How long a host takes to load a model: per model, the first of `measured`, the
/// `bandwidth` estimate, and the workload's own load times that applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadSpeed {
    /// Load times measured on this host (from `load_duration`), by model name.
    pub measured: Vec<(String, LoadTimes)>,
    /// The host's calibrated load bandwidth, applied to the model's footprint.
    pub bandwidth: Option<Bandwidth>,
}

/// A host's calibrated load speed: `fixed_seconds + bytes / rate` per load mode
/// ([`LoadTimes::from_bandwidth`]). The footprint stands for the bytes read (the KV cache is
/// allocated, not read, so long contexts are slightly overestimated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bandwidth {
    /// Seconds every load takes whatever its size.
    pub fixed_seconds: f64,
    /// Bytes per second with memory-mapped weights.
    pub mmap_bytes_per_second: f64,
    /// Bytes per second with `use_mmap: false`.
    pub no_mmap_bytes_per_second: f64,
}

/// The labels an agent requires (every host serving it must have them all) and prefers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentLabels {
    /// The agent.
    pub agent: String,
    /// Labels its host must have.
    pub required: Vec<String>,
    /// Labels its host should have, other things equal.
    pub preferred: Vec<String>,
}

/// Everything [`place`] reads.
#[derive(Debug, Clone, Copy)]
pub struct PlacementInput<'a> {
    /// The models, agents, graph, probabilities and turn lengths (its budget is ignored:
    /// each host has its own).
    pub workload: &'a Workload,
    /// The agent the workflow starts with (and restarts with, for the long-run shares).
    pub start: &'a str,
    /// The hosts, in the caller's order (ties go to the earlier one).
    pub hosts: &'a [PlacementHost],
    /// Label wishes per agent; agents not listed have none.
    pub labels: &'a [AgentLabels],
}

/// A model to call in place of another when no remaining host can serve the original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// The model agents call normally.
    pub model: String,
    /// The model they call instead; it must be a model of the workload.
    pub fallback: String,
}

/// Where every model lives and where every call goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    /// Per model (one name per set of weights), the hosts it is placed on.
    pub models: Vec<ModelPlacement>,
    /// Per agent with a model, the model it calls and the host its calls go to.
    pub routes: Vec<Route>,
    /// Per host, what lives there and what it costs.
    pub hosts: Vec<HostReport>,
    /// The expected load wait of this placement, seconds per turn.
    pub wait_seconds_per_turn: f64,
    /// The best placement on a single host, if some host can hold every model alone.
    pub one_host: Option<OneHost>,
    /// How the placement was found.
    pub search: Search,
    /// Models replaced by their fallback (only after [`replace_lost_host`]).
    pub substitutions: Vec<Fallback>,
}

/// The hosts of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelPlacement {
    /// The model (the first name on its weights).
    pub model: String,
    /// Its hosts, in the caller's host order; several when it is replicated.
    pub hosts: Vec<String>,
}

/// Where one agent's calls go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The agent.
    pub agent: String,
    /// The model it calls (its fallback after a substitution).
    pub model: String,
    /// The host its calls go to.
    pub host: String,
}

/// The best single host for the whole workflow, for comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OneHost {
    /// The host.
    pub host: String,
    /// Its expected load wait, seconds per turn.
    pub wait_seconds_per_turn: f64,
}

/// How a placement was searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Search {
    /// Every assignment was considered: the placement is optimal for the cost model.
    Exact,
    /// Greedy construction and local search (moves and swaps).
    Heuristic,
}

/// One host's share of a placement, explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostReport {
    /// The host.
    pub host: String,
    /// The models placed there, with the phases they serve there.
    pub models: Vec<HostedModel>,
    /// Its part of the expected wait, seconds per turn.
    pub wait_seconds_per_turn: f64,
    /// The phases whose turns force loads there, largest wait first.
    pub forced_loads: Vec<ForcedLoad>,
}

/// A model on a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostedModel {
    /// The model.
    pub model: String,
    /// The phases whose agents call it on this host.
    pub phases: Vec<String>,
    /// Its footprint.
    pub footprint_bytes: u64,
}

/// Loads a phase forces on a host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForcedLoad {
    /// The phase whose turn needs the model.
    pub phase: String,
    /// The model loaded.
    pub model: String,
    /// The model it cannot stay resident beside.
    pub displaced: String,
    /// Expected loads per 100 turns.
    pub loads_per_100_turns: f64,
    /// Expected seconds waited per 100 turns.
    pub wait_seconds_per_100_turns: f64,
}

/// Why no placement was made. Every variant names the host, agent or model at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlacementError {
    /// The workload or a number of the input is invalid.
    #[error(transparent)]
    Workload(#[from] Error),
    /// No host was given.
    #[error("no Ollama host to place models on")]
    NoHosts,
    /// Two hosts share a name.
    #[error("host '{0}' is given twice")]
    DuplicateHost(String),
    /// A host keeps no model loaded.
    #[error("host '{0}': max_loaded_models must be at least 1")]
    NoModelSlots(String),
    /// A label wish names an agent the workload does not have.
    #[error("labels are given for unknown agent '{0}'")]
    UnknownAgent(String),
    /// No host has every label an agent requires.
    #[error("no host has the labels agent '{agent}' requires: {}", required.join(", "))]
    LabelUnsatisfied {
        /// The agent.
        agent: String,
        /// The labels it requires (all of them, including those some host has).
        required: Vec<String>,
    },
    /// A model is larger than the GPU budget of every host its agents may use.
    #[error(
        "model '{model}' needs {} but the largest GPU budget of a host it may use is {} (host '{host}'): it would spill to the CPU",
        gigabytes(*footprint_bytes),
        gigabytes(*largest_gpu_bytes)
    )]
    ModelTooBig {
        /// The model.
        model: String,
        /// Its footprint.
        footprint_bytes: u64,
        /// The largest host it may use.
        host: String,
        /// That host's GPU budget.
        largest_gpu_bytes: u64,
    },
    /// No host that may serve a model has it; the placement wants it on `host`.
    #[error(
        "no host that may serve agent '{agent}' has model '{model}'; run `{pull}` on host '{host}'"
    )]
    ModelMissing {
        /// An agent that calls it.
        agent: String,
        /// The model.
        model: String,
        /// The host that should have it.
        host: String,
        /// The command to run there.
        pull: String,
    },
    /// The lost host of [`replace_lost_host`] is not a host of the input.
    #[error("unknown host '{0}'")]
    UnknownHost(String),
    /// After a host was lost, nothing can serve an agent.
    #[error(
        "host '{lost}' is lost and no remaining host can serve agent '{agent}' (model '{model}'{}): {reason}",
        fallback.as_ref().map(|name| format!(", fallback '{name}'")).unwrap_or_default()
    )]
    NoHostLeft {
        /// The host that stopped answering.
        lost: String,
        /// The agent left without a host.
        agent: String,
        /// Its model.
        model: String,
        /// Its fallback, if the caller gave one.
        fallback: Option<String>,
        /// Why no host fits.
        reason: String,
    },
}

/// Places the workflow's models on the hosts, minimising the expected load wait.
///
/// ```
/// use agentrun_memory::{
///     Budget, LoadModeChoice, LoadSpeed, LoadTimes, ModelSpec, PlacementHost, PlacementInput,
///     PlannedAgent, PlannedEdge, PlannedTarget, Workload, place,
/// };
///
/// let gb = 1_000_000_000;
/// let model = |name: &str, bytes: u64| ModelSpec {
///     name: name.into(),
///     runner_key: name.into(),
///     footprint_bytes: bytes,
///     load_times: LoadTimes::from_bandwidth(bytes, 2.0, 0.8e9, 5e9),
///     load_mode: LoadModeChoice::NoMmap,
/// };
/// let agent = |name: &str, model: &str, seconds: f64| PlannedAgent {
///     name: name.into(),
///     model: Some(model.into()),
///     mean_turn_seconds: seconds,
///     static_keep_alive: None,
///     num_ctx: None,
/// };
/// let edge = |from: &str, to: &str, weight: f64| PlannedEdge {
///     from: from.into(),
///     to: PlannedTarget::Agent(to.into()),
///     prior_weight: Some(weight),
///     count: 0,
/// };
/// // A 52 GB architect hands over to a coder/tester loop now and then.
/// let workload = Workload::new(
///     vec![model("architect", 52 * gb), model("coder", 19 * gb), model("tester", 9 * gb)],
///     vec![
///         agent("architect", "architect", 260.0),
///         agent("coder", "coder", 165.0),
///         agent("tester", "tester", 37.0),
///     ],
///     vec![
///         edge("architect", "coder", 1.0),
///         edge("coder", "tester", 1.0),
///         edge("tester", "coder", 4.0),
///         edge("tester", "architect", 1.0),
///     ],
///     Budget { gpu_bytes: 54 * gb, max_loaded_models: 3 },
/// )?;
/// let host = |name: &str, gpu_gb: u64| PlacementHost {
///     name: name.into(),
///     budget: Budget { gpu_bytes: gpu_gb * gb, max_loaded_models: 3 },
///     labels: vec![],
///     models: vec!["architect".into(), "coder".into(), "tester".into()],
///     load_speed: LoadSpeed::default(),
/// };
/// let hosts = [host("mac", 54), host("linux", 32)];
/// let placement = place(&PlacementInput {
///     workload: &workload,
///     start: "architect",
///     hosts: &hosts,
///     labels: &[],
/// })?;
/// // The architect keeps the Mac; the loop lives on the Linux box; nobody waits for a reload.
/// assert_eq!(placement.host_of("architect"), Some("mac"));
/// assert_eq!(placement.host_of("coder"), Some("linux"));
/// let one_host = placement.one_host.as_ref().expect("the Mac holds every model alone");
/// assert!(placement.wait_seconds_per_turn < one_host.wait_seconds_per_turn);
/// # Ok::<(), agentrun_memory::PlacementError>(())
/// ```
pub fn place(input: &PlacementInput<'_>) -> Result<Placement, PlacementError> {
    let instance = Instance::new(input, &items::Overrides::default())?;
    let placement = search::solve(&instance);
    // A model no host lists was placed as if every host could pull it: where it landed is
    // where it should be pulled.
    if let Some((agent, model)) = instance.missing.first() {
        let agent = &instance.agent_names[*agent];
        let host = placement
            .host_of(agent)
            .expect("an agent with a model has a route")
            .to_owned();
        return Err(PlacementError::ModelMissing {
            agent: agent.clone(),
            model: model.clone(),
            pull: format!("ollama pull {model}"),
            host,
        });
    }
    Ok(placement)
}

/// Places again the models of `lost`, a host that stopped answering, on the hosts that
/// remain, keeping every model already placed elsewhere where it is.
///
/// A model of the lost host goes to a remaining host that may serve it (same rules as
/// [`place`]); when none may, to its fallback (from `fallbacks`) if one is given and some
/// remaining host may serve that; otherwise [`PlacementError::NoHostLeft`] names the agent.
/// `input` is the input of the current placement (the lost host still listed);
/// `current` is the placement in force, possibly itself a re-placement. When the lost host
/// answers again, [`place`] with it gives the placement for what is placed next.
pub fn replace_lost_host(
    input: &PlacementInput<'_>,
    current: &Placement,
    lost: &str,
    fallbacks: &[Fallback],
) -> Result<Placement, PlacementError> {
    if !input.hosts.iter().any(|host| host.name == lost) {
        return Err(PlacementError::UnknownHost(lost.to_owned()));
    }
    let overrides = items::Overrides::for_failover(input, current, lost, fallbacks)?;
    let instance = Instance::new(input, &overrides)?;
    Ok(search::solve(&instance))
}

impl Placement {
    /// The host an agent's calls go to; `None` for an agent without a model or not in the
    /// workload.
    pub fn host_of(&self, agent: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|route| route.agent == agent)
            .map(|route| route.host.as_str())
    }

    /// The model an agent calls (its fallback after a substitution).
    pub fn model_of(&self, agent: &str) -> Option<&str> {
        self.routes
            .iter()
            .find(|route| route.agent == agent)
            .map(|route| route.model.as_str())
    }

    /// The workload `host` plans its residency with, as one server does today
    /// ([`Workload::for_host`]): the agents routed to it keep their model (or fallback), the
    /// others take time but no memory there.
    pub fn host_workload(
        &self,
        workload: &Workload,
        host: &str,
        budget: Budget,
    ) -> Result<Workload, Error> {
        let calls: Vec<(&str, &str)> = self
            .routes
            .iter()
            .filter(|route| route.host == host)
            .map(|route| (route.agent.as_str(), route.model.as_str()))
            .collect();
        workload.for_host(&calls, budget)
    }

    /// What the placement saves over the best one-host placement, seconds per turn.
    pub fn saving_seconds_per_turn(&self) -> Option<f64> {
        self.one_host
            .as_ref()
            .map(|one| (one.wait_seconds_per_turn - self.wait_seconds_per_turn).max(0.0))
    }
}

impl fmt::Display for Placement {
    /// Per host: its models, its wait and the phases that force loads there; then the total
    /// beside the best one-host figure.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        report::write(self, f)
    }
}
