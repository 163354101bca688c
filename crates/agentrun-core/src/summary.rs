//! The run summary: what a run did, per agent and per model, from measured turns.

use std::collections::BTreeMap;

use agentrun_memory::Policy;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// The flow reached `end`.
    Completed,
    /// The turn limit was reached.
    MaxTurns,
    /// The wall-clock limit was reached.
    Timeout,
    /// The run was interrupted (Ctrl-C).
    Cancelled,
    /// The run could not go on (a server or model failure, or no edge matched).
    Failed,
}

impl RunStatus {
    /// The kebab-case name used in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::MaxTurns => "max-turns",
            RunStatus::Timeout => "timeout",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
        }
    }
}

/// Per-agent figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentSummary {
    /// Turns taken.
    pub turns: u32,
    /// Seconds spent generating (or running a command).
    pub generation_s: f64,
    /// Seconds its calls waited for model loads.
    pub load_wait_s: f64,
    /// Tokens generated.
    pub tokens: u64,
}

/// Per-model figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelSummary {
    /// Loads observed (preloads and on-demand loads).
    pub loads: u32,
    /// Unloads the executor asked for.
    pub unloads: u32,
    /// Seconds spent loading, by the server's measure.
    pub load_s: f64,
    /// Seconds turns waited for this model that some policy could have avoided.
    pub avoidable_wait_s: f64,
    /// Seconds turns waited for this model that no policy could have avoided.
    pub unavoidable_wait_s: f64,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    /// The workflow's name.
    pub workflow: String,
    /// How it ended.
    pub status: RunStatus,
    /// Why, in words.
    pub reason: String,
    /// Turns taken.
    pub turns: u32,
    /// Seconds from start to end (virtual seconds in a simulation).
    pub wall_s: f64,
    /// Seconds turns spent waiting for model loads.
    pub load_wait_s: f64,
    /// Of those, seconds some policy could have avoided.
    pub avoidable_wait_s: f64,
    /// Router answers that needed repair or fell back.
    pub router_repairs: u32,
    /// Router decisions that used the deterministic fallback.
    pub router_fallbacks: u32,
    /// The residency policy used.
    pub policy: Policy,
    /// Per agent, by name.
    pub agents: BTreeMap<String, AgentSummary>,
    /// Per model, by name.
    pub models: BTreeMap<String, ModelSummary>,
    /// Per model turn, what its context held: tokens against `num_ctx`, what was elided,
    /// dropped or summarized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<ContextTurn>,
    /// Turns whose prompt the server cut to `num_ctx`.
    #[serde(default)]
    pub context_cuts: u32,
    /// With several hosts: per host, by name, its models and the loads, unloads and waits
    /// of the calls it served (each load counted on the host that did it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, HostSummary>,
}

/// One host's part of a run on several.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostSummary {
    /// Its address.
    pub url: String,
    /// Whether it answered when the run ended.
    pub up: bool,
    /// The models placed on it when the run ended.
    pub models: Vec<String>,
    /// The loads it did (calls that loaded their model, preloads).
    pub loads: u32,
    /// The unloads sent to it.
    pub unloads: u32,
    /// Seconds calls on it waited for their model.
    pub load_wait_s: f64,
}

/// What one model turn's context held, in a [`RunSummary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContextTurn {
    /// The turn.
    pub turn: u32,
    /// The agent.
    pub agent: String,
    /// Its context.
    #[serde(flatten)]
    pub context: crate::context::ContextUse,
}
