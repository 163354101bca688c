//! What each answer tells about its prompt: the server's `prompt_eval_count` corrects the
//! model's token estimate, and a prompt larger than `num_ctx` (or one the server filled to
//! `num_ctx`) was cut by the server.
//!
//! Ollama's prompt cache makes `prompt_eval_count` count only the tokens after the prefix a
//! slot already holds (its previous prompt and reply). The previous prompt of the model is
//! remembered, so a report is compared with both readings, the whole prompt and the part
//! after the shared prefix, and learnt from the one it matches.

use std::hash::{DefaultHasher, Hash, Hasher};

use super::tokens::TokenEstimator;
use crate::message::Message;

/// A model's estimate and the prompt it was last sent.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModelPrompts {
    pub(crate) estimator: TokenEstimator,
    /// The last prompt (tool definitions first), then its reply, one part per message.
    last: Vec<Part>,
}

/// One message (or the tool definitions) of a prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Part {
    hash: u64,
    bytes: usize,
    /// Chat-template markers it costs (messages and tool calls), in messages.
    messages: u64,
}

/// What one call's answer showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observation {
    /// Estimated tokens sent.
    pub(crate) sent_tokens: u64,
    /// Whether the server cut the prompt: more was sent than `num_ctx` holds, or the
    /// server filled the context.
    pub(crate) cut: bool,
}

/// The estimated tokens of a prompt: its messages and tool definitions.
pub(crate) fn prompt_tokens(
    estimator: &TokenEstimator,
    messages: &[Message],
    tools_bytes: usize,
) -> u64 {
    let (bytes, count) = parts(messages, tools_bytes).fold((0, 0), |(bytes, count), part| {
        (bytes + part.bytes, count + part.messages)
    });
    estimator.text_tokens(bytes) + count * super::tokens::MESSAGE_OVERHEAD_TOKENS
}

impl ModelPrompts {
    /// Learns from one call: `messages` and tools of `tools_bytes` were sent, `reply`
    /// came back and the server reported `reported` prompt tokens evaluated.
    pub(crate) fn observe(
        &mut self,
        messages: &[Message],
        tools_bytes: usize,
        reply: &Message,
        reported: Option<u64>,
        num_ctx: u64,
    ) -> Observation {
        let sent: Vec<Part> = parts(messages, tools_bytes).collect();
        let estimate = |parts: &[Part], estimator: &TokenEstimator| {
            let bytes: usize = parts.iter().map(|part| part.bytes).sum();
            let count: u64 = parts.iter().map(|part| part.messages).sum();
            (
                bytes,
                count,
                estimator.text_tokens(bytes) + count * super::tokens::MESSAGE_OVERHEAD_TOKENS,
            )
        };
        let (bytes, count, sent_tokens) = estimate(&sent, &self.estimator);
        let cut = sent_tokens > num_ctx || reported.is_some_and(|reported| reported >= num_ctx);
        if let Some(reported) = reported.filter(|_| !cut) {
            let shared = sent
                .iter()
                .zip(&self.last)
                .take_while(|(now, before)| now == before)
                .count();
            let (suffix_bytes, suffix_count, suffix_tokens) =
                estimate(&sent[shared..], &self.estimator);
            let distance = |predicted: u64| {
                if predicted == 0 {
                    f64::INFINITY
                } else {
                    (reported as f64 / predicted as f64).ln().abs()
                }
            };
            let (bytes, count, predicted) = if distance(suffix_tokens) < distance(sent_tokens) {
                (suffix_bytes, suffix_count, suffix_tokens)
            } else {
                (bytes, count, sent_tokens)
            };
            // A report twice or half the estimate is another prompt's count (a slot
            // shared with another agent), not this one's.
            if distance(predicted) < std::f64::consts::LN_2 {
                self.estimator.learn(bytes, count, reported);
            }
        }
        self.last = sent;
        self.last.push(part_of(reply));
        Observation { sent_tokens, cut }
    }
}

/// The parts of a prompt: the tool definitions (when there are any), then each message.
fn parts(messages: &[Message], tools_bytes: usize) -> impl Iterator<Item = Part> + '_ {
    let tools = (tools_bytes > 0).then_some(Part {
        hash: tools_bytes as u64,
        bytes: tools_bytes,
        messages: 0,
    });
    tools.into_iter().chain(messages.iter().map(part_of))
}

fn part_of(message: &Message) -> Part {
    let mut hasher = DefaultHasher::new();
    std::mem::discriminant(&message.role).hash(&mut hasher);
    message.content.hash(&mut hasher);
    let mut bytes = message.content.len();
    let mut count = 1;
    for call in &message.tool_calls {
        let arguments = call.arguments.to_string();
        call.name.hash(&mut hasher);
        arguments.hash(&mut hasher);
        bytes += arguments.len();
        count += 1;
    }
    Part {
        hash: hasher.finish(),
        bytes,
        messages: count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn prompt(sizes: &[usize]) -> Vec<Message> {
        sizes
            .iter()
            .map(|size| Message::user("x".repeat(*size)))
            .collect()
    }

    /// A server that counts 4 bytes a token and 4 per message, with a prompt cache.
    fn reported(messages: &[Message], cached: usize) -> u64 {
        messages[cached..]
            .iter()
            .map(|m| m.content.len().div_ceil(4) as u64 + 4)
            .sum()
    }

    #[test]
    fn cached_and_whole_prompts_both_teach_the_estimate() {
        let mut model = ModelPrompts::default();
        let first = prompt(&[4000, 4000]);
        let reply = Message::assistant("ok");
        let seen = model.observe(&first, 0, &reply, Some(reported(&first, 0)), 32_768);
        assert!(!seen.cut);
        let mut second = first.clone();
        second.push(reply.clone());
        second.push(Message::user("y".repeat(8000)));
        // Only the new message is evaluated.
        let seen = model.observe(&second, 0, &reply, Some(reported(&second, 3)), 32_768);
        assert!(!seen.cut);
        assert!(
            (model.estimator.bytes_per_token() - 4.0).abs() < 0.3,
            "{}",
            model.estimator.bytes_per_token()
        );
    }

    #[test]
    fn a_prompt_larger_than_the_context_was_cut() {
        let mut model = ModelPrompts::default();
        let big = prompt(&[40_000, 40_000]);
        let seen = model.observe(&big, 0, &Message::assistant("ok"), Some(8_000), 16_384);
        assert!(seen.cut);
        assert!(seen.sent_tokens > 16_384);
        let estimate = model.estimator.clone();
        assert_eq!(
            estimate,
            TokenEstimator::new(),
            "a cut prompt teaches nothing"
        );
        let small = prompt(&[400]);
        let seen = model.observe(&small, 0, &Message::assistant("ok"), Some(2048), 2048);
        assert!(seen.cut, "a prompt that filled the context was cut");
    }
}
