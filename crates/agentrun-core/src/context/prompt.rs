//! A turn's prompt: the budget from `num_ctx`, the assembly, the running summary.

use agentrun_spec::LlmAgentSpec;

use super::assembly::{AgentMemory, AssemblyConfig, Strategy};
use super::summarizer::{self, SUMMARY_WORDS};
use super::{ContextState, ContextUse, reply_room, strategy_of};
use crate::agent::{ModelCall, TurnContext};
use crate::backend::ToolSpec;
use crate::event::Event;
use crate::message::Message;

/// Share of the budget (in percent) the history of an agent with tools may fill; the rest is
/// room for the results of the turn's own tool calls.
const TOOL_ROOM_PERCENT: u64 = 75;

/// A turn's assembled prompt and what it needs for the turn's later calls.
#[derive(Debug, Clone)]
pub(crate) struct TurnPrompt {
    /// The messages of the first call.
    pub(crate) messages: Vec<Message>,
    /// Estimated tokens the messages may take in any call of the turn; `None` when the
    /// context length is unknown.
    pub(crate) budget_tokens: Option<u64>,
    /// Bytes of the tool definitions' JSON.
    pub(crate) tools_bytes: usize,
    /// The record of the turn's context.
    pub(crate) record: ContextUse,
}

/// Bytes of the tool definitions as JSON, as they are sent.
pub(crate) fn tools_bytes(tools: &[ToolSpec]) -> usize {
    if tools.is_empty() {
        return 0;
    }
    serde_json::to_string(tools).map_or(0, |json| json.len())
}

/// Builds the first prompt of a turn of `llm`.
pub(crate) async fn turn_prompt(
    context: &TurnContext<'_>,
    llm: &LlmAgentSpec,
    call: &ModelCall,
    tools: &[ToolSpec],
) -> TurnPrompt {
    let fresh = ContextState::new();
    let state = context.context_state.unwrap_or(&fresh);
    let agent = &context.spec.name;
    let estimator = state.estimator(&call.model);
    let strategy = strategy_of(llm);
    let tools_bytes = tools_bytes(tools);
    let num_ctx = super::num_ctx_of(&call.options);
    let closing = (!llm.choices.is_empty()).then(|| {
        format!(
            "Decide what happens next. Choose one of: {}.",
            llm.choices.join(", ")
        )
    });
    let task = format!("Task: {}", context.task);
    let fixed_tokens = estimator.message_tokens(llm.prompt.len())
        + estimator.message_tokens(task.len())
        + closing
            .as_ref()
            .map_or(0, |closing| estimator.message_tokens(closing.len()));
    // Room in real tokens: the context less the reply and the tool definitions.
    let room = num_ctx.map(|num_ctx| {
        num_ctx
            .saturating_sub(reply_room(llm, &call.options))
            .saturating_sub(estimator.text_tokens(tools_bytes))
    });
    let budget_tokens = room.map(|room| estimator.usable(room));
    let mut memory: AgentMemory = state.take_agent(agent);
    memory.update(context.conversation, agent);
    let pins = llm
        .context
        .as_ref()
        .map_or(&[][..], |context| context.pin.as_slice());
    // A model with tools reads files and runs commands within its turn: the history leaves
    // part of the budget to those results, or they would be shortened to fit.
    let history_tokens = budget_tokens.map(|budget| {
        if tools.is_empty() {
            budget
        } else {
            budget * TOOL_ROOM_PERCENT / 100
        }
    });
    let config = AssemblyConfig {
        strategy,
        pins,
        // Without a known context length only the message count bounds the context.
        budget_tokens: history_tokens.unwrap_or(u64::MAX),
        fixed_tokens,
        summary_tokens: estimator.text_tokens(SUMMARY_WORDS as usize * 8)
            + super::tokens::MESSAGE_OVERHEAD_TOKENS,
        estimator: &estimator,
    };
    let selection = memory.plan(&config);
    if strategy == Strategy::Summarize && !selection.newly_dropped.is_empty() {
        let summarizer_call = context.summarizer.clone().unwrap_or_else(|| call.clone());
        let dropped: Vec<&super::Item> = selection
            .newly_dropped
            .iter()
            .map(|&index| &memory.items()[index])
            .collect();
        match summarizer::fold(
            context.backend,
            &summarizer_call,
            memory.summary.as_ref(),
            &dropped,
        )
        .await
        {
            Ok(summary) => {
                context.events.emit(Event::ContextSummarized {
                    agent: agent.clone(),
                    model: summarizer_call.model.clone(),
                    turns: dropped.len() as u32,
                    summarized: summary.turns,
                });
                memory.summary = Some(summary);
            }
            Err(error) => {
                // The turn goes on without the dropped turns: a summary is an aid, and
                // the record shows what was dropped.
                tracing::warn!(%agent, model = %summarizer_call.model, %error, "the running summary could not be updated");
            }
        }
    }
    let messages = memory.render(&selection, &llm.prompt, context.task, closing.as_deref());
    let record = ContextUse {
        strategy: strategy.name().to_owned(),
        prompt_tokens: selection.tokens + estimator.text_tokens(tools_bytes),
        num_ctx: num_ctx.unwrap_or(0),
        budget_tokens: room.unwrap_or(0),
        messages: messages.len() as u32,
        elided: selection.elided,
        dropped: selection.dropped,
        summarized: memory.summary.as_ref().map_or(0, |summary| summary.turns),
        pinned: selection.pinned.len() as u32,
        cut_by_server: false,
    };
    state.put_agent(agent, memory);
    TurnPrompt {
        messages,
        budget_tokens,
        tools_bytes,
        record,
    }
}
