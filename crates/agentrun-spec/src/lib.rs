//! The workflow file format of agentrun: reading workflow and agent files, checking them, and
//! describing them as a JSON Schema.
//!
//! A workflow names its agents (each an Ollama model with a role prompt, a program, or a
//! person), the flow between them (a start and conditional edges ending at `end`), limits, the
//! GPU memory budget the executor plans with, and settings for simulated runs. The format is
//! documented in `FORMAT.md` next to this crate's `Cargo.toml`.
//!
//! Start with:
//!
//! - [`Workflow`]: load one with [`Workflow::from_yaml_file`]; `use` is resolved, prompt files
//!   are read and every default is filled in.
//! - [`AgentSpec`] and [`Flow`]: the agents, and the edges with their [`Condition`]s.
//! - [`SpecError`]: every problem found at once, each a [`Diagnostic`] naming the file, line,
//!   column and field, with a hint.
//! - [`json_schema`]: the schema `agentrun schema` prints for editors.
//!
//! This crate reads files and nothing else: it knows nothing of tokio or Ollama, and takes the
//! planner's vocabulary (policy, load mode, keep_alive) from `agentrun-memory`.
//!
//! # Example
//!
//! ```
//! use std::path::Path;
//! use agentrun_spec::{EdgeTarget, Workflow};
//!
//! let yaml = r#"
//! name: review
//! agents:
//!   coder: { model: "qwen3-coder:32b", prompt: You write code., options: { num_ctx: 32768 } }
//!   reviewer: { model: "qwen3-coder:14b", prompt: You review code., options: { num_ctx: 32768 } }
//! flow:
//!   start: coder
//!   edges:
//!     - { from: coder, to: reviewer }
//!     - { from: reviewer, to: end, when: { contains: APPROVED } }
//!     - { from: reviewer, to: coder }
//! "#;
//! let workflow = Workflow::from_yaml_str(yaml, Path::new("review.yaml")).expect("valid");
//! let first = workflow.flow.outgoing("reviewer").next().expect("an edge");
//! assert_eq!(first.to, EdgeTarget::End);
//!
//! let broken = yaml.replace("to: reviewer }", "to: reviwer }");
//! let error = Workflow::from_yaml_str(&broken, Path::new("review.yaml")).unwrap_err();
//! assert!(error.to_string().starts_with(
//!     "review.yaml:9:26: error: flow.edges[0].to: there is no agent `reviwer`"
//! ));
//! assert!(error.to_string().contains("hint: did you mean `reviewer`?"));
//! ```

mod agent;
mod check;
mod context;
mod convert;
mod diagnostic;
mod document;
mod duration;
mod flow;
mod loader;
mod mcp;
mod memory;
mod node;
mod node_de;
mod parallel;
mod reachability;
mod residency;
mod reuse;
mod sandbox;
mod schema;
mod shape;
mod simulation;
mod size;
mod source;
mod spelling;
mod workflow;

pub use agent::{
    AgentKind, AgentSpec, Approval, CommandPolicy, CommandSpec, HumanAgentSpec, KindName,
    LlmAgentSpec, ModelOptionsSpec, SandboxMode, Think, ThinkLevel, ToolName, UnknownSandboxMode,
};
pub use context::{ContextSpec, ContextStrategy, Pin};
pub use diagnostic::{Diagnostic, Severity, SpecError};
pub use duration::{DurationError, parse_duration};
pub use flow::{BranchFailure, Condition, EdgeSpec, EdgeTarget, Flow, JoinSpec, JoinWait};
pub use mcp::{MCP_NAME_SEPARATOR, McpServerSpec, McpToolChoice, McpTransport, is_mcp_server_name};
pub use memory::{Limits, MemorySpec};
pub use residency::{ResidencySpec, is_host_label};
pub use sandbox::SandboxSpec;
pub use schema::{agent_json_schema, json_schema};
pub use simulation::{AgentSimulation, SimulationSpec};
pub use size::{GpuBudget, SizeError, parse_size};
pub use workflow::Workflow;
