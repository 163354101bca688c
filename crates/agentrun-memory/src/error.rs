//! The errors a caller can get from the planner: every one names the bad input.

/// Why the planner rejected its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two agents share a name.
    #[error("agent '{0}' is defined twice")]
    DuplicateAgent(String),
    /// Two models share a name.
    #[error("model '{0}' is defined twice")]
    DuplicateModel(String),
    /// A name that is not an agent of the workload.
    #[error("unknown agent '{0}'")]
    UnknownAgent(String),
    /// A name that is not a model of the workload.
    #[error("unknown model '{0}'")]
    UnknownModel(String),
    /// An agent names a model the workload does not have.
    #[error("agent '{agent}' uses unknown model '{model}'")]
    AgentModelUnknown {
        /// The agent.
        agent: String,
        /// The model it names.
        model: String,
    },
    /// A duration, weight or rate that is negative, NaN or infinite.
    #[error("{what} must be a finite number >= 0, got {value}")]
    InvalidNumber {
        /// What the number is, e.g. `mean_turn_seconds of agent 'coder'`.
        what: String,
        /// The rejected value.
        value: f64,
    },
    /// The budget allows no model at all.
    #[error("max_loaded_models must be at least 1")]
    NoModelSlots,
    /// The `oracle` policy's future does not start with the current speaker.
    #[error("the oracle's future must start with the current speaker '{speaker}', found {found:?}")]
    FutureMismatch {
        /// The current speaker.
        speaker: String,
        /// The first agent of the given future, if any.
        found: Option<String>,
    },
}

pub(crate) fn check_number(what: impl FnOnce() -> String, value: f64) -> Result<f64, Error> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(Error::InvalidNumber {
            what: what(),
            value,
        })
    }
}
