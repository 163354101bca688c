//! `agentrun resume`: continue an interrupted run from its last completed turn.

use std::process::ExitCode;

use agentrun::SavedRun;
use anyhow::Context;

use crate::args::ResumeArgs;
use crate::commands::launch::{Launch, Place, RunSettings, SavedServer, launch};
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
                server: SavedServer {
                    url: std::env::var("OLLAMA_HOST")
                        .unwrap_or_else(|_| "http://127.0.0.1:11434".to_owned()),
                    sim: false,
                    time_scale: 0.01,
                    sim_script: None,
                },
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
    let server = &mut settings.server;
    if let Some(url) = &args.url {
        server.url.clone_from(url);
        server.sim = false;
    }
    if args.sim {
        server.sim = true;
    }
    if let Some(scale) = args.time_scale {
        server.time_scale = scale;
    }
    if let Some(script) = &args.sim_script {
        server.sim_script = Some(std::path::absolute(script).unwrap_or_else(|_| script.clone()));
    }
    if args.start.max_turns.is_some() {
        settings.max_turns = args.start.max_turns;
    }
    settings.keep_loaded |= args.start.keep_loaded;
    settings.non_interactive |= args.start.non_interactive;
    settings.no_learning |= args.start.no_learning;
}
