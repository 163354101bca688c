//! The transcript: one entry per completed turn, the run's durable record.

use serde::{Deserialize, Serialize};

/// A completed turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptEntry {
    /// 1-based turn number.
    pub turn: u32,
    /// The speaking agent.
    pub agent: String,
    /// Its model, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// What it said (or a command's trimmed output).
    pub text: String,
    /// A router's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<String>,
    /// A command's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Where the flow went next (an agent's name, or `end`).
    pub next: String,
    /// Seconds the turn waited for its model to load.
    pub load_wait_s: f64,
    /// Seconds spent generating or working.
    pub generation_s: f64,
    /// Tokens generated.
    pub tokens: u64,
    /// Models resident when the turn began.
    #[serde(default)]
    pub resident: Vec<String>,
    /// Seconds since the run started, at the turn's start.
    pub started_s: f64,
}
