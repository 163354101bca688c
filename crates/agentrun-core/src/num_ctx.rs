//! One `num_ctx` per set of weights: every agent on a model sends the largest `num_ctx` any of
//! them asks for.
//!
//! `num_ctx` is a load-time option: Ollama reloads a resident model whose next call asks for
//! another context length. Agents sharing a model therefore must agree, and the largest is the
//! only value with which every agent's conversation fits. Names on the same weights (the
//! same digest) share one runner in Ollama, so they are one group. An agent that names no
//! `num_ctx` asks for [`DEFAULT_NUM_CTX`], capped at the model's trained context.

use std::collections::BTreeMap;

use agentrun_spec::{LlmAgentSpec, Workflow};

use crate::backend::ModelDetails;

#[cfg(test)]
mod tests;

/// The context length an agent asks for when it names none: Ollama's own default depends on
/// the GPU's size, so an explicit value keeps plans predictable.
pub const DEFAULT_NUM_CTX: u64 = 8192;

/// Agents on one set of weights that ask for different context lengths, and the one they all
/// send.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedContext {
    /// The model names on these weights.
    pub models: Vec<String>,
    /// Each agent with the `num_ctx` it asks for.
    pub agents: Vec<(String, u64)>,
    /// The `num_ctx` every call sends: the largest asked for.
    pub num_ctx: u64,
}

/// The `num_ctx` every call of each model sends, by model name.
pub fn shared_num_ctx(
    workflow: &Workflow,
    details: &BTreeMap<String, ModelDetails>,
) -> BTreeMap<String, u64> {
    let mut by_weights: BTreeMap<String, u64> = BTreeMap::new();
    for spec in workflow.agents.iter().filter_map(|agent| agent.llm()) {
        let asked = asked_num_ctx(spec, details.get(&spec.model));
        let largest = by_weights
            .entry(weights_of(&spec.model, details))
            .or_default();
        *largest = (*largest).max(asked);
    }
    workflow
        .agents
        .iter()
        .filter_map(|agent| agent.llm())
        .map(|spec| {
            let num_ctx = by_weights[&weights_of(&spec.model, details)];
            (spec.model.clone(), num_ctx)
        })
        .collect()
}

/// The groups of agents whose own `num_ctx` differ, with the value they all send; for
/// `agentrun plan`.
pub fn shared_contexts(
    workflow: &Workflow,
    details: &BTreeMap<String, ModelDetails>,
) -> Vec<SharedContext> {
    let sent = shared_num_ctx(workflow, details);
    let mut groups: BTreeMap<String, SharedContext> = BTreeMap::new();
    for agent in &workflow.agents {
        let Some(spec) = agent.llm() else {
            continue;
        };
        let group = groups
            .entry(weights_of(&spec.model, details))
            .or_insert_with(|| SharedContext {
                models: Vec::new(),
                agents: Vec::new(),
                num_ctx: sent[&spec.model],
            });
        if !group.models.contains(&spec.model) {
            group.models.push(spec.model.clone());
        }
        let asked = asked_num_ctx(spec, details.get(&spec.model));
        group.agents.push((agent.name.clone(), asked));
    }
    groups
        .into_values()
        .filter(|group| {
            group
                .agents
                .iter()
                .any(|(_, asked)| *asked != group.num_ctx)
        })
        .collect()
}

/// The context length an agent asks for: its own, else the default capped at the model's
/// trained context.
pub(crate) fn asked_num_ctx(spec: &LlmAgentSpec, details: Option<&ModelDetails>) -> u64 {
    let trained = details
        .and_then(|d| d.context_length)
        .unwrap_or(DEFAULT_NUM_CTX);
    spec.options.num_ctx.unwrap_or(DEFAULT_NUM_CTX.min(trained))
}

/// The identity of a model's weights: its digest when the server gave one, else its name.
fn weights_of(model: &str, details: &BTreeMap<String, ModelDetails>) -> String {
    details
        .get(model)
        .and_then(|d| d.digest.clone())
        .unwrap_or_else(|| format!("name:{model}"))
}
