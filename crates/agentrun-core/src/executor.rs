//! The executor: the turn loop that runs a workflow's conversation on a backend.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentrun_memory::LoadTimes;
use agentrun_spec::{AgentKind, LoadMode, PolicyName, Workflow};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::agent::{Agent, AgentError, AgentReply, LlmAgent, ModelCall, TurnContext};
use crate::backend::{BackendError, ModelBackend, ModelDetails};
use crate::clock::RunClock;
use crate::command::CommandAgent;
use crate::console::Console;
use crate::event::{Event, EventSink, LoadCause, ResidentModel};
use crate::graph::{ConversationGraph, Node, TurnOutcome};
use crate::human::HumanAgent;
use crate::loader::{Loader, PreloadJob};
use crate::residency::{FutureTurn, RESIDENT_LOAD_S, Residency, ResidencyError, ResidencySettings};
use crate::resume::{Resume, ResumeError};
use crate::server_view::ServerView;
use crate::summary::{RunStatus, RunSummary};
use crate::tools::{Tool, Workspace, builtin_tool};
use crate::transcript::TranscriptEntry;

/// How to run a workflow.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The task given to the agents.
    pub task: String,
    /// Overrides the workflow's turn limit.
    pub max_turns: Option<u32>,
    /// Overrides the workflow's wall-clock limit.
    pub timeout: Option<Duration>,
    /// Overrides the workflow's residency policy.
    pub policy: Option<PolicyName>,
    /// The GPU budget in bytes, when the workflow says `auto` and the caller
    /// resolved it (from the machine, or the simulator's settings).
    pub gpu_budget: Option<u64>,
    /// Overrides every agent's load mode.
    pub load_mode: Option<LoadMode>,
    /// The run's future, for the `oracle` policy (simulations only).
    pub future: Option<Vec<FutureTurn>>,
    /// Measured load times by model (`agentrun calibrate`); estimates stand in for the rest.
    pub measured_load_times: BTreeMap<String, LoadTimes>,
    /// Unload the models this run loaded when it ends.
    pub unload_at_end: bool,
    /// Return every turn in [`RunOutcome::transcript`]. Without it the run keeps only
    /// the turns agents still see, so memory stays flat however long the run: for
    /// callers that keep the transcript elsewhere (the CLI writes it to disk per turn).
    pub keep_transcript: bool,
    /// Real seconds per reported second: 1 for a real server; a time-scaled
    /// simulator's scale, so that the run's times read in simulated seconds
    /// like the server's own figures.
    pub time_scale: f64,
    /// The directory the run works in: command agents run there and tools act inside it.
    /// `None` is the current directory.
    pub workspace: Option<PathBuf>,
    /// Continue an interrupted run from its last completed turn instead of starting anew.
    pub resume: Option<Resume>,
}

impl RunOptions {
    /// Options that run `task` with the workflow's own limits and policy.
    pub fn new(task: impl Into<String>) -> RunOptions {
        RunOptions {
            task: task.into(),
            max_turns: None,
            timeout: None,
            policy: None,
            gpu_budget: None,
            load_mode: None,
            future: None,
            measured_load_times: BTreeMap::new(),
            unload_at_end: true,
            keep_transcript: true,
            time_scale: 1.0,
            workspace: None,
            resume: None,
        }
    }
}

/// What a finished run leaves behind.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The figures.
    pub summary: RunSummary,
    /// Every completed turn; with [`RunOptions::keep_transcript`] off, the last ones.
    pub transcript: Vec<TranscriptEntry>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A model the workflow uses is not available, or the server cannot be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The `oracle` policy needs the run's future, which only simulations know.
    #[error("the oracle policy only runs in simulations (`agentrun simulate`)")]
    OracleWithoutFuture,
    /// Residency planning could not be set up.
    #[error(transparent)]
    Residency(#[from] ResidencyError),
    /// The run to resume does not fit the workflow, or has ended.
    #[error("cannot resume the run: {0}")]
    Resume(#[from] ResumeError),
    /// A model cannot do what the workflow asks of it (tools, thinking).
    #[error(transparent)]
    Capability(#[from] crate::capabilities::MissingCapability),
    /// The workspace directory does not exist or cannot be read.
    #[error("cannot use the workspace {}: {error}", path.display())]
    Workspace {
        /// The directory given.
        path: PathBuf,
        /// Why it cannot be used.
        error: std::io::Error,
    },
}

/// Runs a workflow's conversation.
pub struct Executor {
    workflow: Arc<Workflow>,
    graph: ConversationGraph,
    backend: Arc<dyn ModelBackend>,
    agents: Vec<Arc<dyn Agent>>,
    /// The tools each agent's model may call, by agent index.
    tools: Vec<Vec<Arc<dyn Tool>>>,
    console: Option<Arc<dyn Console>>,
    events: EventSink,
    cancel: CancellationToken,
}

impl Executor {
    /// An executor with the built-in agent for each agent's kind.
    pub fn new(workflow: Workflow, backend: Arc<dyn ModelBackend>) -> Executor {
        let graph = ConversationGraph::new(&workflow);
        let agents = workflow
            .agents
            .iter()
            .map(|spec| -> Arc<dyn Agent> {
                match spec.kind {
                    AgentKind::Command => Arc::new(CommandAgent::new()),
                    AgentKind::Human => Arc::new(HumanAgent::new()),
                    AgentKind::Llm => Arc::new(LlmAgent::new()),
                }
            })
            .collect();
        let tools = workflow
            .agents
            .iter()
            .map(|spec| spec.tools.iter().map(|name| builtin_tool(*name)).collect())
            .collect();
        Executor {
            workflow: Arc::new(workflow),
            graph,
            backend,
            agents,
            tools,
            console: None,
            events: EventSink::none(),
            cancel: CancellationToken::new(),
        }
    }

    /// Replaces the named agent's implementation (a custom agent, or a synthetic one in simulations).
    /// An unknown name is ignored.
    pub fn with_agent(mut self, name: &str, agent: Arc<dyn Agent>) -> Executor {
        if let Some(index) = self.workflow.agents.iter().position(|a| a.name == name) {
            self.agents[index] = agent;
        }
        self
    }

    /// Gives the named agent's model a tool of your own, besides the built-in tools its
    /// workflow lists; it replaces a tool of the same name. An unknown agent is ignored.
    pub fn with_tool(mut self, agent: &str, tool: Arc<dyn Tool>) -> Executor {
        if let Some(index) = self.workflow.agents.iter().position(|a| a.name == agent) {
            let name = tool.spec().name;
            let tools = &mut self.tools[index];
            tools.retain(|existing| existing.spec().name != name);
            tools.push(tool);
        }
        self
    }

    /// Lets human agents and command approvals ask the person at `console`. Without one the
    /// run is non-interactive.
    pub fn with_console(mut self, console: Arc<dyn Console>) -> Executor {
        self.console = Some(console);
        self
    }

    /// Sends the run's events to `events`.
    pub fn with_events(mut self, events: EventSink) -> Executor {
        self.events = events;
        self
    }

    /// Stops the run when `cancel` is cancelled (Ctrl-C).
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Executor {
        self.cancel = cancel;
        self
    }

    /// The workflow being run.
    pub fn workflow(&self) -> &Workflow {
        &self.workflow
    }

    /// Runs the workflow to its end, a limit, or cancellation.
    ///
    /// Errors only when the run cannot start (a model missing, the server
    /// unreachable); failures later end the run with status `failed` and keep
    /// the transcript.
    pub async fn run(&self, options: RunOptions) -> Result<RunOutcome, RunError> {
        let workflow = &*self.workflow;
        let policy = options.policy.unwrap_or(workflow.memory.policy);
        if policy == PolicyName::Oracle && options.future.is_none() {
            return Err(RunError::OracleWithoutFuture);
        }
        let workspace_dir = match &options.workspace {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().map_err(|error| RunError::Workspace {
                path: PathBuf::from("."),
                error,
            })?,
        };
        let workspace = Workspace::new(&workspace_dir).map_err(|error| RunError::Workspace {
            path: workspace_dir.clone(),
            error,
        })?;
        let details = model_details_of(&*self.backend, workflow).await?;
        crate::capabilities::check_capabilities(workflow, &details)?;
        let mut resident_at_start: BTreeSet<String> = self
            .backend
            .running_models()
            .await?
            .into_iter()
            .map(|model| model.name)
            .collect();
        // A resumed run's own loads began with its first start.
        if let Some(first) = options
            .resume
            .as_ref()
            .and_then(|r| r.resident_at_start.as_ref())
        {
            resident_at_start = first.iter().cloned().collect();
        }
        let mut residency = Residency::new(
            workflow,
            &details,
            ResidencySettings {
                policy,
                gpu_budget: options.gpu_budget,
                load_mode: options.load_mode,
                future: options.future.clone(),
                measured_load_times: options.measured_load_times.clone(),
            },
        )?;
        let mut tally = crate::tally::Tally::new(workflow, policy);
        let past = options.resume.as_ref();
        let mut transcript: Vec<TranscriptEntry> =
            past.map(|r| r.transcript.clone()).unwrap_or_default();
        let agent_names: Vec<&str> = workflow.agents.iter().map(|a| a.name.as_str()).collect();
        let mut speaker = crate::resume::replay(
            &transcript,
            &self.graph,
            &agent_names,
            &mut residency,
            &mut tally,
        )?;
        let clock = RunClock::start(options.time_scale, past.map_or(0.0, |r| r.elapsed_s));
        let start = clock.started();
        let max_turns = options.max_turns.unwrap_or(workflow.limits.max_turns);
        let deadline = options
            .timeout
            .or(workflow.limits.timeout)
            .map(|timeout| start + clock.remaining(timeout));
        self.events.emit(Event::RunStarted {
            workflow: workflow.name.clone(),
            task: options.task.clone(),
            policy: policy.to_string(),
            endpoint: self.backend.endpoint(),
            gpu_budget_bytes: residency.gpu_budget_bytes(),
            resumed_turns: transcript.len() as u32,
            at_s: clock.now_s(),
        });

        let mut server_view = ServerView::default();
        let mut loader = Loader::spawn(self.backend.clone(), self.events.clone(), clock);
        // The most turns any agent sees: what must stay in memory without `keep_transcript`.
        let window = workflow
            .agents
            .iter()
            .map(|agent| agent.context_window)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut turns_done = transcript.len() as u32;
        let (status, reason) = loop {
            let turn = turns_done + 1;
            if turn > max_turns {
                break (
                    RunStatus::MaxTurns,
                    format!("reached the limit of {max_turns} turns"),
                );
            }
            for done in loader.finished() {
                server_view.forget();
                if let Some(load_s) = done.load_s {
                    residency.record_load(&done.model, load_s);
                    tally.preloaded(&done.model, load_s);
                }
            }
            let spec = &workflow.agents[speaker];
            // Every turn records what was resident, from the server itself: another
            // client or a restart may have changed it behind the planner's back.
            let resident = match server_view.resident(&*self.backend).await {
                Ok(resident) => resident,
                Err(error) => break (RunStatus::Failed, error.to_string()),
            };
            self.events.emit(Event::Resident {
                turn,
                models: resident
                    .iter()
                    .map(|model| ResidentModel {
                        model: model.name.clone(),
                        bytes: model.size_bytes,
                    })
                    .collect(),
                at_s: clock.now_s(),
            });
            let plan = residency.before_turn(speaker, &resident, loader.in_flight().as_deref());
            if !(plan.refreshes.is_empty() && plan.unloads.is_empty() && plan.preloads.is_empty()) {
                server_view.forget();
            }
            for refresh in &plan.refreshes {
                if let Err(error) = self
                    .backend
                    .preload(&refresh.model, &refresh.options, refresh.keep_alive)
                    .await
                {
                    tracing::warn!(model = %refresh.model, %error, "keep_alive refresh failed");
                }
            }
            for unload in &plan.unloads {
                self.events.emit(Event::Unload {
                    model: unload.model.clone(),
                    reason: unload.reason.clone(),
                    at_s: clock.now_s(),
                });
                tally.unloaded(&unload.model);
                if let Err(error) = self.backend.unload(&unload.model).await {
                    tracing::warn!(model = %unload.model, %error, "unload failed");
                }
            }
            let gate = spec
                .model
                .as_ref()
                .filter(|model| !resident.iter().any(|running| &running.name == *model))
                .cloned();
            loader.replace(
                plan.preloads
                    .iter()
                    .map(|preload| PreloadJob {
                        model: preload.model.clone(),
                        options: preload.options.clone(),
                        keep_alive: preload.keep_alive,
                        expected_s: residency.expected_load_s(&preload.model),
                    })
                    .collect(),
                gate,
            );
            let call = spec.model.as_ref().map(|model| ModelCall {
                model: model.clone(),
                options: plan.call_options.clone(),
                keep_alive: plan.keep_alive,
            });
            let started_s = clock.now_s();
            self.events.emit(Event::TurnStarted {
                turn,
                agent: spec.name.clone(),
                model: spec.model.clone(),
                at_s: started_s,
            });
            if let Some(model) = &spec.model
                && !resident.iter().any(|running| &running.name == model)
                && loader.in_flight().as_deref() != Some(model.as_str())
            {
                self.events.emit(Event::LoadStarted {
                    model: model.clone(),
                    cause: LoadCause::OnDemand,
                    expected_s: residency.expected_load_s(model),
                    at_s: started_s,
                });
            }
            let turn_events = self.events.with_text_hook(loader.gate_opener());
            let context = TurnContext {
                spec,
                turn,
                task: &options.task,
                conversation: &transcript,
                backend: &*self.backend,
                call,
                events: &turn_events,
                workspace: &workspace,
                tools: &self.tools[speaker],
                console: self.console.as_deref(),
                time_scale: options.time_scale,
            };
            let respond = self.agents[speaker].respond(context);
            let reply: Result<AgentReply, AgentError> = tokio::select! {
                reply = respond => reply,
                _ = self.cancel.cancelled() => break (RunStatus::Cancelled, "interrupted".to_owned()),
                _ = sleep_until_deadline(deadline) => break (
                    RunStatus::Timeout,
                    format!("reached the time limit of {}", humantime::format_duration(
                        deadline.map(|d| d - start).unwrap_or_default())),
                ),
            };
            loader.open_gate();
            let reply = match reply {
                Ok(reply) => reply,
                Err(error) => {
                    break (
                        RunStatus::Failed,
                        format!("agent '{}' failed: {error}", spec.name),
                    );
                }
            };
            let next = match reply.forced_edge {
                Some(rank) => self
                    .graph
                    .edge_target(speaker, rank)
                    .map(|node| (rank, node)),
                None => self.graph.next(
                    speaker,
                    TurnOutcome {
                        text: &reply.text,
                        choice: reply.choice.as_deref(),
                        passed: reply.passed,
                    },
                ),
            };
            // The model that answered: the agent's own, or its fallback when its own
            // did not fit.
            let answered_by = reply.answered_by.clone().or_else(|| spec.model.clone());
            if let Some(model) = &answered_by
                && reply.load_wait.as_secs_f64() >= RESIDENT_LOAD_S
            {
                residency.record_load(model, reply.load_wait.as_secs_f64());
                server_view.forget();
                self.events.emit(Event::LoadFinished {
                    model: model.clone(),
                    cause: LoadCause::OnDemand,
                    load_s: reply.load_wait.as_secs_f64(),
                    at_s: clock.now_s(),
                });
            }
            let next_name = match next {
                Some((_, Node::Agent(index))) => workflow.agents[index].name.clone(),
                Some((_, Node::End)) | None => "end".to_owned(),
            };
            let entry = TranscriptEntry {
                turn,
                agent: spec.name.clone(),
                model: answered_by,
                text: reply.text.clone(),
                choice: reply.choice.clone(),
                passed: reply.passed,
                next: next_name.clone(),
                load_wait_s: reply.load_wait.as_secs_f64(),
                generation_s: reply.generation.as_secs_f64(),
                tokens: reply.tokens,
                resident: resident.iter().map(|model| model.name.clone()).collect(),
                started_s,
                tool_calls: reply.tool_calls.clone(),
                thinking: reply.thinking.clone(),
                cut_off: reply.cut_off,
            };
            self.events.emit(Event::TurnFinished {
                entry: entry.clone(),
                at_s: clock.now_s(),
            });
            tally.turn(&entry, &reply);
            let next_agent = match next {
                Some((_, Node::Agent(index))) => Some(index),
                _ => None,
            };
            residency.after_turn(speaker, next_agent, reply.generation.as_secs_f64());
            transcript.push(entry);
            turns_done += 1;
            // Trimmed in batches, so each turn costs O(1) on average.
            if !options.keep_transcript && transcript.len() >= 2 * window {
                transcript.drain(..transcript.len() - window);
            }
            self.events.emit(Event::EdgeTaken {
                from: spec.name.clone(),
                to: next_name.clone(),
            });
            match next {
                Some((_, Node::Agent(index))) => speaker = index,
                Some((_, Node::End)) => {
                    break (
                        RunStatus::Completed,
                        format!("'{}' ended the run", spec.name),
                    );
                }
                None => {
                    break (
                        RunStatus::Failed,
                        format!(
                            "no edge out of '{}' matched its reply; add an unconditional edge as a fallback",
                            spec.name
                        ),
                    );
                }
            }
        };
        drop(loader);
        if options.unload_at_end {
            self.unload_models_loaded_by_run(&resident_at_start, clock)
                .await;
        }
        let summary = tally.finish(
            status,
            reason,
            clock.elapsed(),
            residency.workload(),
            workflow,
        );
        self.events.emit(Event::RunFinished {
            summary: Box::new(summary.clone()),
        });
        Ok(RunOutcome {
            summary,
            transcript,
        })
    }

    /// Leaves the server as the run found it: models this run loaded are unloaded.
    async fn unload_models_loaded_by_run(
        &self,
        resident_at_start: &BTreeSet<String>,
        clock: RunClock,
    ) {
        let Ok(resident) = self.backend.running_models().await else {
            return;
        };
        let used: BTreeSet<&String> = self
            .workflow
            .agents
            .iter()
            .filter_map(|spec| spec.model.as_ref())
            .collect();
        for model in resident {
            if !used.contains(&model.name) || resident_at_start.contains(&model.name) {
                continue;
            }
            self.events.emit(Event::Unload {
                model: model.name.clone(),
                reason: "the run loaded it and has ended".to_owned(),
                at_s: clock.now_s(),
            });
            if let Err(error) = self.backend.unload(&model.name).await {
                tracing::warn!(model = %model.name, %error, "unload at the end of the run failed");
            }
        }
    }
}

async fn sleep_until_deadline(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What the server knows of every model the workflow uses, by name; fails on the
/// first one it does not have, so a run stops before its first turn.
pub async fn model_details_of(
    backend: &dyn ModelBackend,
    workflow: &Workflow,
) -> Result<BTreeMap<String, ModelDetails>, BackendError> {
    let mut details = BTreeMap::new();
    for model in workflow
        .agents
        .iter()
        .filter_map(|agent| agent.model.as_ref())
    {
        if !details.contains_key(model) {
            details.insert(model.clone(), backend.model_details(model).await?);
        }
    }
    Ok(details)
}
