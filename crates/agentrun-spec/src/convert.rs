//! Conversion from the file format to the resolved types: defaults filled in, prompt files
//! read, durations, sizes, keep_alive values and patterns parsed.
//!
//! Each part (an agent, an edge, a section) converts on its own, so one broken part does not
//! hide the problems of the others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::agent::{AgentKind, AgentSpec, CommandSpec};
use crate::check::{Findings, Scope, agent_path};
use crate::document::{
    AgentFile, AgentSimulationFile, ChoicesFile, ConditionFile, DurationFile, EdgeFile,
    KeepAliveFile, LimitsFile, MemoryFile, RangeFile, SimulationFile, SizeFile,
};
use crate::duration::parse_duration;
use crate::flow::{Condition, EdgeSpec, EdgeTarget, Flow};
use crate::loader::{Loading, read_text};
use crate::memory::{Limits, MemorySpec};
use crate::node::{FieldPath, Node, Segment, Value};
use crate::node_de::from_node;
use crate::residency::{KeepAliveSpec, ResidencySpec};
use crate::simulation::{AgentSimulation, SimulationSpec};
use crate::size::{GpuBudget, parse_size};
use crate::source::resolve_relative;
use crate::workflow::Workflow;

/// The workflow in `root`, skipping the `broken` parts, and what the rules may rely on.
pub(crate) fn convert_workflow(
    root: &Node,
    broken: &[FieldPath],
    loading: &mut Loading,
    findings: &mut Findings,
) -> (Workflow, Scope) {
    let is_broken = |path: &FieldPath| {
        broken
            .iter()
            .any(|part| path.starts_with(part) || part.starts_with(path))
    };
    let text = |key: &str| root.get(key).and_then(Node::as_text).map(str::to_owned);
    if let Some(version) = root
        .get("version")
        .and_then(|node| from_node::<u64>(node).ok())
        && version != 1
    {
        findings.error(
            FieldPath::root().key("version"),
            format!("format version {version} is not supported"),
            Some("this agentrun reads version 1; omit `version` or write `version: 1`".to_owned()),
        );
    }

    let agents_node = root.get("agents");
    let agents_known = matches!(agents_node.map(|node| &node.value), Some(Value::Map(_)));
    let mut scope = Scope {
        flow_complete: agents_known,
        agents_known,
        ..Scope::default()
    };
    let agents_path = FieldPath::root().key("agents");
    let mut agents = Vec::new();
    for entry in agents_node.map(Node::entries).unwrap_or_default() {
        let path = agents_path.key(&entry.key);
        let (node, pruned) = match prune(&entry.value, &path, broken, agent_cut) {
            Some(pruned) => pruned,
            None => {
                scope.broken_agents.insert(entry.key.clone());
                scope.opaque_agents.insert(entry.key.clone());
                agents.push(placeholder_agent(&entry.key));
                continue;
            }
        };
        let converted =
            convert_agent_quietly(&entry.key, &node, pruned.is_empty(), loading, findings);
        if !pruned.is_empty() {
            scope.broken_agents.insert(entry.key.clone());
        }
        if converted.is_none()
            || pruned
                .iter()
                .any(|field| field == "kind" || field == "choices")
        {
            scope.opaque_agents.insert(entry.key.clone());
        }
        agents.push(converted.unwrap_or_else(|| {
            scope.broken_agents.insert(entry.key.clone());
            placeholder_agent(&entry.key)
        }));
    }

    let flow_path = FieldPath::root().key("flow");
    let start_path = flow_path.key("start");
    let start = if is_broken(&start_path) {
        scope.flow_complete = false;
        String::new()
    } else {
        root.get("flow")
            .and_then(|flow| flow.get("start"))
            .and_then(Node::as_text)
            .unwrap_or_default()
            .to_owned()
    };
    let mut edges = Vec::new();
    let edges_node = root.get("flow").and_then(|flow| flow.get("edges"));
    if !matches!(edges_node.map(|node| &node.value), Some(Value::Seq(_))) {
        scope.flow_complete = false;
    }
    let edge_nodes = edges_node.map(Node::items).unwrap_or_default();
    for (index, node) in edge_nodes.iter().enumerate() {
        let path = flow_path.key("edges").index(index);
        let edge = if is_broken(&path) {
            None
        } else {
            convert_edge(node, &path, loading, findings)
        };
        match edge {
            Some(edge) => {
                edges.push(edge);
                scope.edge_positions.push(index);
            }
            None => scope.flow_complete = false,
        }
    }

    let limits = section::<LimitsFile>(root, "limits", broken, field_cut, loading)
        .map(|file| convert_limits(&file, findings))
        .unwrap_or_default();
    let memory = section::<MemoryFile>(root, "memory", broken, field_cut, loading)
        .map(|file| convert_memory(&file, findings))
        .unwrap_or_default();
    let simulation_file =
        section::<SimulationFile>(root, "simulation", broken, simulation_cut, loading);
    let simulation = convert_simulation(
        simulation_file.as_ref(),
        &agents,
        &scope.broken_agents,
        findings,
    );

    let workflow = Workflow {
        name: text("name").unwrap_or_default(),
        description: text("description").unwrap_or_default(),
        task: text("task"),
        source: None,
        agents,
        flow: Flow { start, edges },
        limits,
        memory,
        simulation,
        warnings: Vec::new(),
    };
    (workflow, scope)
}

/// A section that is present and fits its type, without the fields that have a problem.
fn section<T: DeserializeOwned>(
    root: &Node,
    key: &str,
    broken: &[FieldPath],
    cut: fn(&[Segment]) -> usize,
    loading: &mut Loading,
) -> Option<T> {
    let node = root.get(key)?;
    let path = FieldPath::root().key(key);
    let (node, pruned) = prune(node, &path, broken, cut)?;
    if pruned.is_empty() {
        read::<Option<T>>(&node, &path, loading).flatten()
    } else {
        from_node::<Option<T>>(&node).ok().flatten()
    }
}

/// A copy of the part at `path` without the fields that have a problem, and the names of the
/// fields removed; `None` when the part as a whole is broken. `cut` says how many segments
/// below `path` name the field to remove for a problem there.
fn prune(
    node: &Node,
    path: &FieldPath,
    broken: &[FieldPath],
    cut: fn(&[Segment]) -> usize,
) -> Option<(Node, Vec<String>)> {
    if broken.iter().any(|part| path.starts_with(part)) {
        return None;
    }
    let mut node = node.clone();
    let mut pruned = Vec::new();
    for part in broken.iter().filter(|part| part.starts_with(path)) {
        let relative = &part.0[path.0.len()..];
        let field = &relative[..cut(relative).min(relative.len())];
        if let Some(Segment::Key(first)) = field.first() {
            pruned.push(first.clone());
        }
        remove_at(&mut node, field);
    }
    Some((node, pruned))
}

fn remove_at(node: &mut Node, field: &[Segment]) {
    let Some((last, parents)) = field.split_last() else {
        return;
    };
    let mut current = node;
    for segment in parents {
        let next = match (segment, &mut current.value) {
            (Segment::Key(key), Value::Map(entries)) => entries
                .iter_mut()
                .find(|entry| &entry.key == key)
                .map(|entry| &mut entry.value),
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    if let (Segment::Key(key), Value::Map(entries)) = (last, &mut current.value) {
        entries.retain(|entry| &entry.key != key);
    }
}

/// A problem in an agent removes the field it is in; inside `options`, `residency` or `env`
/// only the key it is about.
fn agent_cut(relative: &[Segment]) -> usize {
    match relative.first() {
        Some(Segment::Key(key)) if matches!(key.as_str(), "options" | "residency" | "env") => 2,
        _ => 1,
    }
}

/// A problem in `limits` or `memory` removes the field it is in.
fn field_cut(_relative: &[Segment]) -> usize {
    1
}

/// A problem in `simulation.agents.<name>` removes that agent's field.
fn simulation_cut(relative: &[Segment]) -> usize {
    match relative.first() {
        Some(Segment::Key(key)) if key == "agents" => 3,
        _ => 1,
    }
}

/// Reads a typed value out of a tree that passed the shape check. Should the schema let
/// something through that the type refuses, the refusal is reported rather than lost.
fn read<T: DeserializeOwned>(node: &Node, path: &FieldPath, loading: &mut Loading) -> Option<T> {
    match from_node::<T>(node) {
        Ok(value) => Some(value),
        Err(error) => {
            loading.error(error.pos.unwrap_or(node.pos), path, error.message, None);
            None
        }
    }
}

/// Stands in for an agent whose definition could not be read, so edges to it still resolve.
fn placeholder_agent(name: &str) -> AgentSpec {
    AgentSpec {
        name: name.to_owned(),
        description: None,
        kind: AgentKind::Llm,
        model: None,
        prompt: String::new(),
        options: Default::default(),
        think: None,
        choices: Vec::new(),
        choice_descriptions: BTreeMap::new(),
        context_window: AgentSpec::DEFAULT_CONTEXT_WINDOW,
        residency: ResidencySpec::default(),
        fallback: None,
        command: None,
        answers: Vec::new(),
    }
}

/// One agent from its (merged) tree; `None` when the tree does not fit the agent type.
pub(crate) fn convert_agent(
    name: &str,
    node: &Node,
    loading: &mut Loading,
    findings: &mut Findings,
) -> Option<AgentSpec> {
    convert_agent_quietly(name, node, true, loading, findings)
}

/// [`convert_agent`], reporting a tree that does not fit only when `report` (a pruned tree
/// has had its problems reported already).
fn convert_agent_quietly(
    name: &str,
    node: &Node,
    report: bool,
    loading: &mut Loading,
    findings: &mut Findings,
) -> Option<AgentSpec> {
    let path = agent_path(name);
    let file: AgentFile = if report {
        read(node, &path, loading)?
    } else {
        from_node(node).ok()?
    };
    let kind = file.kind.unwrap_or_default();
    let prompt = match (&file.prompt, &file.prompt_file) {
        (Some(prompt), Some(_)) => {
            findings.error(
                path.key("prompt_file"),
                "give `prompt` or `prompt_file`, not both",
                Some("keep the one that holds the role prompt".to_owned()),
            );
            prompt.clone()
        }
        (Some(prompt), None) => prompt.clone(),
        (None, Some(relative)) => {
            let naming_file = node
                .get("prompt_file")
                .map(|n| n.pos.file)
                .unwrap_or(node.pos.file);
            let naming_path = loading.sources.path(naming_file).to_path_buf();
            read_prompt(&naming_path, relative, &path.key("prompt_file"), findings)
        }
        (None, None) => String::new(),
    };
    let (choices, choice_descriptions) = match file.choices {
        None => (Vec::new(), BTreeMap::new()),
        Some(ChoicesFile::Names(names)) => (names, BTreeMap::new()),
        Some(ChoicesFile::Described(described)) => {
            let names = described.0.iter().map(|(name, _)| name.clone()).collect();
            let descriptions = described
                .0
                .into_iter()
                .filter(|(_, text)| !text.trim().is_empty())
                .collect();
            (names, descriptions)
        }
    };
    let residency = file.residency.as_ref().map(|residency| ResidencySpec {
        keep_alive: residency.keep_alive.as_ref().and_then(|value| {
            keep_alive(value, &path.key("residency").key("keep_alive"), findings)
        }),
        load_mode: residency.load_mode,
    });
    let timeout = file
        .timeout
        .as_ref()
        .and_then(|value| duration(value, &path.key("timeout"), findings));
    if kind != AgentKind::Command {
        for (field, given) in [
            ("timeout", file.timeout.is_some()),
            ("env", file.env.is_some()),
        ] {
            if given {
                findings.error(
                    path.key(field),
                    format!("a {} agent has no use for `{field}`", kind.as_str()),
                    Some(format!("remove `{field}`, or set `kind: command`")),
                );
            }
        }
    }
    let command = file.command.map(|argv| CommandSpec {
        argv,
        env: file.env.unwrap_or_default(),
        timeout,
    });
    Some(AgentSpec {
        name: name.to_owned(),
        description: file.description,
        kind,
        model: file.model,
        prompt,
        options: file.options.unwrap_or_default(),
        think: file.think,
        choices,
        choice_descriptions,
        context_window: file
            .context_window
            .map(|window| usize::try_from(window).unwrap_or(usize::MAX))
            .unwrap_or(AgentSpec::DEFAULT_CONTEXT_WINDOW),
        residency: residency.unwrap_or_default(),
        fallback: file.fallback,
        command,
        answers: file.answers.unwrap_or_default(),
    })
}

fn read_prompt(
    naming_file: &Path,
    relative: &str,
    path: &FieldPath,
    findings: &mut Findings,
) -> String {
    let resolved = resolve_relative(naming_file, relative);
    match read_text(&resolved) {
        Ok(text) if text.trim().is_empty() => {
            findings.error(
                path.clone(),
                format!("the prompt file `{}` is empty", resolved.display()),
                Some("write the role prompt into it".to_owned()),
            );
            String::new()
        }
        Ok(text) => text,
        Err(problem) => {
            findings.error(
                path.clone(),
                format!(
                    "cannot read the prompt file `{}`: {problem}",
                    resolved.display()
                ),
                Some(format!(
                    "the path is relative to the file that names it, `{}`",
                    naming_file.display()
                )),
            );
            // Reported here; an empty prompt would only add "needs a role prompt".
            "(unreadable prompt file)".to_owned()
        }
    }
}

fn convert_edge(
    node: &Node,
    path: &FieldPath,
    loading: &mut Loading,
    findings: &mut Findings,
) -> Option<EdgeSpec> {
    let file: EdgeFile = read(node, path, loading)?;
    let when = match file.when.unwrap_or(ConditionFile::Always) {
        ConditionFile::Always => Condition::Always,
        ConditionFile::Pass => Condition::Pass,
        ConditionFile::Fail => Condition::Fail,
        ConditionFile::Contains(text) => {
            if text.is_empty() {
                findings.error(path.key("when").key("contains"), "every reply contains the empty text", Some("give the text to look for, e.g. `APPROVED`, or make the edge unconditional".to_owned()));
            }
            Condition::Contains(text)
        }
        ConditionFile::Choice(choice) => Condition::Choice(choice),
        ConditionFile::Matches(pattern) => match Condition::matches_pattern(&pattern) {
            Ok(condition) => condition,
            Err(error) => {
                findings.error(
                    path.key("when").key("matches"),
                    format!("invalid regular expression: {}", regex_reason(&error)),
                    Some("the syntax is Rust's `regex` crate: escape `( ) [ ] { } . * + ? | \\` with `\\` to match them literally".to_owned()),
                );
                return None;
            }
        },
    };
    Some(EdgeSpec {
        from: file.from,
        to: EdgeTarget::from_name(&file.to),
        when,
    })
}

/// The one-line reason of a regex error (its display draws the pattern over several lines).
fn regex_reason(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.lines().last().unwrap_or_default().trim().to_owned())
}

fn convert_limits(file: &LimitsFile, findings: &mut Findings) -> Limits {
    let path = FieldPath::root().key("limits");
    Limits {
        max_turns: file
            .max_turns
            .map(|turns| u32::try_from(turns).unwrap_or(u32::MAX))
            .unwrap_or(Limits::DEFAULT_MAX_TURNS),
        timeout: file
            .timeout
            .as_ref()
            .and_then(|value| duration(value, &path.key("timeout"), findings)),
    }
}

fn convert_memory(file: &MemoryFile, findings: &mut Findings) -> MemorySpec {
    let path = FieldPath::root().key("memory");
    let gpu_budget = match &file.gpu_budget {
        None => GpuBudget::Auto,
        Some(SizeFile::Bytes(bytes)) => GpuBudget::Bytes(*bytes),
        Some(SizeFile::Text(text)) if text.trim().eq_ignore_ascii_case("auto") => GpuBudget::Auto,
        Some(SizeFile::Text(text)) => match parse_size(text) {
            Ok(bytes) => GpuBudget::Bytes(bytes),
            Err(error) => {
                findings.error(
                    path.key("gpu_budget"),
                    error.to_string(),
                    Some(format!("{}; or `auto` to ask the machine", error.hint())),
                );
                GpuBudget::Auto
            }
        },
    };
    let count = |value: Option<u64>| value.map(|value| u32::try_from(value).unwrap_or(u32::MAX));
    MemorySpec {
        gpu_budget,
        max_loaded_models: count(file.max_loaded_models),
        num_parallel: count(file.num_parallel),
        policy: file.policy.unwrap_or_default(),
        load_mode: file.load_mode.unwrap_or_default(),
    }
}

fn convert_simulation(
    file: Option<&SimulationFile>,
    agents: &[AgentSpec],
    broken_agents: &BTreeSet<String>,
    findings: &mut Findings,
) -> SimulationSpec {
    let mut simulation = SimulationSpec::defaults_for(agents);
    let Some(file) = file else {
        return simulation;
    };
    let path = FieldPath::root().key("simulation");
    simulation.seed = file.seed.unwrap_or(SimulationSpec::DEFAULT_SEED);
    simulation.max_turns = file
        .max_turns
        .map(|turns| u32::try_from(turns).unwrap_or(u32::MAX))
        .unwrap_or(SimulationSpec::DEFAULT_MAX_TURNS);
    let kinds: BTreeMap<&str, &AgentSpec> = agents
        .iter()
        .map(|agent| (agent.name.as_str(), agent))
        .collect();
    for (name, behaviour) in file.agents.iter().flat_map(|agents| agents.0.iter()) {
        let agent_path = path.key("agents").key(name);
        let default = kinds
            .get(name.as_str())
            .map(|agent| AgentSimulation::default_for(agent));
        let kind = kinds.get(name.as_str()).map(|agent| agent.kind);
        if let Some(kind) = kind.filter(|_| !broken_agents.contains(name)) {
            check_simulation_fields(kind, behaviour, &agent_path, findings);
        }
        let mut result =
            default.unwrap_or_else(|| AgentSimulation::default_for(&placeholder_agent(name)));
        if let Some(tokens) = &behaviour.reply_tokens {
            result.reply_tokens = match tokens {
                RangeFile::One(value) => *value..=*value,
                RangeFile::Between([low, high]) => *low..=*high,
            };
        }
        if let Some(range) = &behaviour.duration {
            let field = agent_path.key("duration");
            let parsed = match range {
                RangeFile::One(value) => duration(value, &field, findings).map(|d| d..=d),
                RangeFile::Between([low, high]) => {
                    match (
                        duration(low, &field.index(0), findings),
                        duration(high, &field.index(1), findings),
                    ) {
                        (Some(low), Some(high)) => Some(low..=high),
                        _ => None,
                    }
                }
            };
            if let Some(parsed) = parsed {
                result.duration = parsed;
            }
        }
        result.tokens_per_second = behaviour.tokens_per_second.or(result.tokens_per_second);
        result.pass_rate = behaviour.pass_rate.unwrap_or(result.pass_rate);
        result.match_rate = behaviour.match_rate.unwrap_or(result.match_rate);
        if let Some(weights) = &behaviour.choices {
            // Once any weight is given, the choices left out weigh nothing.
            for weight in result.choices.values_mut() {
                *weight = 0.0;
            }
            for (choice, weight) in &weights.0 {
                result.choices.insert(choice.clone(), *weight);
            }
        }
        simulation.agents.insert(name.clone(), result);
    }
    simulation
}

/// Simulation fields that mean nothing for the agent's kind.
fn check_simulation_fields(
    kind: AgentKind,
    behaviour: &AgentSimulationFile,
    path: &FieldPath,
    findings: &mut Findings,
) {
    let given: [(&str, bool, &[AgentKind]); 4] = [
        (
            "reply_tokens",
            behaviour.reply_tokens.is_some(),
            &[AgentKind::Llm, AgentKind::Human],
        ),
        (
            "tokens_per_second",
            behaviour.tokens_per_second.is_some(),
            &[AgentKind::Llm],
        ),
        (
            "duration",
            behaviour.duration.is_some(),
            &[AgentKind::Command, AgentKind::Human],
        ),
        (
            "pass_rate",
            behaviour.pass_rate.is_some(),
            &[AgentKind::Command],
        ),
    ];
    let used: BTreeSet<&str> = given
        .iter()
        .filter(|(_, given, _)| *given)
        .map(|(field, _, _)| *field)
        .collect();
    for (field, _, kinds) in given.iter().filter(|(field, _, _)| used.contains(field)) {
        if !kinds.contains(&kind) {
            let suits: Vec<&str> = kinds.iter().map(AgentKind::as_str).collect();
            findings.error(
                path.key(field),
                format!("`{field}` does not apply to a {} agent", kind.as_str()),
                Some(format!(
                    "it applies to {} agents; remove it",
                    suits.join(" and ")
                )),
            );
        }
    }
}

fn duration(value: &DurationFile, path: &FieldPath, findings: &mut Findings) -> Option<Duration> {
    match value {
        DurationFile::Seconds(seconds) => Some(Duration::from_secs(*seconds)),
        DurationFile::Text(text) => {
            match parse_duration(text) {
                Ok(duration) => Some(duration),
                Err(_) => {
                    findings.error(path.clone(), format!("`{text}` is not a duration"), Some("write a duration such as `90s`, `30m` or `1h 30m`, or a number of seconds".to_owned()));
                    None
                }
            }
        }
    }
}

fn keep_alive(
    value: &KeepAliveFile,
    path: &FieldPath,
    findings: &mut Findings,
) -> Option<KeepAliveSpec> {
    match value {
        KeepAliveFile::Seconds(seconds) => Some(KeepAliveSpec::from_seconds(*seconds)),
        KeepAliveFile::Text(text) => {
            match text.parse() {
                Ok(keep_alive) => Some(keep_alive),
                Err(_) => {
                    findings.error(path.clone(), format!("`{text}` is not a keep_alive"), Some("write `-1` (forever), `0` (unload at once), or a duration such as `30m`".to_owned()));
                    None
                }
            }
        }
    }
}
