//! Starting a run, new or resumed: the server, the run directory, Ctrl-C, the
//! event printer and the executor; how it ended, and how to resume it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use agentrun::{
    AgentKind, Event, EventSink, Executor, McpServers, ModelBackend, Policy, Resume, RunDirectory,
    RunOptions, RunStatus, Workflow,
};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::commands::sandbox;
use crate::commands::server::Server;
use crate::commands::{host_memory, resolve_budget};
use crate::console::TerminalConsole;
use crate::terminal::Output;

/// Exit code of a run that was interrupted (the shell's convention for SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

/// How a run was started, kept as `run.json` in its directory so that
/// `agentrun resume` starts it again the same way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunSettings {
    /// The task given to the agents.
    pub(crate) task: String,
    /// The policy given on the command line, if any.
    pub(crate) policy: Option<Policy>,
    /// The turn limit given on the command line, if any.
    pub(crate) max_turns: Option<u32>,
    /// The directory the agents work in (absolute), if not the current one.
    pub(crate) workspace: Option<PathBuf>,
    /// Whether human agents may not wait for a person.
    pub(crate) non_interactive: bool,
    /// Whether the models stay loaded at the end.
    pub(crate) keep_loaded: bool,
    /// Whether the run neither uses nor keeps what runs learn ([`agentrun::Knowledge`]).
    #[serde(default)]
    pub(crate) no_learning: bool,
    /// The model server.
    pub(crate) server: Server,
}

/// The file in a run directory that holds its [`RunSettings`].
pub(crate) const SETTINGS_FILE: &str = "run.json";

impl RunSettings {
    pub(crate) fn read(run_dir: &Path) -> anyhow::Result<RunSettings> {
        let path = run_dir.join(SETTINGS_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
    }

    fn write(&self, run_dir: &Path) -> anyhow::Result<()> {
        let path = run_dir.join(SETTINGS_FILE);
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Where the run is kept.
pub(crate) enum Place {
    /// A new directory under this base.
    New {
        /// The `--runs-dir` base.
        base: PathBuf,
        /// A workspace to copy into the run's directory first.
        copy_workspace: Option<PathBuf>,
        /// Without a workspace to copy: work in an empty directory in the run's directory
        /// rather than the current one.
        scratch: bool,
    },
    /// The directory of the run being resumed.
    Resumed {
        /// The directory.
        path: PathBuf,
        /// Its completed turns and where its clock stopped.
        resume: Resume,
    },
}

/// A run to start.
pub(crate) struct Launch {
    pub(crate) workflow: Workflow,
    pub(crate) settings: RunSettings,
    pub(crate) place: Place,
    /// Print the summary as JSON on stdout.
    pub(crate) json: bool,
    /// Also write the events to this file.
    pub(crate) events: Option<PathBuf>,
    /// Write the report to this file at the end.
    pub(crate) report: Option<PathBuf>,
    /// What the user called the workflow, for messages.
    pub(crate) label: String,
}

/// How a started run ended.
pub(crate) struct Ended {
    /// Its summary.
    pub(crate) summary: agentrun::RunSummary,
    /// Its directory.
    pub(crate) run_dir: PathBuf,
}

/// Runs `launch` to its end and prints how it went; Ctrl-C interrupts it.
pub(crate) async fn launch(launch: Launch, output: Output) -> anyhow::Result<ExitCode> {
    let cancel = CancellationToken::new();
    tokio::spawn({
        let cancel = cancel.clone();
        async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }
    });
    let ended = run_to_end(launch, output, None, cancel).await?;
    Ok(match ended.summary.status {
        RunStatus::Completed => ExitCode::SUCCESS,
        RunStatus::Cancelled => ExitCode::from(EXIT_INTERRUPTED),
        _ => ExitCode::FAILURE,
    })
}

/// Runs `launch` to its end, printing how it went; every event of the run is also sent
/// to `observer`, when there is one. Cancelling `cancel` interrupts the run.
pub(crate) async fn run_to_end(
    launch: Launch,
    output: Output,
    observer: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
    cancel: CancellationToken,
) -> anyhow::Result<Ended> {
    let Launch {
        workflow,
        mut settings,
        place,
        json,
        events: events_path,
        report,
        label,
    } = launch;
    let gpu_budget = resolve_budget(&workflow, &settings.server)?;
    // Hosts that say `auto` take the run's budget: the workflow's, else this machine's.
    let auto_budget = gpu_budget.or(match workflow.memory.gpu_budget {
        agentrun::GpuBudget::Bytes(bytes) => Some(bytes),
        agentrun::GpuBudget::Auto => None,
    });
    let fleet = settings.server.connect_fleet(auto_budget).await?;
    let backend: Arc<dyn ModelBackend> = match &fleet {
        Some(fleet) => fleet.clone(),
        None => settings.server.connect().await?,
    };
    // Whether the run already said where its agents work.
    let mut told_where = false;
    let (run_dir, resume) = match place {
        Place::New {
            base,
            copy_workspace,
            scratch,
        } => {
            let run_dir = RunDirectory::create(&base, &workflow).with_context(|| {
                format!("cannot create a run directory under {}", base.display())
            })?;
            if let Some(original) = &copy_workspace {
                let copy = copy_workspace_into(original, run_dir.path())?;
                if scratch {
                    output.note(&format!(
                        "agentrun: the simulated run works on a fresh copy of {} in {}",
                        original.display(),
                        copy.display()
                    ));
                    told_where = true;
                }
                settings.workspace = Some(copy);
            } else if scratch {
                let dir = scratch_workspace(run_dir.path())?;
                output.note(&format!(
                    "agentrun: the simulated run works in the empty directory {}",
                    dir.display()
                ));
                told_where = true;
                settings.workspace = Some(dir);
            }
            settings.write(run_dir.path())?;
            (run_dir, None)
        }
        Place::Resumed { path, resume } => {
            let run_dir = RunDirectory::reopen(&path)
                .with_context(|| format!("cannot append to {}", path.display()))?;
            (run_dir, Some(resume))
        }
    };
    let run_path = run_dir.path().to_owned();
    let (events, receiver) = EventSink::channel();
    let events_file = match &events_path {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create the events file {}", path.display()))?,
        )),
        None => None,
    };
    let show = tokio::spawn(show_events(
        receiver,
        output.clone(),
        events_file,
        run_dir,
        observer,
    ));
    let (measured, calibrated_decode) = calibrated(&*backend, &workflow).await;
    let learning = if settings.no_learning {
        None
    } else {
        let urls = fleet.as_ref().map(|fleet| {
            fleet
                .specs()
                .into_iter()
                .map(|spec| spec.url)
                .collect::<Vec<_>>()
        });
        Some(Learning::start(&*backend, urls.as_deref(), &workflow, &output).await)
    };
    for line in sandbox::describe(&workflow) {
        output.note(&format!("agentrun: {line}"));
    }
    for warning in sandbox::warnings(&workflow) {
        eprintln!("warning: {warning}");
    }
    let mut executor = Executor::new(workflow, backend)
        .with_events(events.clone())
        .with_cancellation(cancel)
        .with_sandbox(sandbox::this_program_as_launcher());
    if let Some(fleet) = fleet {
        executor = executor.with_fleet(fleet);
    }
    if !settings.non_interactive {
        executor = executor.with_console(Arc::new(TerminalConsole::new(events.clone())));
    }
    // On the simulator without a reply script, every reply is drawn from the workflow's
    // `simulation` section, so the run walks the workflow's edges to its end.
    let dry_run = matches!(settings.server, Server::Simulator { script: None, .. });
    if dry_run {
        let agent: Arc<dyn agentrun::Agent> = Arc::new(agentrun::DryRun::new(executor.workflow()));
        let names: Vec<String> = executor
            .workflow()
            .agents
            .iter()
            .map(|agent| agent.name.clone())
            .collect();
        for name in &names {
            executor = executor.with_agent(name, agent.clone());
        }
        output.note(
            "agentrun: the replies are simulated (no reply script): drawn from the workflow's \
             `simulation` section; commands are not run and tools are not called",
        );
    }
    // A simulated run without a reply script calls no tools, so it starts no MCP server.
    let mcp = if dry_run {
        None
    } else {
        let workspace = match &settings.workspace {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        let (with_tools, servers) = start_mcp_servers(executor, &workspace, &run_path).await?;
        executor = with_tools;
        servers
    };
    // The event printer ends when the last sender is gone: only the executor may hold one.
    drop(events);
    let mut options = RunOptions::new(settings.task.clone());
    options.max_turns = settings.max_turns;
    options.gpu_budget = gpu_budget;
    options.host_memory = host_memory(&settings.server);
    options.measured_load_times = measured;
    if let Some(learning) = &learning {
        options.experience = learning.experience.clone();
    }
    // A decode speed measured in whole turns of earlier runs says more than calibration's.
    for (model, decode) in calibrated_decode {
        options.experience.decode.entry(model).or_insert(decode);
    }
    if let Server::Simulator { time_scale, .. } = settings.server {
        options.time_scale = time_scale;
    }
    options.policy = settings.policy;
    options.unload_at_end = !settings.keep_loaded;
    // The run directory has every turn on disk; memory keeps only what agents see.
    options.keep_transcript = false;
    options.workspace = settings.workspace.clone();
    if let Some(resume) = &resume {
        output.note(&format!(
            "agentrun: resuming {} after turn {}",
            run_path.display(),
            resume.transcript.len()
        ));
    }
    options.resume = resume;
    let acts = executor.workflow().agents.iter().any(|agent| {
        matches!(agent.kind, AgentKind::Command(_))
            || !agent.tools().is_empty()
            || agent.llm().is_some_and(|llm| !llm.mcp_tools.is_empty())
    });
    if acts && !told_where {
        let dir = match &options.workspace {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().unwrap_or_default(),
        };
        output.note(&format!(
            "agentrun: the agents work in {} (choose another directory with --workspace)",
            dir.display()
        ));
        // Printed even with -q: the run may change files that are not committed yet.
        if let Some(changes) = uncommitted_changes(&dir) {
            eprintln!(
                "warning: {} is a git work tree with {changes} uncommitted change{}, which the \
                 agents may overwrite; commit or stash them first, or work on a copy with \
                 --copy-workspace {}",
                dir.display(),
                if changes == 1 { "" } else { "s" },
                shell_word(&dir.to_string_lossy())
            );
        }
    }
    let outcome = executor.run(options).await;
    drop(executor);
    // Stopped whether the run completed, failed or was interrupted.
    if let Some(mcp) = mcp {
        mcp.stop().await;
    }
    show.await.context("the event printer stopped")??;
    let outcome = outcome.with_context(|| format!("cannot run {label}"))?;
    if let Some(learning) = learning {
        learning.keep(&outcome.observations);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&outcome.summary)?);
    }
    output.summary(&outcome.summary);
    eprintln!("run saved in {}", run_path.display());
    if let Some(report) = &report {
        write_report(&run_path, report)?;
        eprintln!("report written to {}", report.display());
    }
    let ended = outcome
        .transcript
        .last()
        .is_some_and(|entry| entry.next == agentrun_spec::EdgeTarget::End);
    let resumable = matches!(
        outcome.summary.status,
        RunStatus::Cancelled | RunStatus::Timeout | RunStatus::Failed
    );
    if resumable && !ended {
        eprintln!(
            "resume it with: agentrun resume {}",
            shell_word(&run_path.to_string_lossy())
        );
    }
    Ok(Ended {
        summary: outcome.summary,
        run_dir: run_path,
    })
}

/// Starts the workflow's MCP servers (if it has any) and gives each agent the tools it
/// lists. The servers' error output is kept in the run's directory.
async fn start_mcp_servers(
    mut executor: Executor,
    workspace: &Path,
    run_dir: &Path,
) -> anyhow::Result<(Executor, Option<McpServers>)> {
    let specs = executor.workflow().mcp_servers.clone();
    if specs.is_empty() {
        return Ok((executor, None));
    }
    let sandbox = sandbox::for_mcp_servers(executor.workflow());
    let servers = McpServers::start(&specs, workspace, run_dir, Some(sandbox)).await?;
    let agents = executor.workflow().agents.clone();
    for agent in &agents {
        let tools = match servers.tools_for(agent) {
            Ok(tools) => tools,
            Err(error) => {
                servers.stop().await;
                return Err(error.into());
            }
        };
        for tool in tools {
            executor = executor.with_tool(&agent.name, tool);
        }
    }
    Ok((executor, Some(servers)))
}

/// Writes the report of the run kept in `run_dir` to `report`.
pub(crate) fn write_report(run_dir: &Path, report: &Path) -> anyhow::Result<()> {
    let events_path = run_dir.join(agentrun::EVENTS_FILE);
    if !events_path.is_file() {
        anyhow::bail!(
            "{} is not a run directory (it has no events.jsonl)",
            run_dir.display()
        );
    }
    let events = agentrun::read_events(&events_path)?;
    std::fs::write(report, agentrun::run_report_html(&events))
        .with_context(|| format!("cannot write the report {}", report.display()))
}

/// How many files `git status` lists as changed or untracked in `dir`, when `dir` is in a
/// git work tree and any are; `None` when it is clean, not a work tree, or git is missing.
fn uncommitted_changes(dir: &Path) -> Option<usize> {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !status.status.success() {
        return None;
    }
    let changes = String::from_utf8_lossy(&status.stdout).lines().count();
    (changes > 0).then_some(changes)
}

/// A word as a POSIX shell reads it back: quoted when it holds anything special.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:+@=,%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Renders events on the terminal, appends them to the events file and hands them to the
/// observer, until the run ends.
async fn show_events(
    mut receiver: tokio::sync::mpsc::UnboundedReceiver<Event>,
    mut output: Output,
    mut events_file: Option<std::io::BufWriter<std::fs::File>>,
    mut run_dir: RunDirectory,
    observer: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
) -> anyhow::Result<()> {
    while let Some(event) = receiver.recv().await {
        if let Some(observer) = &observer
            && !matches!(event, Event::TextDelta { .. })
        {
            // An observer that stopped listening does not stop the run.
            let _ = observer.send(event.clone());
        }
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

/// Load times and decode speeds `agentrun calibrate` measured on this server, for the models
/// the workflow uses; none when nothing was calibrated or the file cannot be read.
async fn calibrated(
    backend: &dyn ModelBackend,
    workflow: &Workflow,
) -> (
    std::collections::BTreeMap<String, agentrun::LoadTimes>,
    std::collections::BTreeMap<String, agentrun::DecodeSamples>,
) {
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
    // A model the server lacks stops the run right after, with its own message.
    let details = agentrun::model_details_of(backend, workflow)
        .await
        .unwrap_or_default();
    (
        calibration.load_times(&server, &details),
        calibration.decode(&server, &details),
    )
}

/// What earlier runs of the workflow on this server learnt, and where to keep what this
/// run adds.
struct Learning {
    path: std::path::PathBuf,
    knowledge: agentrun::Knowledge,
    workflow: Workflow,
    server: String,
    details: std::collections::BTreeMap<String, agentrun::ModelDetails>,
    experience: agentrun::Observations,
    /// On several hosts: each host's file, which replaces `path` and `knowledge`.
    hosts: Option<agentrun::HostsKnowledge>,
}

impl Learning {
    /// Reads what earlier runs learnt; a file that cannot be used is a warning, and the run
    /// starts from the workflow's priors.
    async fn start(
        backend: &dyn ModelBackend,
        hosts: Option<&[String]>,
        workflow: &Workflow,
        output: &Output,
    ) -> Learning {
        let server = backend.endpoint();
        // A model the server lacks stops the run right after, with its own message.
        let details = agentrun::model_details_of(backend, workflow)
            .await
            .unwrap_or_default();
        if let Some(urls) = hosts {
            return Learning::start_on_hosts(urls, workflow, details, server, output);
        }
        let path = agentrun::Knowledge::default_path(&workflow.name, &server);
        let knowledge = match agentrun::Knowledge::load(&path) {
            Ok(knowledge) => knowledge.unwrap_or_default(),
            Err(error) => {
                eprintln!("warning: {error}");
                agentrun::Knowledge::default()
            }
        };
        let experience = knowledge.experience(workflow, &details);
        if !experience.is_empty() {
            output.note(&format!(
                "agentrun: the plan starts from what {} earlier run{} of this workflow on this \
                 server learnt ({}; --no-learning to ignore it)",
                knowledge.runs,
                if knowledge.runs == 1 { "" } else { "s" },
                path.display()
            ));
        }
        Learning {
            path,
            knowledge,
            workflow: workflow.clone(),
            server,
            details,
            experience,
            hosts: None,
        }
    }

    /// Reads what earlier runs learnt on each host of a fleet (each host's own file).
    fn start_on_hosts(
        urls: &[String],
        workflow: &Workflow,
        details: std::collections::BTreeMap<String, agentrun::ModelDetails>,
        server: String,
        output: &Output,
    ) -> Learning {
        let (known, warnings) = agentrun::HostsKnowledge::load(&workflow.name, urls);
        for error in warnings {
            eprintln!("warning: {error}");
        }
        let experience = known.experience(workflow, &details);
        if !experience.is_empty() {
            let runs: Vec<String> = known
                .hosts
                .iter()
                .filter(|(_, _, knowledge)| knowledge.runs > 0)
                .map(|(url, _, knowledge)| format!("{url}: {}", knowledge.runs))
                .collect();
            output.note(&format!(
                "agentrun: the plan starts from what earlier runs of this workflow on these \
                 hosts learnt (runs per host: {}; --no-learning to ignore it)",
                runs.join(", ")
            ));
        }
        Learning {
            path: std::path::PathBuf::new(),
            knowledge: agentrun::Knowledge::default(),
            workflow: workflow.clone(),
            server,
            details,
            experience,
            hosts: Some(known),
        }
    }

    /// Adds what the run measured and saves it; failing to save is a warning.
    fn keep(mut self, observed: &agentrun::Observations) {
        if observed.is_empty() {
            return;
        }
        if let Some(hosts) = self.hosts {
            for (path, saved) in hosts.absorb_and_save(&self.workflow, &self.details, observed) {
                if let Err(error) = saved {
                    eprintln!(
                        "warning: what this run learnt was not kept in {}: {error}",
                        path.display()
                    );
                }
            }
            return;
        }
        self.knowledge
            .absorb(&self.workflow, &self.server, &self.details, observed);
        if let Err(error) = self.knowledge.save(&self.path) {
            eprintln!("warning: what this run learnt was not kept: {error}");
        }
    }
}

/// The directory in a run's directory that its copied or scratch workspace is.
const WORKSPACE_DIR: &str = "workspace";

/// An empty workspace in the run's directory, for a simulated run given none.
fn scratch_workspace(run_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = run_dir.join(WORKSPACE_DIR);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the workspace {}", dir.display()))?;
    Ok(std::path::absolute(&dir).unwrap_or(dir))
}

/// Copies `original` into the run's directory and returns the copy's path.
fn copy_workspace_into(original: &Path, run_dir: &Path) -> anyhow::Result<PathBuf> {
    let copy = run_dir.join(WORKSPACE_DIR);
    copy_tree(original, &copy).with_context(|| {
        format!(
            "cannot copy the workspace {} to {}",
            original.display(),
            copy.display()
        )
    })?;
    Ok(std::path::absolute(&copy).unwrap_or(copy))
}

/// Copies files and folders; links are not followed, so a copy never reaches
/// outside the original.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn words_with_spaces_or_quotes_are_quoted_for_the_shell() {
        assert_eq!(
            shell_word(".agentrun/runs/20260101T000000Z-review"),
            ".agentrun/runs/20260101T000000Z-review"
        );
        assert_eq!(shell_word("my runs/a"), "'my runs/a'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
