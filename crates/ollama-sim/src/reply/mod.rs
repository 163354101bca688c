//! What a model answers: a scripted reply or a deterministic generated one, with its token
//! counts.

mod schema;
mod text;

use serde_json::{Value, json};

use crate::api::{self, ApiError};
use crate::catalogue::{ModelEntry, fnv1a};
use crate::config::ReplySettings;
use crate::script::ScriptedReply;

pub(crate) use text::estimate_tokens;
use text::{Rng, filler};

/// The `format` of a request.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Format<'a> {
    Text,
    Json,
    Schema(&'a Value),
}

impl<'a> Format<'a> {
    /// Validates `format`: absent, `"json"`, or a JSON schema object.
    pub(crate) fn parse(format: Option<&'a Value>) -> Result<Format<'a>, ApiError> {
        match format {
            None | Some(Value::Null) => Ok(Format::Text),
            Some(Value::String(text)) if text.is_empty() => Ok(Format::Text),
            Some(Value::String(text)) if text == "json" => Ok(Format::Json),
            Some(schema @ Value::Object(_)) => Ok(Format::Schema(schema)),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid format: {other} is neither \"json\" nor a JSON schema object"
            ))),
        }
    }
}

/// The inputs of an unscripted reply.
pub(crate) struct ReplyInput<'a> {
    pub(crate) model: &'a ModelEntry,
    pub(crate) format: Format<'a>,
    pub(crate) num_predict: Option<i64>,
    pub(crate) seed: Option<i64>,
    /// Whether the model thinks (asked, or by default for a thinking model).
    pub(crate) think: bool,
    pub(crate) last_message: &'a str,
}

/// A reply before it is streamed.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReplyPlan {
    pub(crate) thinking: String,
    pub(crate) content: String,
    pub(crate) tool_calls: Vec<api::ToolCall>,
    pub(crate) eval_tokens: u64,
    pub(crate) done_reason: &'static str,
}

/// Ollama's tool call id: `call_` and eight lower-case letters or digits (random in Ollama,
/// derived from the call here so replies stay deterministic).
fn tool_call_id(name: &str, arguments: &Value, index: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = Rng::new(fnv1a(
        arguments.to_string().as_bytes(),
        fnv1a(name.as_bytes(), index as u64),
    ));
    let suffix: String = (0..8)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect();
    format!("call_{suffix}")
}

/// The scripted reply as a plan.
pub(crate) fn scripted(reply: ScriptedReply) -> ReplyPlan {
    let content = match (reply.text, reply.json) {
        (Some(text), _) => text,
        (None, Some(value)) => value.to_string(),
        (None, None) => String::new(),
    };
    let thinking = reply.thinking.unwrap_or_default();
    let tool_calls: Vec<api::ToolCall> = reply
        .tool_calls
        .into_iter()
        .enumerate()
        .map(|(index, call)| api::ToolCall {
            id: Some(tool_call_id(&call.name, &call.arguments, index)),
            function: api::ToolCallFunction {
                index: Some(index as u32),
                name: call.name,
                arguments: call.arguments,
            },
        })
        .collect();
    let estimated = estimate_tokens(&content)
        + estimate_tokens(&thinking)
        + tool_calls
            .iter()
            .map(|call| estimate_tokens(&call.function.arguments.to_string()) + 4)
            .sum::<u64>();
    let done_reason = match reply.done_reason.as_deref() {
        Some("length") => "length",
        _ => "stop",
    };
    ReplyPlan {
        thinking,
        content,
        tool_calls,
        eval_tokens: reply.eval_count.unwrap_or(estimated.max(1)),
        done_reason,
    }
}

/// A natural length around `typical`: drawn between half and one and a half times it.
fn natural_length(rng: &mut Rng, typical: u64) -> u64 {
    let low = typical.div_ceil(2).max(1);
    let high = (typical + typical / 2).max(low);
    low + rng.below(high - low + 1)
}

/// A deterministic generated reply: the same request (and seed) gets the same reply.
/// A thinking model thinks first; `num_predict` bounds thinking and content together, so a
/// small limit can leave the content empty (`done_reason: "length"`). Otherwise the reply
/// ends at a natural length (`"stop"`).
pub(crate) fn generated(input: &ReplyInput<'_>, settings: &ReplySettings) -> ReplyPlan {
    let seed = fnv1a(
        input.last_message.as_bytes(),
        fnv1a(input.model.name.as_bytes(), 0),
    ) ^ input.seed.map_or(0, |seed| seed as u64);
    let mut rng = Rng::new(seed);
    let limit = input.num_predict.filter(|n| *n > 0).map(|n| n as u64);
    let exact = settings.exact_length;
    let wanted_thinking = match (input.think, exact) {
        (false, _) => 0,
        (true, true) => settings.thinking_tokens,
        (true, false) => natural_length(&mut rng, settings.thinking_tokens),
    };
    let thinking_tokens = limit.map_or(wanted_thinking, |limit| wanted_thinking.min(limit));
    let budget = limit.map(|limit| limit - thinking_tokens);
    let thinking = filler(&mut rng, thinking_tokens);
    let capped_by_thinking = budget == Some(0) && wanted_thinking > 0;
    let (content, content_tokens, done_reason) = if capped_by_thinking {
        (String::new(), 0, "length")
    } else {
        match input.format {
            Format::Text => {
                let (tokens, reason) = match (budget, exact) {
                    (Some(budget), true) => (budget, "length"),
                    (None, true) => (settings.default_tokens, "stop"),
                    (budget, false) => {
                        let natural = natural_length(&mut rng, settings.default_tokens);
                        match budget {
                            Some(budget) if natural >= budget => (budget, "length"),
                            _ => (natural, "stop"),
                        }
                    }
                };
                (filler(&mut rng, tokens), tokens, reason)
            }
            Format::Json => {
                let value = json!({ "response": filler(&mut rng, 8) });
                cut_to_budget(value.to_string(), budget)
            }
            Format::Schema(schema) => {
                let text = schema::value_for(schema, schema, &mut rng).to_string();
                cut_to_budget(text, budget)
            }
        }
    };
    let (thinking, content) = if input.model.spec.inline_thinking && !thinking.is_empty() {
        (
            String::new(),
            format!("<think>\n{thinking}\n</think>\n\n{content}"),
        )
    } else {
        (thinking, content)
    };
    ReplyPlan {
        thinking,
        content,
        tool_calls: Vec::new(),
        eval_tokens: thinking_tokens + content_tokens,
        done_reason,
    }
}

/// Structured output cut at the token budget, as a capped generation would leave it.
fn cut_to_budget(text: String, budget: Option<u64>) -> (String, u64, &'static str) {
    let tokens = estimate_tokens(&text);
    match budget {
        Some(budget) if tokens > budget => {
            let cut: String = text.chars().take((budget * 4) as usize).collect();
            (cut, budget, "length")
        }
        _ => (text, tokens, "stop"),
    }
}

#[cfg(test)]
mod tests;
