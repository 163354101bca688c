//! How an agent's context is assembled: the strategy, the pinned messages, the room kept for
//! the reply and the summarizer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a model agent's context is assembled to fit its model's `num_ctx`.
///
/// Without one, an agent sees its last `context_window` messages whatever their size, and
/// the run warns when the server cuts them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextSpec {
    /// `window`: the newest messages that fit (at most `context_window`); `budget`: the task
    /// and pinned messages always, old tool output elided first, then the oldest turns;
    /// `summarize`: as `budget`, with what is dropped kept as a running summary.
    #[serde(default)]
    pub strategy: ContextStrategy,
    /// Messages always kept (`budget` and `summarize`): an agent's name keeps its latest
    /// message; `{ agent: NAME, failed: true }` keeps its latest failing output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pin: Vec<Pin>,
    /// Tokens kept free for the reply (default: `num_predict` when set, else 2048).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_tokens: Option<u64>,
    /// The model agent whose model writes the running summary (`summarize`); the workflow's
    /// router by default (a small model that stays resident), else the agent's own model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summarizer: Option<String>,
}

/// What is kept when the conversation does not fit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContextStrategy {
    /// The newest messages that fit in the token budget.
    Window,
    /// The task and pinned messages always; old tool output elided first, then the oldest
    /// turns dropped.
    #[default]
    Budget,
    /// As `budget`, and the dropped turns are compressed into a running summary.
    Summarize,
}

impl ContextStrategy {
    /// The name used in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextStrategy::Window => "window",
            ContextStrategy::Budget => "budget",
            ContextStrategy::Summarize => "summarize",
        }
    }
}

/// A message the workflow keeps in an agent's context whatever its age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Pin {
    /// The latest message of this agent.
    Latest(String),
    /// The latest message of an agent, or its latest failing output.
    Of {
        /// The agent.
        agent: String,
        /// Keep its latest failing output (a command that failed) instead of its latest.
        #[serde(default)]
        failed: bool,
    },
}

impl Pin {
    /// The agent whose message is pinned.
    pub fn agent(&self) -> &str {
        match self {
            Pin::Latest(agent) | Pin::Of { agent, .. } => agent,
        }
    }

    /// Whether only a failing output is pinned.
    pub fn failed_only(&self) -> bool {
        matches!(self, Pin::Of { failed: true, .. })
    }
}
