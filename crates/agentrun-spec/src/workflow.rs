//! The workflow: agents, flow, limits, memory and simulation settings, loaded and resolved.

use std::path::{Path, PathBuf};

use agentrun_memory::{KeepAlive, LoadModeChoice};

use crate::agent::{AgentKind, AgentSpec, Approval, KindName, LlmAgentSpec, SandboxMode};
use crate::diagnostic::{Diagnostic, SpecError};
use crate::document::SandboxFile;
use crate::document::{
    AgentFile, AgentSimulationFile, BranchFailureFile, ChoicesFile, ConditionFile, DurationFile,
    EdgeFile, FlowFile, JoinFile, JoinWaitFile, JoinWaitWord, KeepAliveFile, LimitsFile,
    MemoryFile, NamedMap, RangeFile, ResidencyFile, SimulationFile, SizeFile, TargetFile,
    WorkflowFile,
};
use crate::document::{McpAll, McpServerFile, McpToolsFile};
use crate::duration::format_duration;
use crate::flow::{BranchFailure, Condition, EdgeTarget, Flow, JoinWait};
use crate::loader;
use crate::mcp::{McpServerSpec, McpToolChoice, McpTransport};
use crate::memory::{Limits, MemorySpec};
use crate::residency::ResidencySpec;
use crate::sandbox::SandboxSpec;
use crate::simulation::{AgentSimulation, SimulationSpec};
use crate::size::GpuBudget;

/// A workflow: its agents, the flow between them and how to run it. Loaded from YAML with
/// `use` resolved, prompt files read and defaults filled in, or built in code.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// Short name, shown in reports.
    pub name: String,
    /// What the workflow does; empty when the file does not say.
    pub description: String,
    /// The default task; the command line's `--task` overrides it.
    pub task: Option<String>,
    /// The file it was loaded from (the name given, as given).
    pub source: Option<PathBuf>,
    /// The agents in file order.
    pub agents: Vec<AgentSpec>,
    /// Who speaks first and where each turn leads.
    pub flow: Flow,
    /// Limits that stop a run.
    pub limits: Limits,
    /// The memory budget and residency policy.
    pub memory: MemorySpec,
    /// How agents behave in `agentrun simulate`.
    pub simulation: SimulationSpec,
    /// How the commands agents run are confined.
    pub sandbox: SandboxSpec,
    /// MCP servers whose tools agents may call, in file order.
    pub mcp_servers: Vec<McpServerSpec>,
    /// What looked wrong but does not stop the workflow from running. Not part of equality.
    pub warnings: Vec<Diagnostic>,
}

impl Workflow {
    /// Loads a workflow file. Relative paths inside it (`use`, `prompt_file`) resolve from its
    /// directory; every problem found is reported in the error, each with file, line and
    /// column.
    pub fn from_yaml_file(path: &Path) -> Result<Workflow, SpecError> {
        loader::load_workflow(None, path)
    }

    /// Loads a workflow from text. `origin` names the text in diagnostics, and relative paths
    /// inside it resolve from `origin`'s directory.
    pub fn from_yaml_str(text: &str, origin: &Path) -> Result<Workflow, SpecError> {
        loader::load_workflow(Some(text), origin)
    }

    /// The agent called `name`.
    pub fn agent(&self, name: &str) -> Option<&AgentSpec> {
        self.agents.iter().find(|agent| agent.name == name)
    }

    /// The load mode of an agent's model: its own, or the workflow's default.
    pub fn load_mode_of(&self, agent: &AgentSpec) -> LoadModeChoice {
        agent
            .llm()
            .and_then(|llm| llm.residency.load_mode)
            .unwrap_or(self.memory.load_mode)
    }

    /// The sandbox of an agent's commands: its own, or the workflow's default.
    pub fn sandbox_of(&self, agent: &AgentSpec) -> SandboxMode {
        agent.sandbox.unwrap_or(self.sandbox.mode)
    }

    /// The MCP server called `name`.
    pub fn mcp_server(&self, name: &str) -> Option<&McpServerSpec> {
        self.mcp_servers.iter().find(|server| server.name == name)
    }

    /// Checks a workflow built or changed in code by the same rules as a loaded one.
    /// Diagnostics name the field but no line. Returns the warnings when there is no error.
    pub fn validate(&self) -> Result<Vec<Diagnostic>, SpecError> {
        loader::validate_built(self)
    }

    /// The resolved workflow as YAML: prompts inlined, `use` merged, defaults written out
    /// where they matter. Loading it back gives an equal workflow.
    pub fn to_yaml(&self) -> String {
        let file = self.to_document();
        // Plain strings, numbers and maps always serialize.
        serde_saphyr::to_string(&file).expect("a workflow document serializes to YAML")
    }

    fn to_document(&self) -> WorkflowFile {
        WorkflowFile {
            version: None,
            name: self.name.clone(),
            description: (!self.description.is_empty()).then(|| self.description.clone()),
            task: self.task.clone(),
            agents: NamedMap(
                self.agents
                    .iter()
                    .map(|agent| (agent.name.clone(), agent_document(agent)))
                    .collect(),
            ),
            flow: FlowFile {
                start: self.flow.start.clone(),
                edges: self
                    .flow
                    .edges
                    .iter()
                    .map(|edge| EdgeFile {
                        from: edge.from.clone(),
                        to: match &edge.to {
                            EdgeTarget::Branches(names) => TargetFile::Branches(names.clone()),
                            target => TargetFile::One(target.name().into_owned()),
                        },
                        when: condition_document(&edge.when),
                    })
                    .collect(),
                joins: self
                    .flow
                    .joins
                    .iter()
                    .map(|(name, join)| {
                        let wait = match &join.wait {
                            JoinWait::All => None,
                            JoinWait::First => Some(JoinWaitFile::Word(JoinWaitWord::First)),
                            JoinWait::FirstMatching(condition) => {
                                Some(JoinWaitFile::FirstMatching {
                                    first: condition_document(condition)
                                        .unwrap_or(ConditionFile::Always),
                                })
                            }
                        };
                        let on_failure = (join.on_failure == BranchFailure::Continue)
                            .then_some(BranchFailureFile::Continue);
                        (name.clone(), JoinFile { wait, on_failure })
                    })
                    .collect(),
            },
            limits: Some(LimitsFile {
                max_turns: Some(self.limits.max_turns.into()),
                timeout: self
                    .limits
                    .timeout
                    .map(|timeout| DurationFile::Text(format_duration(timeout))),
            }),
            memory: Some(MemoryFile {
                gpu_budget: Some(match self.memory.gpu_budget {
                    GpuBudget::Auto => SizeFile::Text("auto".to_owned()),
                    budget @ GpuBudget::Bytes(_) => SizeFile::Text(budget.to_string()),
                }),
                max_loaded_models: self.memory.max_loaded_models.map(u64::from),
                num_parallel: self.memory.num_parallel.map(u64::from),
                policy: Some(self.memory.policy),
                load_mode: Some(self.memory.load_mode),
            }),
            simulation: Some(self.simulation_document()),
            sandbox: (self.sandbox != SandboxSpec::default()).then(|| SandboxFile {
                mode: Some(self.sandbox.mode),
                secret_paths: (!self.sandbox.secret_paths.is_empty())
                    .then(|| self.sandbox.secret_paths.clone()),
                image: self.sandbox.image.clone(),
            }),
            mcp_servers: (!self.mcp_servers.is_empty()).then(|| {
                NamedMap(
                    self.mcp_servers
                        .iter()
                        .map(|server| (server.name.clone(), mcp_server_document(server)))
                        .collect(),
                )
            }),
        }
    }

    fn simulation_document(&self) -> SimulationFile {
        let agents: Vec<(String, AgentSimulationFile)> = self
            .agents
            .iter()
            .filter_map(|agent| {
                let behaviour = self.simulation.agents.get(&agent.name)?;
                let document = simulation_document(behaviour, &AgentSimulation::default_for(agent));
                (document != AgentSimulationFile::default()).then(|| (agent.name.clone(), document))
            })
            .collect();
        SimulationFile {
            seed: Some(self.simulation.seed),
            max_turns: Some(self.simulation.max_turns.into()),
            agents: (!agents.is_empty()).then_some(NamedMap(agents)),
            workspace: self
                .simulation
                .workspace
                .as_ref()
                .map(|path| path.display().to_string()),
        }
    }
}

impl PartialEq for Workflow {
    /// Equal content; warnings (which carry positions in the text) do not count.
    fn eq(&self, other: &Workflow) -> bool {
        let Workflow {
            name,
            description,
            task,
            source,
            agents,
            flow,
            limits,
            memory,
            simulation,
            sandbox,
            mcp_servers,
            warnings: _,
        } = self;
        *name == other.name
            && *description == other.description
            && *task == other.task
            && *source == other.source
            && *agents == other.agents
            && *flow == other.flow
            && *limits == other.limits
            && *memory == other.memory
            && *simulation == other.simulation
            && *sandbox == other.sandbox
            && *mcp_servers == other.mcp_servers
    }
}

fn agent_document(agent: &AgentSpec) -> AgentFile {
    let mut file = AgentFile {
        description: agent.description.clone(),
        sandbox: agent.sandbox,
        ..AgentFile::default()
    };
    match &agent.kind {
        AgentKind::Llm(llm) => {
            let policy = &llm.command_policy;
            file.model = Some(llm.model.clone());
            file.prompt = (!llm.prompt.is_empty()).then(|| llm.prompt.clone());
            file.options = (llm.options != Default::default()).then(|| llm.options.clone());
            file.think = llm.think;
            file.choices = choices_document(&llm.choices, &llm.choice_descriptions);
            file.context_window = (llm.context_window != LlmAgentSpec::DEFAULT_CONTEXT_WINDOW)
                .then_some(llm.context_window as u64);
            file.context = llm.context.clone();
            file.residency = residency_document(&llm.residency);
            file.fallback = llm.fallback.clone();
            // An llm agent keeps env and timeout with the commands its model runs.
            file.env = (!policy.env.is_empty()).then(|| policy.env.clone());
            file.timeout = policy
                .timeout
                .map(|timeout| DurationFile::Text(format_duration(timeout)));
            file.tools = (!llm.tools.is_empty()).then(|| llm.tools.clone());
            file.mcp_tools = (!llm.mcp_tools.is_empty()).then(|| {
                NamedMap(
                    llm.mcp_tools
                        .iter()
                        .map(|(server, choice)| {
                            let choice = match choice {
                                McpToolChoice::All => McpToolsFile::Every(McpAll::All),
                                McpToolChoice::Named(names) => McpToolsFile::Named(names.clone()),
                            };
                            (server.clone(), choice)
                        })
                        .collect(),
                )
            });
            file.allow_commands = (!policy.allow.is_empty()).then(|| policy.allow.clone());
            file.approve = (policy.approve != Approval::Never).then_some(policy.approve);
            file.max_tool_rounds = (llm.max_tool_rounds != LlmAgentSpec::DEFAULT_MAX_TOOL_ROUNDS)
                .then_some(u64::from(llm.max_tool_rounds));
        }
        AgentKind::Command(command) => {
            file.kind = Some(KindName::Command);
            file.command = Some(command.argv.clone());
            file.env = (!command.env.is_empty()).then(|| command.env.clone());
            file.timeout = command
                .timeout
                .map(|timeout| DurationFile::Text(format_duration(timeout)));
        }
        AgentKind::Human(human) => {
            file.kind = Some(KindName::Human);
            file.prompt = (!human.prompt.is_empty()).then(|| human.prompt.clone());
            file.choices = choices_document(&human.choices, &human.choice_descriptions);
            file.answers = (!human.answers.is_empty()).then(|| human.answers.clone());
        }
    }
    file
}

fn mcp_server_document(server: &McpServerSpec) -> McpServerFile {
    let timeout = (server.timeout != McpServerSpec::DEFAULT_TIMEOUT)
        .then(|| DurationFile::Text(format_duration(server.timeout)));
    match &server.transport {
        McpTransport::Stdio {
            command,
            args,
            env,
            cwd,
            sandbox,
        } => McpServerFile {
            command: Some(command.clone()),
            args: (!args.is_empty()).then(|| args.clone()),
            env: (!env.is_empty()).then(|| env.clone()),
            cwd: cwd.as_ref().map(|cwd| cwd.display().to_string()),
            sandbox: *sandbox,
            timeout,
            ..McpServerFile::default()
        },
        McpTransport::Http {
            url,
            headers_from_env,
        } => McpServerFile {
            url: Some(url.clone()),
            headers_from_env: (!headers_from_env.is_empty()).then(|| headers_from_env.clone()),
            timeout,
            ..McpServerFile::default()
        },
    }
}

fn choices_document(
    choices: &[String],
    descriptions: &std::collections::BTreeMap<String, String>,
) -> Option<ChoicesFile> {
    if choices.is_empty() {
        None
    } else if descriptions.is_empty() {
        Some(ChoicesFile::Names(choices.to_vec()))
    } else {
        Some(ChoicesFile::Described(NamedMap(
            choices
                .iter()
                .map(|choice| {
                    let description = descriptions.get(choice).cloned().unwrap_or_default();
                    (choice.clone(), description)
                })
                .collect(),
        )))
    }
}

fn residency_document(residency: &ResidencySpec) -> Option<ResidencyFile> {
    (*residency != ResidencySpec::default()).then(|| ResidencyFile {
        keep_alive: residency.keep_alive.map(|keep_alive| match keep_alive {
            KeepAlive::Forever => KeepAliveFile::Seconds(-1),
            KeepAlive::UnloadWhenIdle => KeepAliveFile::Seconds(0),
            KeepAlive::For(_) => KeepAliveFile::Text(keep_alive.to_string()),
        }),
        load_mode: residency.load_mode,
        require_labels: (!residency.require_labels.is_empty())
            .then(|| residency.require_labels.clone()),
        prefer_labels: (!residency.prefer_labels.is_empty())
            .then(|| residency.prefer_labels.clone()),
    })
}

fn condition_document(condition: &Condition) -> Option<ConditionFile> {
    Some(match condition {
        Condition::Always => return None,
        Condition::Pass => ConditionFile::Pass,
        Condition::Fail => ConditionFile::Fail,
        Condition::Contains(text) => ConditionFile::Contains(text.clone()),
        Condition::Matches(pattern) => ConditionFile::Matches(pattern.as_str().to_owned()),
        Condition::Choice(choice) => ConditionFile::Choice(choice.clone()),
    })
}

/// The fields of `behaviour` that differ from the kind's defaults.
fn simulation_document(
    behaviour: &AgentSimulation,
    default: &AgentSimulation,
) -> AgentSimulationFile {
    let duration_text =
        |duration: std::time::Duration| DurationFile::Text(format_duration(duration));
    AgentSimulationFile {
        reply_tokens: (behaviour.reply_tokens != default.reply_tokens).then(|| {
            RangeFile::Between([
                *behaviour.reply_tokens.start(),
                *behaviour.reply_tokens.end(),
            ])
        }),
        tokens_per_second: behaviour.tokens_per_second,
        duration: (behaviour.duration != default.duration).then(|| {
            RangeFile::Between([
                duration_text(*behaviour.duration.start()),
                duration_text(*behaviour.duration.end()),
            ])
        }),
        pass_rate: (behaviour.pass_rate != default.pass_rate).then_some(behaviour.pass_rate),
        match_rate: (behaviour.match_rate != default.match_rate).then_some(behaviour.match_rate),
        choices: (behaviour.choices != default.choices).then(|| {
            NamedMap(
                behaviour
                    .choices
                    .iter()
                    .map(|(choice, weight)| (choice.clone(), *weight))
                    .collect(),
            )
        }),
    }
}

impl EdgeTarget {
    /// Whether the target is the end of the run.
    pub fn is_end(&self) -> bool {
        matches!(self, EdgeTarget::End)
    }
}
