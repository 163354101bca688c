//! The items placed (a model within a phase) and the hard rules that decide which hosts may
//! serve each: catalogue, required labels, size; and what a re-placement after a lost host
//! changes (pinned items, fallbacks).

use std::collections::{BTreeSet, HashSet};

use crate::workload::Workload;

use super::{AgentLabels, Fallback, Placement, PlacementError, PlacementHost, PlacementInput};

/// The items of a problem and what the routes need of them.
pub(super) struct Items {
    pub(super) items: Vec<Item>,
    /// Per agent, its item.
    pub(super) agent_item: Vec<Option<usize>>,
    /// Per agent, the model name its calls use.
    pub(super) agent_models: Vec<Option<String>>,
    /// Agents (with their model) whose model no eligible host lists.
    pub(super) missing: Vec<(usize, String)>,
    /// Models replaced by their fallback.
    pub(super) substitutions: Vec<Fallback>,
}

/// Builds the items agent by agent (`phase_of` gives each agent's phase), checking the hard
/// rules as it goes.
pub(super) fn build_items(
    input: &PlacementInput<'_>,
    overrides: &Overrides,
    phase_of: &[usize],
) -> Result<Items, PlacementError> {
    let workload = input.workload;
    let wishes = agent_wishes(workload, input.labels)?;
    let mut builder = ItemBuilder {
        workload,
        hosts: input.hosts,
        overrides,
        wishes: &wishes,
        catalogues: catalogues(input.hosts),
        items: Vec::new(),
        agent_item: vec![None; workload.agents().len()],
        agent_models: vec![None; workload.agents().len()],
        missing: Vec::new(),
        substitutions: Vec::new(),
    };
    for (agent, &phase) in phase_of.iter().enumerate() {
        builder.add(agent, phase)?;
    }
    Ok(Items {
        items: builder.items,
        agent_item: builder.agent_item,
        agent_models: builder.agent_models,
        missing: builder.missing,
        substitutions: builder.substitutions,
    })
}

/// What a re-placement changes in the problem; empty for a first placement.
#[derive(Debug, Clone, Default)]
pub(super) struct Overrides {
    /// The host that stopped answering.
    lost: Option<usize>,
    /// Per agent, the host its calls go to now.
    agent_host: Vec<Option<usize>>,
    /// Per agent, the runner it calls now, when a fallback replaced its model.
    agent_runner: Vec<Option<usize>>,
    /// Runner to fallback runner.
    fallbacks: Vec<(usize, usize)>,
}

impl Overrides {
    pub(super) fn for_failover(
        input: &PlacementInput<'_>,
        current: &Placement,
        lost: &str,
        fallbacks: &[Fallback],
    ) -> Result<Overrides, PlacementError> {
        let workload = input.workload;
        let host_index = |name: &str| input.hosts.iter().position(|host| host.name == name);
        let mut overrides = Overrides {
            lost: host_index(lost),
            agent_host: vec![None; workload.agents().len()],
            agent_runner: vec![None; workload.agents().len()],
            fallbacks: Vec::new(),
        };
        for route in &current.routes {
            let agent = workload
                .agent_id(&route.agent)
                .map_err(PlacementError::Workload)?;
            overrides.agent_host[agent] = Some(
                host_index(&route.host)
                    .ok_or_else(|| PlacementError::UnknownHost(route.host.clone()))?,
            );
            let runner = workload.runner_of_model(&route.model)?;
            if Some(runner) != workload.agent_runner[agent] {
                overrides.agent_runner[agent] = Some(runner);
            }
        }
        for fallback in fallbacks {
            let from = workload.runner_of_model(&fallback.model)?;
            let to = workload.runner_of_model(&fallback.fallback)?;
            overrides.fallbacks.push((from, to));
        }
        Ok(overrides)
    }
}

/// A model (runner) within one phase, served by one host.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) runner: usize,
    pub(super) phase: usize,
    pub(super) agents: Vec<usize>,
    /// Labels every serving host must have.
    required: BTreeSet<String>,
    /// Preferred labels, once per agent that prefers them.
    pub(super) preferred: Vec<String>,
    /// Hosts that may serve it, in the caller's order.
    pub(super) eligible: Vec<usize>,
    /// The host it must stay on (a re-placement keeps what the lost host did not hold).
    pub(super) pinned: Option<usize>,
    /// How much wait hangs on it: the search places heavier items first.
    pub(super) weight: f64,
}

/// An agent's required labels (sorted) and preferred labels.
type Wishes = (BTreeSet<String>, Vec<String>);

/// Per agent, its required labels (sorted) and preferred labels.
fn agent_wishes(
    workload: &Workload,
    labels: &[AgentLabels],
) -> Result<Vec<Wishes>, PlacementError> {
    let mut wishes = vec![(BTreeSet::new(), Vec::new()); workload.agents().len()];
    for wish in labels {
        let agent = workload
            .agent_id(&wish.agent)
            .map_err(|_| PlacementError::UnknownAgent(wish.agent.clone()))?;
        wishes[agent].0.extend(wish.required.iter().cloned());
        wishes[agent].1.extend(wish.preferred.iter().cloned());
    }
    Ok(wishes)
}

/// A model name as catalogues compare it: `name` and `name:latest` are one model.
fn canonical(name: &str) -> &str {
    name.strip_suffix(":latest").unwrap_or(name)
}

/// Per host, the model names its `/api/tags` lists, canonical.
fn catalogues(hosts: &[PlacementHost]) -> Vec<HashSet<&str>> {
    hosts
        .iter()
        .map(|host| host.models.iter().map(|name| canonical(name)).collect())
        .collect()
}

/// Builds the items agent by agent, checking the hard rules as it goes.
struct ItemBuilder<'a> {
    workload: &'a Workload,
    hosts: &'a [PlacementHost],
    overrides: &'a Overrides,
    wishes: &'a [Wishes],
    catalogues: Vec<HashSet<&'a str>>,
    items: Vec<Item>,
    agent_item: Vec<Option<usize>>,
    agent_models: Vec<Option<String>>,
    missing: Vec<(usize, String)>,
    substitutions: Vec<Fallback>,
}

impl ItemBuilder<'_> {
    fn add(&mut self, agent: usize, phase: usize) -> Result<(), PlacementError> {
        let workload = self.workload;
        let overrides = self.overrides;
        let Some(original) = workload.agent_runner[agent] else {
            return Ok(());
        };
        let mut runner = overrides
            .agent_runner
            .get(agent)
            .copied()
            .flatten()
            .unwrap_or(original);
        let (required, preferred) = &self.wishes[agent];
        let current_host = overrides.agent_host.get(agent).copied().flatten();
        let pinned = current_host.filter(|&host| Some(host) != overrides.lost);
        let mut model = self.model_name(agent, runner);
        let mut eligible = match pinned {
            Some(host) => vec![host],
            None => self.eligible(agent, runner, &model, required)?,
        };
        if eligible.is_empty() {
            // Only a re-placement gets here: `eligible` reports the rules' errors otherwise.
            let fallback = overrides
                .fallbacks
                .iter()
                .find(|(from, _)| *from == runner)
                .map(|&(_, to)| to);
            let no_host = |fallback: Option<String>, reason: String| PlacementError::NoHostLeft {
                lost: overrides
                    .lost
                    .map(|host| self.hosts[host].name.clone())
                    .unwrap_or_default(),
                agent: workload.agents()[agent].name.clone(),
                model: model.clone(),
                fallback,
                reason,
            };
            let Some(fallback) = fallback else {
                return Err(no_host(None, self.why_none(runner, &model, required)));
            };
            let fallback_name = workload.runners[fallback].name.clone();
            let candidates = self.eligible(agent, fallback, &fallback_name, required)?;
            if candidates.is_empty() {
                let reason = self.why_none(fallback, &fallback_name, required);
                return Err(no_host(Some(fallback_name), reason));
            }
            let substitution = Fallback {
                model: workload.runners[runner].name.clone(),
                fallback: fallback_name.clone(),
            };
            if !self.substitutions.contains(&substitution) {
                self.substitutions.push(substitution);
            }
            runner = fallback;
            model = fallback_name;
            eligible = candidates;
        }
        let existing = self.items.iter().position(|item| {
            item.runner == runner
                && item.phase == phase
                && &item.required == required
                && item.pinned == pinned
                && item.eligible == eligible
        });
        let index = match existing {
            Some(index) => index,
            None => {
                self.items.push(Item {
                    runner,
                    phase,
                    agents: Vec::new(),
                    required: required.clone(),
                    preferred: Vec::new(),
                    eligible,
                    pinned,
                    weight: 0.0,
                });
                self.items.len() - 1
            }
        };
        let item = &mut self.items[index];
        item.agents.push(agent);
        item.preferred.extend(preferred.iter().cloned());
        self.agent_item[agent] = Some(index);
        self.agent_models[agent] = Some(model);
        Ok(())
    }

    /// The model name an agent calls on a runner: its own name for its own model, else the
    /// runner's first name.
    fn model_name(&self, agent: usize, runner: usize) -> String {
        let workload = self.workload;
        match &workload.agents()[agent].model {
            Some(name) if workload.runner_named(name) == Some(runner) => name.clone(),
            _ => workload.runners[runner].name.clone(),
        }
    }

    /// The hosts that may serve `runner` for `agent`. During a re-placement an empty list
    /// means "none remains"; in a first placement the rules' errors are returned instead,
    /// except a model no host lists, which is recorded in `missing` with the catalogue
    /// waived, so the search can name the host that should pull it.
    fn eligible(
        &mut self,
        agent: usize,
        runner: usize,
        model: &str,
        required: &BTreeSet<String>,
    ) -> Result<Vec<usize>, PlacementError> {
        let workload = self.workload;
        let failover = self.overrides.lost.is_some();
        let alive = |host: &usize| Some(*host) != self.overrides.lost;
        let labelled: Vec<usize> = (0..self.hosts.len())
            .filter(alive)
            .filter(|&host| {
                required
                    .iter()
                    .all(|label| self.hosts[host].labels.contains(label))
            })
            .collect();
        if labelled.is_empty() && !failover {
            return Err(PlacementError::LabelUnsatisfied {
                agent: workload.agents()[agent].name.clone(),
                required: required.iter().cloned().collect(),
            });
        }
        let footprint = workload.runners[runner].footprint_bytes;
        let roomy: Vec<usize> = labelled
            .iter()
            .copied()
            .filter(|&host| footprint <= self.hosts[host].budget.gpu_bytes)
            .collect();
        if roomy.is_empty() && !failover {
            let largest = labelled
                .iter()
                .copied()
                .max_by(|&a, &b| {
                    let gpu = |host: usize| self.hosts[host].budget.gpu_bytes;
                    gpu(a).cmp(&gpu(b)).then(b.cmp(&a))
                })
                .expect("some host has the labels");
            return Err(PlacementError::ModelTooBig {
                model: model.to_owned(),
                footprint_bytes: footprint,
                host: self.hosts[largest].name.clone(),
                largest_gpu_bytes: self.hosts[largest].budget.gpu_bytes,
            });
        }
        let listed: Vec<usize> = roomy
            .iter()
            .copied()
            .filter(|&host| self.catalogues[host].contains(canonical(model)))
            .collect();
        if listed.is_empty() && !failover {
            self.missing.push((agent, model.to_owned()));
            return Ok(roomy);
        }
        Ok(listed)
    }

    /// Why no remaining host may serve a runner, for the failover error.
    fn why_none(&self, runner: usize, model: &str, required: &BTreeSet<String>) -> String {
        let alive: Vec<&PlacementHost> = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(index, _)| Some(*index) != self.overrides.lost)
            .map(|(_, host)| host)
            .collect();
        if alive.is_empty() {
            return "no host remains".to_owned();
        }
        let labelled: Vec<&&PlacementHost> = alive
            .iter()
            .filter(|host| required.iter().all(|label| host.labels.contains(label)))
            .collect();
        if labelled.is_empty() {
            let labels: Vec<&str> = required.iter().map(String::as_str).collect();
            return format!("no remaining host has the labels {}", labels.join(", "));
        }
        let footprint = self.workload.runners[runner].footprint_bytes;
        if labelled
            .iter()
            .all(|host| footprint > host.budget.gpu_bytes)
        {
            return format!(
                "it needs {}, more than the GPU budget of every remaining host",
                crate::budget::gigabytes(footprint)
            );
        }
        let names: Vec<&str> = labelled.iter().map(|host| host.name.as_str()).collect();
        format!(
            "no remaining host lists it; run `ollama pull {model}` on one of: {}",
            names.join(", ")
        )
    }
}
