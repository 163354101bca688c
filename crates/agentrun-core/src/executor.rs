//! The executor: the turn loop that runs a workflow's conversation on a backend.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use agentrun_memory::{HostMemory, LoadModeChoice, LoadTimes, Policy};
use agentrun_spec::{AgentKind, EdgeTarget, Workflow};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::agent::{Agent, AgentError, AgentReply, LlmAgent, ModelCall, TurnContext};
use crate::backend::{BackendError, ModelBackend, ModelDetails};
use crate::branches::{Cursor, JoinProgress, ReadyTurn};
use crate::clock::RunClock;
use crate::command::CommandAgent;
use crate::command_sandbox::CommandSandbox;
use crate::console::Console;
use crate::context::ContextState;
use crate::event::{Event, EventSink, LoadCause, ResidentModel};
use crate::fan_out::{BranchMode, FanOutDecision, FanOutPlanner};
use crate::fleet::{Fleet, FleetError};
use crate::gated_backend::GatedBackend;
use crate::graph::{ConversationGraph, Node, TurnOutcome};
use crate::human::HumanAgent;
use crate::observations::Observations;
use crate::planning::{FutureTurn, RESIDENT_LOAD_S, Residency, ResidencyError, ResidencySettings};
use crate::preloader::{PreloadDone, PreloadJob, Preloader};
use crate::resume::{Resume, ResumeError};
use crate::server_view::ServerView;
use crate::summary::{RunStatus, RunSummary};
use crate::tools::{Tool, Workspace, builtin_tool};
use crate::transcript::{BranchRef, TranscriptEntry};

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
    pub policy: Option<Policy>,
    /// The GPU budget in bytes, when the workflow says `auto` and the caller
    /// resolved it (from the machine, or the simulator's settings).
    pub gpu_budget: Option<u64>,
    /// Overrides every agent's load mode, for every policy: without it `static` and
    /// `ollama-default` keep Ollama's default loading (mmap).
    pub load_mode: Option<LoadModeChoice>,
    /// The run's future, for the `oracle` policy (simulations only).
    pub future: Option<Vec<FutureTurn>>,
    /// Measured load times by model (`agentrun calibrate`); estimates stand in for the rest.
    pub measured_load_times: BTreeMap<String, LoadTimes>,
    /// What earlier runs of this workflow on this server measured, used as the planner's
    /// prior (see [`Observations`]); empty for a run that starts knowing nothing.
    pub experience: Observations,
    /// The server machine's memory, when known (the local machine's for a local server,
    /// the simulated machine's in `simulate`): the planner then estimates the page cache,
    /// which decides whether a reload is warm or cold.
    pub host_memory: Option<HostMemory>,
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
    /// How fan-outs run their branches: as the planner decides (the default), or forced one
    /// after the other or all at once (to compare).
    pub branches: BranchMode,
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
            experience: Observations::default(),
            host_memory: None,
            unload_at_end: true,
            keep_transcript: true,
            time_scale: 1.0,
            workspace: None,
            resume: None,
            branches: BranchMode::Planned,
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
    /// What this run measured (a resumed run: since it resumed), for later runs' priors.
    pub observations: Observations,
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
    /// The workflow's models cannot be placed on the hosts.
    #[error(transparent)]
    Fleet(Box<FleetError>),
    /// The workspace directory does not exist or cannot be read.
    #[error("cannot use the workspace {}: {error}", path.display())]
    Workspace {
        /// The directory given.
        path: PathBuf,
        /// Why it cannot be used.
        error: std::io::Error,
    },
}

impl From<FleetError> for RunError {
    fn from(error: FleetError) -> RunError {
        RunError::Fleet(Box::new(error))
    }
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
    sandbox: Arc<agentrun_sandbox::Sandbox>,
    /// The hosts behind `backend` when several serve the run.
    fleet: Option<Arc<Fleet>>,
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
                    AgentKind::Command(_) => Arc::new(CommandAgent::new()),
                    AgentKind::Human(_) => Arc::new(HumanAgent::new()),
                    AgentKind::Llm(_) => Arc::new(LlmAgent::new()),
                }
            })
            .collect();
        let tools = workflow
            .agents
            .iter()
            .map(|spec| {
                spec.tools()
                    .iter()
                    .map(|name| builtin_tool(*name))
                    .collect()
            })
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
            sandbox: Arc::new(agentrun_sandbox::Sandbox::new()),
            fleet: None,
        }
    }

    /// Runs on several hosts: `fleet` replaces the backend, the workflow's models are
    /// placed on its hosts before the first turn, and residency is planned per host.
    pub fn with_fleet(mut self, fleet: Arc<Fleet>) -> Executor {
        self.backend = fleet.clone();
        self.fleet = Some(fleet);
        self
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

    /// Confines the agents' commands with `sandbox` (by default a [`agentrun_sandbox::Sandbox`]
    /// that finds its launcher with `agentrun_sandbox::Launcher::find`); the modes, secret
    /// paths and image come from the workflow.
    pub fn with_sandbox(mut self, sandbox: agentrun_sandbox::Sandbox) -> Executor {
        self.sandbox = Arc::new(sandbox);
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
        if policy == Policy::Oracle && options.future.is_none() {
            return Err(RunError::OracleWithoutFuture);
        }
        let workspace_dir = match &options.workspace {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().map_err(|error| RunError::Workspace {
                path: PathBuf::from("."),
                error,
            })?,
        };
        let workspace = Workspace::new(&workspace_dir)
            .map_err(|error| RunError::Workspace {
                path: workspace_dir.clone(),
                error,
            })?
            .with_sandbox(CommandSandbox::new(
                self.sandbox.clone(),
                workflow.sandbox.clone(),
            ));
        let details = match &self.fleet {
            Some(fleet) => crate::fleet_run::details_on_hosts(fleet, workflow).await?,
            None => model_details_of(&*self.backend, workflow).await?,
        };
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
                experience: options.experience.clone(),
                host_memory: options.host_memory,
            },
        )?;
        if let Some(fleet) = &self.fleet {
            crate::fleet_run::place(fleet, workflow, residency.workload()).await?;
        }
        let mut tally = crate::tally::Tally::new(workflow, policy);
        let past = options.resume.as_ref();
        let mut transcript: Vec<TranscriptEntry> =
            past.map(|r| r.transcript.clone()).unwrap_or_default();
        let agent_names: Vec<&str> = workflow.agents.iter().map(|a| a.name.as_str()).collect();
        let mut cursor = crate::resume::replay(
            &transcript,
            &self.graph,
            &agent_names,
            &mut residency,
            &mut tally,
        )?;
        let fan_out_planner = FanOutPlanner::new(workflow, &details);
        // A run resumed inside a parallel region decides anew how its branches run.
        if let Some(region) = cursor.region() {
            let branches = region.fan_out.branches.clone();
            let running = self.backend.running_models().await?;
            let decision = self.decide_fan_out(
                &fan_out_planner,
                residency.workload(),
                &branches,
                &running,
                options.branches,
            );
            cursor.set_groups(decision.groups, decision.overlap);
        }
        // The replayed turns were reported by the run's first start.
        residency.take_observations();
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
            policy,
            endpoint: self.backend.endpoint(),
            gpu_budget_bytes: residency.gpu_budget_bytes(),
            resumed_turns: transcript.len() as u32,
            at_s: clock.now_s(),
        });

        let mut placement_seen = None;
        let mut server_view = ServerView::default();
        let mut preloader = match &self.fleet {
            // Each host loads one model at a time: preloads queue per host.
            Some(fleet) => Preloader::on_hosts(
                self.backend.clone(),
                self.events.clone(),
                clock,
                crate::fleet_run::host_of(fleet),
            ),
            None => Preloader::spawn(self.backend.clone(), self.events.clone(), clock),
        };
        // The most turns any agent sees: what must stay in memory without `keep_transcript`.
        // A context fitted in tokens may reach back as far as its budget allows; its agent
        // keeps its own rendering of the turns it still needs.
        let window = workflow
            .agents
            .iter()
            .filter_map(|agent| agent.llm())
            .map(|llm| match llm.context {
                Some(_) => agentrun_spec::LlmAgentSpec::MAX_CONTEXT_WINDOW,
                None => llm.context_window,
            })
            .max()
            .unwrap_or(1)
            .max(1);
        let context_state = ContextState::new();
        let summarizers = crate::context::summarizer::summarizer_agents(workflow);
        let mut turns_done = transcript.len() as u32;
        // A model whose preload's tail a turn waited on, and that wait, until the preload
        // reports: the load is counted once, when it does.
        let mut tail_uncounted: Option<(String, f64)> = None;
        // The models a parallel region's turns started loading: a second branch on the same
        // model waits on the same load.
        let mut loads_started: BTreeSet<String> = BTreeSet::new();
        let mut in_flight: FuturesUnordered<InFlight<'_>> = FuturesUnordered::new();
        // Each running turn's branch token: a join that opens without a branch stops it.
        let mut branch_stops: BTreeMap<u32, CancellationToken> = BTreeMap::new();
        // Fan-outs wait for their join: when each opened, for the report's join waits.
        let mut region_started_s: Option<f64> = None;
        let (status, reason) = loop {
            let ready = if turns_done + (in_flight.len() as u32) < max_turns {
                cursor.next_ready(&agent_names)
            } else {
                None
            };
            let Some(ReadyTurn {
                agent: speaker,
                branch,
            }) = ready
            else {
                if in_flight.is_empty() {
                    break match cursor {
                        Cursor::Ended => (RunStatus::Completed, "the run ended".to_owned()),
                        _ => (
                            RunStatus::MaxTurns,
                            format!("reached the limit of {max_turns} turns"),
                        ),
                    };
                }
                let done: TurnDone = tokio::select! {
                    Some(done) = in_flight.next() => done,
                    _ = self.cancel.cancelled() => break (RunStatus::Cancelled, "interrupted".to_owned()),
                    _ = sleep_until_deadline(deadline) => break (
                        RunStatus::Timeout,
                        format!("reached the time limit of {}", humantime::format_duration(
                            deadline.map(|d| d - start).unwrap_or_default())),
                    ),
                };
                if let Some(branch) = &done.branch {
                    branch_stops.remove(&branch.index);
                }
                let TurnDone {
                    speaker,
                    branch,
                    turn: started_turn,
                    started_s,
                    resident,
                    tail_of_preload,
                    reply,
                    reported_loads,
                } = done;
                let Some(reply) = reply else {
                    // A branch the join stopped: its turn is not part of the run.
                    continue;
                };
                let spec = &workflow.agents[speaker];
                if !cursor.busy() || in_flight.is_empty() {
                    preloader.open_gate();
                    // What the turn queued and has not started waits for the next plan,
                    // which knows the next speaker.
                    preloader.hold();
                }
                let reply = match reply {
                    Ok(reply) => reply,
                    Err(error) => {
                        // The model may have loaded before the turn failed (an empty reply asked
                        // again, a tool loop cut off): that load happened and is counted.
                        if !tail_of_preload {
                            for (model, load) in reported_loads {
                                let load_s = load.as_secs_f64();
                                if load_s < RESIDENT_LOAD_S {
                                    continue;
                                }
                                residency.record_load(&model, load_s);
                                server_view.forget();
                                tally.failed_turn_loaded(&spec.name, &model, load_s);
                                self.events.emit(Event::LoadFinished {
                                    model,
                                    cause: LoadCause::OnDemand,
                                    load_s,
                                    at_s: clock.now_s(),
                                });
                            }
                        }
                        let failure = format!("agent '{}' failed: {error}", spec.name);
                        let Some(branch) = branch else {
                            break (RunStatus::Failed, failure);
                        };
                        self.events.emit(Event::BranchFailed {
                            branch: branch.clone(),
                            agent: spec.name.clone(),
                            error: error.to_string(),
                            at_s: clock.now_s(),
                        });
                        match cursor.branch_failed(branch.index) {
                            None => break (RunStatus::Failed, failure),
                            Some(progress) => {
                                self.join_progress(
                                    &progress,
                                    &mut branch_stops,
                                    &mut region_started_s,
                                    &cursor,
                                    clock,
                                );
                                continue;
                            }
                        }
                    }
                };
                let outcome = TurnOutcome {
                    text: &reply.text,
                    choice: reply.choice.as_deref(),
                    passed: reply.passed,
                };
                let next = match reply.forced_edge {
                    Some(rank) => self.graph.edge(speaker, rank),
                    None => self.graph.next(speaker, outcome),
                }
                .map(|step| step.to);
                // The model that answered: the agent's own, or its fallback when its own
                // did not fit.
                let answered_by = reply
                    .answered_by
                    .clone()
                    .or_else(|| spec.model().map(str::to_owned));
                let load_is_preloads = tail_of_preload && answered_by.as_deref() == spec.model();
                if let Some(model) = &answered_by
                    && load_is_preloads
                    && reply.load_wait.as_secs_f64() >= RESIDENT_LOAD_S
                {
                    tail_uncounted = Some((model.clone(), reply.load_wait.as_secs_f64()));
                }
                if let Some(model) = &answered_by
                    && reply.load_wait.as_secs_f64() >= RESIDENT_LOAD_S
                    && !load_is_preloads
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
                // Turns take their number in the order they finish, the transcript's order.
                let turn = turns_done + 1;
                let _ = started_turn;
                // A turn no edge matched ends the run as failed below; its record says `end`.
                let next_target = match next {
                    Some(Node::Agent(index)) => {
                        EdgeTarget::Agent(workflow.agents[index].name.clone())
                    }
                    Some(Node::FanOut(index)) => EdgeTarget::Branches(
                        self.graph
                            .fan_out(index)
                            .branches
                            .iter()
                            .map(|&agent| workflow.agents[agent].name.clone())
                            .collect(),
                    ),
                    Some(Node::End) | None => EdgeTarget::End,
                };
                let entry = TranscriptEntry {
                    turn,
                    agent: spec.name.clone(),
                    model: answered_by,
                    text: reply.text.clone(),
                    choice: reply.choice.clone(),
                    passed: reply.passed,
                    next: next_target.clone(),
                    load_wait_s: reply.load_wait.as_secs_f64(),
                    generation_s: reply.generation.as_secs_f64(),
                    tokens: reply.tokens,
                    resident: resident.iter().map(|model| model.name.clone()).collect(),
                    started_s,
                    tool_calls: reply.tool_calls.clone(),
                    thinking: reply.thinking.clone(),
                    cut_off: reply.cut_off,
                    context: reply.context.clone(),
                    branch: branch.clone(),
                };
                self.events.emit(Event::TurnFinished {
                    entry: entry.clone(),
                    at_s: clock.now_s(),
                });
                tally.turn(&entry, &reply, !load_is_preloads);
                let next_agent = match next {
                    Some(Node::Agent(index)) => Some(index),
                    Some(Node::FanOut(index)) => {
                        self.graph.fan_out(index).branches.first().copied()
                    }
                    _ => None,
                };
                // The planner reasons in the run's time. A turn without a model (a command, a
                // person) reports real seconds, which a time-scaled run's clock stretches.
                let turn_s = if spec.model().is_some() {
                    reply.generation.as_secs_f64()
                } else {
                    clock.now_s() - started_s
                };
                residency.after_turn(speaker, next_agent, &entry.next, turn_s);
                if let Some(model) = &entry.model {
                    residency.record_generation(model, entry.tokens, entry.generation_s);
                }
                transcript.push(entry);
                turns_done += 1;
                // Trimmed in batches, so each turn costs O(1) on average; never inside a
                // parallel region, whose turns the join must see.
                if !options.keep_transcript && branch.is_none() && transcript.len() >= 2 * window {
                    transcript.drain(..transcript.len() - window);
                }
                self.events.emit(Event::EdgeTaken {
                    from: spec.name.clone(),
                    to: next_target,
                });
                let Some(next) = next else {
                    break (
                        RunStatus::Failed,
                        format!(
                            "no edge out of '{}' matched its reply; add an unconditional edge as a fallback",
                            spec.name
                        ),
                    );
                };
                match branch {
                    Some(branch) => {
                        let arrived =
                            matches!(next, Node::Agent(index) if Some(index) == cursor.join());
                        if arrived {
                            self.events.emit(Event::BranchArrived {
                                branch: branch.clone(),
                                at_s: clock.now_s(),
                            });
                        }
                        let progress = cursor.after_branch_turn(branch.index, next, outcome);
                        self.join_progress(
                            &progress,
                            &mut branch_stops,
                            &mut region_started_s,
                            &cursor,
                            clock,
                        );
                    }
                    None => {
                        cursor.after_turn(&self.graph, turn, next);
                        if let Node::FanOut(index) = next {
                            let fan_out = self.graph.fan_out(index);
                            region_started_s = Some(clock.now_s());
                            let running = server_view
                                .resident(&*self.backend)
                                .await
                                .unwrap_or_default();
                            let decision = self.decide_fan_out(
                                &fan_out_planner,
                                residency.workload(),
                                &fan_out.branches,
                                &running,
                                options.branches,
                            );
                            cursor.set_groups(decision.groups.clone(), decision.overlap);
                            self.events.emit(Event::BranchesStarted {
                                turn,
                                from: spec.name.clone(),
                                branches: fan_out
                                    .branches
                                    .iter()
                                    .map(|&agent| workflow.agents[agent].name.clone())
                                    .collect(),
                                join: workflow.agents[fan_out.join].name.clone(),
                                sequential: options.branches == BranchMode::Sequential,
                                concurrency: decision.concurrency,
                                groups: decision.groups,
                                reason: decision.reason,
                                at_s: clock.now_s(),
                            });
                        }
                        if cursor == Cursor::Ended {
                            break (
                                RunStatus::Completed,
                                format!("'{}' ended the run", spec.name),
                            );
                        }
                    }
                }
                continue;
            };
            let turn = turns_done + in_flight.len() as u32 + 1;
            for done in preloader.finished() {
                server_view.forget();
                settle_preload(&done, &mut tail_uncounted, &mut residency, &mut tally);
            }
            let spec = &workflow.agents[speaker];
            let in_region = branch.is_some();
            // Every turn records what was resident, from the server itself: another
            // client or a restart may have changed it behind the planner's back.
            let mut resident = match server_view.resident(&*self.backend).await {
                Ok(resident) => resident,
                Err(error) => break (RunStatus::Failed, error.to_string()),
            };
            // A preload still loading that this speaker's own load would wait behind is
            // aborted when finishing it costs more than it can still save.
            if let Some(loading) = preloader.loading(spec.model()) {
                let loading_s = loading.seconds(clock);
                if let Some(reason) =
                    residency.abort_preload(speaker, &resident, &loading.model, loading_s)
                {
                    preloader.abort(&loading).await;
                    server_view.forget();
                    resident.retain(|model| model.name != loading.model);
                    self.events.emit(Event::PreloadAborted {
                        model: loading.model.clone(),
                        reason,
                        loading_s,
                        at_s: clock.now_s(),
                    });
                }
            }
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
            if let Some(fleet) = &self.fleet {
                crate::fleet_run::before_turn(
                    fleet,
                    &spec.name,
                    &mut residency,
                    &mut placement_seen,
                    &self.events,
                    clock.now_s(),
                );
            }
            let mut plan = residency.before_turn(
                speaker,
                &resident,
                preloader.in_flight(spec.model()).as_deref(),
            );
            if in_region {
                // Several turns are in flight: a model another branch uses, or is about to,
                // stays; and no preload competes with the branches' own loads.
                let in_use: BTreeSet<&str> = cursor
                    .agents_in_use()
                    .into_iter()
                    .filter_map(|agent| workflow.agents[agent].model())
                    .collect();
                plan.unloads
                    .retain(|unload| !in_use.contains(unload.model.as_str()));
                plan.preloads.clear();
            }
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
                .model()
                .filter(|model| !resident.iter().any(|running| running.name == *model))
                .filter(|_| !in_region)
                .map(str::to_owned);
            let withdrawn = preloader.replace(
                plan.preloads
                    .iter()
                    .map(|preload| PreloadJob {
                        model: preload.model.clone(),
                        options: preload.options.clone(),
                        keep_alive: preload.keep_alive,
                        expected_s: residency.expected_load_s(&preload.model),
                        caller: residency.next_caller(&spec.name, &preload.model),
                    })
                    .collect(),
                gate,
            );
            for model in withdrawn {
                let reason = if spec.model() == Some(model.as_str()) {
                    format!("{} speaks now and loads it itself", spec.name)
                } else {
                    format!(
                        "{} speaks now and this turn's plan does not preload it",
                        spec.name
                    )
                };
                self.events.emit(Event::PreloadWithdrawn {
                    model,
                    reason,
                    at_s: clock.now_s(),
                });
            }
            let call = spec.model().map(|model| ModelCall {
                model: model.to_owned(),
                options: plan.call_options.clone(),
                keep_alive: plan.keep_alive,
            });
            // A turn whose model is being preloaded waits for that preload's tail: one
            // load, which the preload reports and counts when it finishes.
            let tail_of_preload = spec.model().is_some()
                && preloader.in_flight(spec.model()).as_deref() == spec.model();
            let started_s = clock.now_s();
            self.events.emit(Event::TurnStarted {
                turn,
                agent: spec.name.clone(),
                model: spec.model().map(str::to_owned),
                branch: branch.clone(),
                at_s: started_s,
            });
            // Another branch loading the same model loads it once: this turn waits on it.
            let loading_elsewhere = spec
                .model()
                .is_some_and(|model| loads_started.contains(model) && in_region);
            if let Some(model) = spec.model()
                && !resident.iter().any(|running| running.name == model)
                && !tail_of_preload
                && !loading_elsewhere
            {
                if in_region {
                    loads_started.insert(model.to_owned());
                }
                self.events.emit(Event::LoadStarted {
                    model: model.to_owned(),
                    cause: LoadCause::OnDemand,
                    expected_s: residency.expected_load_s(model),
                    at_s: started_s,
                });
            }
            if !in_region {
                loads_started.clear();
            }
            let summarizer = summarizers[speaker].and_then(|agent| {
                residency
                    .side_call(agent)
                    .map(|(model, options, keep_alive)| ModelCall {
                        model,
                        options,
                        keep_alive,
                    })
            });
            let stop = CancellationToken::new();
            if let Some(branch) = &branch {
                branch_stops.insert(branch.index, stop.clone());
            }
            let conversation = crate::transcript::branch_view(&transcript, branch.as_ref());
            let opener = preloader.gate_opener();
            let agent = self.agents[speaker].clone();
            let (task, workspace, context_state, events) =
                (&options.task, &workspace, &context_state, &self.events);
            let (backend, tools, console) = (
                &*self.backend,
                &self.tools[speaker],
                self.console.as_deref(),
            );
            let time_scale = options.time_scale;
            in_flight.push(Box::pin(async move {
                let gated = GatedBackend::new(backend, opener);
                let context = TurnContext {
                    spec,
                    turn,
                    task,
                    conversation: &conversation,
                    backend: &gated,
                    call,
                    events,
                    workspace,
                    tools,
                    console,
                    context_state: Some(context_state),
                    summarizer,
                    time_scale,
                };
                let caller = spec.name.clone();
                let reply = tokio::select! {
                    reply = crate::fleet::as_caller(caller, agent.respond(context)) => Some(reply),
                    _ = stop.cancelled() => None,
                };
                TurnDone {
                    speaker,
                    branch,
                    turn,
                    started_s,
                    resident,
                    tail_of_preload,
                    reply,
                    reported_loads: gated.reported_loads(),
                }
            }));
        };
        // Whatever is still running stops with the run.
        drop(in_flight);
        for done in preloader.finished() {
            settle_preload(&done, &mut tail_uncounted, &mut residency, &mut tally);
        }
        drop(preloader);
        // The run ended before the preload a turn waited on reported: the turn's wait
        // stands for that load.
        if let Some((model, wait_s)) = tail_uncounted {
            tally.preloaded(&model, wait_s);
            self.events.emit(Event::LoadFinished {
                model,
                cause: LoadCause::Preload,
                load_s: wait_s,
                at_s: clock.now_s(),
            });
        }
        if options.unload_at_end {
            self.unload_models_loaded_by_run(&resident_at_start, clock)
                .await;
        }
        let mut summary = tally.finish(
            status,
            reason,
            clock.elapsed(),
            residency.workload(),
            workflow,
        );
        if let Some(fleet) = &self.fleet {
            crate::fleet_run::host_summaries(fleet, &mut summary);
        }
        self.events.emit(Event::RunFinished {
            summary: Box::new(summary.clone()),
        });
        Ok(RunOutcome {
            summary,
            transcript,
            observations: residency.take_observations(),
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
        let used: BTreeSet<&str> = self
            .workflow
            .agents
            .iter()
            .filter_map(|spec| spec.model())
            .collect();
        for model in resident {
            if !used.contains(model.name.as_str()) || resident_at_start.contains(&model.name) {
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

/// A turn in flight: its agent's reply, with what the executor needs to record it.
type InFlight<'a> = Pin<Box<dyn Future<Output = TurnDone> + Send + 'a>>;

/// A finished (or stopped) turn of the run.
struct TurnDone {
    speaker: usize,
    branch: Option<BranchRef>,
    /// The number the turn had when it started.
    turn: u32,
    started_s: f64,
    resident: Vec<crate::backend::RunningModel>,
    tail_of_preload: bool,
    /// `None` when a join stopped the turn's branch.
    reply: Option<Result<AgentReply, AgentError>>,
    reported_loads: Vec<(String, Duration)>,
}

impl Executor {
    /// How a fan-out's branches run: the planner's decision from what the server holds.
    fn decide_fan_out(
        &self,
        planner: &FanOutPlanner,
        workload: &agentrun_memory::Workload,
        branches: &[usize],
        running: &[crate::backend::RunningModel],
        mode: BranchMode,
    ) -> FanOutDecision {
        let agents = &self.workflow.agents;
        let starts: Vec<&str> = branches.iter().map(|&a| agents[a].name.as_str()).collect();
        let models: Vec<Option<&str>> = branches.iter().map(|&a| agents[a].model()).collect();
        planner.decide(workload, &starts, &models, running, mode)
    }

    /// Reports a join that opened, and stops the branches it opened without.
    fn join_progress(
        &self,
        progress: &JoinProgress,
        branch_stops: &mut BTreeMap<u32, CancellationToken>,
        region_started_s: &mut Option<f64>,
        cursor: &Cursor,
        clock: RunClock,
    ) {
        if !progress.opened {
            return;
        }
        for index in &progress.stopped {
            if let Some(stop) = branch_stops.remove(index) {
                stop.cancel();
            }
        }
        let join = match cursor {
            Cursor::Speaker { agent, .. } => self.workflow.agents[*agent].name.clone(),
            _ => String::new(),
        };
        self.events.emit(Event::JoinOpened {
            join,
            stopped: progress.stopped.clone(),
            region_s: region_started_s
                .take()
                .map_or(0.0, |started| clock.now_s() - started),
            at_s: clock.now_s(),
        });
    }
}

/// Learns and counts a finished preload. A failed preload whose model a turn waited for
/// was loaded by that turn's call instead: its wait counts as the load.
fn settle_preload(
    done: &PreloadDone,
    tail_uncounted: &mut Option<(String, f64)>,
    residency: &mut Residency,
    tally: &mut crate::tally::Tally,
) {
    let tail = tail_uncounted
        .take_if(|(model, _)| *model == done.model)
        .map(|(_, wait_s)| wait_s);
    match (done.load_s, tail) {
        (Some(load_s), _) => {
            residency.record_load(&done.model, load_s);
            tally.preloaded(&done.model, load_s);
        }
        (None, Some(wait_s)) => {
            residency.record_load(&done.model, wait_s);
            tally.preloaded(&done.model, wait_s);
        }
        (None, None) => {}
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
    for model in workflow.agents.iter().filter_map(|agent| agent.model()) {
        if !details.contains_key(model) {
            details.insert(model.to_owned(), backend.model_details(model).await?);
        }
    }
    Ok(details)
}
