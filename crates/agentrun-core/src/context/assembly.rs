//! Choosing what an agent's prompt holds, and rendering it. Pure and incremental: the
//! conversation is rendered once per turn it gains, and each assembly walks the items once.
//!
//! Between two turns the prompt only grows at its end while it fits (Ollama's prompt cache
//! keeps the shared prefix), and when it stops fitting it shrinks in one step well below
//! the budget, so the turns after append again instead of rebuilding every time.

use agentrun_spec::Pin;

use super::history::Item;
use super::tokens::TokenEstimator;
use crate::message::{Message, Role};
use crate::transcript::TranscriptEntry;

/// Share of the budget (in percent) a `budget` or `summarize` context shrinks to when it
/// overflows: room for several turns to be appended before the prompt changes again.
const REFILL_PERCENT: u64 = 70;

/// Items kept before the cut before they are forgotten for good.
const FORGET_AFTER: usize = 1024;

/// How an agent's context is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The last so many messages, whatever their size.
    Messages(usize),
    /// The newest messages that fit, at most so many.
    Window(usize),
    /// The task and pins always; old tool output elided, then the oldest turns dropped.
    Budget,
    /// As `Budget`, with the dropped turns in a running summary.
    Summarize,
}

impl Strategy {
    /// The name used in records and reports.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Messages(_) => "messages",
            Strategy::Window(_) => "window",
            Strategy::Budget => "budget",
            Strategy::Summarize => "summarize",
        }
    }

    fn keeps_pins(self) -> bool {
        matches!(self, Strategy::Budget | Strategy::Summarize)
    }
}

/// What one assembly works with.
#[derive(Debug, Clone, Copy)]
pub struct AssemblyConfig<'a> {
    /// How the context is chosen.
    pub strategy: Strategy,
    /// The messages the workflow pins.
    pub pins: &'a [Pin],
    /// Estimated tokens the messages may take (the safety margin already taken off).
    pub budget_tokens: u64,
    /// Estimated tokens of what is always sent: the role prompt, the task and any closing
    /// question.
    pub fixed_tokens: u64,
    /// Estimated tokens kept for the running summary (`summarize`).
    pub summary_tokens: u64,
    /// The model's token estimate.
    pub estimator: &'a TokenEstimator,
}

/// The running summary of the turns a `summarize` context dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningSummary {
    /// The summary.
    pub text: String,
    /// How many turns it covers.
    pub turns: u32,
}

/// What an agent's context kept from turn to turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentMemory {
    items: Vec<Item>,
    /// The first turn kept in place; earlier ones are dropped (pinned ones move up front).
    start_turn: u32,
    /// Command output of turns before this one is elided, unless pinned.
    elided_before: u32,
    /// Turns forgotten for good (dropped, then removed from `items`).
    forgotten: u32,
    /// The running summary (`summarize`).
    pub summary: Option<RunningSummary>,
}

/// What one assembly chose.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// Pinned items from before the cut, sent after the task (indices into the items).
    pub hoisted: Vec<usize>,
    /// The first item kept in place.
    pub start: usize,
    /// Pinned items, by index.
    pub pinned: Vec<usize>,
    /// Items dropped by this assembly and not pinned: what a summary must take in.
    pub newly_dropped: Vec<usize>,
    /// Estimated tokens of the messages chosen.
    pub tokens: u64,
    /// Whether even the smallest context left does not fit.
    pub over_budget: bool,
    /// Command outputs sent as a one-line note.
    pub elided: u32,
    /// Turns left out.
    pub dropped: u32,
}

impl AgentMemory {
    /// Takes in the turns of `conversation` not seen yet, as `listener` reads them.
    pub fn update(&mut self, conversation: &[TranscriptEntry], listener: &str) {
        let seen = self.items.last().map_or(0, |item| item.turn);
        let new = conversation.partition_point(|entry| entry.turn <= seen);
        self.items.extend(
            conversation[new..]
                .iter()
                .map(|entry| Item::of(entry, listener)),
        );
    }

    /// The items seen so far, oldest first.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Chooses the context for this turn and remembers the choice for the next.
    pub fn plan(&mut self, config: &AssemblyConfig<'_>) -> Selection {
        let count = self.items.len();
        let estimator = config.estimator;
        let pinned = if config.strategy.keeps_pins() {
            self.pinned(config.pins)
        } else {
            Vec::new()
        };
        let is_pinned = |index: usize| pinned.contains(&index);
        let full = |index: usize| estimator.message_tokens(self.items[index].text.len());
        let cost = |index: usize, elided_before: u32| {
            let item = &self.items[index];
            match &item.note {
                Some(note) if item.turn < elided_before && !is_pinned(index) => {
                    estimator.message_tokens(note.len())
                }
                _ => estimator.message_tokens(item.text.len()),
            }
        };
        let budget = config.budget_tokens;
        let fixed = config.fixed_tokens
            + match config.strategy {
                Strategy::Summarize => config.summary_tokens,
                _ => 0,
            };
        let (start, elided_before, tokens) = match config.strategy {
            Strategy::Messages(cap) => {
                let start = count.saturating_sub(cap.max(1));
                (start, 0, fixed + (start..count).map(full).sum::<u64>())
            }
            Strategy::Window(cap) => {
                // Sliding: the newest messages that fit, recomputed every turn.
                let mut start = count.saturating_sub(cap.max(1));
                let mut total = fixed + (start..count).map(full).sum::<u64>();
                while total > budget && start + 1 < count {
                    total -= full(start);
                    start += 1;
                }
                (start, 0, total)
            }
            Strategy::Budget | Strategy::Summarize => {
                let total_of = |start: usize, elided_before: u32| {
                    fixed
                        + pinned
                            .iter()
                            .filter(|&&index| index < start)
                            .map(|&index| full(index))
                            .sum::<u64>()
                        + (start..count)
                            .map(|index| cost(index, elided_before))
                            .sum::<u64>()
                };
                let mut start = self
                    .items
                    .partition_point(|item| item.turn < self.start_turn);
                let mut elided_before = self.elided_before;
                let mut total = total_of(start, elided_before);
                if total > budget {
                    // Old command output goes first: all but the newest become a note.
                    if let Some(newest) = self.items.iter().rposition(Item::is_tool_output) {
                        elided_before = elided_before.max(self.items[newest].turn);
                        total = total_of(start, elided_before);
                    }
                }
                if total > budget {
                    // Then the oldest turns, down to well below the budget, so the next
                    // turns append to an unchanged prefix.
                    let target = budget * REFILL_PERCENT / 100;
                    while total > target && start + 1 < count {
                        if !is_pinned(start) {
                            total -= cost(start, elided_before);
                        }
                        start += 1;
                    }
                    if total > budget {
                        elided_before = u32::MAX;
                        total = total_of(start, elided_before);
                    }
                }
                (start, elided_before, total)
            }
        };
        let old_start = self
            .items
            .partition_point(|item| item.turn < self.start_turn)
            .min(start);
        let newly_dropped = if config.strategy == Strategy::Summarize {
            (old_start..start)
                .filter(|index| !is_pinned(*index))
                .collect()
        } else {
            Vec::new()
        };
        let hoisted: Vec<usize> = pinned
            .iter()
            .copied()
            .filter(|&index| index < start)
            .collect();
        let elided = (start..count)
            .filter(|&index| {
                let item = &self.items[index];
                item.is_tool_output() && item.turn < elided_before && !is_pinned(index)
            })
            .count() as u32;
        let dropped = self.forgotten + (start - hoisted.len()) as u32;
        if config.strategy.keeps_pins() {
            self.start_turn = self.items.get(start).map_or(u32::MAX, |item| item.turn);
            self.elided_before = elided_before;
        }
        let mut selection = Selection {
            hoisted,
            start,
            pinned,
            newly_dropped,
            tokens,
            over_budget: tokens > budget,
            elided,
            dropped,
        };
        self.forget_dropped(&mut selection);
        selection
    }

    /// The messages of a selection: role prompt, task, summary, pinned messages from before
    /// the cut, the turns kept, and the closing question.
    pub fn render(
        &self,
        selection: &Selection,
        system: &str,
        task: &str,
        closing: Option<&str>,
    ) -> Vec<Message> {
        let kept = &self.items[selection.start.min(self.items.len())..];
        let mut messages = Vec::with_capacity(kept.len() + selection.hoisted.len() + 4);
        messages.push(Message::system(system));
        messages.push(Message::user(format!("Task: {task}")));
        if let Some(summary) = &self.summary {
            messages.push(Message::user(format!(
                "Summary of the {} earlier turns left out here:\n{}",
                summary.turns, summary.text
            )));
        }
        for &index in &selection.hoisted {
            let item = &self.items[index];
            messages.push(Message::new(item.role, item.text.clone()));
        }
        for (offset, item) in kept.iter().enumerate() {
            let index = selection.start + offset;
            let text = match &item.note {
                Some(note)
                    if item.turn < self.elided_before && !selection.pinned.contains(&index) =>
                {
                    note.clone()
                }
                _ => item.text.clone(),
            };
            messages.push(Message::new(item.role, text));
        }
        if let Some(closing) = closing {
            messages.push(Message::new(Role::User, closing));
        }
        messages
    }

    /// Indices of the pinned items: for each pin, the newest item it names.
    fn pinned(&self, pins: &[Pin]) -> Vec<usize> {
        let mut pinned: Vec<usize> = pins
            .iter()
            .filter_map(|pin| {
                self.items.iter().rposition(|item| {
                    item.agent == pin.agent() && (!pin.failed_only() || item.failed)
                })
            })
            .collect();
        pinned.sort_unstable();
        pinned.dedup();
        pinned
    }

    /// Forgets dropped items once enough have piled up, keeping the pinned ones; the
    /// selection's indices follow.
    fn forget_dropped(&mut self, selection: &mut Selection) {
        if selection.start < FORGET_AFTER || !selection.newly_dropped.is_empty() {
            return;
        }
        let start = selection.start;
        let mut kept_before = Vec::new();
        let mut forgotten = 0;
        let mut index = 0;
        self.items.retain(|_| {
            let keep = index >= start || selection.pinned.contains(&index);
            if !keep {
                forgotten += 1;
            } else if index < start {
                kept_before.push(index);
            }
            index += 1;
            keep
        });
        self.forgotten += forgotten;
        let shift = |old: usize| {
            if old >= start {
                old - forgotten as usize
            } else {
                kept_before.iter().position(|&i| i == old).unwrap_or(0)
            }
        };
        selection.pinned = selection.pinned.iter().map(|&i| shift(i)).collect();
        selection.hoisted = selection.hoisted.iter().map(|&i| shift(i)).collect();
        selection.start = start - forgotten as usize;
    }
}

#[cfg(test)]
mod tests;
