//! Assembly: what is kept, in which order, and that the prefix survives between turns.

use agentrun_spec::{EdgeTarget, Pin};

use super::*;
use crate::message::Role;

/// A turn of `agent` saying `bytes` bytes; `passed` makes it a command's output.
fn entry(turn: u32, agent: &str, bytes: usize, passed: Option<bool>) -> TranscriptEntry {
    TranscriptEntry {
        turn,
        agent: agent.to_owned(),
        model: passed.is_none().then(|| "m".to_owned()),
        text: format!("{turn:04}{}", "x".repeat(bytes.saturating_sub(4))),
        choice: None,
        passed,
        next: EdgeTarget::End,
        load_wait_s: 0.0,
        generation_s: 0.0,
        tokens: 0,
        resident: Vec::new(),
        started_s: 0.0,
        tool_calls: Vec::new(),
        thinking: None,
        cut_off: false,
        context: None,
        branch: None,
    }
}

/// A TDD loop: the architect's design, then coder / tests (large failing output) rounds.
fn tdd(rounds: u32, output_bytes: usize) -> Vec<TranscriptEntry> {
    let mut turns = vec![entry(1, "architect", 2_000, None)];
    for round in 0..rounds {
        let turn = 2 + round * 2;
        turns.push(entry(turn, "coder", 1_000, None));
        turns.push(entry(turn + 1, "tests", output_bytes, Some(false)));
    }
    turns
}

fn config<'a>(
    strategy: Strategy,
    pins: &'a [Pin],
    budget: u64,
    estimator: &'a TokenEstimator,
) -> AssemblyConfig<'a> {
    AssemblyConfig {
        strategy,
        pins,
        budget_tokens: budget,
        fixed_tokens: 100,
        summary_tokens: 400,
        estimator,
    }
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .map(|message| message.content.chars().take(16).collect())
        .collect()
}

#[test]
fn a_context_that_fits_keeps_everything_in_order() {
    let estimator = TokenEstimator::new();
    let mut memory = AgentMemory::default();
    memory.update(&tdd(2, 500), "coder");
    let selection = memory.plan(&config(Strategy::Budget, &[], 100_000, &estimator));
    assert_eq!((selection.dropped, selection.elided), (0, 0));
    let messages = memory.render(&selection, "role", "the task", None);
    assert_eq!(messages.len(), 2 + 5);
    assert_eq!(messages[0].role, Role::System);
    assert_eq!(messages[1].content, "Task: the task");
    assert!(messages[2].content.starts_with("[architect]: 0001"));
    assert_eq!(messages[3].role, Role::Assistant, "the coder's own words");
    assert!(messages[6].content.starts_with("[tests]: 0005"));
}

#[test]
fn old_tool_output_is_elided_before_turns_are_dropped() {
    let estimator = TokenEstimator::new();
    let mut memory = AgentMemory::default();
    memory.update(&tdd(3, 20_000), "coder");
    // Everything: ~18,000 tokens; without the two older outputs ~7,000.
    let selection = memory.plan(&config(Strategy::Budget, &[], 9_000, &estimator));
    assert_eq!(selection.elided, 2);
    assert_eq!(selection.dropped, 0);
    let messages = memory.render(&selection, "role", "task", None);
    let notes: Vec<&Message> = messages
        .iter()
        .filter(|message| message.content.contains("output elided"))
        .collect();
    assert_eq!(notes.len(), 2);
    assert!(
        notes[0]
            .content
            .starts_with("[tests]: (output elided to save context: 1 lines")
    );
    assert!(messages.last().expect("a message").content.len() > 20_000);
    assert!(selection.tokens <= 9_000);
}

#[test]
fn pins_survive_when_the_oldest_turns_go_and_the_prefix_holds_while_it_fits() {
    let estimator = TokenEstimator::new();
    let pins = [
        Pin::Latest("architect".to_owned()),
        Pin::Of {
            agent: "tests".to_owned(),
            failed: true,
        },
    ];
    let mut memory = AgentMemory::default();
    let mut conversation = tdd(6, 8_000);
    memory.update(&conversation, "coder");
    let budget = 3_500;
    let selection = memory.plan(&config(Strategy::Budget, &pins, budget, &estimator));
    assert!(selection.dropped > 0);
    assert!(selection.tokens <= budget);
    let first = memory.render(&selection, "role", "task", None);
    assert!(
        first[2].content.starts_with("[architect]: 0001"),
        "{:?}",
        texts(&first)
    );
    assert!(
        first
            .last()
            .expect("a message")
            .content
            .starts_with("[tests]: 0013")
    );
    // Shrunk well below the budget: the next turn appends to the same prefix.
    conversation.push(entry(14, "coder", 1_000, None));
    memory.update(&conversation, "coder");
    let selection = memory.plan(&config(Strategy::Budget, &pins, budget, &estimator));
    let second = memory.render(&selection, "role", "task", None);
    assert_eq!(second[..first.len()], first[..], "append, not rebuild");
    assert_eq!(second.len(), first.len() + 1);
}

#[test]
fn a_window_slides_every_turn_and_keeps_no_pins() {
    let estimator = TokenEstimator::new();
    let pins = [Pin::Latest("architect".to_owned())];
    let mut memory = AgentMemory::default();
    let mut conversation = tdd(6, 8_000);
    memory.update(&conversation, "coder");
    let budget = 6_000;
    let selection = memory.plan(&config(Strategy::Window(100), &pins, budget, &estimator));
    let first = memory.render(&selection, "role", "task", None);
    assert!(
        first
            .iter()
            .all(|message| !message.content.starts_with("[architect]"))
    );
    assert!(selection.tokens <= budget);
    conversation.push(entry(14, "coder", 1_000, None));
    conversation.push(entry(15, "tests", 8_000, Some(false)));
    memory.update(&conversation, "coder");
    let selection = memory.plan(&config(Strategy::Window(100), &pins, budget, &estimator));
    let second = memory.render(&selection, "role", "task", None);
    assert_ne!(second[2], first[2], "the window moved");
}

#[test]
fn a_message_count_ignores_sizes() {
    let estimator = TokenEstimator::new();
    let mut memory = AgentMemory::default();
    memory.update(&tdd(6, 40_000), "coder");
    let selection = memory.plan(&config(Strategy::Messages(4), &[], 1_000, &estimator));
    assert!(selection.over_budget);
    assert_eq!(memory.render(&selection, "role", "task", None).len(), 2 + 4);
}

#[test]
fn summarize_hands_over_what_it_drops_once() {
    let estimator = TokenEstimator::new();
    let pins = [Pin::Latest("architect".to_owned())];
    let mut memory = AgentMemory::default();
    let mut conversation = tdd(6, 8_000);
    memory.update(&conversation, "coder");
    let selection = memory.plan(&config(Strategy::Summarize, &pins, 3_500, &estimator));
    assert!(!selection.newly_dropped.is_empty());
    assert!(
        selection
            .newly_dropped
            .iter()
            .all(|&index| memory.items()[index].agent != "architect"),
        "a pinned message is kept, not summarized"
    );
    memory.summary = Some(RunningSummary {
        text: "so far".to_owned(),
        turns: selection.newly_dropped.len() as u32,
    });
    let messages = memory.render(&selection, "role", "task", None);
    assert!(messages[2].content.starts_with("Summary of the"));
    conversation.push(entry(14, "coder", 100, None));
    memory.update(&conversation, "coder");
    let selection = memory.plan(&config(Strategy::Summarize, &pins, 3_500, &estimator));
    assert!(
        selection.newly_dropped.is_empty(),
        "reused until more is dropped"
    );
}

#[test]
fn dropped_items_are_forgotten_in_batches_and_pins_kept() {
    let estimator = TokenEstimator::new();
    let pins = [Pin::Latest("architect".to_owned())];
    let mut memory = AgentMemory::default();
    let conversation = tdd(1_500, 400);
    memory.update(&conversation, "coder");
    let selection = memory.plan(&config(Strategy::Budget, &pins, 20_000, &estimator));
    assert!(memory.items().len() < conversation.len());
    let messages = memory.render(&selection, "role", "task", None);
    assert!(messages[2].content.starts_with("[architect]: 0001"));
    assert_eq!(
        selection.dropped as usize + messages.len() - 2,
        conversation.len(),
        "every turn is either sent or counted as dropped"
    );
}
