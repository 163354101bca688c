//! `agentrun run`: run a workflow against Ollama or the built-in simulator.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use agentrun::{Event, EventSink, Executor, ModelBackend, PolicyName, RunOptions, RunStatus};
use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::args::{PolicyArg, RunArgs};
use crate::commands::{connect, load_workflow, resolve_budget};
use crate::terminal::Output;

/// Exit code of a run that was interrupted (the shell's convention for SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

pub(crate) async fn run(args: RunArgs, output: Output) -> anyhow::Result<ExitCode> {
    let workflow = match load_workflow(&args.workflow) {
        Ok(workflow) => workflow,
        Err(code) => return Ok(code),
    };
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
    let executor = Executor::new(workflow, backend)
        .with_events(events)
        .with_cancellation(cancel);
    let mut options = RunOptions::new(task);
    options.max_turns = args.max_turns;
    options.gpu_budget = gpu_budget;
    if args.server.sim {
        options.time_scale = args.server.time_scale;
    }
    options.policy = args.policy.map(policy_name);
    options.unload_at_end = !args.keep_loaded;
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
