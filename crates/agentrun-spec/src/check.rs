//! The rules a loaded workflow must follow: what each kind of agent needs, sane limits and
//! budgets, consistent routers and simulation settings. Flow rules live in `reachability`.
//!
//! Rules run on the resolved types, so a workflow built in code is checked exactly like one
//! read from a file; each finding names the field it is about, and the loader turns that into
//! a file, line and column.

use std::collections::{BTreeMap, BTreeSet};

use crate::agent::{
    AgentKind, AgentSpec, Approval, KNOWN_OLLAMA_OPTIONS, LlmAgentSpec, ModelOptionsSpec, ToolName,
};
use crate::context::ContextStrategy;
use crate::diagnostic::Severity;
use crate::flow::EdgeTarget;
use crate::memory::Limits;
use crate::node::FieldPath;
use crate::reachability;
use crate::size::GpuBudget;
use crate::spelling;
use crate::workflow::Workflow;

/// A rule broken (or bent) by a workflow.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub(crate) severity: Severity,
    pub(crate) path: FieldPath,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

/// What the rules may rely on. A file with broken parts loads them as placeholders; rules
/// that would only repeat the breakage are skipped.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    /// Agents with a problem in their definition: their own rules are skipped.
    pub(crate) broken_agents: BTreeSet<String>,
    /// Agents whose kind or choices are unknown: rules about their edges are skipped too.
    pub(crate) opaque_agents: BTreeSet<String>,
    /// The position in the file of each edge (edges that could not be read are missing from
    /// the workflow, so positions can differ).
    pub(crate) edge_positions: Vec<usize>,
    /// Whether every edge and the start could be read, so reachability means something.
    pub(crate) flow_complete: bool,
    /// Whether the agents could be listed at all, so names in the flow can be checked.
    pub(crate) agents_known: bool,
}

impl Scope {
    /// Everything is as the workflow says (a workflow built in code).
    pub(crate) fn complete(workflow: &Workflow) -> Scope {
        Scope {
            broken_agents: BTreeSet::new(),
            opaque_agents: BTreeSet::new(),
            edge_positions: (0..workflow.flow.edges.len()).collect(),
            flow_complete: true,
            agents_known: true,
        }
    }

    pub(crate) fn edge_path(&self, index: usize) -> FieldPath {
        let position = self.edge_positions.get(index).copied().unwrap_or(index);
        FieldPath::root().key("flow").key("edges").index(position)
    }
}

/// Collects findings.
#[derive(Debug, Default)]
pub(crate) struct Findings(pub(crate) Vec<Finding>);

impl Findings {
    pub(crate) fn error(
        &mut self,
        path: FieldPath,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.push(Severity::Error, path, message.into(), hint.into());
    }

    pub(crate) fn warning(
        &mut self,
        path: FieldPath,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.push(Severity::Warning, path, message.into(), hint.into());
    }

    fn push(&mut self, severity: Severity, path: FieldPath, message: String, hint: Option<String>) {
        self.0.push(Finding {
            severity,
            path,
            message,
            hint,
        });
    }
}

/// Every rule, over a whole workflow.
pub(crate) fn check_workflow(workflow: &Workflow, scope: &Scope) -> Vec<Finding> {
    let mut findings = Findings::default();
    if workflow.name.trim().is_empty() {
        findings.error(
            FieldPath::root().key("name"),
            "the workflow has no name",
            Some("give it a short name, e.g. `name: tdd`".to_owned()),
        );
    }
    if scope.agents_known {
        check_agent_names(workflow, &mut findings);
    }
    for agent in &workflow.agents {
        if !scope.broken_agents.contains(&agent.name) {
            check_agent(agent, &mut findings);
        }
    }
    if scope.agents_known {
        reachability::check_flow(workflow, scope, &mut findings);
        check_contexts(workflow, scope, &mut findings);
    }
    check_limits(&workflow.limits, &mut findings);
    check_memory(workflow, &mut findings);
    check_simulation(workflow, scope, &mut findings);
    findings.0
}

pub(crate) fn agent_path(name: &str) -> FieldPath {
    FieldPath::root().key("agents").key(name)
}

fn check_agent_names(workflow: &Workflow, findings: &mut Findings) {
    if workflow.agents.is_empty() {
        findings.error(
            FieldPath::root().key("agents"),
            "the workflow has no agents",
            Some("add at least one agent under `agents:`".to_owned()),
        );
    }
    let mut seen = BTreeSet::new();
    for agent in &workflow.agents {
        let path = agent_path(&agent.name);
        if agent.name == EdgeTarget::END {
            findings.error(
                path,
                "`end` is reserved for the end of the run",
                Some("rename the agent".to_owned()),
            );
        } else if !is_valid_name(&agent.name) {
            findings.error(
                path,
                format!("`{}` is not a valid agent name", agent.name),
                Some("use letters, digits, `_` and `-` (e.g. `code-reviewer`)".to_owned()),
            );
        } else if !seen.insert(agent.name.as_str()) {
            findings.error(
                path,
                format!("two agents are called `{}`", agent.name),
                Some("rename one of them".to_owned()),
            );
        }
    }
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && !name.starts_with(['-', '.'])
}

/// What each kind needs. (What a kind cannot use has no place in its type; the file's misfits
/// are reported where the file is converted.)
pub(crate) fn check_agent(agent: &AgentSpec, findings: &mut Findings) {
    let path = agent_path(&agent.name);
    match &agent.kind {
        AgentKind::Llm(llm) => {
            let model = llm.model.trim();
            if model.is_empty() {
                findings.error(
                    path.key("model"),
                    "an llm agent needs a model",
                    Some(
                        "add `model:` with an Ollama model name, e.g. `model: qwen3-coder:32b`"
                            .to_owned(),
                    ),
                );
            } else if model.contains(char::is_whitespace) {
                findings.error(
                    path.key("model"),
                    format!("`{model}` is not an Ollama model name"),
                    Some("model names have no spaces, e.g. `qwen3:1.7b`".to_owned()),
                );
            }
            if llm.prompt.trim().is_empty() {
                findings.error(
                    path.key("prompt"),
                    "an llm agent needs a role prompt",
                    Some("add `prompt:` with the role, or `prompt_file:` naming a file that holds it".to_owned()),
                );
            }
            if llm.options.num_ctx.is_none() {
                findings.warning(
                    path.key("options").key("num_ctx"),
                    "no context length is set, so Ollama picks one from the GPU size (262144 tokens on a 64 GB Mac), which makes the model's memory footprint far larger than needed",
                    Some("set it, e.g. `options: { num_ctx: 32768 }`".to_owned()),
                );
            }
            if llm.fallback.as_deref() == Some(llm.model.as_str()) {
                findings.error(
                    path.key("fallback"),
                    "the fallback is the agent's own model",
                    Some("name a smaller model, or remove `fallback`".to_owned()),
                );
            }
            check_tools(&agent.name, llm, findings);
            if llm.context_window == 0 || llm.context_window > LlmAgentSpec::MAX_CONTEXT_WINDOW {
                findings.error(
                    path.key("context_window"),
                    format!(
                        "a context window of {} messages is out of range",
                        llm.context_window
                    ),
                    Some(format!(
                        "give a number of recent messages from 1 to {} (default {})",
                        LlmAgentSpec::MAX_CONTEXT_WINDOW,
                        LlmAgentSpec::DEFAULT_CONTEXT_WINDOW
                    )),
                );
            }
            check_options(&agent.name, &llm.options, findings);
            check_choices(&agent.name, &llm.choices, findings);
        }
        AgentKind::Command(command) => {
            if command.argv.is_empty() {
                findings.error(
                    path.key("command"),
                    "a command agent needs a command",
                    Some(
                        "add the program and its arguments, e.g. `command: [cargo, test]`"
                            .to_owned(),
                    ),
                );
            } else if command.argv[0].trim().is_empty() {
                findings.error(
                    path.key("command"),
                    "the command is empty",
                    Some(
                        "give the program and its arguments, e.g. `command: [cargo, test]`"
                            .to_owned(),
                    ),
                );
            } else if command.timeout.is_some_and(|timeout| timeout.is_zero()) {
                findings.error(
                    path.key("timeout"),
                    "a timeout of zero stops every run at once",
                    Some("give a duration such as `10m`, or remove `timeout`".to_owned()),
                );
            }
        }
        AgentKind::Human(human) => check_choices(&agent.name, &human.choices, findings),
    }
}

/// Tools, the command allow-list and the tool-round limit of an llm agent.
fn check_tools(name: &str, agent: &LlmAgentSpec, findings: &mut Findings) {
    let path = agent_path(name);
    let policy = &agent.command_policy;
    if !agent.choices.is_empty() && !agent.tools.is_empty() {
        findings.error(
            path.key("tools"),
            "a router answers with one of its choices and cannot call tools",
            Some(
                "remove `tools`, or remove `choices` and route with `contains` conditions"
                    .to_owned(),
            ),
        );
    }
    if !agent.choices.is_empty() && !agent.mcp_tools.is_empty() {
        findings.error(
            path.key("mcp_tools"),
            "a router answers with one of its choices and cannot call tools",
            Some(
                "remove `mcp_tools`, or remove `choices` and route with `contains` conditions"
                    .to_owned(),
            ),
        );
    }
    let mut seen = BTreeSet::new();
    for tool in &agent.tools {
        if !seen.insert(*tool) {
            findings.error(
                path.key("tools"),
                format!("the tool `{tool}` is listed twice"),
                Some("remove one of them".to_owned()),
            );
        }
    }
    let runs_commands = agent.tools.contains(&ToolName::RunCommand);
    if runs_commands && policy.allow.is_empty() {
        findings.error(
            path.key("tools"),
            "`run_command` needs an allow-list, or it can run nothing",
            Some(
                "add the commands the model may run, e.g. `allow_commands: [[cargo, test]]`"
                    .to_owned(),
            ),
        );
    }
    if !runs_commands && !policy.allow.is_empty() {
        findings.error(
            path.key("allow_commands"),
            "`allow_commands` has no use without the `run_command` tool",
            Some("add `run_command` to `tools`, or remove `allow_commands`".to_owned()),
        );
    }
    // Approval applies to the commands a model runs and to its MCP tool calls.
    if !runs_commands && agent.mcp_tools.is_empty() && policy.approve != Approval::Never {
        findings.error(
            path.key("approve"),
            "`approve` has no use without the `run_command` tool or MCP tools",
            Some("add `run_command` to `tools` or a server's tools to `mcp_tools`, or remove `approve`".to_owned()),
        );
    }
    for (index, allowed) in policy.allow.iter().enumerate() {
        if allowed
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            findings.error(
                path.key("allow_commands").index(index),
                "an allowed command needs a program",
                Some(
                    "give the program and the arguments a command must start with, e.g. `[cargo, test]`"
                        .to_owned(),
                ),
            );
        }
    }
    if policy.timeout.is_some_and(|timeout| timeout.is_zero()) {
        findings.error(
            path.key("timeout"),
            "a timeout of zero stops every command at once",
            Some("give a duration such as `5m`, or remove `timeout`".to_owned()),
        );
    }
    if agent.max_tool_rounds == 0 || agent.max_tool_rounds > LlmAgentSpec::MAX_TOOL_ROUNDS {
        findings.error(
            path.key("max_tool_rounds"),
            format!(
                "{} rounds of tool calls is out of range",
                agent.max_tool_rounds
            ),
            Some(format!(
                "give a number from 1 to {} (default {})",
                LlmAgentSpec::MAX_TOOL_ROUNDS,
                LlmAgentSpec::DEFAULT_MAX_TOOL_ROUNDS
            )),
        );
    }
}

fn check_options(name: &str, options: &ModelOptionsSpec, findings: &mut Findings) {
    let path = agent_path(name).key("options");
    if let Some(num_ctx) = options.num_ctx
        && !(256..=10_000_000).contains(&num_ctx)
    {
        findings.error(
            path.key("num_ctx"),
            format!("a context of {num_ctx} tokens is out of range"),
            Some(
                "give a context length from 256 to 10000000 tokens, e.g. 8192 or 32768".to_owned(),
            ),
        );
    }
    if options.num_batch == Some(0) {
        findings.error(
            path.key("num_batch"),
            "a batch size of 0 cannot process a prompt",
            Some("remove it (Ollama's default is 512)".to_owned()),
        );
    }
    let ranges: [(&str, Option<f64>, f64, f64); 4] = [
        ("temperature", options.temperature, 0.0, 100.0),
        ("top_p", options.top_p, 0.0, 1.0),
        ("min_p", options.min_p, 0.0, 1.0),
        ("repeat_penalty", options.repeat_penalty, 0.0, 100.0),
    ];
    for (name, value, low, high) in ranges {
        if let Some(value) = value.filter(|value| !(low..=high).contains(value)) {
            findings.error(
                path.key(name),
                format!("{value} is out of range"),
                Some(format!("give a value from {low} to {high}")),
            );
        }
    }
    for key in options.extra.keys() {
        let key_path = path.key(key);
        match key.as_str() {
            "use_mmap" => findings.error(
                key_path,
                "`use_mmap` is set by the executor from the load mode",
                Some("use `residency: { load_mode: mmap }` (or `no-mmap`, or `auto` to let the planner measure)".to_owned()),
            ),
            "keep_alive" => findings.error(
                key_path,
                "keep_alive is not a model option",
                Some("use `residency: { keep_alive: 30m }` (the `static` policy sends it)".to_owned()),
            ),
            known if KNOWN_OLLAMA_OPTIONS.contains(&known) => {}
            unknown => match spelling::nearest(unknown, KNOWN_OLLAMA_OPTIONS) {
                Some(near) => findings.error(key_path, "unknown Ollama option", Some(format!("did you mean `{near}`?"))),
                None => findings.warning(
                    key_path,
                    "not an Ollama option agentrun knows; it is passed to Ollama as it is",
                    None,
                ),
            },
        }
    }
}

fn check_choices(name: &str, choices: &[String], findings: &mut Findings) {
    let path = agent_path(name).key("choices");
    let mut seen = BTreeSet::new();
    for choice in choices {
        if choice.trim().is_empty() {
            findings.error(
                path.clone(),
                "a choice has no name",
                Some(
                    "give every choice a name, e.g. `choices: [design, implement, done]`"
                        .to_owned(),
                ),
            );
        } else if !seen.insert(choice.as_str()) {
            findings.error(
                path.clone(),
                format!("the choice `{choice}` is listed twice"),
                Some("remove one of them".to_owned()),
            );
        }
    }
    if choices.len() == 1 {
        findings.warning(
            path,
            "a router with one choice always picks it",
            Some("add choices, or make the edge unconditional and remove `choices`".to_owned()),
        );
    }
}

fn check_limits(limits: &Limits, findings: &mut Findings) {
    let path = FieldPath::root().key("limits");
    if limits.max_turns == 0 || limits.max_turns > Limits::MAX_TURNS_CEILING {
        findings.error(
            path.key("max_turns"),
            format!("max_turns must be from 1 to {}", Limits::MAX_TURNS_CEILING),
            Some(format!(
                "a long TDD run takes a few hundred turns; the default is {}",
                Limits::DEFAULT_MAX_TURNS
            )),
        );
    }
    if limits.timeout.is_some_and(|timeout| timeout.is_zero()) {
        findings.error(
            path.key("timeout"),
            "a timeout of zero stops the run before it starts",
            Some("give a duration such as `30m`, or remove `timeout`".to_owned()),
        );
    }
}

/// The smallest GPU budget accepted: less holds no model worth running.
const MIN_GPU_BUDGET: u64 = 100_000_000;

fn check_memory(workflow: &Workflow, findings: &mut Findings) {
    let path = FieldPath::root().key("memory");
    let memory = &workflow.memory;
    if let GpuBudget::Bytes(bytes) = memory.gpu_budget
        && bytes < MIN_GPU_BUDGET
    {
        let hint = if (1..10_000).contains(&bytes) {
            format!("a bare number is bytes; did you mean `{bytes}GB`?")
        } else {
            "give the GPU memory Ollama may use, e.g. `54GB`, or `auto`".to_owned()
        };
        findings.error(
            path.key("gpu_budget"),
            format!(
                "a GPU budget of {} is too small to hold any model (the least is 100MB)",
                memory.gpu_budget
            ),
            Some(hint),
        );
    }
    let counts = [
        (
            "max_loaded_models",
            memory.max_loaded_models,
            1000,
            "OLLAMA_MAX_LOADED_MODELS; 3 on a Mac by default",
        ),
        (
            "num_parallel",
            memory.num_parallel,
            256,
            "OLLAMA_NUM_PARALLEL; 1 by default",
        ),
    ];
    for (name, value, ceiling, meaning) in counts {
        if let Some(value) = value.filter(|value| *value == 0 || *value > ceiling) {
            findings.error(
                path.key(name),
                format!("{value} is out of range"),
                Some(format!(
                    "give a number from 1 to {ceiling} (the server's {meaning}), or remove it"
                )),
            );
        }
    }
}

/// The agents a context names exist and can do what is asked of them; the reply room leaves
/// room for a prompt.
fn check_contexts(workflow: &Workflow, scope: &Scope, findings: &mut Findings) {
    let agents: BTreeMap<&str, &AgentSpec> = workflow
        .agents
        .iter()
        .map(|agent| (agent.name.as_str(), agent))
        .collect();
    for agent in &workflow.agents {
        let Some(llm) = agent.llm() else { continue };
        let Some(context) = &llm.context else {
            continue;
        };
        if scope.broken_agents.contains(&agent.name) {
            continue;
        }
        let path = agent_path(&agent.name).key("context");
        for (index, pin) in context.pin.iter().enumerate() {
            let pinned = pin.agent();
            let pin_path = path.key("pin").index(index);
            match agents.get(pinned) {
                None => findings.error(
                    pin_path,
                    format!("there is no agent `{pinned}` to pin"),
                    Some(spelling::suggestion(
                        pinned,
                        agents.keys().copied(),
                        "agents",
                    )),
                ),
                Some(other)
                    if pin.failed_only()
                        && other.llm().is_some()
                        && !scope.opaque_agents.contains(pinned) =>
                {
                    findings.error(
                        pin_path,
                        format!("`{pinned}` is a model agent, so it has no failing output"),
                        Some(format!(
                            "pin its latest message with `{pinned}`, or name a command agent"
                        )),
                    );
                }
                Some(_) => {}
            }
        }
        if !context.pin.is_empty() && context.strategy == ContextStrategy::Window {
            findings.error(
                path.key("pin"),
                "a `window` context keeps only the newest messages, so it pins nothing",
                Some("use `strategy: budget` or `summarize`, or remove `pin`".to_owned()),
            );
        }
        if let Some(summarizer) = &context.summarizer {
            if context.strategy != ContextStrategy::Summarize {
                findings.error(
                    path.key("summarizer"),
                    format!(
                        "a `{}` context writes no summary",
                        context.strategy.as_str()
                    ),
                    Some("use `strategy: summarize`, or remove `summarizer`".to_owned()),
                );
            }
            match agents.get(summarizer.as_str()) {
                None => findings.error(
                    path.key("summarizer"),
                    format!("there is no agent `{summarizer}`"),
                    Some(spelling::suggestion(
                        summarizer,
                        agents.keys().copied(),
                        "agents",
                    )),
                ),
                Some(other)
                    if other.llm().is_none() && !scope.opaque_agents.contains(summarizer) =>
                {
                    findings.error(
                        path.key("summarizer"),
                        format!("`{summarizer}` has no model to write a summary with"),
                        Some("name a model agent, e.g. the router".to_owned()),
                    );
                }
                Some(_) => {}
            }
        }
        let num_ctx = llm.options.num_ctx.unwrap_or(u64::MAX);
        if let Some(reply) = context.reply_tokens
            && (reply == 0 || reply >= num_ctx / 2)
        {
            findings.error(
                path.key("reply_tokens"),
                format!("{reply} tokens of reply room leaves too little for the prompt"),
                Some(format!(
                    "give a number from 1 to less than half of num_ctx ({})",
                    llm.options
                        .num_ctx
                        .map_or("unset".to_owned(), |n| n.to_string())
                )),
            );
        }
    }
}

fn check_simulation(workflow: &Workflow, scope: &Scope, findings: &mut Findings) {
    let path = FieldPath::root().key("simulation");
    let simulation = &workflow.simulation;
    if simulation.max_turns == 0 || simulation.max_turns > Limits::MAX_TURNS_CEILING {
        findings.error(
            path.key("max_turns"),
            format!("max_turns must be from 1 to {}", Limits::MAX_TURNS_CEILING),
            None,
        );
    }
    let agents: BTreeMap<&str, &AgentSpec> = workflow
        .agents
        .iter()
        .map(|agent| (agent.name.as_str(), agent))
        .collect();
    for (name, behaviour) in &simulation.agents {
        let agent_path = path.key("agents").key(name);
        let Some(agent) = agents.get(name.as_str()) else {
            findings.error(
                agent_path,
                format!("there is no agent `{name}`"),
                Some(spelling::suggestion(name, agents.keys().copied(), "agents")),
            );
            continue;
        };
        if behaviour.reply_tokens.start() > behaviour.reply_tokens.end()
            || *behaviour.reply_tokens.end() > 1_000_000
        {
            findings.error(
                agent_path.key("reply_tokens"),
                "the token range is out of order or absurd",
                Some("give `[min, max]` with min <= max <= 1000000".to_owned()),
            );
        }
        if behaviour.duration.start() > behaviour.duration.end() {
            findings.error(
                agent_path.key("duration"),
                "the duration range is out of order",
                Some("give `[min, max]` with min <= max, e.g. `[60s, 120s]`".to_owned()),
            );
        }
        if let Some(speed) = behaviour
            .tokens_per_second
            .filter(|speed| !(speed.is_finite() && *speed > 0.0))
        {
            findings.error(
                agent_path.key("tokens_per_second"),
                format!("{speed} tokens per second is not a speed"),
                Some("give a positive number, e.g. 9.5".to_owned()),
            );
        }
        for (field, rate) in [
            ("pass_rate", behaviour.pass_rate),
            ("match_rate", behaviour.match_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                findings.error(
                    agent_path.key(field),
                    format!("{rate} is not a share"),
                    Some("give a number from 0 to 1, e.g. 0.6".to_owned()),
                );
            }
        }
        if scope.opaque_agents.contains(name) {
            continue;
        }
        if !agent.is_router() && !behaviour.choices.is_empty() {
            findings.error(
                agent_path.key("choices"),
                format!("`{name}` is not a router"),
                Some("choice weights apply to agents with `choices:`".to_owned()),
            );
            continue;
        }
        for (choice, weight) in &behaviour.choices {
            if !agent.choices().contains(choice) {
                findings.error(
                    agent_path.key("choices").key(choice),
                    format!("`{name}` has no choice `{choice}`"),
                    Some(spelling::suggestion(
                        choice,
                        agent.choices().iter().map(String::as_str),
                        "its choices",
                    )),
                );
            } else if !(weight.is_finite() && *weight >= 0.0) {
                findings.error(
                    agent_path.key("choices").key(choice),
                    format!("{weight} is not a weight"),
                    Some("give a number of 0 or more".to_owned()),
                );
            }
        }
        if agent.is_router()
            && behaviour
                .choices
                .values()
                .filter(|weight| weight.is_finite())
                .sum::<f64>()
                <= 0.0
        {
            findings.error(
                agent_path.key("choices"),
                "every choice weighs 0, so the router cannot pick",
                Some("give at least one choice a positive weight".to_owned()),
            );
        }
    }
}
