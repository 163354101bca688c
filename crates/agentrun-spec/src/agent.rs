//! Agents: their kind, model, role prompt, Ollama options, choices and command.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::context::ContextSpec;
use crate::residency::ResidencySpec;

/// One agent of a workflow, with `use` resolved and its prompt loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// The agent's name, unique in the workflow.
    pub name: String,
    /// What the agent is for.
    pub description: Option<String>,
    /// The sandbox of the processes the agent starts (its command, the commands its model
    /// runs); `None` takes the workflow's (see [`crate::Workflow::sandbox_of`]).
    pub sandbox: Option<SandboxMode>,
    /// What answers for the agent, with what that kind of agent needs.
    pub kind: AgentKind,
}

/// What answers for an agent, with the data of that kind: a field one kind has no use for
/// cannot be set on it.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a workflow holds a few dozen agents at most; boxing would only add noise"
)]
pub enum AgentKind {
    /// A model served by Ollama.
    Llm(LlmAgentSpec),
    /// A program; its exit status is the turn's pass or fail, its output the reply.
    Command(CommandSpec),
    /// A person at the terminal.
    Human(HumanAgentSpec),
}

/// An agent whose turns a model served by Ollama takes.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmAgentSpec {
    /// The Ollama model.
    pub model: String,
    /// The role prompt (the system message).
    pub prompt: String,
    /// Options sent to Ollama with every call.
    pub options: ModelOptionsSpec,
    /// Ollama's `think` for thinking models; `None` leaves the model's default
    /// (current servers make a thinking model think).
    pub think: Option<Think>,
    /// The router's choices in file order; empty for an agent that is not a router.
    pub choices: Vec<String>,
    /// Descriptions of choices, for the ones that have one.
    pub choice_descriptions: BTreeMap<String, String>,
    /// How many recent conversation messages the agent sees.
    pub context_window: usize,
    /// How the context is assembled to fit `num_ctx`; `None`: the last `context_window`
    /// messages whatever their size.
    pub context: Option<ContextSpec>,
    /// Residency hints for the agent's model.
    pub residency: ResidencySpec,
    /// A smaller model to use when the model fails to load.
    pub fallback: Option<String>,
    /// Built-in tools the model may call, in file order.
    pub tools: Vec<ToolName>,
    /// Tools of the workflow's MCP servers the model may call, by server name.
    pub mcp_tools: BTreeMap<String, crate::McpToolChoice>,
    /// The most rounds of tool calls in one turn before the turn is cut off.
    pub max_tool_rounds: u32,
    /// What `run_command` may run, and how.
    pub command_policy: CommandPolicy,
}

/// Ollama's `think`: `true`, `false`, or a level (`low`, `medium`, `high`) for the
/// models that take one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Think {
    /// Think, or do not.
    Enabled(bool),
    /// Think this hard.
    Level(ThinkLevel),
}

/// How hard a model that takes a level thinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThinkLevel {
    /// Briefly.
    Low,
    /// Some.
    Medium,
    /// At length.
    High,
}

impl Think {
    /// Whether this asks the model to think (any level does).
    pub fn thinks(self) -> bool {
        !matches!(self, Think::Enabled(false))
    }
}

impl LlmAgentSpec {
    /// `context_window` when the file does not say.
    pub const DEFAULT_CONTEXT_WINDOW: usize = 12;
    /// The largest `context_window` accepted.
    pub const MAX_CONTEXT_WINDOW: usize = 10_000;
    /// `max_tool_rounds` when the file does not say.
    pub const DEFAULT_MAX_TOOL_ROUNDS: u32 = 8;
    /// The largest `max_tool_rounds` accepted.
    pub const MAX_TOOL_ROUNDS: u32 = 100;

    /// An agent on `model` with `prompt` and every other field at its default.
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> LlmAgentSpec {
        LlmAgentSpec {
            model: model.into(),
            prompt: prompt.into(),
            options: ModelOptionsSpec::default(),
            think: None,
            choices: Vec::new(),
            choice_descriptions: BTreeMap::new(),
            context_window: LlmAgentSpec::DEFAULT_CONTEXT_WINDOW,
            context: None,
            residency: ResidencySpec::default(),
            fallback: None,
            tools: Vec::new(),
            mcp_tools: BTreeMap::new(),
            max_tool_rounds: LlmAgentSpec::DEFAULT_MAX_TOOL_ROUNDS,
            command_policy: CommandPolicy::default(),
        }
    }
}

/// An agent whose turns a person at the terminal takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HumanAgentSpec {
    /// What the person is asked; may be empty.
    pub prompt: String,
    /// The choices the person picks from, in file order; empty when the answer is free text.
    pub choices: Vec<String>,
    /// Descriptions of choices, for the ones that have one.
    pub choice_descriptions: BTreeMap<String, String>,
    /// Canned answers, given in order before asking.
    pub answers: Vec<String>,
}

impl AgentSpec {
    /// Loads a reusable agent file (`agents/coder.yaml`) on its own, named after the file,
    /// with its `use` chain and prompt file resolved and the agent rules checked.
    pub fn from_yaml_file(path: &std::path::Path) -> Result<AgentSpec, crate::SpecError> {
        crate::loader::load_agent(path).map(|(agent, _warnings)| agent)
    }

    /// The name of the agent's kind.
    pub fn kind_name(&self) -> KindName {
        match self.kind {
            AgentKind::Llm(_) => KindName::Llm,
            AgentKind::Command(_) => KindName::Command,
            AgentKind::Human(_) => KindName::Human,
        }
    }

    /// The model agent's data, `None` for other kinds.
    pub fn llm(&self) -> Option<&LlmAgentSpec> {
        match &self.kind {
            AgentKind::Llm(llm) => Some(llm),
            _ => None,
        }
    }

    /// The Ollama model the agent calls, `None` for command and human agents.
    pub fn model(&self) -> Option<&str> {
        self.llm().map(|llm| llm.model.as_str())
    }

    /// The choices a router (a model or a person) picks from; empty for other agents.
    pub fn choices(&self) -> &[String] {
        match &self.kind {
            AgentKind::Llm(llm) => &llm.choices,
            AgentKind::Human(human) => &human.choices,
            AgentKind::Command(_) => &[],
        }
    }

    /// Whether the agent answers by picking one of its choices.
    pub fn is_router(&self) -> bool {
        !self.choices().is_empty()
    }

    /// The built-in tools the agent's model may call; empty for other kinds.
    pub fn tools(&self) -> &[ToolName] {
        self.llm().map_or(&[], |llm| &llm.tools)
    }

    /// Whether the agent's model may call the built-in tool.
    pub fn has_tool(&self, tool: ToolName) -> bool {
        self.tools().contains(&tool)
    }
}

/// The name of an agent's kind, as files write it (`kind: command`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum KindName {
    /// A model served by Ollama.
    #[default]
    Llm,
    /// A program; its exit status is the turn's pass or fail, its output the reply.
    Command,
    /// A person at the terminal.
    Human,
}

impl KindName {
    /// "an llm agent", "a command agent", "a human agent", for messages.
    pub fn an_agent(self) -> &'static str {
        match self {
            KindName::Llm => "an llm agent",
            KindName::Command => "a command agent",
            KindName::Human => "a human agent",
        }
    }

    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The program a command agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program and its arguments; never empty.
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// How long one run may take before it is killed and counts as failed.
    pub timeout: Option<Duration>,
}

/// A built-in tool an llm agent's model may call. Every tool acts inside the run's workspace
/// directory only.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    /// Reads a text file.
    ReadFile,
    /// Creates or replaces a file.
    WriteFile,
    /// Replaces one span of a file that occurs exactly once.
    EditFile,
    /// Lists the files of a directory.
    ListFiles,
    /// Searches files for a regular expression.
    SearchFiles,
    /// Runs a command from the agent's `allow_commands`.
    RunCommand,
}

impl ToolName {
    /// Every built-in tool.
    pub const ALL: [ToolName; 6] = [
        ToolName::ReadFile,
        ToolName::WriteFile,
        ToolName::EditFile,
        ToolName::ListFiles,
        ToolName::SearchFiles,
        ToolName::RunCommand,
    ];

    /// The name used in files and offered to the model.
    pub fn as_str(&self) -> &'static str {
        match self {
            ToolName::ReadFile => "read_file",
            ToolName::WriteFile => "write_file",
            ToolName::EditFile => "edit_file",
            ToolName::ListFiles => "list_files",
            ToolName::SearchFiles => "search_files",
            ToolName::RunCommand => "run_command",
        }
    }
}

impl std::fmt::Display for ToolName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the processes an agent starts (its command, the commands its model runs) are
/// confined. In every mode but `off` the secret locations (`~/.ssh`, `~/.aws`, ...) are
/// unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Read the filesystem, write only the workspace and a private temporary directory, no
    /// network but the process's own loopback (the default).
    #[default]
    WorkspaceWrite,
    /// Like `workspace-write`, but the workspace is read-only too.
    ReadOnly,
    /// `workspace-write` with the host's network (and its loopback services).
    Network,
    /// In a Docker or Podman container with only the workspace mounted and no network; needs
    /// `sandbox.image`.
    Container,
    /// No sandbox: commands run with your own rights. Warned about at the start of a run.
    Off,
}

impl SandboxMode {
    /// Every mode, in the order documentation lists them.
    pub const ALL: [SandboxMode; 5] = [
        SandboxMode::WorkspaceWrite,
        SandboxMode::ReadOnly,
        SandboxMode::Network,
        SandboxMode::Container,
        SandboxMode::Off,
    ];

    /// The name used in workflow files and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::Network => "network",
            SandboxMode::Container => "container",
            SandboxMode::Off => "off",
        }
    }

    /// Whether the process may write the workspace.
    pub fn writes_workspace(&self) -> bool {
        !matches!(self, SandboxMode::ReadOnly)
    }

    /// Whether the process reaches the host's network (and its loopback services).
    pub fn has_network(&self) -> bool {
        matches!(self, SandboxMode::Network | SandboxMode::Off)
    }

    /// What the mode allows, in one line for `plan` and the start of a run.
    pub fn summary(&self) -> &'static str {
        match self {
            SandboxMode::WorkspaceWrite => {
                "writes the workspace (not its .git) and a private temp dir; no network but its own loopback; secrets unreadable"
            }
            SandboxMode::ReadOnly => {
                "writes only a private temp dir; no network but its own loopback; secrets unreadable"
            }
            SandboxMode::Network => {
                "writes the workspace (not its .git) and a private temp dir; full network; secrets unreadable"
            }
            SandboxMode::Container => "in a container with only the workspace mounted; no network",
            SandboxMode::Off => "NOT SANDBOXED: runs with your own rights",
        }
    }
}

impl std::fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a sandbox mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a sandbox mode; use workspace-write, read-only, network, container or off")]
pub struct UnknownSandboxMode(pub String);

impl std::str::FromStr for SandboxMode {
    type Err = UnknownSandboxMode;

    fn from_str(text: &str) -> Result<SandboxMode, UnknownSandboxMode> {
        SandboxMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| UnknownSandboxMode(text.to_owned()))
    }
}

/// Whether a person approves each command a model asks to run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// Run allowed commands without asking (the default).
    #[default]
    Never,
    /// Ask at the terminal before each command; a non-interactive run refuses them.
    Ask,
}

impl Approval {
    /// The name used in files.
    pub fn as_str(&self) -> &'static str {
        match self {
            Approval::Never => "never",
            Approval::Ask => "ask",
        }
    }
}

/// What an llm agent's model may run through the `run_command` tool, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandPolicy {
    /// The allow-list: a command runs when its argv starts with one of these lists.
    pub allow: Vec<Vec<String>>,
    /// Whether a person approves each command.
    pub approve: Approval,
    /// Extra environment variables for the commands (besides `PATH` and `HOME`).
    pub env: BTreeMap<String, String>,
    /// How long one command may take before it is killed.
    pub timeout: Option<Duration>,
}

impl CommandPolicy {
    /// Whether `argv` starts with one of the allowed lists (so `[cargo, test]` allows
    /// `cargo test --quiet`, and not `cargo run`).
    pub fn allows(&self, argv: &[String]) -> bool {
        self.allow
            .iter()
            .any(|allowed| !allowed.is_empty() && argv.starts_with(allowed))
    }
}

/// Options sent to Ollama with every call of an agent. The common ones are typed; any other
/// key is kept in `extra` and passed through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelOptionsSpec {
    /// Context length in tokens. Always set it: Ollama's default depends on the GPU, and the
    /// memory planner needs it to predict the model's footprint. Load-time option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u64>,
    /// Prompt-processing batch size. Load-time option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_batch: Option<u64>,
    /// Layers to offload to the GPU. Load-time option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_gpu: Option<i64>,
    /// CPU threads. Load-time option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_thread: Option<u64>,
    /// Maximum tokens to generate (-1: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i64>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// Top-p (nucleus) sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Min-p sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// Repetition penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_penalty: Option<f64>,
    /// How far back the repetition penalty looks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_last_n: Option<i64>,
    /// Random seed for reproducible sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Any other Ollama option, passed through unchanged.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ModelOptionsSpec {
    /// Options that Ollama fixes when it loads a model: a call that changes one reloads it.
    pub const LOAD_TIME_OPTIONS: [&'static str; 7] = [
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "use_mmap",
        "num_thread",
        "draft_num_predict",
    ];

    /// Every option that is set, as Ollama's `options` object.
    pub fn to_json_map(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            // Serializing plain numbers, strings and JSON values into a map cannot fail.
            _ => serde_json::Map::new(),
        }
    }

    /// The set options that force a reload when they change (see
    /// [`ModelOptionsSpec::LOAD_TIME_OPTIONS`]).
    pub fn load_time_options(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut options = self.to_json_map();
        options.retain(|key, _| Self::LOAD_TIME_OPTIONS.contains(&key.as_str()));
        options
    }
}

/// Every option Ollama knows (`api/types.go` `Options` and `Runner`), to tell a typo from a
/// newer option that is merely passed through.
pub(crate) const KNOWN_OLLAMA_OPTIONS: [&str; 30] = [
    "numa",
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mmap",
    "use_mlock",
    "num_thread",
    "num_keep",
    "seed",
    "num_predict",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_last_n",
    "temperature",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "penalize_newline",
    "stop",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "tfs_z",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allow_list_matches_argv_prefixes_only() {
        let policy = CommandPolicy {
            allow: vec![vec!["cargo".into(), "test".into()], vec![]],
            ..CommandPolicy::default()
        };
        let argv = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        assert!(policy.allows(&argv(&["cargo", "test"])));
        assert!(policy.allows(&argv(&["cargo", "test", "--quiet"])));
        assert!(!policy.allows(&argv(&["cargo", "run"])));
        assert!(!policy.allows(&argv(&["cargo"])));
        assert!(
            !policy.allows(&argv(&["rm", "-rf", "."])),
            "an empty entry allows nothing"
        );
    }

    #[test]
    fn options_become_ollamas_options_object() {
        let mut options = ModelOptionsSpec {
            num_ctx: Some(8192),
            temperature: Some(0.2),
            stop: Some(vec!["</done>".into()]),
            ..ModelOptionsSpec::default()
        };
        options
            .extra
            .insert("typical_p".into(), serde_json::json!(0.9));
        let map = options.to_json_map();
        assert_eq!(
            serde_json::Value::Object(map),
            serde_json::json!({"num_ctx": 8192, "temperature": 0.2, "stop": ["</done>"], "typical_p": 0.9})
        );
        assert_eq!(
            serde_json::Value::Object(options.load_time_options()),
            serde_json::json!({"num_ctx": 8192})
        );
        assert!(ModelOptionsSpec::default().to_json_map().is_empty());
    }
}
