//! The executor's side of a run on several hosts: what each host must have, placing the
//! workflow's models once their footprints are known, and each turn's view of the hosts.

use std::collections::BTreeMap;

use agentrun_memory::Workload;
use agentrun_spec::Workflow;

use crate::backend::{BackendError, ModelBackend, ModelDetails};
use crate::event::{Event, EventSink, HostPlacement};
use crate::executor::RunError;
use crate::fleet::{Fleet, ModelDemand};
use crate::planning::Residency;

/// What the hosts know of every model the workflow uses. A model no host has is named
/// with the agent that uses it and the host to pull it on.
pub(crate) async fn details_on_hosts(
    fleet: &Fleet,
    workflow: &Workflow,
) -> Result<BTreeMap<String, ModelDetails>, RunError> {
    let mut details = BTreeMap::new();
    for demand in demands(workflow, None) {
        match fleet.model_details(&demand.model).await {
            Ok(found) => {
                details.insert(demand.model.clone(), found);
            }
            Err(error @ BackendError::ModelNotFound { .. }) => {
                // Placement names the agent and the host the model should be pulled on.
                fleet.place(&[demand], &[]).await?;
                return Err(error.into());
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(details)
}

/// Each model the workflow's agents use, with what its agents ask of its host, in the
/// order agents appear; footprints from `workload` when there is one.
fn demands(workflow: &Workflow, workload: Option<&Workload>) -> Vec<ModelDemand> {
    let mut demands: Vec<ModelDemand> = Vec::new();
    for agent in &workflow.agents {
        let Some(llm) = agent.llm() else { continue };
        let index = match demands.iter().position(|d| d.model == llm.model) {
            Some(index) => index,
            None => {
                demands.push(ModelDemand {
                    model: llm.model.clone(),
                    footprint_bytes: workload
                        .and_then(|workload| workload.footprint_bytes(&llm.model).ok())
                        .unwrap_or(0),
                    require: Vec::new(),
                    prefer: Vec::new(),
                    agents: Vec::new(),
                });
                demands.len() - 1
            }
        };
        let demand = &mut demands[index];
        demand.agents.push(agent.name.clone());
        for label in &llm.residency.require_labels {
            if !demand.require.contains(label) {
                demand.require.push(label.clone());
            }
        }
        for label in &llm.residency.prefer_labels {
            if !demand.prefer.contains(label) {
                demand.prefer.push(label.clone());
            }
        }
    }
    demands
}

/// Places the workflow's models (and learns which hosts have its fallback models).
pub(crate) async fn place(
    fleet: &Fleet,
    workflow: &Workflow,
    workload: &Workload,
) -> Result<(), RunError> {
    let fallbacks: Vec<String> = workflow
        .agents
        .iter()
        .filter_map(|agent| agent.llm()?.fallback.clone())
        .collect();
    fleet.place(&demands(workflow, Some(workload)), &fallbacks).await?;
    Ok(())
}

/// Before a turn: the planner gets the hosts as they are now, and a placement that changed
/// since the last turn (the first turn, a host lost or back) is reported.
pub(crate) fn before_turn(
    fleet: &Fleet,
    residency: &mut Residency,
    seen: &mut Option<u64>,
    events: &EventSink,
    at_s: f64,
) {
    let hosts = fleet.hosts();
    residency.set_hosts(&hosts);
    let version = fleet.version();
    if *seen == Some(version) {
        return;
    }
    let notes = fleet.take_notes();
    let reason = if seen.is_none() && notes.is_empty() {
        "each model on the first host that has it, carries its agents' required labels and \
         fits it beside what is placed there"
            .to_owned()
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
