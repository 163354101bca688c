//! Resuming a run: an interrupted run's transcript taken up again, as if the
//! process had never stopped.
//!
//! The executor replays the completed turns into its bookkeeping (the planner
//! learns the edges taken and the load times seen, the tally counts the turns),
//! then goes on with the speaker the last turn named, numbering turns onward.

use agentrun_spec::EdgeTarget;

use crate::branches::Cursor;
use crate::graph::{ConversationGraph, Node, TurnOutcome};
use crate::planning::{RESIDENT_LOAD_S, Residency};
use crate::tally::Tally;
use crate::transcript::TranscriptEntry;

/// A run to continue from its last completed turn.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resume {
    /// The turns completed so far, oldest first, numbered from 1.
    pub transcript: Vec<TranscriptEntry>,
    /// Seconds the run had been running when it stopped: its clock goes on from there.
    pub elapsed_s: f64,
    /// The models the server had resident when the run first started, if known. The run
    /// unloads at its end only the models it loaded itself; without this, the ones
    /// resident when it resumes count as not its own.
    pub resident_at_start: Option<Vec<String>>,
}

impl Resume {
    /// Resumes after `transcript`, its clock taken up where the last turn ended.
    pub fn new(transcript: Vec<TranscriptEntry>) -> Resume {
        let elapsed_s = transcript
            .iter()
            .map(|entry| entry.started_s + entry.load_wait_s + entry.generation_s)
            .fold(0.0, f64::max);
        Resume {
            transcript,
            elapsed_s,
            resident_at_start: None,
        }
    }
}

/// Why a run cannot be resumed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResumeError {
    /// The transcript names an agent the workflow does not have.
    #[error("turn {turn} names the agent '{agent}', which the workflow does not have")]
    UnknownAgent {
        /// The turn.
        turn: u32,
        /// The name found.
        agent: String,
    },
    /// A turn is missing or repeated.
    #[error("the transcript's turn {found} comes where turn {expected} should")]
    TurnOutOfOrder {
        /// The number the turn should have.
        expected: u32,
        /// The number it has.
        found: u32,
    },
    /// A turn fanned out to branches that the workflow's flow does not fan out to.
    #[error("turn {turn} fanned out from '{agent}' to branches the workflow does not have")]
    UnknownFanOut {
        /// The turn.
        turn: u32,
        /// Its agent.
        agent: String,
    },
    /// The last turn led to `end`: there is nothing left to run.
    #[error("the run already ended: turn {turn} led to `end`")]
    AlreadyEnded {
        /// The last turn.
        turn: u32,
    },
}

/// Replays `past` into the run's bookkeeping and returns where the run stands: the graph's
/// start when nothing was completed, else the speaker the last turn named or, inside a
/// parallel region, each branch where its last completed turn left it (a turn that was
/// running when the run stopped runs again).
pub(crate) fn replay(
    past: &[TranscriptEntry],
    graph: &ConversationGraph,
    agent_names: &[&str],
    residency: &mut Residency,
    tally: &mut Tally,
) -> Result<Cursor, ResumeError> {
    let index_of = |turn: u32, name: &str| {
        agent_names
            .iter()
            .position(|known| *known == name)
            .ok_or_else(|| ResumeError::UnknownAgent {
                turn,
                agent: name.to_owned(),
            })
    };
    let mut cursor = Cursor::start(graph.start());
    for (position, entry) in past.iter().enumerate() {
        let expected = position as u32 + 1;
        if entry.turn != expected {
            return Err(ResumeError::TurnOutOfOrder {
                expected,
                found: entry.turn,
            });
        }
        let from = index_of(entry.turn, &entry.agent)?;
        let next = match &entry.next {
            EdgeTarget::End => Node::End,
            EdgeTarget::Agent(name) => Node::Agent(index_of(entry.turn, name)?),
            EdgeTarget::Branches(names) => {
                let branches = names
                    .iter()
                    .map(|name| index_of(entry.turn, name))
                    .collect::<Result<Vec<usize>, ResumeError>>()?;
                Node::FanOut(graph.fan_out_to(from, &branches).ok_or_else(|| {
                    ResumeError::UnknownFanOut {
                        turn: entry.turn,
                        agent: entry.agent.clone(),
                    }
                })?)
            }
        };
        if let Some(model) = &entry.model
            && entry.load_wait_s >= RESIDENT_LOAD_S
        {
            residency.record_load(model, entry.load_wait_s);
        }
        let next_agent = match next {
            Node::Agent(index) => Some(index),
            Node::FanOut(index) => graph.fan_out(index).branches.first().copied(),
            Node::End => None,
        };
        residency.after_turn(from, next_agent, &entry.next, entry.generation_s);
        tally.past_turn(entry);
        let outcome = TurnOutcome {
            text: &entry.text,
            choice: entry.choice.as_deref(),
            passed: entry.passed,
        };
        match &entry.branch {
            Some(branch) => {
                cursor.after_branch_turn(branch.index, next, outcome);
            }
            None => cursor.after_turn(graph, entry.turn, next),
        }
        if cursor == Cursor::Ended {
            return Err(ResumeError::AlreadyEnded { turn: entry.turn });
        }
    }
    Ok(cursor)
}
