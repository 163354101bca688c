//! Agents: the file's fields resolved, the prompt file read, defaults filled in.

use std::collections::BTreeMap;
use std::path::Path;

use super::{duration, keep_alive, read};
use crate::agent::{AgentKind, AgentSpec, CommandPolicy, CommandSpec, ToolName};
use crate::check::{Findings, agent_path};
use crate::document::{AgentFile, ChoicesFile};
use crate::loader::{Loading, read_text};
use crate::node::{FieldPath, Node};
use crate::node_de::from_node;
use crate::residency::ResidencySpec;
use crate::source::resolve_relative;

/// Stands in for an agent whose definition could not be read, so edges to it still resolve.
pub(super) fn placeholder_agent(name: &str) -> AgentSpec {
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
        tools: Vec::new(),
        max_tool_rounds: AgentSpec::DEFAULT_MAX_TOOL_ROUNDS,
        command_policy: CommandPolicy::default(),
        sandbox: None,
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
pub(super) fn convert_agent_quietly(
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
    let tools = file.tools.unwrap_or_default();
    // An llm agent whose model runs commands gives them an environment and a time limit.
    let runs_commands = kind == AgentKind::Llm && tools.contains(&ToolName::RunCommand);
    if kind != AgentKind::Command && !runs_commands {
        for (field, given) in [
            ("timeout", file.timeout.is_some()),
            ("env", file.env.is_some()),
            ("sandbox", file.sandbox.is_some()),
        ] {
            if given {
                let hint = match kind {
                    AgentKind::Llm => format!(
                        "remove `{field}`, set `kind: command`, or give the model `run_command` in `tools` (then `{field}` applies to the commands it runs)"
                    ),
                    _ => format!("remove `{field}`, or set `kind: command`"),
                };
                findings.error(
                    path.key(field),
                    format!("{} has no use for `{field}`", kind.an_agent()),
                    Some(hint),
                );
            }
        }
    }
    let (command, command_policy) = if runs_commands {
        let policy = CommandPolicy {
            allow: file.allow_commands.unwrap_or_default(),
            approve: file.approve.unwrap_or_default(),
            env: file.env.unwrap_or_default(),
            timeout,
        };
        (
            file.command.map(|argv| CommandSpec {
                argv,
                env: Default::default(),
                timeout: None,
            }),
            policy,
        )
    } else {
        let policy = CommandPolicy {
            allow: file.allow_commands.unwrap_or_default(),
            approve: file.approve.unwrap_or_default(),
            ..CommandPolicy::default()
        };
        (
            file.command.map(|argv| CommandSpec {
                argv,
                env: file.env.unwrap_or_default(),
                timeout,
            }),
            policy,
        )
    };
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
        tools,
        max_tool_rounds: file
            .max_tool_rounds
            .map(|rounds| u32::try_from(rounds).unwrap_or(u32::MAX))
            .unwrap_or(AgentSpec::DEFAULT_MAX_TOOL_ROUNDS),
        command_policy,
        sandbox: file.sandbox,
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
