//! The transcript: one entry per completed turn, the run's durable record.

use agentrun_spec::EdgeTarget;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A completed turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    pub next: EdgeTarget,
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
    /// The tool calls the model made during the turn, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolRecord>,
    /// The model's reasoning, kept apart from `text`: no other agent sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Whether the reply stopped at its length limit (`num_predict`, or a full
    /// context) before its end: `text` is what came before the cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut_off: bool,
    /// What the model agent's context held: tokens against `num_ctx`, what was elided,
    /// dropped or summarized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<crate::context::ContextUse>,
    /// The parallel branch the turn belongs to; absent outside parallel regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchRef>,
}

/// Which parallel branch a turn belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct BranchRef {
    /// The turn that fanned out: it names the parallel region.
    pub fork: u32,
    /// The branch's position in its fan-out, from 0.
    pub index: u32,
    /// The agent the branch starts at: its name in reports.
    pub start: String,
}

/// The transcript in its deterministic order: turns outside parallel regions as they came;
/// the turns of each parallel region (which follow its fork, branches interleaved as they
/// finished) by branch, each branch's turns in its own order. Two runs that took the same
/// turns read the same here however their branches' turns interleaved.
pub fn deterministic_order(entries: &[TranscriptEntry]) -> Vec<TranscriptEntry> {
    let mut ordered = Vec::with_capacity(entries.len());
    let mut position = 0;
    while position < entries.len() {
        let Some(fork) = entries[position].branch.as_ref().map(|branch| branch.fork) else {
            ordered.push(entries[position].clone());
            position += 1;
            continue;
        };
        let end = entries[position..]
            .iter()
            .position(|entry| entry.branch.as_ref().map(|b| b.fork) != Some(fork))
            .map_or(entries.len(), |length| position + length);
        let mut region = entries[position..end].to_vec();
        // A stable sort keeps each branch's own turns in order.
        region.sort_by_key(|entry| entry.branch.as_ref().map_or(0, |branch| branch.index));
        ordered.extend(region);
        position = end;
    }
    ordered
}

/// What a turn of `branch` (or outside any branch, `None`) sees of the transcript: every
/// turn but those of the other branches of its own parallel region, in deterministic order.
pub(crate) fn branch_view(
    entries: &[TranscriptEntry],
    branch: Option<&BranchRef>,
) -> Vec<TranscriptEntry> {
    let visible: Vec<TranscriptEntry> = entries
        .iter()
        .filter(|entry| match (branch, &entry.branch) {
            (Some(own), Some(theirs)) => theirs.fork != own.fork || theirs.index == own.index,
            _ => true,
        })
        .cloned()
        .collect();
    deterministic_order(&visible)
}

/// One tool call of a turn and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ToolRecord {
    /// The round of tool calls it belonged to, from 1.
    pub round: u32,
    /// The tool the model named.
    pub tool: String,
    /// The arguments as the model wrote them.
    pub arguments: serde_json::Value,
    /// Whether the tool did what was asked.
    pub ok: bool,
    /// What went back to the model: the result, or what was wrong.
    pub output: String,
}

impl ToolRecord {
    /// One line for the conversation: `write_file test_x.py: ok`,
    /// `run_command `cargo test`: exit status 101`.
    pub fn summary(&self) -> String {
        let target = match (&self.arguments["path"], &self.arguments["argv"]) {
            (serde_json::Value::String(path), _) => format!(" {path}"),
            (_, serde_json::Value::Array(argv)) => {
                let words: Vec<&str> = argv.iter().filter_map(|word| word.as_str()).collect();
                format!(" `{}`", words.join(" "))
            }
            _ => String::new(),
        };
        // A command's first line is its exit status, which is what others need to know.
        let outcome = match (self.ok, self.tool.as_str()) {
            (true, "run_command") => self.output.lines().next().unwrap_or("ok"),
            (true, _) => "ok",
            (false, _) => "failed",
        };
        format!("{}{target}: {outcome}", self.tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(turn: u32, agent: &str, branch: Option<u32>) -> TranscriptEntry {
        TranscriptEntry {
            turn,
            agent: agent.into(),
            model: None,
            text: format!("{agent} {turn}"),
            choice: None,
            passed: None,
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
            branch: branch.map(|index| BranchRef {
                fork: 1,
                index,
                start: format!("b{index}"),
            }),
        }
    }

    #[test]
    fn a_region_reads_by_branch_and_a_branch_sees_only_its_own() {
        // As finished: b1, b0, b1, b0 interleaved, then the join.
        let finished = vec![
            entry(1, "coder", None),
            entry(2, "style", Some(1)),
            entry(3, "security", Some(0)),
            entry(4, "fixer", Some(1)),
            entry(5, "audit", Some(0)),
            entry(6, "lead", None),
        ];
        let order: Vec<u32> = deterministic_order(&finished)
            .iter()
            .map(|e| e.turn)
            .collect();
        assert_eq!(order, [1, 3, 5, 2, 4, 6]);
        let own = finished[0..4].to_vec();
        let seen: Vec<u32> = branch_view(&own, finished[1].branch.as_ref())
            .iter()
            .map(|e| e.turn)
            .collect();
        assert_eq!(seen, [1, 2, 4]);
        assert_eq!(branch_view(&finished, None).len(), 6);
    }
}
