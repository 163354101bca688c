//! The placement problem in numbers: items, hosts, load times, eligibility and the cost terms
//! drawn from the conversation graph, computed once before any search.

use std::collections::{BTreeSet, HashMap};

use crate::analysis::alternating_groups;

use super::terms::{Chain, Term, terms};
use crate::budget::Budget;
use crate::error::{Error, check_number};
use crate::workload::{LoadTimes, Workload};

use super::{
    AgentLabels, Fallback, MAX_RUN_TURNS, PREFERENCE_SECONDS, Placement, PlacementError,
    PlacementHost, PlacementInput,
};

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
    preferred: Vec<String>,
    /// Hosts that may serve it, in the caller's order.
    pub(super) eligible: Vec<usize>,
    /// The host it must stay on (a re-placement keeps what the lost host did not hold).
    pub(super) pinned: Option<usize>,
    /// How much wait hangs on it: the search places heavier items first.
    pub(super) weight: f64,
}

/// A host with what the search needs of it.
#[derive(Debug, Clone)]
pub(super) struct Host {
    pub(super) name: String,
    pub(super) budget: Budget,
    /// Hosts with the same class are interchangeable while empty.
    pub(super) class: usize,
}

/// The placement problem, ready for search.
#[derive(Debug, Clone)]
pub(super) struct Instance {
    pub(super) runner_names: Vec<String>,
    pub(super) footprints: Vec<u64>,
    pub(super) phase_names: Vec<String>,
    pub(super) items: Vec<Item>,
    pub(super) hosts: Vec<Host>,
    /// Per agent, its item.
    pub(super) agent_item: Vec<Option<usize>>,
    pub(super) agent_names: Vec<String>,
    /// Per agent with a model, the model name its calls use (its fallback's after a
    /// substitution).
    pub(super) agent_models: Vec<Option<String>>,
    /// Load seconds, `[runner * hosts + host]`.
    load: Vec<f64>,
    /// Preference penalty, `[item * hosts + host]`.
    penalty: Vec<f64>,
    /// The cost of a first load per second of load time: one over the run length in turns.
    pub(super) cold_weight: f64,
    pub(super) terms: Vec<Term>,
    /// Per phase, the terms whose conflict tests read that phase's models on a host: the
    /// terms of every item of the phase, so a move of an item re-prices exactly these.
    pub(super) phase_terms: Vec<Vec<usize>>,
    /// Per phase, its items.
    pub(super) phase_items: Vec<Vec<usize>>,
    /// Agents (with the model they call) whose model no eligible host lists: the catalogue
    /// rule was waived for their items so the search can say where to pull the model.
    pub(super) missing: Vec<(usize, String)>,
    /// Models replaced by their fallback.
    pub(super) substitutions: Vec<Fallback>,
}

impl Instance {
    pub(super) fn new(
        input: &PlacementInput<'_>,
        overrides: &Overrides,
    ) -> Result<Instance, PlacementError> {
        let workload = input.workload;
        check_hosts(input.hosts)?;
        let start = workload.agent_id(input.start)?;
        let wishes = agent_wishes(workload, input.labels)?;
        let runner_count = workload.runners.len();
        let host_count = input.hosts.len();
        let mut load = vec![0.0; runner_count * host_count];
        for (host_index, host) in input.hosts.iter().enumerate() {
            for runner in 0..runner_count {
                load[runner * host_count + host_index] = load_seconds(workload, host, runner)?;
            }
        }
        let groups = alternating_groups(workload);
        let mut phase_of = vec![0; workload.agents().len()];
        for (phase, agents) in groups.iter().enumerate() {
            for &agent in agents {
                phase_of[agent] = phase;
            }
        }
        let phase_names = groups
            .iter()
            .map(|agents| {
                agents
                    .iter()
                    .map(|&agent| workload.agents()[agent].name.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect();
        let mut builder = ItemBuilder {
            workload,
            hosts: input.hosts,
            overrides,
            wishes: &wishes,
            items: Vec::new(),
            agent_item: vec![None; workload.agents().len()],
            agent_models: vec![None; workload.agents().len()],
            missing: Vec::new(),
            substitutions: Vec::new(),
        };
        for (agent, &phase) in phase_of.iter().enumerate() {
            builder.add(agent, phase)?;
        }
        let ItemBuilder {
            mut items,
            agent_item,
            agent_models,
            missing,
            substitutions,
            ..
        } = builder;
        let mut penalty = vec![0.0; items.len() * host_count];
        for (index, item) in items.iter().enumerate() {
            for (host_index, host) in input.hosts.iter().enumerate() {
                let misses = item
                    .preferred
                    .iter()
                    .filter(|label| !host.labels.contains(label))
                    .count();
                penalty[index * host_count + host_index] = misses as f64 * PREFERENCE_SECONDS;
            }
        }
        let chain = Chain::new(workload, start);
        let longest_load: Vec<f64> = (0..runner_count)
            .map(|runner| {
                (0..host_count)
                    .map(|host| load[runner * host_count + host])
                    .fold(0.0, f64::max)
            })
            .collect();
        let terms = terms(workload, &chain, &agent_item, &items, &longest_load);
        let mut phase_terms: Vec<Vec<usize>> = vec![Vec::new(); groups.len()];
        for (index, term) in terms.iter().enumerate() {
            for item in term.items() {
                let list = &mut phase_terms[items[item].phase];
                if list.last() != Some(&index) {
                    list.push(index);
                }
            }
        }
        let mut phase_items = vec![Vec::new(); groups.len()];
        for (index, item) in items.iter().enumerate() {
            phase_items[item.phase].push(index);
        }
        for term in &terms {
            let weight = term.rate * longest_load[items[term.last].runner];
            items[term.first].weight += weight;
            items[term.last].weight += weight;
        }
        let run_turns = if chain.end_rate > 0.0 {
            (1.0 / chain.end_rate).min(MAX_RUN_TURNS)
        } else {
            MAX_RUN_TURNS
        };
        Ok(Instance {
            runner_names: workload
                .runners
                .iter()
                .map(|runner| runner.name.clone())
                .collect(),
            footprints: workload
                .runners
                .iter()
                .map(|runner| runner.footprint_bytes)
                .collect(),
            phase_names,
            items,
            hosts: host_classes(input.hosts, &load, runner_count),
            agent_item,
            agent_names: workload
                .agents()
                .iter()
                .map(|agent| agent.name.clone())
                .collect(),
            agent_models,
            load,
            penalty,
            cold_weight: 1.0 / run_turns.max(1.0),
            terms,
            phase_terms,
            phase_items,
            missing,
            substitutions,
        })
    }

    /// Seconds to load a runner on a host.
    pub(super) fn load_seconds(&self, runner: usize, host: usize) -> f64 {
        self.load[runner * self.hosts.len() + host]
    }

    /// The preference penalty of serving an item from a host.
    pub(super) fn penalty(&self, item: usize, host: usize) -> f64 {
        self.penalty[item * self.hosts.len() + host]
    }

    /// The same problem with every host made eligible for every item whose model fits it
    /// alone and whose labels it has, and the catalogue ignored: for the one-host figure.
    pub(super) fn one_host_eligible(&self, host: usize) -> bool {
        let budget = self.hosts[host].budget;
        self.items
            .iter()
            .all(|item| self.footprints[item.runner] <= budget.gpu_bytes)
    }
}

fn check_hosts(hosts: &[PlacementHost]) -> Result<(), PlacementError> {
    if hosts.is_empty() {
        return Err(PlacementError::NoHosts);
    }
    for (index, host) in hosts.iter().enumerate() {
        if hosts[..index].iter().any(|other| other.name == host.name) {
            return Err(PlacementError::DuplicateHost(host.name.clone()));
        }
        if host.budget.max_loaded_models == 0 {
            return Err(PlacementError::NoModelSlots(host.name.clone()));
        }
        for (model, times) in &host.load_speed.measured {
            check_number(
                || {
                    format!(
                        "measured mmap load seconds of '{model}' on host '{}'",
                        host.name
                    )
                },
                times.mmap_seconds,
            )?;
            check_number(
                || {
                    format!(
                        "measured no-mmap load seconds of '{model}' on host '{}'",
                        host.name
                    )
                },
                times.no_mmap_seconds,
            )?;
        }
        if let Some(bandwidth) = host.load_speed.bandwidth {
            check_number(
                || format!("fixed load seconds of host '{}'", host.name),
                bandwidth.fixed_seconds,
            )?;
            for (what, rate) in [
                ("mmap", bandwidth.mmap_bytes_per_second),
                ("no-mmap", bandwidth.no_mmap_bytes_per_second),
            ] {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(Error::InvalidNumber {
                        what: format!(
                            "{what} load bandwidth of host '{}' (must be > 0)",
                            host.name
                        ),
                        value: rate,
                    }
                    .into());
                }
            }
        }
    }
    Ok(())
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

/// The seconds a host takes to load a runner in the runner's load mode: measured on the
/// host, else from its bandwidth, else the workload's estimate.
fn load_seconds(workload: &Workload, host: &PlacementHost, runner: usize) -> Result<f64, Error> {
    let measured = host
        .load_speed
        .measured
        .iter()
        .find(|(model, _)| workload.runner_named(model) == Some(runner))
        .map(|(_, times)| *times);
    let spec = &workload.runners[runner];
    let times = measured.unwrap_or_else(|| match host.load_speed.bandwidth {
        Some(bandwidth) => LoadTimes::from_bandwidth(
            spec.footprint_bytes,
            bandwidth.fixed_seconds,
            bandwidth.mmap_bytes_per_second,
            bandwidth.no_mmap_bytes_per_second,
        ),
        None => spec.load_times,
    });
    let seconds = match spec.load_mode.fixed() {
        Some(mode) => times.seconds(mode),
        None => times.mmap_seconds.min(times.no_mmap_seconds),
    };
    check_number(
        || format!("load seconds of '{}' on host '{}'", spec.name, host.name),
        seconds,
    )
}

/// Whether a host's catalogue lists a model name (`name` and `name:latest` are one model).
pub(super) fn lists(host: &PlacementHost, model: &str) -> bool {
    let canonical = |name: &str| name.strip_suffix(":latest").unwrap_or(name).to_owned();
    let wanted = canonical(model);
    host.models.iter().any(|name| canonical(name) == wanted)
}

/// Builds the items agent by agent, checking the hard rules as it goes.
struct ItemBuilder<'a> {
    workload: &'a Workload,
    hosts: &'a [PlacementHost],
    overrides: &'a Overrides,
    wishes: &'a [Wishes],
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
            .filter(|&host| lists(&self.hosts[host], model))
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

/// Hosts with a class each: empty hosts of one class are interchangeable, so the search
/// tries only the first.
fn host_classes(hosts: &[PlacementHost], load: &[f64], runner_count: usize) -> Vec<Host> {
    let host_count = hosts.len();
    let mut keys: HashMap<Vec<u64>, usize> = HashMap::new();
    hosts
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let mut key = vec![host.budget.gpu_bytes, host.budget.max_loaded_models as u64];
            key.extend((0..runner_count).map(|runner| load[runner * host_count + index].to_bits()));
            let mut labels: Vec<&String> = host.labels.iter().collect();
            labels.sort();
            labels.dedup();
            let mut models: Vec<&str> = host
                .models
                .iter()
                .map(|name| name.strip_suffix(":latest").unwrap_or(name))
                .collect();
            models.sort_unstable();
            models.dedup();
            // Labels and catalogue enter the key through a stable hash of their text.
            for text in labels
                .iter()
                .map(|label| label.as_str())
                .chain([""])
                .chain(models)
            {
                key.push(fnv(text));
            }
            let next = keys.len();
            let class = *keys.entry(key).or_insert(next);
            Host {
                name: host.name.clone(),
                budget: host.budget,
                class,
            }
        })
        .collect()
}

/// FNV-1a: a fixed hash, so classes do not depend on a random seed. A collision could only
/// merge two hosts' classes, which the search guards against by checking eligibility.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
