//! The memory section (GPU budget, server limits, residency policy) and the run limits.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::residency::{LoadMode, UnknownName};
use crate::size::GpuBudget;

/// What the executor plans model residency with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySpec {
    /// GPU memory available to Ollama.
    pub gpu_budget: GpuBudget,
    /// The server's `OLLAMA_MAX_LOADED_MODELS`; `None` means Ollama's default (3 per GPU).
    pub max_loaded_models: Option<u32>,
    /// The server's `OLLAMA_NUM_PARALLEL`; `None` means Ollama's default (1).
    pub num_parallel: Option<u32>,
    /// The residency policy.
    pub policy: PolicyName,
    /// The load mode of every agent that does not set its own.
    pub load_mode: LoadMode,
}

/// A residency policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyName {
    /// The planner: per-call keep_alive, preloading and ordered unloads.
    #[default]
    Smart,
    /// A fixed keep_alive per agent from `residency.keep_alive`, no preloading.
    Static,
    /// No keep_alive, no preload, no unload: Ollama decides.
    OllamaDefault,
    /// A clairvoyant reference that knows the whole run in advance (simulations only).
    Oracle,
}

impl PolicyName {
    /// Every policy, in the order reports list them.
    pub const ALL: [PolicyName; 4] = [
        PolicyName::Smart,
        PolicyName::Static,
        PolicyName::OllamaDefault,
        PolicyName::Oracle,
    ];

    /// The kebab-case name used in files and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            PolicyName::Smart => "smart",
            PolicyName::Static => "static",
            PolicyName::OllamaDefault => "ollama-default",
            PolicyName::Oracle => "oracle",
        }
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for PolicyName {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<PolicyName, UnknownName> {
        PolicyName::ALL
            .into_iter()
            .find(|policy| policy.as_str() == text)
            .ok_or_else(|| {
                UnknownName::new(
                    "policy",
                    text,
                    &["smart", "static", "ollama-default", "oracle"],
                )
            })
    }
}

/// Limits that stop a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most turns a run may take.
    pub max_turns: u32,
    /// Wall-clock limit for the whole run.
    pub timeout: Option<Duration>,
}

impl Limits {
    /// `max_turns` when the file does not say.
    pub const DEFAULT_MAX_TURNS: u32 = 100;
    /// The largest `max_turns` accepted: more is a typo, not a plan.
    pub const MAX_TURNS_CEILING: u32 = 1_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_turns: Limits::DEFAULT_MAX_TURNS,
            timeout: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_are_kebab_case_both_ways() {
        for policy in PolicyName::ALL {
            assert_eq!(policy.to_string().parse(), Ok(policy));
        }
        assert_eq!(PolicyName::OllamaDefault.to_string(), "ollama-default");
        assert_eq!(
            serde_json::to_value(PolicyName::OllamaDefault).expect("serializes"),
            serde_json::json!("ollama-default")
        );
        assert!("ollama_default".parse::<PolicyName>().is_err());
    }
}
