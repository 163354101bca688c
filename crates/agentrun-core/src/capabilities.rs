//! What a workflow asks of each model, checked against what the server says the model
//! can do (`/api/show` `capabilities`) before the first turn: a model without the
//! `tools` capability would otherwise fail only at its first call, after its load.

use std::collections::BTreeMap;

use agentrun_spec::Workflow;

use crate::backend::ModelDetails;

/// An agent whose model cannot do what the workflow asks of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "agent '{agent}' needs model '{model}' to support {capability}, and the server says it \
     does not (it supports: {supported}); {fix}"
)]
pub struct MissingCapability {
    /// The agent.
    pub agent: String,
    /// Its model.
    pub model: String,
    /// The capability missing, in Ollama's word (`tools`, `thinking`, `completion`).
    pub capability: String,
    /// What the model does support, comma-separated.
    pub supported: String,
    /// What to change.
    pub fix: String,
}

/// Checks every model agent's needs against its model's capabilities. A model whose
/// server lists no capabilities (servers before Ollama 0.6.4) is not checked.
pub(crate) fn check_capabilities(
    workflow: &Workflow,
    details: &BTreeMap<String, ModelDetails>,
) -> Result<(), MissingCapability> {
    for (agent, llm) in workflow
        .agents
        .iter()
        .filter_map(|agent| Some((agent, agent.llm()?)))
    {
        let model = &llm.model;
        let Some(capabilities) = details
            .get(model)
            .map(|details| &details.capabilities)
            .filter(|capabilities| !capabilities.is_empty())
        else {
            continue;
        };
        let mut needs: Vec<(&str, String)> = vec![(
            "completion",
            "it is not a chat model (an embedding model?); give the agent a chat model".to_owned(),
        )];
        if !llm.tools.is_empty() {
            needs.push((
                "tools",
                format!(
                    "give agent '{}' a model with tool calling (`ollama show MODEL` lists \
                     `tools` under Capabilities), or remove its `tools`",
                    agent.name
                ),
            ));
        }
        if llm.think.is_some_and(|think| think.thinks()) {
            needs.push((
                "thinking",
                format!(
                    "set `think: false` on agent '{}', remove its `think`, or give it a \
                     thinking model",
                    agent.name
                ),
            ));
        }
        for (capability, fix) in needs {
            if !capabilities.iter().any(|known| known == capability) {
                return Err(MissingCapability {
                    agent: agent.name.clone(),
                    model: model.clone(),
                    capability: capability.to_owned(),
                    supported: capabilities.join(", "),
                    fix,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
