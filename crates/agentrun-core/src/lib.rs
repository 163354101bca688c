//! Messages, agents, the conversation graph and the executor of agentrun.
//!
//! The types to learn first:
//! - [`Executor`] runs a [`agentrun_spec::Workflow`] on a [`ModelBackend`], turn by turn;
//! - [`Agent`] is a participant; [`LlmAgent`] answers through a model (calling [`Tool`]s
//!   inside the run's [`Workspace`]), [`CommandAgent`] runs a program, [`HumanAgent`] asks a
//!   person through a [`Console`];
//! - [`Event`] is what a run reports as it goes, [`RunSummary`] what it did.

mod agent;
mod backend;
mod branches;
mod capabilities;
mod clock;
mod command;
mod command_sandbox;
mod console;
mod context;
mod event;
mod executor;
mod fan_out;
mod fan_out_preview;
mod fleet;
mod fleet_run;
mod gated_backend;
mod graph;
mod human;
mod mcp;
mod message;
mod num_ctx;
mod observations;
mod planning;
mod preloader;
mod process;
mod resume;
mod server_view;
mod summary;
mod tally;
#[cfg(test)]
mod test_backend;
mod tool_loop;
mod tools;
mod transcript;
mod turn_prior;

pub use agent::{Agent, AgentError, AgentReply, LlmAgent, ModelCall, TurnContext, router_schema};
pub use agentrun_memory::LoadTimes;
/// Ollama's `think`, as requests carry it.
pub use agentrun_spec::{Think, ThinkLevel};
pub use backend::{
    BackendError, CallMetrics, ChatRequest, ChatResponse, DoneReason, KeepAlive, LoadReport,
    ModelBackend, ModelDetails, ModelOptions, RunningModel, TokenSink, ToolSpec,
};
pub use capabilities::MissingCapability;
pub use command::CommandAgent;
pub use command_sandbox::CommandSandbox;
pub use console::Console;
pub use context::{
    AgentMemory, AssemblyConfig, ContextState, ContextUse, Item, RunningSummary, Selection,
    Strategy, TokenEstimator,
};
pub use event::{Event, EventSink, HostPlacement, LoadCause, ResidentModel, event_schema};
pub use executor::{Executor, RunError, RunOptions, RunOutcome, model_details_of};
pub use fan_out::BranchMode;
pub use fan_out_preview::{FanOutPreview, preview_fan_outs};
pub use fleet::{Fleet, FleetError, HostSpec, HostView, HostWork, WeightsConflict};
pub use fleet_run::place_workflow;
pub use graph::{ConversationGraph, Node, Step, TurnOutcome};
pub use human::HumanAgent;
pub use mcp::{McpError, McpServers, McpToolInfo, mcp_log_path, model_name};
pub use message::{Message, Role, ToolCall};
pub use num_ctx::{DEFAULT_NUM_CTX, SharedContext, shared_contexts, shared_num_ctx};
pub use observations::{DecodeSamples, Observations, Samples};
pub use planning::{
    FutureTurn, ResidencyError, WorkloadSettings, build_workload, expected_turn,
    model_load_time_options,
};
pub use resume::{Resume, ResumeError};
pub use summary::{AgentSummary, ContextTurn, HostSummary, ModelSummary, RunStatus, RunSummary};
pub use tools::{Tool, ToolContext, ToolError, Workspace, builtin_tool, parse_arguments};
pub use transcript::{BranchRef, ToolRecord, TranscriptEntry, deterministic_order};
pub use turn_prior::{ModelFacts, TurnPrior, turn_prior};
