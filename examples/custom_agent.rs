//! A custom agent: plug your own Rust code into a workflow as one of its agents.
//!
//! Run with `cargo run --example custom_agent`. The workflow's `reviewer` is
//! replaced by a Rust function that approves any reply mentioning a test.

use std::sync::Arc;

use agentrun::{
    Agent, AgentError, AgentReply, Executor, RunOptions, SimBackend, TurnContext, Workflow,
};
use async_trait::async_trait;

/// Approves when the last message mentions a test, otherwise asks for one.
struct TestMinded;

#[async_trait]
impl Agent for TestMinded {
    async fn respond(&self, context: TurnContext<'_>) -> Result<AgentReply, AgentError> {
        let last = context
            .conversation
            .last()
            .map(|entry| entry.text.as_str())
            .unwrap_or("");
        let text = if last.to_lowercase().contains("test") {
            "It comes with a test.\nAPPROVED"
        } else {
            "Please add a test."
        };
        Ok(AgentReply {
            text: text.to_owned(),
            ..AgentReply::default()
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workflow = Workflow::from_yaml_file("workflows/review.yaml".as_ref())?;
    let backend = Arc::new(SimBackend::target_mac(0.001));
    let executor = Executor::new(workflow, backend).with_agent("reviewer", Arc::new(TestMinded));
    let mut options = RunOptions::new("Write a function that reverses a string.");
    options.max_turns = Some(6);
    let outcome = executor.run(options).await?;
    for entry in &outcome.transcript {
        println!(
            "{}: {}",
            entry.agent,
            entry.text.lines().next().unwrap_or("")
        );
    }
    println!(
        "{} ({}) after {} turns",
        outcome.summary.status.as_str(),
        outcome.summary.reason,
        outcome.summary.turns
    );
    Ok(())
}
