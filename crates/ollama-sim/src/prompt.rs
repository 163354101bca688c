//! A request's prompt as the runner sees it: one segment per rendered message, cut to the
//! context as Ollama's `chatPrompt` cuts chat history, then matched against the slot's
//! prompt cache.
//!
//! Token counting is an estimate, deterministic and documented: a message costs its text's
//! characters divided by four (rounded up), plus four tokens of chat-template markers; tool
//! definitions cost their JSON text's characters divided by four.

use crate::api::{self, ApiError};
use crate::catalogue::fnv1a;
use crate::reply::estimate_tokens;
use crate::slots::Segment;

/// Tokens a message costs beyond its text (role markers of the chat template).
pub(crate) const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// The prompt of one request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Prompt {
    /// Always kept, before everything else (tool definitions).
    fixed: Vec<Segment>,
    /// The messages (or, for generate, the system prompt, context and prompt).
    parts: Vec<Part>,
    /// Whether the oldest messages may be cut (chat with `truncate` not false).
    cuttable: bool,
}

#[derive(Clone, Copy, Debug)]
struct Part {
    segment: Segment,
    system: bool,
}

/// The prompt after the cut to the context.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeptPrompt {
    pub(crate) segments: Vec<Segment>,
    /// Tokens the runner keeps (at most the context).
    pub(crate) tokens: u64,
    /// The first message kept in place: the messages before it are gone, except system
    /// messages.
    pub(crate) start: usize,
    /// Messages cut (system messages are never cut).
    pub(crate) dropped: u64,
}

/// The segment of a chat message; an assistant reply hashes the same way when the client
/// sends it back, so it is found in the cache.
pub(crate) fn message_segment(role: &str, content: &str, tool_calls: &[api::ToolCall]) -> Segment {
    let mut hash = fnv1a(role.as_bytes(), 1);
    hash = fnv1a(content.as_bytes(), hash);
    let mut tokens = estimate_tokens(content) + MESSAGE_OVERHEAD_TOKENS;
    for call in tool_calls {
        let arguments = call.function.arguments.to_string();
        hash = fnv1a(call.function.name.as_bytes(), hash);
        hash = fnv1a(arguments.as_bytes(), hash);
        tokens += estimate_tokens(&arguments) + MESSAGE_OVERHEAD_TOKENS;
    }
    Segment { hash, tokens }
}

/// The segment of a piece of raw text (generate's prompt and system prompt).
pub(crate) fn text_segment(kind: &str, text: &str) -> Segment {
    Segment {
        hash: fnv1a(text.as_bytes(), fnv1a(kind.as_bytes(), 2)),
        tokens: estimate_tokens(text),
    }
}

impl Prompt {
    /// A chat prompt: the tool definitions, then every message.
    pub(crate) fn chat(
        messages: &[api::Message],
        tools: &[serde_json::Value],
        truncate: bool,
    ) -> Prompt {
        let mut fixed = Vec::new();
        if !tools.is_empty() {
            let text = serde_json::to_string(tools).unwrap_or_default();
            fixed.push(text_segment("tools", &text));
        }
        let parts = messages
            .iter()
            .map(|message| Part {
                segment: message_segment(&message.role, &message.content, &message.tool_calls),
                system: message.role == "system",
            })
            .collect();
        Prompt {
            fixed,
            parts,
            cuttable: truncate,
        }
    }

    /// A generate prompt: system prompt, previous context, prompt; never cut by message.
    pub(crate) fn generate(system: Option<&str>, context: Option<&[i64]>, prompt: &str) -> Prompt {
        let mut parts = Vec::new();
        if let Some(system) = system {
            parts.push(text_segment("system", system));
        }
        if let Some(context) = context.filter(|c| !c.is_empty()) {
            let bytes: Vec<u8> = context.iter().flat_map(|id| id.to_le_bytes()).collect();
            parts.push(Segment {
                hash: fnv1a(&bytes, 3),
                tokens: context.len() as u64,
            });
        }
        parts.push(text_segment("prompt", prompt));
        Prompt {
            fixed: Vec::new(),
            parts: parts
                .into_iter()
                .map(|segment| Part {
                    segment,
                    system: false,
                })
                .collect(),
            cuttable: false,
        }
    }

    /// Every token of the prompt, before any cut.
    #[cfg(test)]
    pub(crate) fn tokens(&self) -> u64 {
        self.fixed.iter().map(|s| s.tokens).sum::<u64>()
            + self.parts.iter().map(|p| p.segment.tokens).sum::<u64>()
    }

    /// Cuts the prompt to `num_ctx` as Ollama's `chatPrompt` does: drop the oldest messages
    /// until the rest fits, keeping the system messages among them and always the last
    /// message. What still exceeds the context is a 400 with context shift off; with it on,
    /// the runner keeps `num_ctx` tokens.
    pub(crate) fn fit(&self, num_ctx: u64, shift: bool) -> Result<KeptPrompt, ApiError> {
        let fixed: u64 = self.fixed.iter().map(|s| s.tokens).sum();
        let count = self.parts.len();
        let mut start = 0;
        if self.cuttable && count > 0 {
            // suffix[i]: tokens of parts[i..]; systems_before grows as i advances.
            let mut suffix = vec![0u64; count + 1];
            for i in (0..count).rev() {
                suffix[i] = suffix[i + 1] + self.parts[i].segment.tokens;
            }
            let mut systems_before = 0;
            for (i, (part, rest)) in self.parts.iter().zip(&suffix).enumerate() {
                if fixed + systems_before + rest <= num_ctx || i == count - 1 {
                    start = i;
                    break;
                }
                if part.system {
                    systems_before += part.segment.tokens;
                }
            }
        }
        let mut segments = self.fixed.clone();
        segments.extend(
            self.parts[..start]
                .iter()
                .filter(|p| p.system)
                .map(|p| p.segment),
        );
        segments.extend(self.parts[start..].iter().map(|p| p.segment));
        let tokens: u64 = segments.iter().map(|s| s.tokens).sum();
        if tokens > num_ctx && !shift {
            return Err(ApiError::bad_request(
                "the input length exceeds the context length",
            ));
        }
        Ok(KeptPrompt {
            segments,
            tokens: tokens.min(num_ctx),
            start,
            dropped: self.parts[..start].iter().filter(|p| !p.system).count() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, chars: usize) -> api::Message {
        api::Message {
            role: role.to_owned(),
            content: "x".repeat(chars),
            ..api::Message::default()
        }
    }

    /// Ollama's `chatPrompt`: the oldest non-system messages go first; the system message
    /// and the last message stay.
    #[test]
    fn chat_prompt_cuts_the_oldest_messages_and_keeps_the_system_one() {
        // Each message: 40 chars = 10 tokens + 4 overhead = 14.
        let messages = [
            message("system", 40),
            message("user", 40),
            message("assistant", 40),
            message("user", 40),
        ];
        let prompt = Prompt::chat(&messages, &[], true);
        assert_eq!(prompt.tokens(), 56);
        let kept = prompt.fit(30, true).expect("fits");
        assert_eq!(kept.tokens, 28);
        assert_eq!(kept.segments.len(), 2);
        assert_eq!((kept.start, kept.dropped), (3, 2));
        // Even the last message alone is too long: shift on keeps num_ctx tokens, off is 400.
        let kept = prompt.fit(10, true).expect("shift");
        assert_eq!(kept.tokens, 10);
        let error = prompt.fit(10, false).expect_err("no shift");
        assert_eq!(error.status, 400);
        assert_eq!(error.message, "the input length exceeds the context length");
    }
}
