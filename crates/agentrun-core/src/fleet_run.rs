//! The executor's side of a run on several hosts: what each host must have, placing the
//! workflow's models once their footprints are known, and each turn's view of the hosts.

use std::collections::BTreeMap;
use std::sync::Arc;

use agentrun_memory::{AgentLabels, Fallback, Workload};
use agentrun_spec::Workflow;

use crate::backend::{BackendError, ModelBackend, ModelDetails};
use crate::event::{Event, EventSink, HostPlacement};
use crate::executor::RunError;
use crate::fleet::Fleet;
use crate::planning::Residency;
use crate::summary::{HostSummary, RunSummary};

/// What the hosts know of every model the workflow uses. A model no host has is named
/// with an agent that uses it and the host to pull it on.
pub(crate) async fn details_on_hosts(
    fleet: &Fleet,
    workflow: &Workflow,
) -> Result<BTreeMap<String, ModelDetails>, RunError> {
    let mut details = BTreeMap::new();
    for agent in &workflow.agents {
        let Some(llm) = agent.llm() else { continue };
        if details.contains_key(&llm.model) {
            continue;
        }
        match fleet.model_details(&llm.model).await {
            Ok(found) => {
                details.insert(llm.model.clone(), found);
            }
            Err(BackendError::ModelNotFound { .. }) => {
                return Err(fleet
                    .missing_everywhere(&agent.name, &llm.model, &llm.residency.require_labels)
                    .into());
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(details)
}

/// Places a workflow's models on a fleet's hosts as a run would, for `agentrun plan`: the
/// placement with, per host, what lives there, which phases force loads, and the best
/// single host's figure beside it.
pub async fn place_workflow(
    fleet: &Fleet,
    workflow: &Workflow,
    workload: &Workload,
) -> Result<agentrun_memory::Placement, RunError> {
    place(fleet, workflow, workload).await?;
    fleet
        .current()
        .ok_or_else(|| RunError::from(crate::fleet::FleetError::Unplaced))
}

/// Places the workflow's models on the hosts, with each agent's label wishes and fallback.
pub(crate) async fn place(
    fleet: &Fleet,
    workflow: &Workflow,
    workload: &Workload,
) -> Result<(), RunError> {
    let labels = workflow
        .agents
        .iter()
        .filter_map(|agent| {
            let llm = agent.llm()?;
            let residency = &llm.residency;
            (!residency.require_labels.is_empty() || !residency.prefer_labels.is_empty()).then(
                || AgentLabels {
                    agent: agent.name.clone(),
                    required: residency.require_labels.clone(),
                    preferred: residency.prefer_labels.clone(),
                },
            )
        })
        .collect();
    let fallbacks = workflow
        .agents
        .iter()
        .filter_map(|agent| {
            let llm = agent.llm()?;
            Some(Fallback {
                model: llm.model.clone(),
                fallback: llm.fallback.clone()?,
            })
        })
        .collect();
    fleet
        .place(workload, &workflow.flow.start, labels, fallbacks)
        .await?;
    Ok(())
}

/// The host each model is placed on, for the preloader's per-host queues; a model not
/// placed (yet) counts as one host of its own kind.
pub(crate) fn host_of(fleet: &Arc<Fleet>) -> crate::preloader::HostOf {
    let fleet = fleet.clone();
    Arc::new(move |model: &str| fleet.placement().remove(model).unwrap_or_default())
}

/// Before `speaker`'s turn: the planner gets the hosts as they are now (which host serves
/// the speaker's call among its model's copies), and a placement that changed since the
/// last turn (the first turn, a host lost or back) is reported.
pub(crate) fn before_turn(
    fleet: &Fleet,
    speaker: &str,
    residency: &mut Residency,
    seen: &mut Option<u64>,
    events: &EventSink,
    at_s: f64,
) {
    fleet.set_speaker(speaker);
    let hosts = fleet.hosts();
    residency.set_hosts(&hosts);
    let version = fleet.version();
    if *seen == Some(version) {
        return;
    }
    let notes = fleet.take_notes();
    let reason = if seen.is_none() && notes.is_empty() {
        fleet.current().map_or_else(String::new, |placement| {
            format!(
                "placed for the least expected load wait: {:.1} s per turn{}",
                placement.wait_seconds_per_turn,
                placement
                    .one_host
                    .as_ref()
                    .map(|one| format!(
                        " (on the best single host, '{}': {:.1} s)",
                        one.host, one.wait_seconds_per_turn
                    ))
                    .unwrap_or_default()
            )
        })
    } else {
        notes.join("; ")
    };
    *seen = Some(version);
    events.emit(Event::Placement {
        hosts: hosts
            .into_iter()
            .map(|host| HostPlacement {
                host: host.spec.name,
                url: host.spec.url,
                up: host.up,
                gpu_budget_bytes: host.spec.budget_bytes,
                models: host.models.into_iter().collect(),
            })
            .collect(),
        reason,
        at_s,
    });
}

/// Each host's part of the run: the models on it when the run ends, and the loads,
/// unloads and waits of the calls it served (a replicated model's loads count on the host
/// that did each, not on every host it is placed on).
pub(crate) fn host_summaries(fleet: &Fleet, summary: &mut RunSummary) {
    let work = fleet.work();
    for host in fleet.hosts() {
        let done = work.get(&host.spec.name).copied().unwrap_or_default();
        let part = HostSummary {
            url: host.spec.url.clone(),
            up: host.up,
            models: host.models.iter().cloned().collect(),
            loads: done.loads,
            unloads: done.unloads,
            load_wait_s: done.load_wait_s,
        };
        summary.hosts.insert(host.spec.name, part);
    }
}
