//! `agentrun run`: run a workflow against Ollama or the built-in simulator.

use std::process::ExitCode;

use agentrun::{AgentKind, Workflow};
use anyhow::Context;

use crate::args::RunArgs;
use crate::commands::launch::{Launch, Place, RunSettings, launch};
use crate::commands::load_workflow;
use crate::commands::server::Server;
use crate::terminal::Output;

pub(crate) async fn run(args: RunArgs, output: Output) -> anyhow::Result<ExitCode> {
    let mut workflow = match load_workflow(&args.workflow) {
        Ok(workflow) => workflow,
        Err(code) => return Ok(code),
    };
    add_answers(&mut workflow, &args.answers)?;
    let task = args
        .task
        .clone()
        .or_else(|| workflow.task.clone())
        .context("the workflow has no `task`; give one with --task \"...\"")?;
    let server = Server::from_args(&args.server, Some(&args.workflow))?;
    let settings = RunSettings {
        task,
        policy: args.policy,
        max_turns: args.start.max_turns,
        workspace: args
            .workspace
            .as_ref()
            .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.clone())),
        non_interactive: args.start.non_interactive,
        keep_loaded: args.start.keep_loaded,
        no_learning: args.start.no_learning,
        server,
    };
    // A simulated run never acts on the current directory unless told to: it works on a
    // fresh copy of the workflow's simulation workspace, or in an empty scratch directory.
    let scratch =
        settings.server.is_simulator() && args.workspace.is_none() && args.copy_workspace.is_none();
    let copy_workspace = match &args.copy_workspace {
        Some(dir) => Some(dir.clone()),
        None if scratch => workflow.simulation.workspace.clone(),
        None => None,
    };
    launch(
        Launch {
            workflow,
            settings,
            place: Place::New {
                base: args.runs_dir,
                copy_workspace,
                scratch,
            },
            json: args.start.json,
            events: args.start.events,
            report: args.start.report,
            label: args.workflow.display().to_string(),
        },
        output,
    )
    .await
}

/// Appends `--answer AGENT=TEXT` answers to the human agents' canned answers.
fn add_answers(workflow: &mut Workflow, answers: &[String]) -> anyhow::Result<()> {
    for given in answers {
        let Some((name, text)) = given.split_once('=') else {
            anyhow::bail!("--answer `{given}` is not AGENT=TEXT");
        };
        let Some(agent) = workflow.agents.iter_mut().find(|agent| agent.name == name) else {
            anyhow::bail!("--answer names `{name}`, which is not an agent of the workflow");
        };
        let kind = agent.kind_name();
        let AgentKind::Human(human) = &mut agent.kind else {
            anyhow::bail!(
                "--answer names `{name}`, whose kind is `{kind}`; answers are for human agents"
            );
        };
        human.answers.push(text.to_owned());
    }
    Ok(())
}
