//! Several model servers as one backend: every call goes to the host its model is placed
//! on, and a host that stops answering has its models placed again on the hosts that remain.
//!
//! The executor places the workflow's models once their footprints are known
//! ([`Fleet::place`]), then plans residency per host from [`Fleet::hosts`]; the fleet itself
//! decides nothing about memory beyond where each model lives.

mod rule;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::backend::{
    BackendError, ChatRequest, ChatResponse, KeepAlive, LoadReport, ModelBackend, ModelDetails,
    ModelOptions, RunningModel, TokenSink,
};
use rule::{HostSlot, Unplaced, choose_host};

pub use rule::ModelDemand;

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
}

/// A host as the executor plans for it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    /// The host.
    pub spec: HostSpec,
    /// Whether it answered last time it was asked.
    pub up: bool,
    /// The models placed on it.
    pub models: BTreeSet<String>,
    /// What it had resident when last asked.
    pub resident: Vec<RunningModel>,
}

/// Why the models cannot be placed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FleetError {
    /// An agent requires labels no host carries.
    #[error("agent '{agent}' requires a host labelled {labels}, and no host is: the hosts are {hosts}")]
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
}

struct Host {
    spec: HostSpec,
    backend: Arc<dyn ModelBackend>,
}

#[derive(Default)]
struct State {
    /// Per host: the models it has, of those asked about.
    catalogue: Vec<BTreeSet<String>>,
    /// Per host: whether it answers.
    up: Vec<bool>,
    /// Per host: what it had resident when last asked.
    resident: Vec<Vec<RunningModel>>,
    /// The host of each placed model.
    placement: BTreeMap<String, usize>,
    /// What each model asks of its host, for placing it again.
    demands: BTreeMap<String, ModelDemand>,
    /// Models nothing can serve any more, with why.
    unservable: BTreeMap<String, String>,
    /// Counts placement changes, so the executor notices one.
    version: u64,
    /// What changed since the executor last asked, in words.
    notes: Vec<String>,
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
                up: vec![true; count],
                resident: vec![Vec::new(); count],
                ..State::default()
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; go on with it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The hosts' specs, in order.
    pub fn specs(&self) -> Vec<HostSpec> {
        self.hosts.iter().map(|host| host.spec.clone()).collect()
    }

    /// Asks every host that answers which of `models` it has (its `/api/tags`), and
    /// places each demand on a host. Models asked about but not demanded (fallbacks) are
    /// placed when first used.
    pub async fn place(
        &self,
        demands: &[ModelDemand],
        also: &[String],
    ) -> Result<(), FleetError> {
        let names: BTreeSet<&str> = demands
            .iter()
            .map(|demand| demand.model.as_str())
            .chain(also.iter().map(String::as_str))
            .collect();
        for (index, host) in self.hosts.iter().enumerate() {
            for name in &names {
                match host.backend.model_details(name).await {
                    Ok(_) => {
                        self.state().catalogue[index].insert((*name).to_owned());
                    }
                    Err(BackendError::ModelNotFound { .. }) => {}
                    Err(error) => {
                        tracing::warn!(host = %host.spec.name, %error, "cannot list a host's models");
                    }
                }
            }
        }
        let mut state = self.state();
        for demand in demands {
            state
                .demands
                .insert(demand.model.clone(), demand.clone());
            match self.choose(&state, demand) {
                Ok(host) => {
                    state.placement.insert(demand.model.clone(), host);
                }
                Err(unplaced) => return Err(self.placement_error(demand, unplaced)),
            }
        }
        state.version += 1;
        Ok(())
    }

    fn choose(&self, state: &State, demand: &ModelDemand) -> Result<usize, Unplaced> {
        let slots: Vec<HostSlot<'_>> = self
            .hosts
            .iter()
            .enumerate()
            .map(|(index, host)| {
                let placed: Vec<&String> = state
                    .placement
                    .iter()
                    .filter(|(model, host)| **host == index && **model != demand.model)
                    .map(|(model, _)| model)
                    .collect();
                HostSlot {
                    budget_bytes: host.spec.budget_bytes,
                    max_loaded_models: host.spec.max_loaded_models,
                    labels: &host.spec.labels,
                    catalogue: &state.catalogue[index],
                    up: state.up[index],
                    placed_bytes: placed
                        .iter()
                        .filter_map(|model| state.demands.get(*model))
                        .map(|demand| demand.footprint_bytes)
                        .sum(),
                    placed_count: placed.len(),
                }
            })
            .collect();
        choose_host(demand, &slots)
    }

    fn placement_error(&self, demand: &ModelDemand, unplaced: Unplaced) -> FleetError {
        let agent = demand.agents.first().cloned().unwrap_or_default();
        match unplaced {
            Unplaced::NoLabel(labels) => FleetError::NoLabel {
                agent,
                labels: labels.join(" and "),
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
            Unplaced::Missing { allowed } => {
                let host = &self.hosts[allowed[0]].spec;
                FleetError::Missing {
                    agent,
                    model: demand.model.clone(),
                    host: host.name.clone(),
                    url: host.url.clone(),
                }
            }
        }
    }

    /// Every host with what is placed on it and what it had resident.
    pub fn hosts(&self) -> Vec<HostView> {
        let state = self.state();
        self.hosts
            .iter()
            .enumerate()
            .map(|(index, host)| HostView {
                spec: host.spec.clone(),
                up: state.up[index],
                models: state
                    .placement
                    .iter()
                    .filter(|(_, placed)| **placed == index)
                    .map(|(model, _)| model.clone())
                    .collect(),
                resident: state.resident[index].clone(),
            })
            .collect()
    }

    /// The host each placed model lives on, by name.
    pub fn placement(&self) -> BTreeMap<String, String> {
        let state = self.state();
        state
            .placement
            .iter()
            .map(|(model, host)| (model.clone(), self.hosts[*host].spec.name.clone()))
            .collect()
    }

    /// Counts placement changes: a different value means models moved.
    pub fn version(&self) -> u64 {
        self.state().version
    }

    /// What changed (a host lost, models moved, a host back) since the last call, in words.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut self.state().notes)
    }

    /// The host a call of `model` goes to, placing a model not placed yet (a fallback) on
    /// the first host that answers and has it.
    fn host_for(&self, model: &str) -> Result<usize, BackendError> {
        let mut state = self.state();
        if let Some(&host) = state.placement.get(model) {
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
                state.placement.insert(model.to_owned(), host);
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
    /// hosts that remain; a model nothing else can serve is kept as unservable.
    fn host_failed(&self, index: usize, error: &BackendError) {
        let mut state = self.state();
        if !state.up[index] {
            return;
        }
        state.up[index] = false;
        state.resident[index].clear();
        let name = &self.hosts[index].spec.name;
        let orphans: Vec<String> = state
            .placement
            .iter()
            .filter(|(_, host)| **host == index)
            .map(|(model, _)| model.clone())
            .collect();
        let mut moved = Vec::new();
        for model in orphans {
            state.placement.remove(&model);
            let demand = state.demands.get(&model).cloned().unwrap_or(ModelDemand {
                model: model.clone(),
                footprint_bytes: 0,
                require: Vec::new(),
                prefer: Vec::new(),
                agents: Vec::new(),
            });
            match self.choose(&state, &demand) {
                Ok(host) => {
                    state.placement.insert(model.clone(), host);
                    moved.push(format!("{model} to '{}'", self.hosts[host].spec.name));
                }
                Err(unplaced) => {
                    let reason = match unplaced {
                        Unplaced::NoLabel(labels) => format!(
                            "host '{name}' stopped answering and no other host is labelled {}",
                            labels.join(" and ")
                        ),
                        Unplaced::Missing { .. } => format!(
                            "host '{name}' stopped answering and no other host it may use has it"
                        ),
                    };
                    moved.push(format!("{model} nowhere ({reason})"));
                    state.unservable.insert(model, reason);
                }
            }
        }
        state.version += 1;
        let moved = if moved.is_empty() {
            "no models to move".to_owned()
        } else {
            format!("moved {}", moved.join(", "))
        };
        let note = format!("host '{name}' stopped answering ({error}); {moved}");
        tracing::warn!("{note}");
        state.notes.push(note);
    }

    /// A host that was down answers again: it serves what is placed from now on.
    fn host_returned(&self, index: usize, resident: Vec<RunningModel>) {
        let mut state = self.state();
        state.up[index] = true;
        state.resident[index] = resident;
        // Models no host could serve may have a home again.
        let waiting: Vec<String> = state.unservable.keys().cloned().collect();
        for model in waiting {
            if state.catalogue[index].contains(&model)
                && let Some(demand) = state.demands.get(&model).cloned()
                && let Ok(host) = self.choose(&state, &demand)
            {
                state.unservable.remove(&model);
                state.placement.insert(model, host);
            }
        }
        state.version += 1;
        let note = format!(
            "host '{}' answers again; it serves what is placed from now on",
            self.hosts[index].spec.name
        );
        tracing::info!("{note}");
        state.notes.push(note);
    }

    fn is_up(&self, index: usize) -> bool {
        self.state().up[index]
    }
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
            let host = self.host_for(&request.model)?;
            match self.hosts[host].backend.chat(request, &mut *on_text).await {
                Err(error) if host_gone(&error) => self.host_failed(host, &error),
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
            match self.hosts[host]
                .backend
                .preload(model, options, keep_alive)
                .await
            {
                Err(error) if host_gone(&error) => self.host_failed(host, &error),
                answered => return answered,
            }
        }
    }

    async fn unload(&self, model: &str) -> Result<(), BackendError> {
        let host = self.host_for(model)?;
        match self.hosts[host].backend.unload(model).await {
            // A host that is gone holds nothing any more.
            Err(error) if host_gone(&error) => {
                self.host_failed(host, &error);
                Ok(())
            }
            answered => answered,
        }
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
