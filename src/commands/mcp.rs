//! `agentrun mcp`: agentrun as an MCP server over stdio, so that an MCP client (an editor,
//! a desktop assistant) can check, plan and start runs and read how they went.
//!
//! It is confined as the command line is: it acts only on the workflow files and
//! workspaces a call names, and a run given no workspace works in a fresh directory in
//! its run directory, never in the server's current directory.

mod catalogue;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentrun::{BackendError, Event, Workflow};
use anyhow::Context;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RoleServer};
use rmcp::{ErrorData, ServerHandler, ServiceExt};

use crate::args::{PlanArgs, ServerArgs};
use crate::commands::launch::{Launch, Place, RunSettings, run_to_end};
use crate::commands::server::{DEFAULT_OLLAMA_URL, DEFAULT_TIME_SCALE, Server};
use crate::commands::{load_failure, plan};
use crate::terminal::Output;
use catalogue::{PlanParams, PsParams, RunParams, RunsParams, SummaryParams, ValidateParams};

/// Serves the tools over stdin and stdout until the client goes away.
pub(crate) async fn run() -> anyhow::Result<ExitCode> {
    let service = AgentrunServer
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP client did not complete the handshake")?;
    service
        .waiting()
        .await
        .context("the MCP connection failed")?;
    Ok(ExitCode::SUCCESS)
}

/// The server's handler: each tool call becomes the library calls its command makes.
#[derive(Debug, Clone, Copy)]
struct AgentrunServer;

/// A tool's failure: the message the command line would print.
type ToolResult = Result<String, String>;

impl ServerHandler for AgentrunServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("agentrun", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Check, plan and run agentrun workflows (multi-agent teams on local models \
                 served by Ollama), list the runs kept on disk and read their summaries. \
                 Paths are relative to the server's directory.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(catalogue::tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        let given = request.arguments;
        let result = match name {
            "validate" => match catalogue::arguments(name, given) {
                Ok(params) => validate(params),
                Err(error) => Err(error),
            },
            "plan" => match catalogue::arguments(name, given) {
                Ok(params) => plan_workflow(params).await,
                Err(error) => Err(error),
            },
            "run" => match catalogue::arguments(name, given) {
                Ok(params) => {
                    let progress = context
                        .meta
                        .get_progress_token()
                        .map(|token| (context.peer.clone(), token));
                    start_run(params, progress, context.ct.clone()).await
                }
                Err(error) => Err(error),
            },
            "runs" => match catalogue::arguments(name, given) {
                Ok(params) => list_runs(params),
                Err(error) => Err(error),
            },
            "summary" => match catalogue::arguments(name, given) {
                Ok(params) => summary(params),
                Err(error) => Err(error),
            },
            "ps" => match catalogue::arguments::<PsParams>(name, given) {
                Ok(_) => resident().await,
                Err(error) => Err(error),
            },
            unknown => {
                return Err(ErrorData::invalid_params(
                    format!("agentrun has no tool `{unknown}`"),
                    None,
                ));
            }
        };
        Ok(match result {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
        }
        .into())
    }
}

/// An error as the command line prints it: with its causes, and a hint where one is known.
fn message(error: &anyhow::Error) -> String {
    let mut text = format!("error: {error:#}");
    if let Some(hint) = crate::commands::hint_for(error) {
        text.push_str(&format!("\nhint: {hint}"));
    }
    text
}

/// Loads a workflow; its problems, as `validate` prints them, on failure.
fn load(path: &Path) -> Result<Workflow, String> {
    Workflow::from_yaml_file(path).map_err(|error| load_failure(path, &error))
}

/// The warnings of a loaded workflow, one after another.
fn warnings(workflow: &Workflow) -> String {
    let mut text = String::new();
    for warning in &workflow.warnings {
        text.push_str(&warning.to_string());
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

fn validate(params: ValidateParams) -> ToolResult {
    let workflow = load(&params.workflow)?;
    Ok(format!(
        "{}{}: ok ({} agents, {} edges)",
        warnings(&workflow),
        params.workflow.display(),
        workflow.agents.len(),
        workflow.flow.edges.len()
    ))
}

async fn plan_workflow(params: PlanParams) -> ToolResult {
    let workflow = load(&params.workflow)?;
    let args = PlanArgs {
        server: ServerArgs {
            urls: Vec::new(),
            hosts: None,
            sim: params.sim,
            time_scale: DEFAULT_TIME_SCALE,
            sim_script: None,
        },
        workflow: params.workflow,
        json: true,
        no_learning: params.no_learning,
        forget: false,
    };
    let planned = plan::plan(&args, &workflow)
        .await
        .map_err(|error| message(&error))?;
    serde_json::to_string_pretty(&planned.analysis).map_err(|error| error.to_string())
}

/// Where a client's progress notifications go: its connection and the call's token.
type Progress = (Peer<RoleServer>, ProgressToken);

async fn start_run(
    params: RunParams,
    progress: Option<Progress>,
    cancel: tokio_util::sync::CancellationToken,
) -> ToolResult {
    if let Some(scale) = params.time_scale
        && !(scale.is_finite() && scale > 0.0)
    {
        return Err(format!(
            "error: `time_scale` is {scale}; it must be a positive number of seconds"
        ));
    }
    let workflow = load(&params.workflow)?;
    let task = params
        .task
        .clone()
        .or_else(|| workflow.task.clone())
        .ok_or_else(|| {
            format!(
                "error: {} has no `task`; give one with the `task` argument",
                params.workflow.display()
            )
        })?;
    let workspace = match &params.workspace {
        Some(dir) if !dir.is_dir() => {
            return Err(format!(
                "error: the workspace {} is not a directory",
                dir.display()
            ));
        }
        Some(dir) => Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone())),
        None => None,
    };
    let server = choose_server(&params)
        .await
        .map_err(|error| message(&error))?;
    let note = match &server {
        Server::Simulator { .. } if !params.sim => Some(format!(
            "no Ollama server answers at {}; the run used the built-in simulator",
            ollama_url()
        )),
        _ => None,
    };
    // Never the server's own directory: without a workspace the run works in a fresh one
    // in its run directory, a copy of the simulation workspace on the simulator.
    let scratch = workspace.is_none();
    let copy_workspace = match &workspace {
        None if server.is_simulator() => workflow.simulation.workspace.clone(),
        _ => None,
    };
    let turn_limit = params.max_turns.unwrap_or(workflow.limits.max_turns);
    let settings = RunSettings {
        task,
        policy: None,
        max_turns: params.max_turns,
        workspace,
        // Standard input is the MCP connection: no person can be asked.
        non_interactive: true,
        keep_loaded: false,
        no_learning: false,
        server,
    };
    let launch = Launch {
        workflow,
        settings,
        place: Place::New {
            base: params.runs_dir.clone().unwrap_or_else(runs_dir),
            copy_workspace,
            scratch,
        },
        json: false,
        events: None,
        report: None,
        label: params.workflow.display().to_string(),
    };
    let (observer, events) = tokio::sync::mpsc::unbounded_channel();
    let reporter =
        progress.map(|progress| tokio::spawn(report_progress(events, progress, turn_limit)));
    let ended = run_to_end(launch, Output::new(true, 0), Some(observer), cancel).await;
    if let Some(reporter) = reporter {
        let _ = reporter.await;
    }
    let ended = ended.map_err(|error| message(&error))?;
    let mut result = serde_json::json!({
        "run_dir": ended.run_dir,
        "summary": ended.summary,
    });
    if let Some(note) = note {
        result["note"] = note.into();
    }
    serde_json::to_string_pretty(&result).map_err(|error| error.to_string())
}

/// The simulator when the call asks for it or no Ollama server answers; else Ollama.
async fn choose_server(params: &RunParams) -> anyhow::Result<Server> {
    let args = ServerArgs {
        urls: Vec::new(),
        hosts: None,
        sim: true,
        time_scale: params.time_scale.unwrap_or(DEFAULT_TIME_SCALE),
        sim_script: params.sim_script.clone(),
    };
    let simulator = Server::from_args(&args, Some(&params.workflow))?;
    if params.sim {
        return Ok(simulator);
    }
    let ollama = Server::from_environment()?;
    Ok(match ollama.connect().await {
        Err(error)
            if error.chain().any(|cause| {
                matches!(cause.downcast_ref(), Some(BackendError::Unreachable { .. }))
            }) =>
        {
            simulator
        }
        _ => ollama,
    })
}

/// Sends a progress notification when the run starts and after each turn, until it ends.
async fn report_progress(
    mut events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    (peer, token): Progress,
    turn_limit: u32,
) {
    while let Some(event) = events.recv().await {
        let (done, text) = match &event {
            Event::RunStarted {
                workflow, endpoint, ..
            } => (0, format!("{workflow} started on {endpoint}")),
            Event::TurnFinished { entry, .. } => (
                entry.turn,
                format!("turn {}: {} → {}", entry.turn, entry.agent, entry.next),
            ),
            Event::RunFinished { summary } => (
                summary.turns,
                format!("{} after {} turns", summary.status.as_str(), summary.turns),
            ),
            _ => continue,
        };
        let notification = ProgressNotificationParam::new(token.clone(), f64::from(done))
            .with_total(f64::from(turn_limit.max(done)))
            .with_message(text);
        // A client that stopped listening does not stop the run.
        let _ = peer.notify_progress(notification).await;
    }
}

/// The runs directory the command line uses by default.
fn runs_dir() -> PathBuf {
    std::env::var_os("AGENTRUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".agentrun"))
}

/// The Ollama server Ollama's own clients use.
fn ollama_url() -> String {
    std::env::var("OLLAMA_HOST").unwrap_or_else(|_| DEFAULT_OLLAMA_URL.to_owned())
}

fn list_runs(params: RunsParams) -> ToolResult {
    let base = params.runs_dir.unwrap_or_else(runs_dir);
    let runs = agentrun::list_runs(&base).map_err(|error| message(&error.into()))?;
    let listed: Vec<serde_json::Value> = runs
        .iter()
        .map(|path| {
            let summary = read_summary(path).ok();
            let turns = std::fs::read_to_string(path.join(agentrun::TRANSCRIPT_FILE))
                .map(|text| text.lines().count())
                .unwrap_or(0);
            serde_json::json!({
                "run_dir": path,
                // No summary: the process died mid-run; its transcript is intact.
                "status": summary.as_ref().map_or("interrupted", |summary| summary.status.as_str()),
                "turns": turns,
                "load_wait_s": summary.as_ref().map(|summary| summary.load_wait_s),
            })
        })
        .collect();
    serde_json::to_string_pretty(&listed).map_err(|error| error.to_string())
}

fn summary(params: SummaryParams) -> ToolResult {
    let summary = read_summary(&params.run).map_err(|error| format!("error: {error:#}"))?;
    serde_json::to_string_pretty(&summary).map_err(|error| error.to_string())
}

/// The summary a finished run left in its directory.
fn read_summary(run_dir: &Path) -> anyhow::Result<agentrun::RunSummary> {
    let path = run_dir.join(agentrun::SUMMARY_FILE);
    if !run_dir.is_dir() {
        anyhow::bail!("{} is not a run directory", run_dir.display());
    }
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} has no {} (the run has not finished)",
            run_dir.display(),
            agentrun::SUMMARY_FILE
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

async fn resident() -> ToolResult {
    let backend = Server::from_environment()
        .map_err(|error| message(&error))?
        .connect()
        .await
        .map_err(|error| message(&error))?;
    let models = backend
        .running_models()
        .await
        .map_err(|error| message(&error.into()))?;
    let listed = serde_json::json!({ "server": backend.endpoint(), "models": models });
    serde_json::to_string_pretty(&listed).map_err(|error| error.to_string())
}
