//! What `agentrun plan` shows for each fan-out of a workflow: how the planner would run its
//! branches (at once, in co-resident groups or one after the other), the estimates of each
//! option and why, made the same way the executor decides at the fan-out.

use std::collections::BTreeMap;

use agentrun_memory::{DecodeBytes, Error, FanOutPlan, Workload};
use agentrun_spec::{EdgeTarget, Workflow};

use crate::backend::{ModelDetails, RunningModel};
use crate::fan_out::FanOutPlanner;

/// One fan-out of a workflow and the planner's choice for it.
#[derive(Debug, Clone)]
pub struct FanOutPreview {
    /// The agent whose turn fans out.
    pub from: String,
    /// The first agent of each branch, in the workflow's order (the plan's groups index it).
    pub branches: Vec<String>,
    /// The join the branches meet at, if the workflow has one.
    pub join: Option<String>,
    /// The model taken to be resident when the branches start: the one of the agent that
    /// fans out, which has just spoken.
    pub resident: Option<String>,
    /// The decision, with every option's wall time and load wait.
    pub plan: FanOutPlan,
}

/// The planner's choice at every fan-out of `workflow` (in the order of its edges), on the
/// server whose models are `details`, with the estimates of `workload`.
pub fn preview_fan_outs(
    workflow: &Workflow,
    details: &BTreeMap<String, ModelDetails>,
    workload: &Workload,
) -> Result<Vec<FanOutPreview>, Error> {
    let planner = FanOutPlanner::new(workflow, details);
    let mut previews = Vec::new();
    for edge in &workflow.flow.edges {
        let EdgeTarget::Branches(branches) = &edge.to else {
            continue;
        };
        let no_decode = DecodeBytes {
            weights_per_token: 0.0,
            slot_per_token: 0.0,
        };
        // The runner's name and footprint, as the branches' models are named.
        let resident_model = workload.fan_out_branch(&edge.from, no_decode)?.model;
        let running: Vec<RunningModel> = resident_model
            .iter()
            .map(|model| RunningModel {
                name: model.name.clone(),
                size_bytes: model.footprint_bytes,
                size_vram_bytes: model.footprint_bytes,
                expires_at: None,
                context_length: None,
            })
            .collect();
        let starts: Vec<&str> = branches.iter().map(String::as_str).collect();
        let models: Vec<Option<&str>> = branches
            .iter()
            .map(|branch| {
                workflow
                    .agents
                    .iter()
                    .find(|agent| agent.name == *branch)
                    .and_then(|agent| agent.model())
            })
            .collect();
        let plan = planner.plan(workload, &starts, &models, &running)?;
        previews.push(FanOutPreview {
            from: edge.from.clone(),
            branches: branches.clone(),
            join: workflow.flow.join_of(&edge.from, branches),
            resident: resident_model.map(|model| model.name),
            plan,
        });
    }
    Ok(previews)
}
