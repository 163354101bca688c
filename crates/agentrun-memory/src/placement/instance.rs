//! The placement problem in numbers, computed once before any search: per host its load
//! times, kind and class; per item its eligible hosts, related items and cost terms.

use std::collections::HashMap;

use crate::analysis::alternating_groups;

use super::terms::{Chain, Term, terms};
use crate::budget::Budget;
use crate::error::{Error, check_number};
use crate::workload::{LoadTimes, Workload};

use super::items::{Item, Items, Overrides, build_items};
use super::{
    Fallback, MAX_RUN_TURNS, PREFERENCE_SECONDS, PlacementError, PlacementHost, PlacementInput,
};

/// A host with what the search needs of it.
#[derive(Debug, Clone)]
pub(super) struct Host {
    pub(super) name: String,
    pub(super) budget: Budget,
    /// Hosts of one kind differ at most in the items they may serve.
    pub(super) kind: usize,
    /// Hosts of one class are interchangeable while empty.
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
    /// Per item, the terms it is part of (first, in between or last).
    pub(super) item_terms: Vec<Vec<usize>>,
    /// Per phase, its items.
    pub(super) phase_items: Vec<Vec<usize>>,
    /// Whether a host may serve an item, `[item * hosts + host]`.
    eligible: Vec<bool>,
    /// Per item, the items it shares a term or a phase with, ascending.
    pub(super) related: Vec<Vec<usize>>,
    /// Per `[item * hosts + host]`, how many of the item's related items the host may serve:
    /// among empty hosts of one kind, the one that may serve most is the one to open.
    related_served: Vec<u32>,
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
        let Items {
            mut items,
            agent_item,
            agent_models,
            missing,
            substitutions,
        } = build_items(input, overrides, &phase_of)?;
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
        let mut item_terms: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
        for (index, term) in terms.iter().enumerate() {
            for item in term.items() {
                let list = &mut item_terms[item];
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
        let mut eligible = vec![false; items.len() * host_count];
        for (index, item) in items.iter().enumerate() {
            for &host in &item.eligible {
                eligible[index * host_count + host] = true;
            }
        }
        let related = related_items(&terms, &phase_items, items.len());
        let hosts = host_classes(
            input.hosts,
            &load,
            &penalty,
            &eligible,
            runner_count,
            items.len(),
        );
        let related_served = related_served(host_count, &eligible, &related);
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
            hosts,
            related_served,
            eligible,
            related,
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
            item_terms,
            phase_items,
            missing,
            substitutions,
        })
    }

    /// Seconds to load a runner on a host.
    pub(super) fn load_seconds(&self, runner: usize, host: usize) -> f64 {
        self.load[runner * self.hosts.len() + host]
    }

    /// How many of the item's related items `host` may serve.
    pub(super) fn related_served(&self, item: usize, host: usize) -> u32 {
        self.related_served[item * self.hosts.len() + host]
    }

    /// Whether a host may serve an item.
    pub(super) fn may_serve(&self, host: usize, item: usize) -> bool {
        self.eligible[item * self.hosts.len() + host]
    }

    /// The preference penalty of serving an item from a host.
    pub(super) fn penalty(&self, item: usize, host: usize) -> f64 {
        self.penalty[item * self.hosts.len() + host]
    }

    /// Whether `host` could run the whole workflow alone: its budget holds every model alone
    /// (labels and catalogue aside: a team with one machine would pull what it needs).
    pub(super) fn one_host_eligible(&self, host: usize) -> bool {
        let budget = self.hosts[host].budget;
        self.items
            .iter()
            .all(|item| self.footprints[item.runner] <= budget.gpu_bytes)
    }
}

/// Per item, the items it shares a term or a phase with: those whose hosts change what it
/// costs.
fn related_items(terms: &[Term], phase_items: &[Vec<usize>], item_count: usize) -> Vec<Vec<usize>> {
    let mut related: Vec<Vec<usize>> = vec![Vec::new(); item_count];
    for term in terms {
        let items: Vec<usize> = term.items().collect();
        for &a in &items {
            related[a].extend(items.iter().copied().filter(|&b| b != a));
        }
    }
    for items in phase_items {
        for &a in items {
            related[a].extend(items.iter().copied().filter(|&b| b != a));
        }
    }
    for list in &mut related {
        list.sort_unstable();
        list.dedup();
    }
    related
}

/// Per item and host, how many of the item's related items the host may serve.
fn related_served(host_count: usize, eligible: &[bool], related: &[Vec<usize>]) -> Vec<u32> {
    let mut served = vec![0u32; related.len() * host_count];
    for (item, related) in related.iter().enumerate() {
        for &other in related {
            let row = &eligible[other * host_count..(other + 1) * host_count];
            for (host, &may) in row.iter().enumerate() {
                served[item * host_count + host] += u32::from(may);
            }
        }
    }
    served
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

/// Per host, its class and kind. Two hosts of one *kind* have the same budget, count cap,
/// load times and preference penalties; of one *class*, they may also serve the same items.
/// Empty hosts of one class are interchangeable in any assignment.
fn host_classes(
    hosts: &[PlacementHost],
    load: &[f64],
    penalty: &[f64],
    eligible: &[bool],
    runner_count: usize,
    item_count: usize,
) -> Vec<Host> {
    let host_count = hosts.len();
    let mut kinds: HashMap<Vec<u64>, usize> = HashMap::new();
    let mut classes: HashMap<Vec<u64>, usize> = HashMap::new();
    hosts
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let mut key = vec![host.budget.gpu_bytes, host.budget.max_loaded_models as u64];
            key.extend((0..runner_count).map(|runner| load[runner * host_count + index].to_bits()));
            key.extend((0..item_count).map(|item| penalty[item * host_count + index].to_bits()));
            let next = kinds.len();
            let kind = *kinds.entry(key.clone()).or_insert(next);
            key.extend((0..item_count).map(|item| u64::from(eligible[item * host_count + index])));
            let next = classes.len();
            let class = *classes.entry(key).or_insert(next);
            Host {
                name: host.name.clone(),
                budget: host.budget,
                kind,
                class,
            }
        })
        .collect()
}
