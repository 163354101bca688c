//! Agents: the file's fields resolved, the prompt file read, defaults filled in.

use std::collections::BTreeMap;
use std::path::Path;

use super::{duration, keep_alive, read};
use crate::agent::{
    AgentKind, AgentSpec, Approval, CommandPolicy, CommandSpec, HumanAgentSpec, KindName,
    LlmAgentSpec, ModelOptionsSpec, ToolName,
};
use crate::check::{Findings, agent_path};
use crate::document::{AgentFile, ChoicesFile, McpAll, McpToolsFile};
use crate::loader::{Loading, read_text};
use crate::mcp::McpToolChoice;
use crate::node::{FieldPath, Node};
use crate::node_de::from_node;
use crate::residency::ResidencySpec;
use crate::source::resolve_relative;

/// Host labels as written, each checked: a label with other characters, or given twice, is
/// reported at its place in the list.
fn host_labels(
    labels: Option<&[String]>,
    path: &FieldPath,
    findings: &mut Findings,
) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for (index, label) in labels.unwrap_or_default().iter().enumerate() {
        if !crate::residency::is_host_label(label) {
            findings.error(
                path.index(index),
                format!("'{label}' is not a host label"),
                Some(
                    "a label is lowercase letters, digits, `-` and `_`, such as `big` or `linux`"
                        .to_owned(),
                ),
            );
        } else if kept.contains(label) {
            findings.error(
                path.index(index),
                format!("the label '{label}' is given twice"),
                Some("remove one of them".to_owned()),
            );
        } else {
            kept.push(label.clone());
        }
    }
    kept
}

/// Stands in for an agent whose definition could not be read, so edges to it still resolve.
pub(super) fn placeholder_agent(name: &str) -> AgentSpec {
    AgentSpec {
        name: name.to_owned(),
        description: None,
        sandbox: None,
        kind: AgentKind::Llm(LlmAgentSpec::new("", "")),
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
    let (choices, choice_descriptions) = match file.choices.clone() {
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
    let residency = file
        .residency
        .as_ref()
        .map(|residency| ResidencySpec {
            keep_alive: residency.keep_alive.as_ref().and_then(|value| {
                keep_alive(value, &path.key("residency").key("keep_alive"), findings)
            }),
            load_mode: residency.load_mode,
            require_labels: host_labels(
                residency.require_labels.as_deref(),
                &path.key("residency").key("require_labels"),
                findings,
            ),
            prefer_labels: host_labels(
                residency.prefer_labels.as_deref(),
                &path.key("residency").key("prefer_labels"),
                findings,
            ),
        })
        .unwrap_or_default();
    let timeout = file
        .timeout
        .as_ref()
        .and_then(|value| duration(value, &path.key("timeout"), findings));
    report_misfits(
        &file,
        kind,
        &Resolved {
            prompt: &prompt,
            choices: &choices,
            residency: &residency,
        },
        &path,
        findings,
    );
    let kind = match kind {
        KindName::Llm => {
            let tools = file.tools.unwrap_or_default();
            // A model that runs commands gives them an environment and a time limit.
            let runs_commands = tools.contains(&ToolName::RunCommand);
            AgentKind::Llm(LlmAgentSpec {
                model: file.model.unwrap_or_default(),
                prompt,
                options: file.options.unwrap_or_default(),
                think: file.think,
                choices,
                choice_descriptions,
                context_window: file
                    .context_window
                    .map(|window| usize::try_from(window).unwrap_or(usize::MAX))
                    .unwrap_or(LlmAgentSpec::DEFAULT_CONTEXT_WINDOW),
                context: file.context,
                residency,
                fallback: file.fallback,
                tools,
                mcp_tools: file
                    .mcp_tools
                    .map(|servers| {
                        servers
                            .0
                            .into_iter()
                            .map(|(server, choice)| {
                                let choice = match choice {
                                    McpToolsFile::Every(McpAll::All) => McpToolChoice::All,
                                    McpToolsFile::Named(names) => McpToolChoice::Named(names),
                                };
                                (server, choice)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                max_tool_rounds: file
                    .max_tool_rounds
                    .map(|rounds| u32::try_from(rounds).unwrap_or(u32::MAX))
                    .unwrap_or(LlmAgentSpec::DEFAULT_MAX_TOOL_ROUNDS),
                command_policy: CommandPolicy {
                    allow: file.allow_commands.unwrap_or_default(),
                    approve: file.approve.unwrap_or_default(),
                    env: if runs_commands {
                        file.env.unwrap_or_default()
                    } else {
                        BTreeMap::new()
                    },
                    timeout: timeout.filter(|_| runs_commands),
                },
            })
        }
        KindName::Command => AgentKind::Command(CommandSpec {
            // `command: []` names a command with no program, which the rules call empty;
            // only a missing `command` leaves the list empty.
            argv: match file.command {
                Some(argv) if argv.is_empty() => vec![String::new()],
                argv => argv.unwrap_or_default(),
            },
            env: file.env.unwrap_or_default(),
            timeout,
        }),
        KindName::Human => AgentKind::Human(HumanAgentSpec {
            prompt,
            choices,
            choice_descriptions,
            answers: file.answers.unwrap_or_default(),
        }),
    };
    Some(AgentSpec {
        name: name.to_owned(),
        description: file.description,
        sandbox: file.sandbox,
        kind,
    })
}

/// What the file's fields resolved to, where a misfit depends on the resolved value.
struct Resolved<'a> {
    prompt: &'a str,
    choices: &'a [String],
    residency: &'a ResidencySpec,
}

/// Reports each field the file sets that the agent's kind has no use for. Only the flat file
/// can hold such a field: the resolved [`AgentKind`] has no place for it.
fn report_misfits(
    file: &AgentFile,
    kind: KindName,
    resolved: &Resolved<'_>,
    path: &FieldPath,
    findings: &mut Findings,
) {
    let llm = kind == KindName::Llm;
    let runs_commands = llm
        && file
            .tools
            .as_ref()
            .is_some_and(|tools| tools.contains(&ToolName::RunCommand));
    // `timeout` and `env` serve command agents and the commands a model runs.
    if kind != KindName::Command && !runs_commands {
        for (field, given) in [
            ("timeout", file.timeout.is_some()),
            ("env", file.env.is_some()),
            ("sandbox", file.sandbox.is_some()),
        ] {
            if given {
                let hint = match kind {
                    KindName::Llm => format!(
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
    let mut misfits: Vec<&str> = Vec::new();
    let has_model = file.model.is_some();
    let has_command = file.command.is_some();
    let has_answers = file
        .answers
        .as_ref()
        .is_some_and(|answers| !answers.is_empty());
    match kind {
        KindName::Llm => {
            misfits.extend(has_command.then_some("command"));
            misfits.extend(has_answers.then_some("answers"));
        }
        KindName::Command => {
            misfits.extend(has_model.then_some("model"));
            misfits.extend((!resolved.prompt.is_empty()).then_some("prompt"));
            misfits.extend((!resolved.choices.is_empty()).then_some("choices"));
            misfits.extend(has_answers.then_some("answers"));
        }
        KindName::Human => {
            misfits.extend(has_model.then_some("model"));
            misfits.extend(has_command.then_some("command"));
        }
    }
    if !llm {
        let options_given = file
            .options
            .as_ref()
            .is_some_and(|options| *options != ModelOptionsSpec::default());
        misfits.extend(options_given.then_some("options"));
        misfits.extend(file.think.is_some().then_some("think"));
        misfits.extend(file.fallback.is_some().then_some("fallback"));
        misfits.extend(file.context.is_some().then_some("context"));
        misfits.extend((*resolved.residency != ResidencySpec::default()).then_some("residency"));
        misfits.extend(
            file.tools
                .as_ref()
                .is_some_and(|tools| !tools.is_empty())
                .then_some("tools"),
        );
        misfits.extend(
            file.mcp_tools
                .as_ref()
                .is_some_and(|servers| !servers.0.is_empty())
                .then_some("mcp_tools"),
        );
        misfits.extend(
            file.allow_commands
                .as_ref()
                .is_some_and(|allow| !allow.is_empty())
                .then_some("allow_commands"),
        );
        misfits.extend(
            file.approve
                .is_some_and(|approve| approve != Approval::Never)
                .then_some("approve"),
        );
        misfits.extend(
            file.max_tool_rounds
                .is_some_and(|rounds| rounds != u64::from(LlmAgentSpec::DEFAULT_MAX_TOOL_ROUNDS))
                .then_some("max_tool_rounds"),
        );
    }
    for field in misfits {
        findings.error(
            path.key(field),
            format!("{} has no use for `{field}`", kind.an_agent()),
            Some(format!(
                "remove `{field}`, or change `kind:` (now `{}`)",
                kind.as_str()
            )),
        );
    }
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
