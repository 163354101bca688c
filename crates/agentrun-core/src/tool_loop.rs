//! The tool-calling loop of a model agent's turn: offer the tools, run what the model asks
//! for, send the results back, until the model answers in words or runs out of rounds.

use std::panic::AssertUnwindSafe;

use agentrun_spec::LlmAgentSpec;
use futures::FutureExt;

use crate::agent::{AgentError, AgentReply, LlmAgent, ModelCall, TurnContext};
use crate::backend::{ChatRequest, DoneReason, ToolSpec};
use crate::context::prompt::TurnPrompt;
use crate::context::turn_fit::fit_turn;
use crate::event::Event;
use crate::message::{Message, Role, ToolCall};
use crate::process::cap_text;
use crate::tools::{ToolContext, ToolError};
use crate::transcript::ToolRecord;

/// Bytes kept from each end of one tool result: a model's context is small, and a custom
/// tool may return anything.
const KEPT_RESULT_BYTES: usize = 15_000;

/// Largest arguments of one tool call, as JSON. A whole source file fits many times over;
/// past this a model is looping, and its arguments would bloat the transcript.
const MAX_ARGUMENT_BYTES: usize = 1 << 20;

impl LlmAgent {
    /// A model agent's turn: chat, and while the model asks for tools, run them and chat
    /// again, at most `max_tool_rounds` times.
    ///
    /// Nothing a model asks for ends the run: an unknown tool, malformed arguments or a
    /// failing tool becomes a `tool` message saying so, and the model can try again.
    pub(crate) async fn converse(
        &self,
        context: &TurnContext<'_>,
        call: &ModelCall,
        prompt: TurnPrompt,
        specs: Vec<ToolSpec>,
    ) -> Result<AgentReply, AgentError> {
        let llm = context.spec.llm();
        let max_rounds = llm.map_or(LlmAgentSpec::DEFAULT_MAX_TOOL_ROUNDS, |llm| {
            llm.max_tool_rounds
        });
        let mut reply = AgentReply {
            context: Some(prompt.record),
            ..AgentReply::default()
        };
        let mut messages = prompt.messages;
        // The turn's own rounds start here; only they are fitted between calls.
        let first_round = messages.len();
        let mut round = 0;
        loop {
            if let (Some(budget), Some(state)) = (prompt.budget_tokens, context.context_state)
                && round > 0
            {
                let estimator = state.estimator(&call.model);
                let touched = fit_turn(
                    &mut messages,
                    first_round,
                    prompt.tools_bytes,
                    budget,
                    &estimator,
                );
                if let Some(record) = reply.context.as_mut() {
                    record.elided += touched;
                }
            }
            let request = ChatRequest {
                model: call.model.clone(),
                messages: messages.clone(),
                options: call.options.clone(),
                keep_alive: call.keep_alive,
                format: None,
                tools: specs.clone(),
                think: llm.and_then(|llm| llm.think),
            };
            let response = self.chat_for_answer(context, request, &mut reply).await?;
            let message = response.message;
            reply.keep_thinking(message.thinking.as_deref());
            if message.tool_calls.is_empty() {
                reply.text = message.content;
                reply.cut_off = response.done_reason == Some(DoneReason::Length);
                return Ok(reply);
            }
            if round == max_rounds {
                context.events.emit(Event::ToolLimit {
                    agent: context.spec.name.clone(),
                    rounds: round,
                });
                let asked: Vec<&str> = message
                    .tool_calls
                    .iter()
                    .map(|call| call.name.as_str())
                    .collect();
                let mut text = message.content;
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(&format!(
                    "[cut off: still calling tools after {round} rounds (max_tool_rounds); \
                     the last calls ({}) were not run]",
                    asked.join(", ")
                ));
                reply.text = text;
                return Ok(reply);
            }
            round += 1;
            let calls = message.tool_calls.clone();
            messages.push(Message {
                role: Role::Assistant,
                content: message.content,
                // What is sent back stays bounded too.
                tool_calls: message
                    .tool_calls
                    .into_iter()
                    .map(|mut call| {
                        let size = argument_bytes(&call.arguments);
                        if size > MAX_ARGUMENT_BYTES {
                            call.arguments = serde_json::json!({ "omitted_bytes": size });
                        }
                        call
                    })
                    .collect(),
                // Ollama's tool-calling guidance: the reasoning goes back with the calls
                // it led to, so the model continues from it.
                thinking: message.thinking,
                tool_name: None,
                tool_call_id: None,
            });
            for call in &calls {
                let record = run_tool_call(context, &specs, call, round).await;
                messages.push(Message::tool_result(call, record.output.clone()));
                reply.tool_calls.push(record);
            }
        }
    }
}

/// Runs one call the model asked for and records it, with its events.
async fn run_tool_call(
    context: &TurnContext<'_>,
    specs: &[ToolSpec],
    call: &ToolCall,
    round: u32,
) -> ToolRecord {
    let agent = context.spec.name.clone();
    let size = argument_bytes(&call.arguments);
    // Oversized arguments are recorded by their size only, never kept whole.
    let arguments = if size > MAX_ARGUMENT_BYTES {
        serde_json::json!({ "omitted_bytes": size })
    } else {
        call.arguments.clone()
    };
    context.events.emit(Event::ToolCall {
        agent: agent.clone(),
        tool: call.name.clone(),
        arguments: arguments.clone(),
        round,
    });
    let known = specs.iter().position(|spec| spec.name == call.name);
    let result = match known {
        Some(_) if size > MAX_ARGUMENT_BYTES => Err(ToolError::Refused(format!(
            "the arguments are {size} bytes, more than the {MAX_ARGUMENT_BYTES} allowed; \
             write large files in parts with edit_file"
        ))),
        None => {
            let known: Vec<&str> = specs.iter().map(|spec| spec.name.as_str()).collect();
            Err(ToolError::Refused(format!(
                "there is no tool `{}`; the tools are: {}",
                call.name,
                if known.is_empty() {
                    "(none)".to_owned()
                } else {
                    known.join(", ")
                }
            )))
        }
        Some(index) => {
            let tool_context = ToolContext {
                agent: context.spec,
                workspace: context.workspace,
                console: context.console,
            };
            // A custom tool that panics fails its call, not the run.
            AssertUnwindSafe(context.tools[index].call(call.arguments.clone(), &tool_context))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(ToolError::Failed("the tool failed unexpectedly".to_owned()))
                })
        }
    };
    let (ok, output) = match result {
        Ok(text) => (true, cap_text(&text, KEPT_RESULT_BYTES)),
        Err(error) => (
            false,
            format!("error: {}", cap_text(&error.to_string(), KEPT_RESULT_BYTES)),
        ),
    };
    context.events.emit(Event::ToolResult {
        agent,
        tool: call.name.clone(),
        ok,
        output: output.clone(),
        round,
    });
    ToolRecord {
        round,
        tool: call.name.clone(),
        arguments,
        ok,
        output,
    }
}

/// The size of a call's arguments as JSON text.
fn argument_bytes(arguments: &serde_json::Value) -> usize {
    /// Counts bytes written without keeping them.
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, arguments);
    counter.0
}

#[cfg(test)]
mod tests;
