//! A custom tool: give an agent's model a Rust function to call, beside the built-in tools.
//!
//! Run with `cargo run --example custom_tool`. The built-in simulator is scripted to call the
//! tool once and then answer; against a real Ollama the model decides when to call it.

use std::path::Path;
use std::sync::Arc;

use agentrun::{
    Executor, RunOptions, SimBackend, SimScript, Tool, ToolContext, ToolError, ToolSpec, Workflow,
    parse_arguments,
};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

/// The tool's parameters: their doc comments become the descriptions the model reads.
#[derive(Deserialize, JsonSchema)]
struct LineCountArgs {
    /// The file, relative to the workspace, e.g. `README.md`.
    path: String,
}

/// Counts the lines of a file of the run's workspace.
struct LineCount;

#[async_trait]
impl Tool for LineCount {
    fn spec(&self) -> ToolSpec {
        ToolSpec::for_parameters::<LineCountArgs>(
            "line_count",
            "Count the lines of a text file of the workspace.",
        )
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext<'_>,
    ) -> Result<String, ToolError> {
        let args: LineCountArgs = parse_arguments(arguments)?;
        // `resolve` refuses paths outside the workspace, as the built-in tools do.
        let path = context.workspace.resolve(&args.path)?;
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|error| ToolError::Failed(format!("cannot read `{}`: {error}", args.path)))?;
        Ok(format!("{} has {} lines", args.path, text.lines().count()))
    }
}

const WORKFLOW: &str = "
name: clerk
agents:
  clerk:
    model: qwen3:1.7b
    prompt: You are a clerk. Answer questions about the files with your tools.
    options: { num_ctx: 4096 }
    tools: [list_files]
flow:
  start: clerk
  edges:
    - { from: clerk, to: end }
memory: { gpu_budget: 54GB }
";

/// What the simulated model says: first a call of the custom tool, then an answer.
const SCRIPT: &str = "
rules:
  - system: (?i)you are a clerk
    replies:
      - tool_calls:
          - { name: line_count, arguments: { path: Cargo.toml } }
      - text: I counted the lines of Cargo.toml.
";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workflow = Workflow::from_yaml_str(WORKFLOW, Path::new("clerk.yaml"))?;
    let backend = SimBackend::target_mac(0.001);
    backend
        .simulator()
        .set_script(SimScript::from_yaml_str(SCRIPT)?);
    let executor =
        Executor::new(workflow, Arc::new(backend)).with_tool("clerk", Arc::new(LineCount));
    // The workspace is the current directory unless `RunOptions::workspace` says otherwise.
    let outcome = executor
        .run(RunOptions::new("How long is Cargo.toml?"))
        .await?;
    for entry in &outcome.transcript {
        for call in &entry.tool_calls {
            println!(
                "{} called {} {}: {}",
                entry.agent, call.tool, call.arguments, call.output
            );
        }
        println!("{}: {}", entry.agent, entry.text);
    }
    println!(
        "{} ({}) after {} turns",
        outcome.summary.status.as_str(),
        outcome.summary.reason,
        outcome.summary.turns
    );
    Ok(())
}
