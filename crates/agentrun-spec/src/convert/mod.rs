//! Conversion from the file format to the resolved types: defaults filled in, prompt files
//! read, durations, sizes, keep_alive values and patterns parsed.
//!
//! Each part (an agent, an edge, a section) converts on its own, so one broken part does not
//! hide the problems of the others.

mod agent;
mod simulation;

use std::collections::BTreeMap;
use std::time::Duration;

use agentrun_memory::KeepAlive;
use serde::de::DeserializeOwned;

use crate::agent::{AgentKind, SandboxMode, ToolName};
use crate::check::agent_path;
use crate::check::{Findings, Scope};
use crate::document::{
    BranchFailureFile, ConditionFile, DurationFile, EdgeFile, JoinFile, JoinWaitFile, JoinWaitWord,
    KeepAliveFile, LimitsFile, McpServerFile, MemoryFile, NamedMap, SandboxFile, SimulationFile,
    SizeFile, TargetFile,
};
use crate::duration::parse_duration;
use crate::mcp::{
    MCP_NAME_SEPARATOR, McpServerSpec, McpToolChoice, McpTransport, is_mcp_server_name,
};

use crate::AgentSpec;
use crate::flow::{BranchFailure, Condition, EdgeSpec, EdgeTarget, Flow, JoinSpec, JoinWait};
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

    let mut joins = BTreeMap::new();
    let join_entries = root
        .get("flow")
        .and_then(|flow| flow.get("joins"))
        .map(Node::entries)
        .unwrap_or_default();
    for entry in join_entries {
        let path = flow_path.key("joins").key(&entry.key);
        let join = if is_broken(&path) {
            None
        } else {
            convert_join(&entry.value, &path, loading, findings)
        };
        match join {
            Some(join) => {
                joins.insert(entry.key.clone(), join);
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
    let mcp_servers =
        section::<NamedMap<McpServerFile>>(root, "mcp_servers", broken, mcp_cut, loading)
            .map(|file| convert_mcp_servers(file, findings))
            .unwrap_or_default();
    let declared: Vec<String> = root
        .get("mcp_servers")
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .map(|entry| entry.key.clone())
        .collect();
    check_mcp_tools(&declared, &agents, findings);
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
        flow: Flow {
            start,
            edges,
            joins,
        },
        limits,
        memory,
        simulation,
        sandbox,
        mcp_servers,
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

/// A problem in `mcp_servers.<name>` removes that server's field.
fn mcp_cut(_relative: &[Segment]) -> usize {
    2
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
    let when = convert_condition(
        file.when.unwrap_or(ConditionFile::Always),
        &path.key("when"),
        findings,
    )?;
    Some(EdgeSpec {
        from: file.from,
        to: match file.to {
            TargetFile::One(name) => EdgeTarget::from_name(&name),
            TargetFile::Branches(names) => EdgeTarget::Branches(names),
        },
        when,
    })
}

fn convert_join(
    node: &Node,
    path: &FieldPath,
    loading: &mut Loading,
    findings: &mut Findings,
) -> Option<JoinSpec> {
    let file: JoinFile = read(node, path, loading)?;
    let wait =
        match file.wait {
            None | Some(JoinWaitFile::Word(JoinWaitWord::All)) => JoinWait::All,
            Some(JoinWaitFile::Word(JoinWaitWord::First)) => JoinWait::First,
            Some(JoinWaitFile::FirstMatching { first }) => JoinWait::FirstMatching(
                convert_condition(first, &path.key("wait").key("first"), findings)?,
            ),
        };
    let on_failure = match file.on_failure {
        None | Some(BranchFailureFile::Fail) => BranchFailure::Fail,
        Some(BranchFailureFile::Continue) => BranchFailure::Continue,
    };
    Some(JoinSpec { wait, on_failure })
}

/// A condition as a file writes it, checked; `path` is where it is written.
fn convert_condition(
    file: ConditionFile,
    path: &FieldPath,
    findings: &mut Findings,
) -> Option<Condition> {
    Some(match file {
        ConditionFile::Always => Condition::Always,
        ConditionFile::Pass => Condition::Pass,
        ConditionFile::Fail => Condition::Fail,
        ConditionFile::Contains(text) => {
            if text.is_empty() {
                findings.error(path.key("contains"), "every reply contains the empty text", Some("give the text to look for, e.g. `APPROVED`, or make the edge unconditional".to_owned()));
            }
            Condition::Contains(text)
        }
        ConditionFile::Choice(choice) => Condition::Choice(choice),
        ConditionFile::Matches(pattern) => match Condition::matches_pattern(&pattern) {
            Ok(condition) => condition,
            Err(error) => {
                findings.error(
                    path.key("matches"),
                    format!("invalid regular expression: {}", regex_reason(&error)),
                    Some("the syntax is Rust's `regex` crate: escape `( ) [ ] { } . * + ? | \\` with `\\` to match them literally".to_owned()),
                );
                return None;
            }
        },
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

/// The `mcp_servers` section: each server reached one way, its name usable as a tool prefix.
fn convert_mcp_servers(
    file: NamedMap<McpServerFile>,
    findings: &mut Findings,
) -> Vec<McpServerSpec> {
    let section = FieldPath::root().key("mcp_servers");
    let mut servers = Vec::new();
    for (name, server) in file.0 {
        let path = section.key(&name);
        if !is_mcp_server_name(&name) {
            findings.error(
                path.clone(),
                format!("`{name}` cannot name an MCP server: its tools are offered as `{name}{MCP_NAME_SEPARATOR}TOOL`"),
                Some(format!("use letters, digits, `-` and single `_` (no `{MCP_NAME_SEPARATOR}`, no `_` at the end), e.g. `git`")),
            );
            continue;
        }
        let timeout = server
            .timeout
            .as_ref()
            .and_then(|value| duration(value, &path.key("timeout"), findings))
            .unwrap_or(McpServerSpec::DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            findings.error(
                path.key("timeout"),
                "a timeout of zero fails every start and every call at once",
                Some("give a duration such as `30s`, or remove `timeout` (default 60s)".to_owned()),
            );
        }
        let transport = match (server.command, server.url) {
            (Some(command), None) => {
                for (field, given) in [("headers_from_env", server.headers_from_env.is_some())] {
                    if given {
                        findings.error(
                            path.key(field),
                            format!("the stdio server `{name}` has no use for `{field}`"),
                            Some(
                                "HTTP headers go with `url`; a stdio server gets `env`".to_owned(),
                            ),
                        );
                    }
                }
                if command.trim().is_empty() {
                    findings.error(
                        path.key("command"),
                        format!("the MCP server `{name}` has an empty command"),
                        Some(
                            "name the program that serves MCP over stdio, e.g. `mcp-server-git`"
                                .to_owned(),
                        ),
                    );
                    continue;
                }
                let cwd = server.cwd.map(std::path::PathBuf::from);
                if let Some(cwd) = &cwd
                    && (cwd.is_absolute()
                        || cwd
                            .components()
                            .any(|part| matches!(part, std::path::Component::ParentDir)))
                {
                    findings.error(
                        path.key("cwd"),
                        format!("`{}` is not inside the run's workspace", cwd.display()),
                        Some(
                            "give a directory relative to the workspace, e.g. `src`, or omit `cwd`"
                                .to_owned(),
                        ),
                    );
                }
                McpTransport::Stdio {
                    command,
                    args: server.args.unwrap_or_default(),
                    env: server.env.unwrap_or_default(),
                    cwd,
                    sandbox: server.sandbox,
                }
            }
            (None, Some(url)) => {
                for (field, given) in [
                    ("args", server.args.is_some()),
                    ("env", server.env.is_some()),
                    ("cwd", server.cwd.is_some()),
                    ("sandbox", server.sandbox.is_some()),
                ] {
                    if given {
                        findings.error(
                            path.key(field),
                            format!("the HTTP server `{name}` has no use for `{field}`"),
                            Some("`args`, `env`, `cwd` and `sandbox` go with `command`, for a server agentrun starts".to_owned()),
                        );
                    }
                }
                if !url.starts_with("http://") {
                    findings.error(
                        path.key("url"),
                        format!("`{url}` is not an http:// URL"),
                        Some("give the server's streamable HTTP endpoint, e.g. `http://127.0.0.1:8000/mcp`".to_owned()),
                    );
                }
                McpTransport::Http {
                    url,
                    headers_from_env: server.headers_from_env.unwrap_or_default(),
                }
            }
            (Some(_), Some(_)) => {
                findings.error(
                    path.key("url"),
                    format!("the MCP server `{name}` has both `command` and `url`"),
                    Some("give `command` for a server agentrun starts, or `url` for one already running".to_owned()),
                );
                continue;
            }
            (None, None) => {
                findings.error(
                    path,
                    format!("the MCP server `{name}` has neither `command` nor `url`"),
                    Some("give `command` (and `args`) for a server agentrun starts over stdio, or `url` for a streamable HTTP server".to_owned()),
                );
                continue;
            }
        };
        servers.push(McpServerSpec {
            name,
            transport,
            timeout,
        });
    }
    servers
}

/// Each server an agent takes tools from is declared in `mcp_servers`, and each tool is
/// named once. `declared` holds every name the section gives, even one with a problem of its
/// own (reported there).
fn check_mcp_tools(declared: &[String], agents: &[AgentSpec], findings: &mut Findings) {
    for agent in agents {
        let Some(llm) = agent.llm() else { continue };
        let path = agent_path(&agent.name).key("mcp_tools");
        for (server, choice) in &llm.mcp_tools {
            if !declared.contains(server) {
                findings.error(
                    path.key(server),
                    format!("there is no MCP server `{server}`"),
                    Some(known_servers_hint(declared)),
                );
            }
            if let McpToolChoice::Named(names) = choice {
                for (index, name) in names.iter().enumerate() {
                    if names[..index].contains(name) {
                        findings.error(
                            path.key(server).index(index),
                            format!("`{name}` is listed twice"),
                            Some("list each tool once".to_owned()),
                        );
                    }
                }
            }
        }
    }
}

fn known_servers_hint(declared: &[String]) -> String {
    if declared.is_empty() {
        "declare it in the workflow's `mcp_servers` section".to_owned()
    } else {
        let names: Vec<String> = declared.iter().map(|name| format!("`{name}`")).collect();
        format!("the workflow's MCP servers are {}", names.join(", "))
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
