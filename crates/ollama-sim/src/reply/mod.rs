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
    pub(crate) think: bool,
    pub(crate) prompt_tokens: u64,
    pub(crate) last_message: &'a str,
}

/// A reply before it is streamed.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReplyPlan {
    pub(crate) thinking: String,
    pub(crate) content: String,
    pub(crate) tool_calls: Vec<api::ToolCall>,
    pub(crate) prompt_tokens: u64,
    pub(crate) eval_tokens: u64,
    pub(crate) done_reason: &'static str,
}

/// The scripted reply as a plan.
pub(crate) fn scripted(reply: ScriptedReply, prompt_tokens: u64) -> ReplyPlan {
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
    ReplyPlan {
        thinking,
        content,
        tool_calls,
        prompt_tokens: reply.prompt_eval_count.unwrap_or(prompt_tokens),
        eval_tokens: reply.eval_count.unwrap_or(estimated.max(1)),
        done_reason: "stop",
    }
}

/// A deterministic generated reply: the same request gets the same reply.
pub(crate) fn generated(input: &ReplyInput<'_>, settings: &ReplySettings) -> ReplyPlan {
    let seed = fnv1a(
        input.last_message.as_bytes(),
        fnv1a(input.model.name.as_bytes(), 0),
    ) ^ input.seed.map_or(0, |seed| seed as u64);
    let mut rng = Rng::new(seed);
    let thinking = if input.think {
        filler(&mut rng, settings.thinking_tokens)
    } else {
        String::new()
    };
    let thinking_tokens = if input.think {
        settings.thinking_tokens
    } else {
        0
    };
    let limit = input.num_predict.filter(|n| *n > 0).map(|n| n as u64);
    let (content, content_tokens, done_reason) = match input.format {
        Format::Text => {
            let tokens = limit.unwrap_or(settings.default_tokens);
            let reason = if limit.is_some() { "length" } else { "stop" };
            (filler(&mut rng, tokens), tokens, reason)
        }
        Format::Json => {
            let value = json!({ "response": filler(&mut rng, 8) });
            let text = value.to_string();
            let tokens = estimate_tokens(&text);
            (text, tokens, "stop")
        }
        Format::Schema(schema) => {
            let text = schema::value_for(schema, schema, &mut rng).to_string();
            let tokens = estimate_tokens(&text);
            (text, tokens, "stop")
        }
    };
    ReplyPlan {
        thinking,
        content,
        tool_calls: Vec::new(),
        prompt_tokens: input.prompt_tokens,
        eval_tokens: thinking_tokens + content_tokens,
        done_reason,
    }
}

#[cfg(test)]
mod tests;
