//! Messages, agents, the conversation graph and the executor of agentrun.
//!
//! The types to learn first:
//! - [`Executor`] runs a [`agentrun_spec::Workflow`] on a [`ModelBackend`], turn by turn;
//! - [`Agent`] is a participant; [`LlmAgent`] answers through a model, [`CommandAgent`] runs a program;
//! - [`Event`] is what a run reports as it goes, [`RunSummary`] what it did.

mod agent;
mod backend;
mod clock;
mod command;
mod event;
mod executor;
mod graph;
mod loader;
mod message;
mod residency;
mod summary;
mod tally;
mod transcript;

pub use agent::{Agent, AgentError, AgentReply, LlmAgent, ModelCall, TurnContext, router_schema};
pub use backend::{
    BackendError, CallMetrics, ChatRequest, ChatResponse, KeepAlive, LoadReport, ModelBackend,
    ModelDetails, ModelOptions, RunningModel, TokenSink, ToolSpec,
};
pub use command::CommandAgent;
pub use event::{Event, EventSink, LoadCause, ResidentModel};
pub use executor::{Executor, RunError, RunOptions, RunOutcome};
pub use graph::{ConversationGraph, Node, TurnOutcome};
pub use message::{Message, Role, ToolCall};
pub use residency::{FutureTurn, ResidencyError, build_workload, model_load_time_options};
pub use summary::{AgentSummary, ModelSummary, RunStatus, RunSummary};
pub use transcript::TranscriptEntry;
