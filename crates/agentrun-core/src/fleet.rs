//! Several model servers as one backend: every call goes to the host its model is placed
//! on, and a host that stops answering has its models placed again on the hosts that remain.
//!
//! The executor places the workflow's models once their footprints are known
//! ([`Fleet::place`], which asks each host's `/api/tags` and then the planner's
//! [`agentrun_memory::place`]), then plans residency per host from [`Fleet::hosts`]. A lost
//! host's models are placed again with [`agentrun_memory::replace_lost_host`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use agentrun_memory::{
    AgentLabels, Bandwidth, Budget, Fallback, LoadSpeed, LoadTimes, Placement, PlacementError,
    PlacementHost, PlacementInput, Workload,
};
use async_trait::async_trait;

use crate::backend::{
    BackendError, ChatRequest, ChatResponse, KeepAlive, LoadReport, ModelBackend, ModelDetails,
    ModelOptions, RunningModel, TokenSink,
};

/// One host of a fleet: its name, budget, count cap and labels.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// The host's name, for messages and reports (`mac`, `gpu-box`).
    pub name: String,
    /// Where it listens, for messages and the `ollama pull` hint.
    pub url: String,
    /// Its GPU budget in bytes.
    pub budget_bytes: u64,
    /// How many models it keeps loaded at once (`OLLAMA_MAX_LOADED_MODELS`).
    pub max_loaded_models: usize,
    /// Its labels (`big`, `linux`), which agents may require or prefer.
    pub labels: Vec<String>,
    /// How fast it loads weights, when known (a simulated machine's settings, a
    /// calibration): placement prices each host's loads with its own speed, so a slow host
    /// is not taken for as fast as the one the workload's load times were measured on.
    /// `None`: the workload's own load times stand for every host's.
    pub load_speed: Option<Bandwidth>,
    /// Load times measured on this host (by `agentrun calibrate`), by model: placement
    /// prices these models' loads on this host with them, before any bandwidth.
    pub load_times: Vec<(String, LoadTimes)>,
}

/// A host as the executor plans for it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    /// The host.
    pub spec: HostSpec,
    /// Whether it answered last time it was asked.
    pub up: bool,
    /// The models placed on it (a replicated model is placed on several hosts).
    pub models: BTreeSet<String>,
    /// Of those, the ones whose calls go to it now: a replicated model's calls go to one
    /// of its hosts at a time ([`Fleet::route`]), and only that host plans for its turn.
    pub serves: BTreeSet<String>,
    /// What it had resident when last asked.
    pub resident: Vec<RunningModel>,
}

/// Why the models cannot be placed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FleetError {
    /// An agent requires labels no host carries.
    #[error(
        "agent '{agent}' requires a host labelled {labels}, and no host is: the hosts are {hosts}"
    )]
    NoLabel {
        /// The agent.
        agent: String,
        /// The labels, joined.
        labels: String,
        /// Every host with its labels.
        hosts: String,
    },
    /// No host the agent may use has its model.
    #[error(
        "agent '{agent}' uses model '{model}', which no host it may use has; pull it on host \
         '{host}' with `OLLAMA_HOST={url} ollama pull {model}`"
    )]
    Missing {
        /// The agent.
        agent: String,
        /// The model.
        model: String,
        /// The host the model should be pulled on.
        host: String,
        /// That host's address.
        url: String,
    },
    /// The placement failed for another reason (a model larger than every host it may use).
    #[error(transparent)]
    Placement(PlacementError),
    /// Two hosts serve different weights under one model name: a call could reach weights
    /// the agent did not ask for.
    #[error("{0}")]
    DifferentWeights(Box<WeightsConflict>),
    /// The workflow's models were never placed.
    #[error("the workflow's models are not placed on the hosts")]
    Unplaced,
}

/// One model name that two hosts serve with different weights.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightsConflict {
    /// The model name.
    pub model: String,
    /// The first host that has it.
    pub first: String,
    /// The digest there, shortened as `ollama list` shows it.
    pub first_digest: String,
    /// A host with other weights under the name.
    pub second: String,
    /// The digest there.
    pub second_digest: String,
    /// That host's address.
    pub second_url: String,
}

impl std::fmt::Display for WeightsConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "model '{model}' is different weights on host '{first}' (digest {first_digest}) and \
             on host '{second}' (digest {second_digest}); agentrun will not route an agent's \
             calls to weights it did not ask for. Pull the same weights on both \
             (`OLLAMA_HOST={url} ollama pull {model}`), or copy one under a name of its own \
             (`ollama cp {model} NEW-NAME` on one host) and name that in the workflow",
            model = self.model,
            first = self.first,
            first_digest = self.first_digest,
            second = self.second,
            second_digest = self.second_digest,
            url = self.second_url,
        )
    }
}

struct Host {
    spec: HostSpec,
    backend: Arc<dyn ModelBackend>,
}

/// What a placement is made from, besides the hosts.
struct PlacementParts {
    workload: Workload,
    start: String,
    labels: Vec<AgentLabels>,
    fallbacks: Vec<Fallback>,
}

#[derive(Default)]
struct State {
    /// Per host: the models it has, of those asked about.
    catalogue: Vec<BTreeSet<String>>,
    /// Per host: the digest of each model it has, where it reports one.
    digests: Vec<BTreeMap<String, String>>,
    /// Per host: whether it answers.
    up: Vec<bool>,
    /// Per host: what it had resident when last asked.
    resident: Vec<Vec<RunningModel>>,
    /// The hosts of each placed model, in the placement's order (several: replicas).
    placement: BTreeMap<String, Vec<usize>>,
    /// Per host: the chats under way, by model.
    in_flight: Vec<BTreeMap<String, usize>>,
    /// Per agent: the labels its host must have.
    required: BTreeMap<String, Vec<String>>,
    /// Per agent: the model it calls and the host the placement routes its calls to.
    routes: BTreeMap<String, (String, usize)>,
    /// The agent whose turn is being planned.
    speaker: Option<String>,
    /// What placement read, for placing again when a host is lost.
    input: Option<PlacementParts>,
    /// The placement in force.
    current: Option<Placement>,
    /// Models nothing can serve any more, with why.
    unservable: BTreeMap<String, String>,
    /// Counts placement changes, so the executor notices one.
    version: u64,
    /// What changed since the executor last asked, in words.
    notes: Vec<String>,
    /// Per host: what it loaded and unloaded for the run.
    work: Vec<HostWork>,
    /// Per host: the models a preload is under way for, so a call that waits for the tail
    /// of one is not counted as a load of its own.
    preloading: Vec<BTreeMap<String, usize>>,
}

/// What one host loaded and unloaded for a run: each load counted on the host that did it,
/// so a replicated model's loads are not counted on every host it is placed on.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostWork {
    /// Loads it did (a call that loaded its model, or a preload).
    pub loads: u32,
    /// Unloads sent to it.
    pub unloads: u32,
    /// Seconds calls on it waited for their model to be ready.
    pub load_wait_s: f64,
}

/// Several model servers behind one [`ModelBackend`].
pub struct Fleet {
    hosts: Vec<Host>,
    state: Mutex<State>,
}

impl Fleet {
    /// A fleet of `hosts`, each with the backend that reaches it, in order of preference.
    pub fn new(hosts: Vec<(HostSpec, Arc<dyn ModelBackend>)>) -> Fleet {
        let count = hosts.len();
        Fleet {
            hosts: hosts
                .into_iter()
                .map(|(spec, backend)| Host { spec, backend })
                .collect(),
            state: Mutex::new(State {
                catalogue: vec![BTreeSet::new(); count],
                digests: vec![BTreeMap::new(); count],
                up: vec![true; count],
                resident: vec![Vec::new(); count],
                in_flight: vec![BTreeMap::new(); count],
                work: vec![HostWork::default(); count],
                preloading: vec![BTreeMap::new(); count],
                ..State::default()
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; go on with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The hosts' specs, in order.
    pub fn specs(&self) -> Vec<HostSpec> {
        self.hosts.iter().map(|host| host.spec.clone()).collect()
    }

    /// What each host loaded and unloaded so far, by name.
    pub fn work(&self) -> BTreeMap<String, HostWork> {
        let state = self.state();
        self.hosts
            .iter()
            .zip(&state.work)
            .map(|(host, work)| (host.spec.name.clone(), *work))
            .collect()
    }

    /// A call of `model` on `host` answered after waiting `load` for its model: a load of
    /// that host's unless it waited for the tail of a preload there, which counts itself.
    fn chat_answered(&self, host: usize, model: &str, load: Option<std::time::Duration>) {
        let seconds = load.map_or(0.0, |load| load.as_secs_f64());
        let mut state = self.state();
        let tail = state.preloading[host].get(model).is_some_and(|n| *n > 0);
        let work = &mut state.work[host];
        work.load_wait_s += seconds;
        if seconds >= crate::planning::RESIDENT_LOAD_S && !tail {
            work.loads += 1;
        }
    }

    /// Asks every host which of the workload's models (and of `fallbacks`' models) it has
    /// (its `/api/tags`), then places the models: the planner's placement, which minimises
    /// the expected load wait under each host's budget, count cap and labels.
    ///
    /// `workload` is the run's (its budget is ignored), `start` the workflow's first agent,
    /// `labels` each agent's label wishes, `fallbacks` each model's fallback (any model;
    /// those outside the workload are placed when first used).
    pub async fn place(
        &self,
        workload: &Workload,
        start: &str,
        labels: Vec<AgentLabels>,
        fallbacks: Vec<Fallback>,
    ) -> Result<(), FleetError> {
        let names: BTreeSet<String> = workload
            .models()
            .iter()
            .map(|model| model.name.clone())
            .chain(fallbacks.iter().map(|fallback| fallback.fallback.clone()))
            .collect();
        self.survey(&names).await;
        self.same_weights(&names)?;
        let known: BTreeSet<&str> = workload.models().iter().map(|m| m.name.as_str()).collect();
        let parts = PlacementParts {
            workload: workload.clone(),
            start: start.to_owned(),
            labels,
            // The planner substitutes only models it plans for.
            fallbacks: fallbacks
                .into_iter()
                .filter(|fallback| known.contains(fallback.fallback.as_str()))
                .collect(),
        };
        let mut state = self.state();
        let hosts = self.placement_hosts(&state, None);
        let placed = agentrun_memory::place(&PlacementInput {
            workload: &parts.workload,
            start: &parts.start,
            hosts: &hosts,
            labels: &parts.labels,
        })
        .map_err(|error| self.placement_error(error))?;
        state.required = parts
            .labels
            .iter()
            .map(|wish| (wish.agent.clone(), wish.required.clone()))
            .collect();
        self.apply(&mut state, placed);
        state.input = Some(parts);
        Ok(())
    }

    /// Learns which of `names` each host that answers has.
    async fn survey(&self, names: &BTreeSet<String>) {
        for (index, host) in self.hosts.iter().enumerate() {
            if !self.is_up(index) {
                continue;
            }
            for name in names {
                match host.backend.model_details(name).await {
                    Ok(details) => {
                        let mut state = self.state();
                        state.catalogue[index].insert(name.clone());
                        if let Some(digest) = details.digest {
                            state.digests[index].insert(name.clone(), digest);
                        }
                    }
                    Err(BackendError::ModelNotFound { .. }) => {}
                    Err(error) => {
                        tracing::warn!(host = %host.spec.name, %error, "cannot list a host's models");
                    }
                }
            }
        }
    }

    /// Refuses a model name that two hosts serve with different weights (their digests
    /// differ): placement takes a name for one set of weights everywhere.
    fn same_weights(&self, names: &BTreeSet<String>) -> Result<(), FleetError> {
        let state = self.state();
        for name in names {
            let mut first: Option<(usize, &String)> = None;
            for (index, digests) in state.digests.iter().enumerate() {
                let Some(digest) = digests.get(name) else {
                    continue;
                };
                match first {
                    None => first = Some((index, digest)),
                    Some((_, seen)) if same_digest(seen, digest) => {}
                    Some((earlier, seen)) => {
                        return Err(FleetError::DifferentWeights(Box::new(WeightsConflict {
                            model: name.clone(),
                            first: self.hosts[earlier].spec.name.clone(),
                            first_digest: short_digest(seen),
                            second: self.hosts[index].spec.name.clone(),
                            second_digest: short_digest(digest),
                            second_url: self.hosts[index].spec.url.clone(),
                        })));
                    }
                }
            }
        }
        Ok(())
    }

    /// The hosts placement may use: those that answer, and `lost` (which placing again
    /// needs listed).
    fn placement_hosts(&self, state: &State, lost: Option<usize>) -> Vec<PlacementHost> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(index, _)| state.up[*index] || lost == Some(*index))
            .map(|(index, host)| PlacementHost {
                name: host.spec.name.clone(),
                budget: Budget {
                    gpu_bytes: host.spec.budget_bytes,
                    max_loaded_models: host.spec.max_loaded_models,
                },
                labels: host.spec.labels.clone(),
                models: state.catalogue[index].iter().cloned().collect(),
                load_speed: LoadSpeed {
                    measured: host.spec.load_times.clone(),
                    bandwidth: host.spec.load_speed,
                },
            })
            .collect()
    }

    /// Puts a placement in force: each model's calls go to one of its hosts ([`Fleet::route`]);
    /// a model replaced by its fallback is served by no host, so its agents turn to the
    /// fallback.
    fn apply(&self, state: &mut State, placed: Placement) {
        let index_of = |name: &str| self.hosts.iter().position(|host| host.spec.name == name);
        state.placement.clear();
        for model in &placed.models {
            let hosts: Vec<usize> = model
                .hosts
                .iter()
                .filter_map(|name| index_of(name))
                .collect();
            if !hosts.is_empty() {
                state.placement.insert(model.model.clone(), hosts);
            }
        }
        state.routes.clear();
        // Other names of the same weights go where their agents' calls go.
        for route in &placed.routes {
            if let Some(host) = index_of(&route.host) {
                state
                    .routes
                    .insert(route.agent.clone(), (route.model.clone(), host));
                let hosts = state.placement.entry(route.model.clone()).or_default();
                if !hosts.contains(&host) {
                    hosts.push(host);
                }
            }
        }
        for substitution in &placed.substitutions {
            state.placement.remove(&substitution.model);
            state.unservable.insert(
                substitution.model.clone(),
                format!(
                    "no host that answers may serve it; its agents use their fallback '{}'",
                    substitution.fallback
                ),
            );
        }
        state.current = Some(placed);
        state.version += 1;
    }

    /// The error for a model no host has at all: the agent, and the first host its labels
    /// allow, where it should be pulled.
    pub fn missing_everywhere(&self, agent: &str, model: &str, required: &[String]) -> FleetError {
        let host = self
            .hosts
            .iter()
            .find(|host| {
                required
                    .iter()
                    .all(|label| host.spec.labels.contains(label))
            })
            .unwrap_or(&self.hosts[0]);
        FleetError::Missing {
            agent: agent.to_owned(),
            model: model.to_owned(),
            host: host.spec.name.clone(),
            url: host.spec.url.clone(),
        }
    }

    fn placement_error(&self, error: PlacementError) -> FleetError {
        match error {
            PlacementError::LabelUnsatisfied { agent, required } => FleetError::NoLabel {
                agent,
                labels: required.join(" and "),
                hosts: self
                    .hosts
                    .iter()
                    .map(|host| {
                        if host.spec.labels.is_empty() {
                            format!("'{}' (no labels)", host.spec.name)
                        } else {
                            format!("'{}' ({})", host.spec.name, host.spec.labels.join(", "))
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            PlacementError::ModelMissing {
                agent, model, host, ..
            } => {
                let url = self
                    .hosts
                    .iter()
                    .find(|known| known.spec.name == host)
                    .map(|known| known.spec.url.clone())
                    .unwrap_or_default();
                FleetError::Missing {
                    agent,
                    model,
                    host,
                    url,
                }
            }
            other => FleetError::Placement(other),
        }
    }

    /// The placement in force, as the planner explains it.
    pub fn current(&self) -> Option<Placement> {
        self.state().current.clone()
    }

    /// Every host with what is placed on it, what its calls go to now and what it had
    /// resident.
    pub fn hosts(&self) -> Vec<HostView> {
        let state = self.state();
        let routes: BTreeMap<&String, Option<usize>> = state
            .placement
            .keys()
            .map(|model| {
                // The speaker's own model goes where its call will; others as any call.
                let speaker = state.speaker.as_deref().filter(|speaker| {
                    state
                        .routes
                        .get(*speaker)
                        .is_some_and(|(called, _)| called == model)
                });
                (model, self.route_in(&state, model, speaker))
            })
            .collect();
        self.hosts
            .iter()
            .enumerate()
            .map(|(index, host)| HostView {
                spec: host.spec.clone(),
                up: state.up[index],
                models: state
                    .placement
                    .iter()
                    .filter(|(_, placed)| placed.contains(&index))
                    .map(|(model, _)| model.clone())
                    .collect(),
                serves: routes
                    .iter()
                    .filter(|(_, routed)| **routed == Some(index))
                    .map(|(model, _)| (*model).clone())
                    .collect(),
                resident: state.resident[index].clone(),
            })
            .collect()
    }

    /// The host each placed model's calls go to now, by name ([`Fleet::route`]).
    pub fn placement(&self) -> BTreeMap<String, String> {
        let state = self.state();
        state
            .placement
            .keys()
            .filter_map(|model| {
                let host = self.route_in(&state, model, None)?;
                Some((model.clone(), self.hosts[host].spec.name.clone()))
            })
            .collect()
    }

    /// The host a call of `model` by `agent` (or by none in particular) would go to now, by
    /// name: of the hosts it is placed on that answer (and carry the labels the agent
    /// requires), one where it is resident and no call of it is under way, else one with no
    /// call under way at all, else the agent's own route, else the first. `None` for a model
    /// not placed.
    pub fn route(&self, model: &str, agent: Option<&str>) -> Option<String> {
        let state = self.state();
        self.route_in(&state, model, agent)
            .map(|host| self.hosts[host].spec.name.clone())
    }

    /// The turn of `agent` is being planned: the hosts' views ([`Fleet::hosts`]) say which
    /// host serves its call.
    pub fn set_speaker(&self, agent: &str) {
        self.state().speaker = Some(agent.to_owned());
    }

    /// The host index [`Fleet::route`] names.
    fn route_in(&self, state: &State, model: &str, agent: Option<&str>) -> Option<usize> {
        let mut hosts: Vec<usize> = state
            .placement
            .get(model)?
            .iter()
            .copied()
            .filter(|&host| state.up[host])
            .collect();
        if let Some(agent) = agent {
            // Never a host without the labels the agent requires, when one with them is left.
            if let Some(required) = state.required.get(agent) {
                let allowed: Vec<usize> = hosts
                    .iter()
                    .copied()
                    .filter(|&host| {
                        required
                            .iter()
                            .all(|label| self.hosts[host].spec.labels.contains(label))
                    })
                    .collect();
                if !allowed.is_empty() {
                    hosts = allowed;
                }
            }
            // The agent's own route comes first among equals.
            if let Some((_, own)) = state.routes.get(agent)
                && let Some(position) = hosts.iter().position(|host| host == own)
            {
                let own = hosts.remove(position);
                hosts.insert(0, own);
            }
        }
        route(state, &hosts, model)
    }

    /// Counts placement changes: a different value means models moved.
    pub fn version(&self) -> u64 {
        self.state().version
    }

    /// What changed (a host lost, models moved, a host back) since the last call, in words.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.state().notes)
    }

    /// The host a preload of `model` goes to: the copy the call it prepares will use
    /// ([`Fleet::route`] for the agent expected to call it, when the preload runs as that
    /// agent's with [`as_caller`]), placing a model not placed yet (a fallback) on the first
    /// host that answers and has it.
    fn host_for(&self, model: &str) -> Result<usize, BackendError> {
        let caller = CALLER.try_with(Clone::clone).ok();
        let mut state = self.state();
        self.host_in(&mut state, model, caller.as_deref())
    }

    /// A chat of `model` starts (by the agent whose turn calls it, when known): its host,
    /// counted busy with it until the guard drops.
    fn start_chat(&self, model: &str) -> Result<ChatUnderWay<'_>, BackendError> {
        let caller = CALLER.try_with(Clone::clone).ok();
        let mut state = self.state();
        let host = self.host_in(&mut state, model, caller.as_deref())?;
        *state.in_flight[host].entry(model.to_owned()).or_default() += 1;
        Ok(ChatUnderWay {
            fleet: self,
            host,
            model: model.to_owned(),
        })
    }

    /// The hosts an unload of `model` goes to: where it is resident, except the host its
    /// calls go to when another copy is resident too (the copy in use stays); the routed
    /// host when no copy is known to be resident.
    fn unload_hosts(&self, model: &str) -> Result<Vec<usize>, BackendError> {
        let mut state = self.state();
        let routed = self.host_in(&mut state, model, None)?;
        let holders: Vec<usize> = state
            .placement
            .get(model)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&host| state.up[host] && is_resident(&state, host, model))
            .collect();
        Ok(match holders.as_slice() {
            [] => vec![routed],
            [one] => vec![*one],
            several => several
                .iter()
                .copied()
                .filter(|&host| host != routed)
                .collect(),
        })
    }

    fn host_in(
        &self,
        state: &mut State,
        model: &str,
        agent: Option<&str>,
    ) -> Result<usize, BackendError> {
        if let Some(host) = self.route_in(state, model, agent) {
            return Ok(host);
        }
        if let Some(reason) = state.unservable.get(model) {
            return Err(BackendError::NoHost {
                model: model.to_owned(),
                reason: reason.clone(),
            });
        }
        let found = (0..self.hosts.len())
            .find(|&index| state.up[index] && state.catalogue[index].contains(model))
            .or_else(|| (0..self.hosts.len()).find(|&index| state.up[index]));
        match found {
            Some(host) => {
                state.placement.insert(model.to_owned(), vec![host]);
                state.version += 1;
                Ok(host)
            }
            None => Err(BackendError::NoHost {
                model: model.to_owned(),
                reason: "no host answers".to_owned(),
            }),
        }
    }

    /// A host stopped answering: it is marked down and its models placed again on the
    /// hosts that remain; a model nothing else can serve is kept as unservable, with why.
    fn host_failed(&self, index: usize, error: &BackendError) {
        let mut state = self.state();
        if !state.up[index] {
            return;
        }
        state.up[index] = false;
        state.resident[index].clear();
        let name = self.hosts[index].spec.name.clone();
        state.in_flight[index].clear();
        let orphans: Vec<String> = state
            .placement
            .iter()
            .filter(|(_, hosts)| hosts.contains(&index))
            .map(|(model, _)| model.clone())
            .collect();
        let hosts = self.placement_hosts(&state, Some(index));
        let replaced = match (&state.input, &state.current) {
            (Some(parts), Some(current)) => Some(agentrun_memory::replace_lost_host(
                &PlacementInput {
                    workload: &parts.workload,
                    start: &parts.start,
                    hosts: &hosts,
                    labels: &parts.labels,
                },
                current,
                &name,
                &parts.fallbacks,
            )),
            _ => None,
        };
        let moved = match replaced {
            Some(Ok(placed)) => {
                self.apply(&mut state, placed);
                orphans
                    .iter()
                    .map(|model| match state.placement.get(model) {
                        Some(hosts) => format!(
                            "{model} to {}",
                            hosts
                                .iter()
                                .map(|host| format!("'{}'", self.hosts[*host].spec.name))
                                .collect::<Vec<_>>()
                                .join(" and ")
                        ),
                        None => format!(
                            "{model} nowhere ({})",
                            state.unservable.get(model).cloned().unwrap_or_default()
                        ),
                    })
                    .collect::<Vec<_>>()
            }
            Some(Err(error)) => {
                let reason = error.to_string();
                for model in &orphans {
                    state.placement.remove(model);
                    state.unservable.insert(model.clone(), reason.clone());
                }
                state.version += 1;
                vec![format!("nothing moved: {reason}")]
            }
            // Nothing placed yet (the run has not started): nothing to move.
            None => Vec::new(),
        };
        let moved = if moved.is_empty() {
            "no models to move".to_owned()
        } else {
            format!("moved {}", moved.join(", "))
        };
        let note = format!("host '{name}' stopped answering ({error}); {moved}");
        tracing::warn!("{note}");
        state.notes.push(note);
    }

    /// A host that was down answers again: it serves what is placed from now on, and when
    /// some model had no host, the models are placed afresh with it.
    fn host_returned(&self, index: usize, resident: Vec<RunningModel>) {
        let mut state = self.state();
        state.up[index] = true;
        state.resident[index] = resident;
        let name = &self.hosts[index].spec.name;
        let mut note = format!("host '{name}' answers again; it serves what is placed from now on");
        if !state.unservable.is_empty()
            && let Some(parts) = &state.input
        {
            let hosts = self.placement_hosts(&state, None);
            match agentrun_memory::place(&PlacementInput {
                workload: &parts.workload,
                start: &parts.start,
                hosts: &hosts,
                labels: &parts.labels,
            }) {
                Ok(placed) => {
                    state.unservable.clear();
                    self.apply(&mut state, placed);
                    note.push_str("; the models are placed again with it");
                }
                Err(error) => tracing::warn!(%error, "placing again with a returning host failed"),
            }
        }
        state.version += 1;
        tracing::info!("{note}");
        state.notes.push(note);
    }

    fn is_up(&self, index: usize) -> bool {
        self.state().up[index]
    }
}

tokio::task_local! {
    /// The agent whose turn is under way in this task, so a call of a replicated model goes
    /// to a copy on a host that agent may use.
    static CALLER: String;
}

/// Runs `turn` as `agent`'s: the fleet's calls within it know whose they are.
pub(crate) async fn as_caller<F: std::future::Future>(agent: String, turn: F) -> F::Output {
    CALLER.scope(agent, turn).await
}

/// Runs `work` as `agent`'s when one is given ([`as_caller`]), else as no agent's.
pub(crate) async fn maybe_as_caller<F: std::future::Future>(
    agent: Option<String>,
    work: F,
) -> F::Output {
    match agent {
        Some(agent) => as_caller(agent, work).await,
        None => work.await,
    }
}

/// Of `hosts` (a model's hosts that may serve the call, in preference order), the one a
/// call of `model` goes to now: one where it is resident with no call of it under way, else
/// one with no call under way, else the first. `None` when `hosts` is empty.
fn route(state: &State, hosts: &[usize], model: &str) -> Option<usize> {
    let busy_with = |host: usize| state.in_flight[host].get(model).copied().unwrap_or(0) > 0;
    let busy = |host: usize| state.in_flight[host].values().any(|count| *count > 0);
    hosts
        .iter()
        .copied()
        .find(|&host| is_resident(state, host, model) && !busy_with(host))
        .or_else(|| hosts.iter().copied().find(|&host| !busy(host)))
        .or_else(|| hosts.first().copied())
}

/// Whether `host` had `model` resident when last asked.
fn is_resident(state: &State, host: usize, model: &str) -> bool {
    state.resident[host]
        .iter()
        .any(|running| running.name == model)
}

/// A chat under way on a host: the host counts as busy with its model until it drops
/// (answered, failed or cancelled).
struct ChatUnderWay<'a> {
    fleet: &'a Fleet,
    host: usize,
    model: String,
}

impl Drop for ChatUnderWay<'_> {
    fn drop(&mut self) {
        count_down(&mut self.fleet.state().in_flight[self.host], &self.model);
    }
}

/// A preload under way on a host: a call of its model there meanwhile waits for its tail.
struct PreloadUnderWay<'a> {
    fleet: &'a Fleet,
    host: usize,
    model: String,
}

impl<'a> PreloadUnderWay<'a> {
    fn start(fleet: &'a Fleet, host: usize, model: &str) -> PreloadUnderWay<'a> {
        *fleet.state().preloading[host]
            .entry(model.to_owned())
            .or_default() += 1;
        PreloadUnderWay {
            fleet,
            host,
            model: model.to_owned(),
        }
    }
}

impl Drop for PreloadUnderWay<'_> {
    fn drop(&mut self) {
        count_down(&mut self.fleet.state().preloading[self.host], &self.model);
    }
}

/// One fewer of `model` under way; a model with none left is forgotten.
fn count_down(counts: &mut BTreeMap<String, usize>, model: &str) {
    if let Some(count) = counts.get_mut(model) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(model);
        }
    }
}

/// Whether two digests name the same weights: `sha256:` written or not, any case.
fn same_digest(a: &str, b: &str) -> bool {
    let bare = |digest: &str| digest.trim_start_matches("sha256:").to_ascii_lowercase();
    bare(a) == bare(b)
}

/// A digest as `ollama list` shows it: its first 12 hex digits.
fn short_digest(digest: &str) -> String {
    digest
        .trim_start_matches("sha256:")
        .chars()
        .take(12)
        .collect()
}

/// Whether an error means the host is gone, not that the call failed.
fn host_gone(error: &BackendError) -> bool {
    matches!(error, BackendError::Unreachable { .. })
}

#[async_trait]
impl ModelBackend for Fleet {
    fn endpoint(&self) -> String {
        self.hosts
            .iter()
            .map(|host| format!("{} ({})", host.spec.name, host.spec.url))
            .collect::<Vec<_>>()
            .join(", ")
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        // Each failure takes a host out, so this ends within the number of hosts.
        loop {
            let under_way = self.start_chat(&request.model)?;
            let host = under_way.host;
            let answered = self.hosts[host].backend.chat(request, &mut *on_text).await;
            drop(under_way);
            match answered {
                Err(error) if host_gone(&error) => self.host_failed(host, &error),
                Ok(response) => {
                    self.chat_answered(host, &request.model, response.metrics.load);
                    return Ok(response);
                }
                answered => return answered,
            }
        }
    }

    async fn preload(
        &self,
        model: &str,
        options: &ModelOptions,
        keep_alive: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError> {
        loop {
            let host = self.host_for(model)?;
            let under_way = PreloadUnderWay::start(self, host, model);
            let started = tokio::time::Instant::now();
            let answered = self.hosts[host]
                .backend
                .preload(model, options, keep_alive)
                .await;
            drop(under_way);
            match answered {
                Err(error) if host_gone(&error) => self.host_failed(host, &error),
                Ok(report) => {
                    // Ollama sends no timing fields with a preload's answer: the wait for
                    // it stands in, as in the preloader.
                    let seconds = report
                        .load_duration
                        .unwrap_or_else(|| started.elapsed())
                        .as_secs_f64();
                    if seconds >= crate::planning::RESIDENT_LOAD_S {
                        self.state().work[host].loads += 1;
                    }
                    return Ok(report);
                }
                answered => return answered,
            }
        }
    }

    async fn unload(&self, model: &str) -> Result<(), BackendError> {
        for host in self.unload_hosts(model)? {
            match self.hosts[host].backend.unload(model).await {
                // A host that is gone holds nothing any more.
                Err(error) if host_gone(&error) => self.host_failed(host, &error),
                Err(error) => return Err(error),
                Ok(()) => self.state().work[host].unloads += 1,
            }
        }
        Ok(())
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError> {
        let mut all = Vec::new();
        let mut last_error = None;
        for (index, host) in self.hosts.iter().enumerate() {
            let was_up = self.is_up(index);
            match host.backend.running_models().await {
                Ok(resident) => {
                    if was_up {
                        self.state().resident[index] = resident.clone();
                    } else {
                        self.host_returned(index, resident.clone());
                    }
                    all.extend(resident);
                }
                Err(error) => {
                    if was_up && host_gone(&error) {
                        self.host_failed(index, &error);
                    }
                    last_error = Some(error);
                }
            }
        }
        match last_error {
            Some(error) if !self.state().up.iter().any(|up| *up) => Err(error),
            _ => Ok(all),
        }
    }

    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError> {
        let mut last = None;
        for (index, host) in self.hosts.iter().enumerate() {
            if !self.is_up(index) {
                continue;
            }
            match host.backend.model_details(model).await {
                Ok(details) => {
                    self.state().catalogue[index].insert(model.to_owned());
                    return Ok(details);
                }
                Err(error @ BackendError::ModelNotFound { .. }) => last = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(match last {
            Some(_) | None => BackendError::ModelNotFound {
                model: model.to_owned(),
                url: format!("any host ({})", self.endpoint()),
            },
        })
    }
}

#[cfg(test)]
mod tests;
