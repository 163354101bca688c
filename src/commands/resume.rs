//! `agentrun resume`: continue an interrupted run from its last completed turn.

use std::process::ExitCode;

use agentrun::SavedRun;
use anyhow::Context;

use crate::args::ResumeArgs;
use crate::commands::launch::{Launch, Place, RunSettings, launch};
use crate::commands::server::{DEFAULT_TIME_SCALE, Server};
use crate::terminal::Output;

pub(crate) async fn run(args: ResumeArgs, output: Output) -> anyhow::Result<ExitCode> {
    let saved = SavedRun::read(&args.run_dir)
        .with_context(|| format!("cannot resume {}", args.run_dir.display()))?;
    if saved.has_ended() {
        eprintln!(
            "{}: the run already reached its end after {} turns; nothing to resume",
            args.run_dir.display(),
            saved.transcript.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut settings = match RunSettings::read(&args.run_dir) {
        Ok(settings) => settings,
        // A run directory written without `run.json`: its events name the task; the
        // server comes from the flags.
        Err(error) => {
            tracing::info!(%error, "no run settings; using the run's events");
            RunSettings {
                task: saved
                    .task()
                    .map(str::to_owned)
                    .or_else(|| saved.workflow.task.clone())
                    .context("the run directory does not say what the task was")?,
                policy: None,
                max_turns: None,
                workspace: None,
                non_interactive: false,
                keep_loaded: false,
                no_learning: false,
                server: Server::from_environment()?,
            }
        }
    };
    override_settings(&mut settings, &args);
    let resume = saved.resume();
    launch(
        Launch {
            workflow: saved.workflow,
            settings,
            place: Place::Resumed {
                path: args.run_dir.clone(),
                resume,
            },
            json: args.start.json,
            events: args.start.events,
            report: args.start.report,
            label: args.run_dir.display().to_string(),
        },
        output,
    )
    .await
}

/// The flags given win over what the run was started with.
fn override_settings(settings: &mut RunSettings, args: &ResumeArgs) {
    if let Some(url) = &args.url {
        settings.server = Server::Ollama { url: url.clone() };
    }
    let wants_simulator = args.sim || args.time_scale.is_some() || args.sim_script.is_some();
    if wants_simulator {
        let (saved_scale, saved_script) = match &settings.server {
            Server::Simulator { time_scale, script } => (*time_scale, script.clone()),
            Server::Ollama { .. } | Server::Hosts { .. } => (DEFAULT_TIME_SCALE, None),
        };
        settings.server = Server::Simulator {
            time_scale: args.time_scale.unwrap_or(saved_scale),
            script: args
                .sim_script
                .as_ref()
                .map(|script| std::path::absolute(script).unwrap_or_else(|_| script.clone()))
                .or(saved_script),
        };
    }
    if args.start.max_turns.is_some() {
        settings.max_turns = args.start.max_turns;
    }
    settings.keep_loaded |= args.start.keep_loaded;
    settings.non_interactive |= args.start.non_interactive;
    settings.no_learning |= args.start.no_learning;
}
