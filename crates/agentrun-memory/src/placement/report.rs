//! The placement as the caller reads it: hosts of each model, routes, and per host what lives
//! there and which phases force loads there; the one-host comparison; the printed form.

use std::fmt;

use crate::budget::gigabytes;

use super::cost::State;
use super::instance::Instance;
use super::{
    ForcedLoad, HostReport, HostedModel, ModelPlacement, OneHost, Placement, Route, Search,
};

/// The placement of `host_of` (a host per item), explained.
pub(super) fn build(instance: &Instance, host_of: &[usize], search: Search) -> Placement {
    let mut state = State::new(instance);
    for (item, &host) in host_of.iter().enumerate() {
        state.apply(item, Some(host));
    }
    let (wait, _) = state.total();
    let mut models: Vec<ModelPlacement> = Vec::new();
    for runner in 0..instance.footprints.len() {
        let mut hosts: Vec<usize> = instance
            .items
            .iter()
            .zip(host_of)
            .filter(|(item, _)| item.runner == runner)
            .map(|(_, &host)| host)
            .collect();
        if hosts.is_empty() {
            continue;
        }
        hosts.sort_unstable();
        hosts.dedup();
        models.push(ModelPlacement {
            model: instance.runner_names[runner].clone(),
            hosts: hosts
                .into_iter()
                .map(|host| instance.hosts[host].name.clone())
                .collect(),
        });
    }
    let routes = instance
        .agent_item
        .iter()
        .enumerate()
        .filter_map(|(agent, item)| {
            let item = (*item)?;
            Some(Route {
                agent: instance.agent_names[agent].clone(),
                model: instance.agent_models[agent].clone()?,
                host: instance.hosts[host_of[item]].name.clone(),
            })
        })
        .collect();
    Placement {
        models,
        routes,
        hosts: host_reports(&state, host_of),
        wait_seconds_per_turn: wait,
        one_host: one_host(instance),
        search,
        substitutions: instance.substitutions.clone(),
    }
}

fn host_reports(state: &State<'_>, host_of: &[usize]) -> Vec<HostReport> {
    let instance = state.instance;
    let mut reports: Vec<HostReport> = instance
        .hosts
        .iter()
        .map(|host| HostReport {
            host: host.name.clone(),
            models: Vec::new(),
            wait_seconds_per_turn: 0.0,
            forced_loads: Vec::new(),
        })
        .collect();
    for (item, &host) in host_of.iter().enumerate() {
        let spec = &instance.items[item];
        let name = &instance.runner_names[spec.runner];
        let phase = instance.phase_names[spec.phase].clone();
        let models = &mut reports[host].models;
        match models.iter_mut().find(|model| &model.model == name) {
            Some(model) => {
                if !model.phases.contains(&phase) {
                    model.phases.push(phase);
                }
            }
            None => {
                models.push(HostedModel {
                    model: name.clone(),
                    phases: vec![phase],
                    footprint_bytes: instance.footprints[spec.runner],
                });
                reports[host].wait_seconds_per_turn +=
                    instance.cold_weight * instance.load_seconds(spec.runner, host);
            }
        }
    }
    for term in 0..instance.terms.len() {
        let Some((host, _, wait)) = state.term_load(term).filter(|load| load.2 > 0.0) else {
            continue;
        };
        let spec = &instance.terms[term];
        let last = &instance.items[spec.last];
        let phase = &instance.phase_names[last.phase];
        let model = &instance.runner_names[last.runner];
        let displaced = &instance.runner_names[instance.items[spec.first].runner];
        let report = &mut reports[host];
        report.wait_seconds_per_turn += wait;
        let loads = &mut report.forced_loads;
        let entry = match loads.iter().position(|load| {
            &load.phase == phase && &load.model == model && &load.displaced == displaced
        }) {
            Some(index) => &mut loads[index],
            None => {
                loads.push(ForcedLoad {
                    phase: phase.clone(),
                    model: model.clone(),
                    displaced: displaced.clone(),
                    loads_per_100_turns: 0.0,
                    wait_seconds_per_100_turns: 0.0,
                });
                loads.last_mut().expect("just pushed")
            }
        };
        entry.loads_per_100_turns += 100.0 * spec.rate;
        entry.wait_seconds_per_100_turns += 100.0 * wait;
    }
    for report in &mut reports {
        report.forced_loads.sort_by(|a, b| {
            b.wait_seconds_per_100_turns
                .total_cmp(&a.wait_seconds_per_100_turns)
                .then_with(|| a.phase.cmp(&b.phase))
                .then_with(|| a.model.cmp(&b.model))
        });
    }
    reports
}

/// The best host to run everything on, among the hosts that hold every model alone
/// (labels and catalogues aside: a team with one machine would pull what it needs there).
fn one_host(instance: &Instance) -> Option<OneHost> {
    let mut best: Option<OneHost> = None;
    let mut by_class: Vec<(usize, f64)> = Vec::new();
    for (host, spec) in instance.hosts.iter().enumerate() {
        if !instance.one_host_eligible(host) {
            continue;
        }
        let wait = match by_class.iter().find(|(class, _)| *class == spec.class) {
            Some(&(_, wait)) => wait,
            None => {
                let mut state = State::new(instance);
                for item in 0..instance.items.len() {
                    state.apply(item, Some(host));
                }
                let wait = state.total().0;
                by_class.push((spec.class, wait));
                wait
            }
        };
        if best
            .as_ref()
            .is_none_or(|best| wait < best.wait_seconds_per_turn)
        {
            best = Some(OneHost {
                host: spec.name.clone(),
                wait_seconds_per_turn: wait,
            });
        }
    }
    best
}

/// The printed placement: per host its models, wait and forced loads; then the totals.
pub(super) fn write(placement: &Placement, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for host in &placement.hosts {
        write!(f, "host {}:", host.host)?;
        if host.models.is_empty() {
            writeln!(f, " nothing placed")?;
            continue;
        }
        writeln!(
            f,
            " load wait {:.1} s per 100 turns",
            100.0 * host.wait_seconds_per_turn
        )?;
        for model in &host.models {
            writeln!(
                f,
                "  {} ({}) for {}",
                model.model,
                gigabytes(model.footprint_bytes),
                model.phases.join("; ")
            )?;
        }
        for load in &host.forced_loads {
            writeln!(
                f,
                "  phase {} loads {} after {}: {:.1} loads, {:.1} s waited per 100 turns",
                load.phase,
                load.model,
                load.displaced,
                load.loads_per_100_turns,
                load.wait_seconds_per_100_turns
            )?;
        }
    }
    for substitution in &placement.substitutions {
        writeln!(
            f,
            "{} is served by its fallback {}",
            substitution.model, substitution.fallback
        )?;
    }
    write!(
        f,
        "expected load wait: {:.1} s per 100 turns",
        100.0 * placement.wait_seconds_per_turn
    )?;
    match &placement.one_host {
        Some(one) => writeln!(
            f,
            "; on {} alone: {:.1} s per 100 turns (saves {:.1} s)",
            one.host,
            100.0 * one.wait_seconds_per_turn,
            100.0 * (one.wait_seconds_per_turn - placement.wait_seconds_per_turn).max(0.0)
        ),
        None => writeln!(f, "; no single host holds every model"),
    }
}
