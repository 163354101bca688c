//! Informed priors: how long an agent's turn is expected to last before any has been measured.
//!
//! The rule, per kind of agent (documented in ARCHITECTURE.md):
//!
//! - **model agent**: the reply's expected length over the model's expected decode speed,
//!   plus the prompt's evaluation. The reply length is the mean of the workflow's
//!   `simulation.<agent>.reply_tokens` (its description of the agent; a few dozen tokens for a
//!   router, a few hundred to fifteen hundred otherwise by default), never more than the
//!   agent's `num_predict`. The decode speed is, first found: the workflow's
//!   `simulation.<agent>.tokens_per_second`, the speed measured for the model on this server
//!   (in earlier runs' turns, else by `agentrun calibrate`), or decoding's memory-bandwidth
//!   bound (`efficiency x bandwidth / weights`) on the target machine. The prompt (the role prompt and one reply as long as this one)
//!   is evaluated [`PROMPT_EVAL_SPEEDUP`] times faster than decoding.
//! - **command agent**: the mean of `simulation.<agent>.duration` (60 s by default), never
//!   more than its timeout.
//! - **human agent**: the mean of `simulation.<agent>.duration` (75 s by default).
//!
//! A measured turn replaces the prior as the run goes (the planner's running mean counts the
//! prior as one turn), and turns measured in earlier runs replace it before the run starts.

use std::fmt::Write as _;

use agentrun_spec::{AgentKind, AgentSimulation, AgentSpec};

#[cfg(test)]
mod tests;

/// Memory bandwidth of the target machine (an M4 Pro), bytes per second.
pub(crate) const TARGET_BANDWIDTH_BYTES_PER_SECOND: f64 =
    agentrun_size::hardware::MEMORY_BANDWIDTH_BYTES_PER_SECOND;

/// The share of the memory bandwidth decoding reaches: each token reads all the weights once.
pub(crate) const DECODE_EFFICIENCY: f64 = agentrun_size::hardware::DECODE_EFFICIENCY;

/// How many times faster than decoding a prompt is evaluated (batched on the GPU).
pub(crate) const PROMPT_EVAL_SPEEDUP: f64 = 20.0;

/// Decode speed assumed for a model whose size is unknown, tokens per second.
pub(crate) const UNKNOWN_MODEL_TOKENS_PER_SECOND: f64 = 20.0;

/// Characters per token of English prose and code, for a prompt's length in tokens.
const CHARS_PER_TOKEN: f64 = 4.0;

/// What is known of an agent's model before its first turn.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ModelFacts {
    /// The weights' size in bytes (0 when unknown).
    pub file_bytes: u64,
    /// The decode speed earlier runs measured for the model on this server.
    pub measured_tokens_per_second: Option<f64>,
}

/// An agent's expected turn length and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnPrior {
    /// Expected seconds of a turn once the agent's model is resident.
    pub seconds: f64,
    /// How the figure was found, for `agentrun plan`.
    pub basis: String,
}

/// The expected length of `agent`'s turns before any is measured. `behaviour` is the
/// workflow's description of the agent (its `simulation` entry, defaults filled in); `model`
/// what is known of its model (ignored for agents without one).
pub fn turn_prior(agent: &AgentSpec, behaviour: &AgentSimulation, model: ModelFacts) -> TurnPrior {
    let mean_duration_s = {
        let range = &behaviour.duration;
        (range.start().as_secs_f64() + range.end().as_secs_f64()) / 2.0
    };
    match &agent.kind {
        AgentKind::Llm(llm) => {
            let range = &behaviour.reply_tokens;
            let mut tokens = (*range.start() as f64 + *range.end() as f64) / 2.0;
            let mut basis = format!("~{tokens:.0} reply tokens");
            if let Some(limit) = llm.options.num_predict.filter(|&limit| limit > 0)
                && (limit as f64) < tokens
            {
                tokens = limit as f64;
                basis = format!("{limit} reply tokens (num_predict)");
            }
            let (speed, source) = decode_speed(behaviour, model);
            let prompt_tokens = llm.prompt.chars().count() as f64 / CHARS_PER_TOKEN + tokens;
            let seconds = tokens / speed + prompt_tokens / (speed * PROMPT_EVAL_SPEEDUP);
            let _ = write!(
                basis,
                " at {speed:.1} tokens/s ({source}) + ~{prompt_tokens:.0} prompt tokens"
            );
            TurnPrior { seconds, basis }
        }
        AgentKind::Command(command) => {
            let timeout_s = command
                .timeout
                .unwrap_or(crate::process::DEFAULT_COMMAND_TIMEOUT)
                .as_secs_f64();
            if timeout_s < mean_duration_s {
                TurnPrior {
                    seconds: timeout_s,
                    basis: "its timeout".to_owned(),
                }
            } else {
                TurnPrior {
                    seconds: mean_duration_s,
                    basis: "the mean of its simulation duration".to_owned(),
                }
            }
        }
        AgentKind::Human(_) => TurnPrior {
            seconds: mean_duration_s,
            basis: "the mean of its simulation duration".to_owned(),
        },
    }
}

/// The model's expected decode speed and where it comes from.
fn decode_speed(behaviour: &AgentSimulation, model: ModelFacts) -> (f64, &'static str) {
    if let Some(speed) = behaviour.tokens_per_second.filter(|&speed| speed > 0.0) {
        return (speed, "the workflow's simulation section");
    }
    if let Some(speed) = model
        .measured_tokens_per_second
        .filter(|&speed| speed.is_finite() && speed > 0.0)
    {
        return (speed, "measured on this server");
    }
    if model.file_bytes > 0 {
        let speed = DECODE_EFFICIENCY * TARGET_BANDWIDTH_BYTES_PER_SECOND / model.file_bytes as f64;
        return (speed, "bandwidth bound for its size");
    }
    (UNKNOWN_MODEL_TOKENS_PER_SECOND, "size unknown")
}
