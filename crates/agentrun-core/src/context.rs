//! Context assembly: what a model agent's prompt holds, so that it fits its model's
//! `num_ctx` and the server never cuts it without a word.
//!
//! - [`history`]: the conversation rendered once per turn, as the listening agent reads it;
//! - [`tokens`]: token estimates per model, corrected from what the server reports;
//! - [`assembly`]: the pure choice of what is kept (pins, elided tool output, dropped turns)
//!   and its rendering, cache-friendly between turns;
//! - [`turn_fit`]: keeping a turn's own tool rounds within the budget;
//! - [`observation`]: learning from each answer's prompt size, and telling when the server
//!   cut a prompt;
//! - [`prompt`]: a turn's prompt, from the budget to the rendered messages;
//! - [`summarizer`]: the running summary of what a `summarize` context dropped.

pub(crate) mod assembly;
pub(crate) mod history;
pub(crate) mod observation;
pub(crate) mod prompt;
pub(crate) mod summarizer;
pub(crate) mod tokens;
pub(crate) mod turn_fit;

use std::collections::BTreeMap;
use std::sync::Mutex;

use agentrun_spec::{ContextStrategy, LlmAgentSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use self::assembly::{AgentMemory, AssemblyConfig, RunningSummary, Selection, Strategy};
pub use self::history::Item;
use self::observation::ModelPrompts;
pub use self::tokens::TokenEstimator;

/// Tokens kept for the reply when neither the context nor `num_predict` says.
pub(crate) const DEFAULT_REPLY_TOKENS: u64 = 2048;

/// What an agent's context held in one turn, as the transcript and the report keep it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContextUse {
    /// `messages` (the last `context_window` messages), `window`, `budget` or `summarize`.
    pub strategy: String,
    /// Estimated tokens of the largest prompt the turn sent (tool definitions included).
    pub prompt_tokens: u64,
    /// The model's context length.
    pub num_ctx: u64,
    /// Tokens the prompt may take: `num_ctx` less the reply room and the tool definitions.
    pub budget_tokens: u64,
    /// Messages sent in the turn's first call.
    pub messages: u32,
    /// Command outputs (and tool results of the turn's own earlier rounds) sent as a
    /// one-line note.
    #[serde(default)]
    pub elided: u32,
    /// Earlier turns left out of the prompt.
    #[serde(default)]
    pub dropped: u32,
    /// Of those, turns the running summary covers.
    #[serde(default)]
    pub summarized: u32,
    /// Pinned messages kept.
    #[serde(default)]
    pub pinned: u32,
    /// Whether the server cut a prompt of the turn (its oldest messages went unseen).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut_by_server: bool,
}

/// The context state of a run: what each agent's context kept from turn to turn, and each
/// model's token estimate. Shared by the turns through [`crate::TurnContext`].
#[derive(Debug, Default)]
pub struct ContextState {
    agents: Mutex<BTreeMap<String, AgentMemory>>,
    models: Mutex<BTreeMap<String, ModelPrompts>>,
}

impl ContextState {
    /// A state that has seen nothing.
    pub fn new() -> ContextState {
        ContextState::default()
    }

    /// Takes an agent's memory out for a turn (a fresh one the first time).
    pub(crate) fn take_agent(&self, agent: &str) -> AgentMemory {
        self.agents
            .lock()
            .expect("no panic while holding the lock")
            .remove(agent)
            .unwrap_or_default()
    }

    /// Gives an agent's memory back after its turn.
    pub(crate) fn put_agent(&self, agent: &str, memory: AgentMemory) {
        self.agents
            .lock()
            .expect("no panic while holding the lock")
            .insert(agent.to_owned(), memory);
    }

    /// A copy of a model's token estimate.
    pub(crate) fn estimator(&self, model: &str) -> TokenEstimator {
        self.models
            .lock()
            .expect("no panic while holding the lock")
            .get(model)
            .map(|prompts| prompts.estimator.clone())
            .unwrap_or_default()
    }

    /// Runs `f` on a model's prompt record.
    pub(crate) fn with_model<T>(&self, model: &str, f: impl FnOnce(&mut ModelPrompts) -> T) -> T {
        let mut models = self.models.lock().expect("no panic while holding the lock");
        f(models.entry(model.to_owned()).or_default())
    }
}

/// The strategy an agent's spec asks for.
pub(crate) fn strategy_of(llm: &LlmAgentSpec) -> Strategy {
    match llm.context.as_ref().map(|context| context.strategy) {
        None => Strategy::Messages(llm.context_window),
        Some(ContextStrategy::Window) => Strategy::Window(llm.context_window),
        Some(ContextStrategy::Budget) => Strategy::Budget,
        Some(ContextStrategy::Summarize) => Strategy::Summarize,
    }
}

/// Tokens kept for the reply: the context's `reply_tokens`, else a positive `num_predict`,
/// else [`DEFAULT_REPLY_TOKENS`].
pub(crate) fn reply_room(llm: &LlmAgentSpec, options: &crate::backend::ModelOptions) -> u64 {
    llm.context
        .as_ref()
        .and_then(|context| context.reply_tokens)
        .or_else(|| {
            options
                .get("num_predict")
                .and_then(serde_json::Value::as_u64)
                .filter(|limit| *limit > 0)
        })
        .unwrap_or(DEFAULT_REPLY_TOKENS)
}

/// The context length a call asks for (`num_ctx`, always explicit in a planned call).
pub(crate) fn num_ctx_of(options: &crate::backend::ModelOptions) -> Option<u64> {
    options.get("num_ctx").and_then(serde_json::Value::as_u64)
}
