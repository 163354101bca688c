//! `agentrun tools`: starts a workflow's MCP servers and lists the tools each agent's model
//! is offered, with their descriptions, as a run would offer them.

use std::path::PathBuf;
use std::process::ExitCode;

use agentrun::{McpServers, Tool, builtin_tool};
use anyhow::Context;

use crate::args::ToolsArgs;
use crate::commands::load_workflow;

pub(crate) async fn run(args: ToolsArgs) -> anyhow::Result<ExitCode> {
    let workflow = match load_workflow(&args.workflow) {
        Ok(workflow) => workflow,
        Err(code) => return Ok(code),
    };
    let workspace = match args.workspace {
        Some(dir) => dir,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    // The servers' error output goes to a scratch directory, removed afterwards.
    let log_dir = scratch_dir()?;
    let listed = list(&workflow, &workspace, &log_dir).await;
    let _ = std::fs::remove_dir_all(&log_dir);
    let agents = listed?;
    if args.json {
        let value: Vec<serde_json::Value> = agents
            .iter()
            .map(|(agent, tools)| {
                serde_json::json!({
                    "agent": agent,
                    "tools": tools.iter().map(|tool| {
                        let spec = tool.spec();
                        serde_json::json!({
                            "name": spec.name,
                            "description": spec.description,
                            "parameters": spec.parameters,
                        })
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (agent, tools) in &agents {
        println!("{agent}:");
        if tools.is_empty() {
            println!("  (no tools)");
        }
        for tool in tools {
            let spec = tool.spec();
            let description = spec.description.lines().next().unwrap_or_default();
            println!("  {:<28} {description}", spec.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Each agent's tools: its built-in ones, then those of the MCP servers it lists.
async fn list(
    workflow: &agentrun::Workflow,
    workspace: &std::path::Path,
    log_dir: &std::path::Path,
) -> anyhow::Result<Vec<(String, Vec<std::sync::Arc<dyn Tool>>)>> {
    let sandbox = crate::commands::sandbox::for_mcp_servers(workflow);
    let servers =
        McpServers::start(&workflow.mcp_servers, workspace, log_dir, Some(sandbox)).await?;
    let mut agents = Vec::new();
    let mut failure = None;
    for agent in &workflow.agents {
        let mut tools: Vec<std::sync::Arc<dyn Tool>> = agent
            .tools()
            .iter()
            .map(|name| builtin_tool(*name))
            .collect();
        match servers.tools_for(agent) {
            Ok(mcp) => tools.extend(mcp),
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
        agents.push((agent.name.clone(), tools));
    }
    servers.stop().await;
    match failure {
        Some(error) => Err(error.into()),
        None => Ok(agents),
    }
}

fn scratch_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("agentrun-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    Ok(dir)
}
