//! Keeping a turn's own tool rounds within the budget: the results of earlier rounds become
//! a one-line note, oldest first, and a newest result too large on its own is shortened.

use super::observation::prompt_tokens;
use super::tokens::TokenEstimator;
use crate::message::{Message, Role};
use crate::process::cap_text;

/// Fits `messages` into `budget` estimated tokens by touching only the tool results from
/// `first` on. Returns how many results were elided or shortened.
pub(crate) fn fit_turn(
    messages: &mut [Message],
    first: usize,
    tools_bytes: usize,
    budget: u64,
    estimator: &TokenEstimator,
) -> u32 {
    let mut total = prompt_tokens(estimator, messages, tools_bytes);
    if total <= budget {
        return 0;
    }
    // The newest round: the results after the last assistant message.
    let newest = messages
        .iter()
        .rposition(|message| message.role == Role::Assistant)
        .map_or(messages.len(), |index| index + 1)
        .max(first);
    let mut touched = 0;
    for message in messages[first..newest]
        .iter_mut()
        .filter(|message| message.role == Role::Tool)
    {
        if total <= budget {
            return touched;
        }
        let note = format!(
            "(result of {} elided to save context: {} bytes)",
            message.tool_name.as_deref().unwrap_or("the tool"),
            message.content.len()
        );
        if note.len() >= message.content.len() || is_note(&message.content) {
            continue;
        }
        total -= estimator.text_tokens(message.content.len()) - estimator.text_tokens(note.len());
        message.content = note;
        touched += 1;
    }
    let results: Vec<usize> = (newest..messages.len())
        .filter(|&index| messages[index].role == Role::Tool)
        .collect();
    if total > budget && !results.is_empty() {
        let over = total - budget;
        let theirs: u64 = results
            .iter()
            .map(|&index| estimator.text_tokens(messages[index].content.len()))
            .sum();
        let room = theirs.saturating_sub(over);
        // Bytes kept of each end of each result.
        let keep = (room as f64 * estimator.bytes_per_token() / results.len() as f64 / 2.0).floor()
            as usize;
        for index in results {
            let capped = cap_text(&messages[index].content, keep.max(64));
            if capped.len() < messages[index].content.len() {
                messages[index].content = capped;
                touched += 1;
            }
        }
    }
    touched
}

/// Whether a result is already a note of an elided one.
fn is_note(content: &str) -> bool {
    content.starts_with("(result of ") && content.ends_with(" bytes)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::ToolCall;

    fn round(messages: &mut Vec<Message>, size: usize) {
        let call = ToolCall {
            id: None,
            name: "read_file".to_owned(),
            arguments: serde_json::json!({ "path": "a.rs" }),
        };
        let mut asked = Message::assistant("");
        asked.tool_calls.push(call.clone());
        messages.push(asked);
        messages.push(Message::tool_result(&call, "x".repeat(size)));
    }

    #[test]
    fn earlier_results_are_elided_before_the_newest_is_shortened() {
        let estimator = TokenEstimator::new();
        let mut messages = vec![Message::system("s"), Message::user("task")];
        round(&mut messages, 20_000);
        round(&mut messages, 20_000);
        round(&mut messages, 4_000);
        let budget = 3_000;
        let touched = fit_turn(&mut messages, 2, 0, budget, &estimator);
        assert_eq!(touched, 2);
        assert!(
            messages[3]
                .content
                .starts_with("(result of read_file elided")
        );
        assert!(
            messages[5]
                .content
                .starts_with("(result of read_file elided")
        );
        assert_eq!(messages[7].content.len(), 4_000, "the newest stays whole");
        assert!(prompt_tokens(&estimator, &messages, 0) <= budget);

        let touched = fit_turn(&mut messages, 2, 0, 600, &estimator);
        assert_eq!(touched, 1, "only the newest is left to shorten");
        assert!(messages[7].content.len() < 4_000);
        assert!(prompt_tokens(&estimator, &messages, 0) <= 700);
    }
}
