//! Events: what a run reports as it goes, for terminals, logs and library users.

use agentrun_memory::Policy;
use agentrun_spec::EdgeTarget;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why a model load happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoadCause {
    /// The planner loaded it ahead of its turn.
    Preload,
    /// A turn needed it and it was not resident.
    OnDemand,
}

/// One host of a run served by several, in a [`Event::Placement`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HostPlacement {
    /// The host's name.
    pub host: String,
    /// Its address.
    pub url: String,
    /// Whether it answers.
    pub up: bool,
    /// Its GPU budget in bytes.
    pub gpu_budget_bytes: u64,
    /// The models placed on it.
    pub models: Vec<String>,
}

/// One thing that happened during a run.
///
/// Serialized as JSON with a `type` tag (`turn_started`, ...); times are seconds
/// since the run started. `docs/events.md` describes every event, and
/// `event_schema()` gives their JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// The workflow's name.
        workflow: String,
        /// The task given to the agents.
        task: String,
        /// The residency policy in force.
        policy: Policy,
        /// The model server.
        endpoint: String,
        /// The GPU budget the planner works with, in bytes (absent when unknown).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gpu_budget_bytes: Option<u64>,
        /// Turns an earlier, interrupted start of the same run completed, which this
        /// start continues from (0 for a new run).
        #[serde(default)]
        resumed_turns: u32,
        /// Seconds since the run started: 0, or where a resumed run takes up its clock.
        #[serde(default)]
        at_s: f64,
    },
    /// Where each model lives, when several hosts serve the run: once before the first
    /// turn, and again whenever a host stops answering or comes back.
    Placement {
        /// Every host, with its models and whether it answers.
        hosts: Vec<HostPlacement>,
        /// Why the placement is as it is now.
        reason: String,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// What the server had resident when a turn began (`/api/ps`).
    Resident {
        /// 1-based number of the turn about to start.
        turn: u32,
        /// Each resident model with the bytes the server accounts for it.
        models: Vec<ResidentModel>,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// An agent's turn began.
    TurnStarted {
        /// 1-based turn number. Inside a parallel region turns take their number in the
        /// order they finish: this is the number the turn takes if the turns under way
        /// finish in the order they started; its `turn_finished` has the final one.
        turn: u32,
        /// The speaking agent.
        agent: String,
        /// Its model, if it has one.
        model: Option<String>,
        /// The parallel branch the turn belongs to; absent outside parallel regions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<crate::transcript::BranchRef>,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A turn fanned out: its branches start, at the same time unless the run is
    /// sequential.
    BranchesStarted {
        /// The turn that fanned out (the region's `fork`).
        turn: u32,
        /// The agent that fanned out.
        from: String,
        /// The agent each branch starts at, by branch index.
        branches: Vec<String>,
        /// The agent where the branches meet.
        join: String,
        /// Whether the run forces branches to run one after the other.
        #[serde(default)]
        sequential: bool,
        /// How they run: `concurrent`, `grouped` (co-resident groups one after the other),
        /// `serialized` (the planner ran them one after the other) or `sequential` (forced).
        #[serde(default)]
        concurrency: String,
        /// The groups of branch indices, run one group after the other.
        #[serde(default)]
        groups: Vec<Vec<usize>>,
        /// Why, in one line.
        #[serde(default)]
        reason: String,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A branch reached its join and waits there for the join to open.
    BranchArrived {
        /// The branch.
        branch: crate::transcript::BranchRef,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// An agent of a branch failed, and the join's rule lets the others go on.
    BranchFailed {
        /// The branch.
        branch: crate::transcript::BranchRef,
        /// The agent that failed.
        agent: String,
        /// Why.
        error: String,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A join's rule was met: the join speaks next, seeing the branches' replies.
    JoinOpened {
        /// The joining agent.
        join: String,
        /// The branches stopped because the join opened without them, by index.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        stopped: Vec<u32>,
        /// Seconds from the fan-out to the join opening.
        region_s: f64,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A piece of the speaker's reply.
    TextDelta {
        /// The speaking agent.
        agent: String,
        /// The new text.
        text: String,
    },
    /// An agent's turn ended: the transcript entry it added, flattened into the event.
    TurnFinished {
        /// The turn as the transcript keeps it.
        #[serde(flatten)]
        entry: crate::transcript::TranscriptEntry,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A router picked a route.
    RouterDecision {
        /// The router agent.
        agent: String,
        /// The choice taken.
        choice: String,
        /// Repair attempts needed (0 when the first answer was valid).
        repairs: u32,
        /// Whether the choice is the deterministic fallback, not the model's.
        fallback: bool,
    },
    /// A router's answer was unusable and the router is asked again.
    RouterRepair {
        /// The router agent.
        agent: String,
        /// What was wrong with the answer.
        problem: String,
        /// Repair attempt, from 1.
        attempt: u32,
    },
    /// A model asked for a tool call.
    ToolCall {
        /// The calling agent.
        agent: String,
        /// The tool named.
        tool: String,
        /// The arguments as the model wrote them.
        arguments: serde_json::Value,
        /// The round of tool calls in the turn, from 1.
        round: u32,
    },
    /// A tool call ended; its output went back to the model.
    ToolResult {
        /// The calling agent.
        agent: String,
        /// The tool named.
        tool: String,
        /// Whether the tool did what was asked (`false`: refused, failed, unknown tool or
        /// malformed arguments).
        ok: bool,
        /// What went back to the model.
        output: String,
        /// The round of tool calls in the turn, from 1.
        round: u32,
    },
    /// A model was still calling tools at its `max_tool_rounds`; its turn was cut off.
    ToolLimit {
        /// The agent.
        agent: String,
        /// The rounds of tool calls it had.
        rounds: u32,
    },
    /// A person was asked for an answer at the terminal (a human agent's turn, or a
    /// command to approve).
    InputRequested {
        /// The agent asking.
        agent: String,
        /// The question shown.
        question: String,
    },
    /// A model agent's prompt was cut by the server: more was sent than its `num_ctx`
    /// holds (or the server filled the context), so Ollama dropped the oldest messages,
    /// the task first, without a word.
    ContextTruncated {
        /// The agent whose prompt was cut.
        agent: String,
        /// The model called.
        model: String,
        /// Estimated prompt tokens sent (tool definitions included).
        sent_tokens: u64,
        /// Prompt tokens the server reported evaluating.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reported_tokens: Option<u64>,
        /// The model's context length.
        num_ctx: u64,
        /// What to change so it does not happen.
        fix: String,
    },
    /// Turns dropped from a `summarize` context were folded into its running summary.
    ContextSummarized {
        /// The agent whose context it is.
        agent: String,
        /// The model that wrote the summary.
        model: String,
        /// Turns folded in by this update.
        turns: u32,
        /// Turns the summary covers now.
        summarized: u32,
    },
    /// The flow moved along an edge.
    EdgeTaken {
        /// Where from.
        from: String,
        /// Where to (an agent, or `end`).
        to: EdgeTarget,
    },
    /// A model load began.
    LoadStarted {
        /// The model.
        model: String,
        /// Why.
        cause: LoadCause,
        /// Expected seconds, from what was measured so far.
        expected_s: Option<f64>,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A model load ended.
    LoadFinished {
        /// The model.
        model: String,
        /// Why it was loaded.
        cause: LoadCause,
        /// Seconds it took, by the server's measure.
        load_s: f64,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A queued preload was dropped before it started: the next speaker needs
    /// something else, and the new plan no longer preloads it.
    PreloadWithdrawn {
        /// The model.
        model: String,
        /// Why.
        reason: String,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A preload still loading was aborted (its request closed, so the server
    /// abandons the load): finishing it would cost the speaker more wait than it
    /// can still save.
    PreloadAborted {
        /// The model.
        model: String,
        /// Why.
        reason: String,
        /// Seconds it had been loading.
        loading_s: f64,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// The executor asked the server to unload a model.
    Unload {
        /// The model.
        model: String,
        /// Why.
        reason: String,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// A backend call failed and is retried.
    Retry {
        /// The model.
        model: String,
        /// What failed.
        error: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// The run ended.
    RunFinished {
        /// The summary.
        summary: Box<crate::summary::RunSummary>,
    },
}

/// A model the server had resident, in a [`Event::Resident`] event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ResidentModel {
    /// The model's name.
    pub model: String,
    /// Bytes the server accounts for it.
    pub bytes: u64,
}

/// The JSON Schema of one line of an events file: an [`Event`] as JSON.
pub fn event_schema() -> serde_json::Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Event>();
    serde_json::to_value(schema).expect("a generated schema is valid JSON")
}

/// Where a run sends its events.
///
/// It only reports: sending never blocks or steers the run; a closed receiver is ignored.
#[derive(Clone, Default)]
pub struct EventSink {
    sender: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("open", &self.sender.is_some())
            .finish()
    }
}

impl EventSink {
    /// A sink that drops every event.
    pub fn none() -> EventSink {
        EventSink::default()
    }

    /// A sink feeding a channel, and the receiving end.
    pub fn channel() -> (EventSink, tokio::sync::mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        (
            EventSink {
                sender: Some(sender),
            },
            receiver,
        )
    }

    /// Emits an event.
    pub fn emit(&self, event: Event) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(event);
        }
    }
}
