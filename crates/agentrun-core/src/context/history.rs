//! The conversation as an agent reads it: one item per turn, rendered once.

use crate::message::Role;
use crate::transcript::{ToolRecord, TranscriptEntry};

/// One turn of the conversation as the listening agent will read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The turn it came from.
    pub turn: u32,
    /// The agent that spoke.
    pub agent: String,
    /// `assistant` for the listener's own words, `user` for everyone else's.
    pub role: Role,
    /// The message as sent.
    pub text: String,
    /// For a command's output: the one line that replaces it when old output is elided.
    pub note: Option<String>,
    /// Whether it is a command's failing output.
    pub failed: bool,
}

impl Item {
    /// The item of `entry` for the agent named `listener`.
    pub fn of(entry: &TranscriptEntry, listener: &str) -> Item {
        // What the tools did is part of what happened: files written, commands run.
        let mut text = entry.text.clone();
        if !entry.tool_calls.is_empty() {
            let done: Vec<String> = entry.tool_calls.iter().map(ToolRecord::summary).collect();
            text.push_str(&format!("\n(tools used: {})", done.join("; ")));
        }
        let own = entry.agent == listener;
        let text = if own {
            text
        } else {
            format!("[{}]: {text}", entry.agent)
        };
        // A command's output is what grows without bound (test logs, build errors); a
        // model's words are the conversation itself.
        let note = (entry.model.is_none() && entry.passed.is_some()).then(|| {
            let first = entry.text.lines().next().unwrap_or("").trim();
            let first: String = first.chars().take(120).collect();
            format!(
                "[{}]: (output elided to save context: {} lines, {} bytes; it began: {first})",
                entry.agent,
                entry.text.lines().count(),
                entry.text.len(),
            )
        });
        Item {
            turn: entry.turn,
            agent: entry.agent.clone(),
            role: if own { Role::Assistant } else { Role::User },
            text,
            note,
            failed: entry.passed == Some(false),
        }
    }

    /// Whether it is a command's output, which may be elided.
    pub fn is_tool_output(&self) -> bool {
        self.note.is_some()
    }
}
