//! The memory section (GPU budget, server limits, residency policy) and the run limits.

use std::time::Duration;

use agentrun_memory::{LoadModeChoice, Policy};

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
    pub policy: Policy,
    /// The load mode of every agent that does not set its own.
    pub load_mode: LoadModeChoice,
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
