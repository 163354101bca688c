//! Conversion from the file format to the resolved types: defaults filled in, prompt files
//! read, durations, sizes, keep_alive values and patterns parsed.
//!
//! Each part (an agent, an edge, a section) converts on its own, so one broken part does not
//! hide the problems of the others.

mod agent;
mod simulation;

use std::time::Duration;

use agentrun_memory::KeepAlive;
use serde::de::DeserializeOwned;

use crate::agent::{AgentKind, SandboxMode, ToolName};
use crate::check::{Findings, Scope};
use crate::document::{
    ConditionFile, DurationFile, EdgeFile, KeepAliveFile, LimitsFile, MemoryFile, SandboxFile,
    SimulationFile, SizeFile,
};
use crate::duration::parse_duration;

use crate::AgentSpec;
use crate::flow::{Condition, EdgeSpec, EdgeTarget, Flow};
use crate::loader::Loading;
use crate::memory::{Limits, MemorySpec};
use crate::node::{FieldPath, Node, Segment, Value};
use crate::node_de::from_node;
use crate::sandbox::SandboxSpec;
use crate::size::{GpuBudget, parse_size};
use crate::workflow::Workflow;
pub(crate) use agent::convert_agent;
use agent::{convert_agent_quietly, placeholder_agent};
use simulation::convert_simulation;

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
    let sandbox = section::<SandboxFile>(root, "sandbox", broken, field_cut, loading)
        .map(|file| convert_sandbox(file, findings))
        .unwrap_or_default();
    check_container_image(&sandbox, &agents, findings);
    let simulation_file =
        section::<SimulationFile>(root, "simulation", broken, simulation_cut, loading);
    let workflow_file = loading.sources.path(root.pos.file).to_path_buf();
    let simulation = convert_simulation(
        simulation_file.as_ref(),
        &workflow_file,
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
        sandbox,
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
pub(super) fn read<T: DeserializeOwned>(
    node: &Node,
    path: &FieldPath,
    loading: &mut Loading,
) -> Option<T> {
    match from_node::<T>(node) {
        Ok(value) => Some(value),
        Err(error) => {
            loading.error(error.pos.unwrap_or(node.pos), path, error.message, None);
            None
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

fn convert_sandbox(file: SandboxFile, findings: &mut Findings) -> SandboxSpec {
    let path = FieldPath::root().key("sandbox");
    let secret_paths = file.secret_paths.unwrap_or_default();
    for (index, secret) in secret_paths.iter().enumerate() {
        if !(secret.starts_with("~/") || std::path::Path::new(secret).is_absolute()) {
            findings.error(
                path.key("secret_paths").index(index),
                format!("`{secret}` is neither absolute nor under `~/`"),
                Some("write the full path, e.g. `/etc/app/credentials`, or one under the home directory, e.g. `~/.kube`".to_owned()),
            );
        }
    }
    SandboxSpec {
        mode: file.mode.unwrap_or_default(),
        secret_paths,
        image: file.image,
    }
}

/// A `container` agent needs an image to run in.
fn check_container_image(sandbox: &SandboxSpec, agents: &[AgentSpec], findings: &mut Findings) {
    if sandbox.image.is_some() {
        return;
    }
    let hint = "set `sandbox.image` to the image the commands run in, e.g. `python:3.12-slim`";
    if sandbox.mode == SandboxMode::Container {
        findings.error(
            FieldPath::root().key("sandbox").key("mode"),
            "the `container` sandbox needs an image",
            Some(hint.to_owned()),
        );
        return;
    }
    for agent in agents {
        let runs_commands =
            matches!(agent.kind, AgentKind::Command(_)) || agent.has_tool(ToolName::RunCommand);
        if runs_commands && agent.sandbox == Some(SandboxMode::Container) {
            findings.error(
                FieldPath::root()
                    .key("agents")
                    .key(&agent.name)
                    .key("sandbox"),
                "the `container` sandbox needs an image",
                Some(hint.to_owned()),
            );
        }
    }
}

pub(super) fn duration(
    value: &DurationFile,
    path: &FieldPath,
    findings: &mut Findings,
) -> Option<Duration> {
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

pub(super) fn keep_alive(
    value: &KeepAliveFile,
    path: &FieldPath,
    findings: &mut Findings,
) -> Option<KeepAlive> {
    match value {
        KeepAliveFile::Seconds(seconds) => Some(KeepAlive::from_seconds(*seconds)),
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
