//! Loading: read the files, parse them, resolve `use`, check the shape, convert, check the
//! rules, and turn every finding into a diagnostic with its file, line and column.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::agent::AgentSpec;
use crate::check::{self, Finding, Findings, Scope};
use crate::convert;
use crate::diagnostic::{Diagnostic, Severity, SpecError};
use crate::node::{FieldPath, Node, Value, parse_yaml};
use crate::reuse;
use crate::schema;
use crate::shape;
use crate::source::{FileId, Pos, SourceMap};
use crate::workflow::Workflow;

/// The largest workflow, agent or prompt file read: far beyond any real one, small enough
/// that a runaway file cannot exhaust memory.
pub(crate) const MAX_FILE_BYTES: u64 = 4 << 20;

/// The diagnostics reported at most; past this the rest are summarised in one line.
const MAX_DIAGNOSTICS: usize = 50;

/// Everything read and found while loading one workflow.
#[derive(Debug, Default)]
pub(crate) struct Loading {
    pub(crate) sources: SourceMap,
    diagnostics: Vec<(Pos, Diagnostic)>,
    /// Parsed agent files by path, so a file used by several agents is read once.
    pub(crate) agent_files: HashMap<PathBuf, Option<Node>>,
}

impl Loading {
    pub(crate) fn report(
        &mut self,
        severity: Severity,
        pos: Pos,
        field: String,
        message: String,
        hint: Option<String>,
    ) {
        let diagnostic = self.sources.diagnostic(severity, pos, field, message, hint);
        self.diagnostics.push((pos, diagnostic));
    }

    pub(crate) fn error(
        &mut self,
        pos: Pos,
        field: &FieldPath,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        self.report(
            Severity::Error,
            pos,
            field.to_string(),
            message.into(),
            hint,
        );
    }

    /// Reports findings about the tree `root`, placing each at the field it names.
    fn report_findings(&mut self, root: &Node, findings: Vec<Finding>, broken: &[FieldPath]) {
        for finding in findings {
            // A rule about a part that could not be read would only repeat that problem.
            if broken.iter().any(|part| finding.path.starts_with(part)) {
                continue;
            }
            let pos = root.locate(&finding.path);
            self.report(
                finding.severity,
                pos,
                finding.path.to_string(),
                finding.message,
                finding.hint,
            );
        }
    }

    fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|(_, diagnostic)| diagnostic.is_error())
    }

    /// The diagnostics in file order, without repeats, capped.
    fn into_diagnostics(self) -> Vec<Diagnostic> {
        let mut diagnostics = self.diagnostics;
        diagnostics
            .sort_by_key(|(pos, diagnostic)| (pos.file, pos.line, pos.column, diagnostic.severity));
        diagnostics.dedup_by(|a, b| a.1 == b.1);
        let total = diagnostics.len();
        let mut kept: Vec<Diagnostic> = diagnostics
            .into_iter()
            .map(|(_, diagnostic)| diagnostic)
            .take(MAX_DIAGNOSTICS)
            .collect();
        if total > MAX_DIAGNOSTICS
            && let Some(last) = kept.last().cloned()
        {
            kept.push(Diagnostic {
                severity: Severity::Error,
                line: 0,
                column: 0,
                field: String::new(),
                message: format!("{} more problems not shown", total - MAX_DIAGNOSTICS),
                hint: Some("fix the ones above first".to_owned()),
                source_line: None,
                width: 1,
                ..last
            });
        }
        kept
    }

    fn finish_err(self) -> SpecError {
        SpecError {
            diagnostics: self.into_diagnostics(),
        }
    }

    /// Reads and parses a file into the source map; `None` once its problem is reported.
    pub(crate) fn parse_file(
        &mut self,
        path: &Path,
        reported_at: Option<(Pos, &FieldPath)>,
        what: &str,
    ) -> Option<(FileId, Node)> {
        match read_text(path) {
            Ok(text) => self.parse_text(path, text),
            Err(ReadProblem::NotUtf8 { text, line, column }) => {
                // Point at the byte itself, in the file, rather than at whoever named it.
                let file = self.sources.add(path.to_path_buf(), text);
                self.report(
                    Severity::Error,
                    Pos {
                        line,
                        column,
                        ..Pos::file_start(file)
                    },
                    String::new(),
                    format!("the {what} is not UTF-8 text: this byte is invalid"),
                    Some("save the file as UTF-8".to_owned()),
                );
                None
            }
            Err(problem) => {
                let message = format!("cannot read the {what} `{}`: {problem}", path.display());
                match reported_at {
                    Some((pos, field)) => {
                        let hint = Some(format!(
                            "the path is relative to the file that names it, `{}`",
                            self.sources.path(pos.file).display()
                        ));
                        self.error(pos, field, message, hint);
                    }
                    None => self.report_fileless(path, message),
                }
                None
            }
        }
    }

    pub(crate) fn parse_text(&mut self, path: &Path, text: String) -> Option<(FileId, Node)> {
        let too_big = text.len() as u64 > MAX_FILE_BYTES;
        let file = self.sources.add(
            path.to_path_buf(),
            if too_big { String::new() } else { text },
        );
        if too_big {
            self.report(
                Severity::Error,
                Pos {
                    line: 0,
                    column: 0,
                    ..Pos::file_start(file)
                },
                String::new(),
                format!("the file is larger than {} MiB", MAX_FILE_BYTES >> 20),
                Some(
                    "workflow and agent files are small; move long prompts into `prompt_file`s"
                        .to_owned(),
                ),
            );
            return None;
        }
        match parse_yaml(self.sources.text(file), file) {
            Ok(node) => Some((file, node)),
            Err(error) => {
                self.report(
                    Severity::Error,
                    error.pos,
                    String::new(),
                    error.message,
                    error.hint,
                );
                None
            }
        }
    }

    fn report_fileless(&mut self, path: &Path, message: String) {
        let file = self.sources.add(path.to_path_buf(), String::new());
        self.report(
            Severity::Error,
            Pos {
                line: 0,
                column: 0,
                ..Pos::file_start(file)
            },
            String::new(),
            message,
            None,
        );
    }
}

/// Why a file could not be read as text.
#[derive(Debug)]
pub(crate) enum ReadProblem {
    /// The file as a whole: missing, a directory, too large, unreadable.
    File(String),
    /// The file is not UTF-8; where its first invalid byte is, and the text with
    /// invalid bytes replaced, to show the line.
    NotUtf8 {
        text: String,
        line: u32,
        column: u32,
    },
}

impl std::fmt::Display for ReadProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadProblem::File(problem) => f.write_str(problem),
            ReadProblem::NotUtf8 { line, column, .. } => write!(
                f,
                "it is not UTF-8 text (an invalid byte at line {line}, column {column})"
            ),
        }
    }
}

/// Reads a text file of at most [`MAX_FILE_BYTES`].
pub(crate) fn read_text(path: &Path) -> Result<String, ReadProblem> {
    let file = std::fs::File::open(path).map_err(|error| {
        ReadProblem::File(match error.kind() {
            std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
            _ => error.to_string(),
        })
    })?;
    if file
        .metadata()
        .map(|metadata| metadata.is_dir())
        .unwrap_or(false)
    {
        return Err(ReadProblem::File("it is a directory".to_owned()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| ReadProblem::File(error.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadProblem::File(format!(
            "it is larger than {} MiB",
            MAX_FILE_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.into_bytes();
        let valid = std::str::from_utf8(&bytes)
            .map_err(|invalid| invalid.valid_up_to())
            .err()
            .unwrap_or(bytes.len());
        // The prefix before the first invalid byte is valid by definition.
        let before = String::from_utf8_lossy(&bytes[..valid]);
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        ReadProblem::NotUtf8 {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    })
}

/// Loads a workflow from `text`, or from the file at `origin` when `text` is `None`.
pub(crate) fn load_workflow(text: Option<&str>, origin: &Path) -> Result<Workflow, SpecError> {
    let mut loading = Loading::default();
    let parsed = match text {
        Some(text) => loading.parse_text(origin, text.to_owned()),
        None => loading.parse_file(origin, None, "workflow file"),
    };
    let Some((file, mut root)) = parsed else {
        return Err(loading.finish_err());
    };
    if !matches!(root.value, Value::Map(_)) {
        let found = if matches!(root.value, Value::Null) {
            "the file is empty"
        } else {
            "the file is not a mapping of workflow keys"
        };
        loading.error(
            Pos::file_start(file),
            &FieldPath::root(),
            found,
            Some(
                "a workflow has `name:`, `agents:` and `flow:` at the top level; see FORMAT.md"
                    .to_owned(),
            ),
        );
        return Err(loading.finish_err());
    }
    let use_failures = reuse::resolve_uses(&mut root, &mut loading);
    let mut broken: Vec<FieldPath> = use_failures
        .iter()
        .map(|name| check::agent_path(name))
        .collect();
    for problem in shape::check_shape(&root, schema::workflow_schema(), "WorkflowFile") {
        loading.error(problem.pos, &problem.path, problem.message, problem.hint);
        broken.push(problem.path);
    }
    let mut findings = Findings::default();
    let (mut workflow, scope) =
        convert::convert_workflow(&root, &broken, &mut loading, &mut findings);
    workflow.source = Some(origin.to_path_buf());
    let mut all = findings.0;
    all.extend(check::check_workflow(&workflow, &scope));
    loading.report_findings(&root, all, &broken);
    if loading.has_errors() {
        return Err(loading.finish_err());
    }
    workflow.warnings = loading.into_diagnostics();
    Ok(workflow)
}

/// Loads a reusable agent file on its own, named after the file (`agents/coder.yaml` is
/// `coder`), with its `use` chain and prompt file resolved.
pub(crate) fn load_agent(path: &Path) -> Result<(AgentSpec, Vec<Diagnostic>), SpecError> {
    let mut loading = Loading::default();
    let Some((file, node)) = loading.parse_file(path, None, "agent file") else {
        return Err(loading.finish_err());
    };
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "agent".to_owned());
    if !matches!(node.value, Value::Map(_)) {
        loading.error(
            Pos::file_start(file),
            &FieldPath::root(),
            "an agent file holds a mapping of agent fields",
            Some(
                "e.g. `model: qwen3:1.7b` and `prompt_file: prompts/router.md`; see FORMAT.md"
                    .to_owned(),
            ),
        );
        return Err(loading.finish_err());
    }
    // Wrap the agent as a one-agent workflow tree so positions and paths work as in a workflow.
    let pos = node.pos;
    let mut root = Node::new(
        Value::Map(vec![crate::node::Entry {
            key: "agents".to_owned(),
            key_pos: pos,
            value: Node::new(
                Value::Map(vec![crate::node::Entry {
                    key: name.clone(),
                    key_pos: pos,
                    value: node,
                }]),
                pos,
            ),
        }]),
        pos,
    );
    let use_failures = reuse::resolve_uses(&mut root, &mut loading);
    if !use_failures.is_empty() {
        return Err(loading.finish_err());
    }
    let Some(agent_node) = root
        .get("agents")
        .and_then(|agents| agents.get(&name))
        .cloned()
    else {
        return Err(loading.finish_err());
    };
    let agent_root = FieldPath::root().key("agents").key(&name);
    let mut broken = Vec::new();
    for problem in shape::check_shape(&agent_node, schema::agent_schema(), "AgentFile") {
        let path = FieldPath(agent_root.0.iter().cloned().chain(problem.path.0).collect());
        loading.error(problem.pos, &path, problem.message, problem.hint);
        broken.push(path);
    }
    if !broken.is_empty() {
        return Err(loading.finish_err());
    }
    let mut findings = Findings::default();
    let agent = convert::convert_agent(&name, &agent_node, &mut loading, &mut findings);
    if let Some(agent) = &agent {
        check::check_agent(agent, &mut findings);
    }
    loading.report_findings(&root, findings.0, &broken);
    match agent {
        Some(agent) if !loading.has_errors() => Ok((agent, loading.into_diagnostics())),
        _ => Err(loading.finish_err()),
    }
}

/// Checks a workflow built in code; findings carry no line, only the field.
pub(crate) fn validate_built(workflow: &Workflow) -> Result<Vec<Diagnostic>, SpecError> {
    let file = workflow
        .source
        .clone()
        .unwrap_or_else(|| PathBuf::from("<workflow>"));
    let diagnostics: Vec<Diagnostic> = check::check_workflow(workflow, &Scope::complete(workflow))
        .into_iter()
        .map(|finding| Diagnostic {
            severity: finding.severity,
            file: file.clone(),
            line: 0,
            column: 0,
            field: finding.path.to_string(),
            message: finding.message,
            hint: finding.hint,
            source_line: None,
            width: 1,
        })
        .collect();
    if diagnostics.iter().any(Diagnostic::is_error) {
        Err(SpecError { diagnostics })
    } else {
        Ok(diagnostics)
    }
}
