//! Which sandbox each agent's commands get, as the start of a run and `plan` show it, and
//! the launcher the CLI confines them with.

use agentrun::{AgentKind, ToolName, Workflow};
use agentrun_sandbox::{Launcher, Sandbox, SandboxMode};

/// One line per agent that runs commands: its name, mode and what the mode allows.
pub(crate) fn describe(workflow: &Workflow) -> Vec<String> {
    commanding_agents(workflow)
        .map(|(name, mode)| {
            format!(
                "{name} runs its commands in sandbox `{mode}`: {}",
                mode.summary()
            )
        })
        .collect()
}

/// What the user must know before the run: commands that will run unconfined, and
/// sandboxes this machine cannot give (their commands will be refused).
pub(crate) fn warnings(workflow: &Workflow) -> Vec<String> {
    let sandbox = Sandbox::new();
    commanding_agents(workflow)
        .filter_map(|(name, mode)| {
            if mode == SandboxMode::Off {
                return Some(format!(
                    "{name} runs its commands WITHOUT a sandbox (`sandbox: off`): what the model writes runs with your own rights"
                ));
            }
            sandbox.check(mode).err().map(|error| {
                format!(
                    "{name}'s commands will be refused: {error}; hint: {}",
                    error.hint()
                )
            })
        })
        .collect()
}

/// The CLI confines commands with a fresh copy of itself as the launcher, so nothing needs
/// installing beside it.
pub(crate) fn this_program_as_launcher() -> Sandbox {
    match std::env::current_exe() {
        Ok(exe) => Sandbox::with_launcher(Launcher::entry_point(&exe)),
        // Without its own path the CLI looks for `agentrun-sandbox` like any embedder.
        Err(_) => Sandbox::new(),
    }
}

/// The sandbox a run's stdio MCP servers start in: the workflow's settings, applied by this
/// program as the launcher.
pub(crate) fn for_mcp_servers(workflow: &Workflow) -> std::sync::Arc<agentrun::CommandSandbox> {
    std::sync::Arc::new(agentrun::CommandSandbox::new(
        std::sync::Arc::new(this_program_as_launcher()),
        workflow.sandbox.clone(),
    ))
}

/// The agents that start processes, with the mode they get.
fn commanding_agents(workflow: &Workflow) -> impl Iterator<Item = (&str, SandboxMode)> {
    workflow
        .agents
        .iter()
        .filter(|agent| {
            matches!(agent.kind, AgentKind::Command(_)) || agent.has_tool(ToolName::RunCommand)
        })
        .map(|agent| (agent.name.as_str(), workflow.sandbox_of(agent)))
}
