//! agentrun runs multi-agent workflows on local models served by Ollama, with an
//! executor that plans which models stay in memory.
//!
//! The types to learn first:
//! - [`Workflow`]: a workflow loaded from YAML ([`Workflow::from_yaml_file`]) and validated;
//! - [`Executor`]: runs a workflow on a [`ModelBackend`], turn by turn, planning model residency;
//! - [`OllamaBackend`] talks to an Ollama server; [`SimBackend`] drives the built-in simulator in-process;
//! - [`Event`]: what a run reports as it goes, through an [`EventSink`].
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use agentrun::{Executor, RunOptions, SimBackend, Workflow};
//!
//! let workflow = Workflow::from_yaml_file("workflows/review.yaml".as_ref())?;
//! let backend = Arc::new(SimBackend::target_mac(0.001));
//! let outcome = Executor::new(workflow, backend)
//!     .run(RunOptions::new("Write a function that reverses a string."))
//!     .await?;
//! println!("{} after {} turns", outcome.summary.status.as_str(), outcome.summary.turns);
//! # Ok(())
//! # }
//! ```

mod budget;
mod calibration;
mod dry_run;
mod knowledge;
mod random_workflow;
mod report;
mod run_dir;
mod saved_run;
mod sim_backend;
mod sim_hosts;
mod simulate;

pub use agentrun_core::{
    Agent, AgentError, AgentReply, AgentSummary, BackendError, BranchMode, CallMetrics,
    ChatRequest, ChatResponse, CommandAgent, Console, ConversationGraph, Event, EventSink,
    Executor, FutureTurn, HumanAgent, KeepAlive, LlmAgent, LoadCause, LoadReport, LoadTimes,
    Message, ModelBackend, ModelCall, ModelDetails, ModelOptions, ModelSummary, Node, Role,
    RunError, RunOptions, RunOutcome, RunStatus, RunSummary, RunningModel, TokenSink, Tool,
    ToolCall, ToolContext, ToolError, ToolRecord, ToolSpec, TranscriptEntry, TurnContext,
    TurnOutcome, WorkloadSettings, Workspace, build_workload, builtin_tool, model_details_of,
    model_load_time_options, parse_arguments,
};
pub use agentrun_core::{
    AgentMemory, AssemblyConfig, CommandSandbox, ContextState, ContextTurn, ContextUse, Item,
    McpError, McpServers, McpToolInfo, ResidentModel, Resume, ResumeError, RunningSummary,
    Selection, Strategy, TokenEstimator, event_schema, mcp_log_path, model_name,
};
pub use agentrun_core::{
    BranchRef, DecodeSamples, FanOutPreview, Observations, Samples, SharedContext, TurnPrior,
    deterministic_order, expected_turn, preview_fan_outs, shared_contexts,
};
pub use agentrun_core::{
    Fleet, FleetError, HostPlacement, HostSpec, HostSummary, HostView, WeightsConflict,
    place_workflow,
};
pub use agentrun_memory::{
    Analysis, Concurrency, FanOutOption, FanOutPlan, HostMemory, LoadMode, LoadModeChoice, Policy,
    WarningKind, Workload, analyze, gigabytes,
};
pub use agentrun_ollama::{OllamaBackend, OllamaConfig};
pub use agentrun_sandbox::{LAUNCHER_ARGUMENT, Launcher, Sandbox, SandboxError, launcher_main};
pub use agentrun_spec::{
    AgentKind, AgentSpec, Approval, BranchFailure, CommandPolicy, ContextSpec, ContextStrategy,
    Diagnostic, EdgeTarget, GpuBudget, JoinSpec, JoinWait, Pin, SandboxMode, SandboxSpec,
    SpecError, ToolName, Workflow, is_host_label, parse_size,
};
pub use budget::{detect_gpu_budget, detect_host_memory, host_memory, macos_raise_command};
pub use calibration::{Calibration, CalibrationError, ModelCalibration, calibrate_model};
pub use dry_run::DryRun;
pub use knowledge::{
    DecodeFacts, EdgeFacts, HostsKnowledge, Knowledge, KnowledgeError, KnownFact, LoadFacts,
    TurnFacts,
};
pub use ollama_sim::{Script as SimScript, SimConfig};
pub use random_workflow::{RandomWorkflow, Shape as WorkflowShape};
pub use report::{run_report_html, simulation_report_html};
pub use run_dir::{RUNS_DIR, RunDirectory, list_runs};
pub use saved_run::{
    EVENTS_FILE, REPORT_FILE, SUMMARY_FILE, SavedRun, SavedRunError, TRANSCRIPT_FILE,
    WORKFLOW_FILE, read_events,
};
pub use sim_backend::SimBackend;
pub use sim_hosts::{SimHost, SimHostsError};
pub use simulate::{PolicyFigures, SimulateError, SimulationOptions, SimulationReport, simulate};

/// The JSON Schema of the workflow format, for editors.
pub fn workflow_schema() -> serde_json::Value {
    agentrun_spec::json_schema()
}

/// The JSON Schema of a reusable agent file (`agents/*.yaml`), for editors.
pub fn agent_file_schema() -> serde_json::Value {
    agentrun_spec::agent_json_schema()
}
