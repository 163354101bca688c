//! `agentrun run`: run a workflow against Ollama or the built-in simulator.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use agentrun::{
    AgentKind, Event, EventSink, Executor, ModelBackend, PolicyName, RunOptions, RunStatus,
    Workflow,
};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::args::{PolicyArg, RunArgs};
use crate::commands::{connect, load_workflow, resolve_budget};
use crate::console::TerminalConsole;
use crate::terminal::Output;

/// Exit code of a run that was interrupted (the shell's convention for SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

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
    let gpu_budget = resolve_budget(&workflow, args.server.sim)?;
    let backend: Arc<dyn ModelBackend> = connect(&args.server, Some(&args.workflow)).await?;
    let (events, receiver) = EventSink::channel();
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    let run_dir = agentrun::RunDirectory::create(&args.runs_dir, &workflow).with_context(|| {
        format!(
            "cannot create a run directory under {}",
            args.runs_dir.display()
        )
    })?;
    let events_file = match &args.events {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the events file {}", path.display()))?,
        )),
        None => None,
    };
    let run_path = run_dir.path().to_owned();
    let show = tokio::spawn(show_events(receiver, output.clone(), events_file, run_dir));
    let measured = measured_load_times(&*backend, &workflow).await;
    let mut executor = Executor::new(workflow, backend)
        .with_events(events.clone())
        .with_cancellation(cancel);
    if !args.non_interactive {
        executor = executor.with_console(Arc::new(TerminalConsole::new(events.clone())));
    }
    // The event printer ends when the last sender is gone: only the executor may hold one.
    drop(events);
    let mut options = RunOptions::new(task);
    options.max_turns = args.max_turns;
    options.gpu_budget = gpu_budget;
    options.measured_load_times = measured;
    if args.server.sim {
        options.time_scale = args.server.time_scale;
    }
    options.policy = args.policy.map(policy_name);
    options.unload_at_end = !args.keep_loaded;
    options.workspace = match &args.copy_workspace {
        Some(original) => Some(copy_workspace(original, &run_path)?),
        None => args.workspace.clone(),
    };
    let acts = executor
        .workflow()
        .agents
        .iter()
        .any(|agent| agent.kind == AgentKind::Command || !agent.tools.is_empty());
    if acts {
        let dir = match &options.workspace {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_default(),
        };
        output.note(&format!(
            "agentrun: the agents work in {} (choose another directory with --workspace)",
            dir.display()
        ));
    }
    let outcome = executor.run(options).await;
    drop(executor);
    show.await.context("the event printer stopped")??;
    let outcome = outcome.with_context(|| format!("cannot run {}", args.workflow.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome.summary)?);
    }
    output.summary(&outcome.summary);
    eprintln!("run saved in {}", run_path.display());
    Ok(match outcome.summary.status {
        RunStatus::Completed => ExitCode::SUCCESS,
        RunStatus::Cancelled => ExitCode::from(EXIT_INTERRUPTED),
        _ => ExitCode::FAILURE,
    })
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
        if agent.kind != AgentKind::Human {
            anyhow::bail!(
                "--answer names `{name}`, whose kind is `{}`; answers are for human agents",
                agent.kind.as_str()
            );
        }
        agent.answers.push(text.to_owned());
    }
    Ok(())
}

fn policy_name(policy: PolicyArg) -> PolicyName {
    match policy {
        PolicyArg::Smart => PolicyName::Smart,
        PolicyArg::Static => PolicyName::Static,
        PolicyArg::OllamaDefault => PolicyName::OllamaDefault,
    }
}

/// Renders events on the terminal and appends them to the events file, until the run ends.
async fn show_events(
    mut receiver: tokio::sync::mpsc::UnboundedReceiver<Event>,
    mut output: Output,
    mut events_file: Option<std::io::BufWriter<std::fs::File>>,
    mut run_dir: agentrun::RunDirectory,
) -> anyhow::Result<()> {
    while let Some(event) = receiver.recv().await {
        run_dir
            .record(&event)
            .with_context(|| format!("cannot write to {}", run_dir.path().display()))?;
        if let Some(file) = &mut events_file
            && !matches!(event, Event::TextDelta { .. })
        {
            serde_json::to_writer(&mut *file, &event)?;
            file.write_all(b"\n")?;
            if matches!(
                event,
                Event::TurnFinished { .. } | Event::RunFinished { .. }
            ) {
                file.flush()?;
            }
        }
        output.event(&event);
    }
    if let Some(file) = &mut events_file {
        file.flush()?;
    }
    output.finish();
    Ok(())
}

/// Load times `agentrun calibrate` measured on this server, for the models the
/// workflow uses; none when nothing was calibrated or the file cannot be read.
async fn measured_load_times(
    backend: &dyn ModelBackend,
    workflow: &agentrun::Workflow,
) -> std::collections::BTreeMap<String, agentrun::LoadTimes> {
    let calibration = match agentrun::Calibration::load(&agentrun::Calibration::default_path()) {
        Ok(calibration) => calibration,
        Err(error) => {
            tracing::warn!(%error, "calibration not used");
            return Default::default();
        }
    };
    let server = backend.endpoint();
    if calibration.for_server(&server).is_empty() {
        return Default::default();
    }
    let mut details = std::collections::BTreeMap::new();
    for model in workflow.agents.iter().filter_map(|a| a.model.as_ref()) {
        if let Ok(found) = backend.model_details(model).await {
            details.insert(model.clone(), found);
        }
    }
    calibration.load_times(&server, &details)
}

/// Copies `original` into the run's directory and returns the copy's path.
fn copy_workspace(
    original: &std::path::Path,
    run_dir: &std::path::Path,
) -> anyhow::Result<std::path::PathBuf> {
    let copy = run_dir.join("workspace");
    copy_tree(original, &copy).with_context(|| {
        format!(
            "cannot copy the workspace {} to {}",
            original.display(),
            copy.display()
        )
    })?;
    Ok(copy)
}

/// Copies files and folders; links are not followed, so a copy never reaches
/// outside the original.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
