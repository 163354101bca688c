//! The file format as written: serde and JSON Schema types for workflow and agent files.
//!
//! These types mirror the YAML one to one (every field optional where `use` or a default can
//! supply it). They carry no validation of their own: the loader checks a parsed file against
//! the schema generated from them, converts them into the resolved types of the public API,
//! and writes them back for [`crate::Workflow::to_yaml`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::agent::{Approval, KindName, ModelOptionsSpec, SandboxMode, Think, ToolName};
use agentrun_memory::{LoadModeChoice, Policy};

/// A workflow file: agents, the flow between them, and how to run it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "agentrun workflow")]
pub(crate) struct WorkflowFile {
    /// Version of the file format. Only `1` exists; omit it or write `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) version: Option<u64>,
    /// Short name of the workflow, shown in reports.
    pub(crate) name: String,
    /// What the workflow does, in a sentence or two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// The default task handed to the start agent; `--task` on the command line overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) task: Option<String>,
    /// The agents, by name.
    pub(crate) agents: NamedMap<AgentFile>,
    /// Who speaks first and which edge leads from each speaker to the next.
    pub(crate) flow: FlowFile,
    /// Limits that stop a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limits: Option<LimitsFile>,
    /// The GPU memory budget and the residency policy the executor plans with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) memory: Option<MemoryFile>,
    /// Synthetic turns for `agentrun simulate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) simulation: Option<SimulationFile>,
    /// How the commands agents run are confined, for every agent that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sandbox: Option<SandboxFile>,
    /// Model Context Protocol servers whose tools agents may call (each agent names them in
    /// `mcp_tools`), by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mcp_servers: Option<NamedMap<McpServerFile>>,
}

/// An MCP server: a program started over stdio (`command`) or one reached over streamable
/// HTTP (`url`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct McpServerFile {
    /// The program that serves over its standard input and output, e.g. `mcp-server-git`.
    /// Give this or `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<String>,
    /// The program's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) args: Option<Vec<String>>,
    /// Environment variables for the program; it gets only these, `PATH` and `HOME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env: Option<BTreeMap<String, String>>,
    /// The program's working directory, relative to the run's workspace (default: the
    /// workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cwd: Option<String>,
    /// The sandbox the program runs in (default: the workflow's `sandbox.mode`), e.g.
    /// `network` for a server that fetches from the web.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sandbox: Option<SandboxMode>,
    /// The streamable HTTP endpoint of a running server, e.g. `http://127.0.0.1:8000/mcp`.
    /// Give this or `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) url: Option<String>,
    /// HTTP headers, each from the named environment variable, e.g.
    /// `{Authorization: GITHUB_MCP_AUTH}`; values are never written in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) headers_from_env: Option<BTreeMap<String, String>>,
    /// How long one tool call may take, e.g. `30s` (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<DurationFile>,
}

/// The tools an agent may use from one MCP server: `all`, or a list of the server's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum McpToolsFile {
    /// `all`: every tool the server lists.
    Every(McpAll),
    /// The tools by name, e.g. `[git_status, git_log]`.
    Named(Vec<String>),
}

/// The word `all`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum McpAll {
    /// Every tool.
    All,
}

/// The workflow-wide sandbox settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxFile {
    /// The default mode: `workspace-write` (the default), `read-only`, `network`,
    /// `container` or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<SandboxMode>,
    /// More paths commands may not read, besides `~/.ssh`, `~/.aws`, `~/.gnupg`,
    /// `~/.config/gh`, `~/.netrc` and `~/.docker`; each absolute or starting with `~/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret_paths: Option<Vec<String>>,
    /// The image `container` agents run their commands in, e.g. `python:3.12-slim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) image: Option<String>,
}

/// One agent: in a workflow's `agents` map, or alone in a reusable agent file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "agentrun agent")]
pub(crate) struct AgentFile {
    /// A reusable agent file to start from (relative to the file that names it); fields given
    /// here override the ones it defines.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub(crate) use_file: Option<String>,
    /// What the agent is for, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    /// `llm` (the default) answers with a model; `command` runs a program; `human` asks a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<KindName>,
    /// The Ollama model name, e.g. `qwen3-coder:32b` (llm agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) model: Option<String>,
    /// The role prompt, inline. Give this or `prompt_file`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prompt: Option<String>,
    /// A file holding the role prompt, relative to the file that names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prompt_file: Option<String>,
    /// Options sent to Ollama with every call (num_ctx, temperature, ...). Unknown keys are
    /// passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) options: Option<ModelOptionsSpec>,
    /// Whether a thinking model thinks before answering (Ollama's `think`): `true`,
    /// `false`, or a level (`low`, `medium`, `high`) for the models that take one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) think: Option<Think>,
    /// Makes this agent a router: it answers by picking one of these choices. A list of names,
    /// or a map from each name to a description that helps the model pick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) choices: Option<ChoicesFile>,
    /// How many recent conversation messages the agent sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) context_window: Option<u64>,
    /// How the context is assembled to fit the model's `num_ctx` (llm agents): `strategy`
    /// (`window`, `budget`, `summarize`), `pin`, `reply_tokens`, `summarizer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) context: Option<crate::context::ContextSpec>,
    /// Hints for keeping the agent's model in GPU memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) residency: Option<ResidencyFile>,
    /// A smaller model to use when the model fails to load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) fallback: Option<String>,
    /// The program and its arguments (command agents), e.g. `[cargo, test]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) command: Option<Vec<String>>,
    /// Extra environment variables for the command (command agents, and llm agents with
    /// `run_command`). Commands get only these, `PATH` and `HOME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) env: Option<BTreeMap<String, String>>,
    /// How long one run of the command may take, e.g. `10m` (command agents, and llm agents
    /// with `run_command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<DurationFile>,
    /// Canned answers given in order instead of asking (human agents; useful in tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) answers: Option<Vec<String>>,
    /// Built-in tools the model may call (llm agents), acting inside the run's workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tools: Option<Vec<ToolName>>,
    /// Tools of the workflow's MCP servers the model may call (llm agents): for each server,
    /// `all` or a list of its tool names. The model sees them as `SERVER__TOOL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mcp_tools: Option<NamedMap<McpToolsFile>>,
    /// The commands `run_command` may run: a command runs when its arguments start with one
    /// of these lists, e.g. `[[cargo, test], [python3, -m, unittest]]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) allow_commands: Option<Vec<Vec<String>>>,
    /// Whether a person approves each command and each MCP tool call the model asks for:
    /// `never` (the default) or `ask`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) approve: Option<Approval>,
    /// The most rounds of tool calls in one turn before the turn is cut off (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_tool_rounds: Option<u64>,
    /// How the agent's commands are confined (command agents, and llm agents with
    /// `run_command`): `workspace-write`, `read-only`, `network`, `container` or `off`; the
    /// workflow's `sandbox.mode` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sandbox: Option<SandboxMode>,
}

/// A router's choices: a list of names, or names with descriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum ChoicesFile {
    /// Choice names.
    Names(Vec<String>),
    /// Choice names, each with a description shown to the model.
    Described(NamedMap<String>),
}

/// Residency hints for an agent's model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResidencyFile {
    /// How long the model stays loaded after a call under the `static` policy: `-1` (forever),
    /// `0` (unload at once), a duration such as `30m`, or a number of seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) keep_alive: Option<KeepAliveFile>,
    /// How the model's weights are read when it loads: `auto`, `mmap` or `no-mmap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) load_mode: Option<LoadModeChoice>,
    /// With several Ollama hosts: labels the model's host must carry, e.g. `[big]`. Labels
    /// come from the hosts file; a label no host carries stops the run before it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) require_labels: Option<Vec<String>>,
    /// With several Ollama hosts: labels the placement prefers among the hosts that carry
    /// every required one, e.g. `[linux]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) prefer_labels: Option<Vec<String>>,
}

/// A keep_alive value: seconds as a number, or text (`-1`, `0`, `30m`, `2h`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum KeepAliveFile {
    /// Seconds; negative means forever.
    Seconds(i64),
    /// `-1`, `0`, or a duration such as `30m`.
    Text(String),
}

/// A duration: seconds as a number, or text such as `90s`, `30m`, `1h 30m`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum DurationFile {
    /// Whole seconds.
    Seconds(u64),
    /// A duration such as `90s`, `30m` or `1h 30m`.
    Text(String),
}

/// The flow between agents.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlowFile {
    /// The agent that speaks first.
    pub(crate) start: String,
    /// Edges in priority order: after each turn the first edge from the speaker whose
    /// condition holds is taken.
    pub(crate) edges: Vec<EdgeFile>,
    /// The agents where parallel branches meet, by name: each waits for the branches of a
    /// fan-out (`to: [a, b]`) and then speaks, seeing every branch's replies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) joins: BTreeMap<String, JoinFile>,
}

/// How a join waits for its branches.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JoinFile {
    /// `all` (the default): every branch; `first`: the first branch to arrive;
    /// `{ first: <condition> }`: the first branch whose last reply satisfies the condition
    /// (every branch when none does). Branches still running when the join opens are stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) wait: Option<JoinWaitFile>,
    /// What a branch whose agent fails does: `fail` (the default) fails the run, `continue`
    /// stops that branch and lets the join go on with the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) on_failure: Option<BranchFailureFile>,
}

/// Which arrivals open a join.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum JoinWaitFile {
    /// `all` or `first`.
    Word(JoinWaitWord),
    /// The first branch whose last reply satisfies the condition.
    FirstMatching {
        /// The condition, written as an edge's `when`.
        first: ConditionFile,
    },
}

/// `all` or `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JoinWaitWord {
    /// Every branch.
    All,
    /// The first branch to arrive.
    First,
}

/// What a failing branch does to its join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BranchFailureFile {
    /// The run fails.
    Fail,
    /// The join goes on with the other branches.
    Continue,
}

/// Where an edge leads: one agent (or `end`), or several branches at once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum TargetFile {
    /// The next speaker, or `end`.
    One(String),
    /// A fan-out: each agent starts a branch; the branches run at the same time until they
    /// reach their join.
    Branches(Vec<String>),
}

/// One edge of the flow.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EdgeFile {
    /// The agent that just spoke.
    pub(crate) from: String,
    /// The next speaker, or `end` to finish the run; a list of agents fans out to parallel
    /// branches that meet at a join (`flow.joins`).
    pub(crate) to: TargetFile,
    /// When the edge is taken; `always` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) when: Option<ConditionFile>,
}

/// The condition of an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ConditionFile {
    /// Always taken.
    Always,
    /// A command agent's run succeeded (exit status 0).
    Pass,
    /// A command agent's run failed.
    Fail,
    /// The reply contains this text (case-sensitive).
    Contains(String),
    /// The reply matches this regular expression (Rust `regex` syntax; `(?i)` ignores case).
    Matches(String),
    /// A router picked this choice.
    Choice(String),
}

/// Limits that stop a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsFile {
    /// The most turns a run may take (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_turns: Option<u64>,
    /// Wall-clock limit for the whole run, e.g. `30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<DurationFile>,
}

/// The memory the executor plans model residency with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemoryFile {
    /// GPU memory available to Ollama: a size such as `54GB` or `48GiB`, a number of bytes, or
    /// `auto` (ask the machine; the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) gpu_budget: Option<SizeFile>,
    /// The server's `OLLAMA_MAX_LOADED_MODELS` (3 on a Mac by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_loaded_models: Option<u64>,
    /// The server's `OLLAMA_NUM_PARALLEL` (default 1): each loaded model holds this many
    /// contexts, which multiplies its KV cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) num_parallel: Option<u64>,
    /// The residency policy: `smart` (default), `static`, `ollama-default` or `oracle`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) policy: Option<Policy>,
    /// The default load mode for every agent: `auto` (default), `mmap` or `no-mmap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) load_mode: Option<LoadModeChoice>,
}

/// A memory size: text with a unit (`54GB`, `48GiB`, `512MB`), a number of bytes, or `auto`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum SizeFile {
    /// Bytes.
    Bytes(u64),
    /// A size with a unit, or `auto`.
    Text(String),
}

/// Synthetic turns for `agentrun simulate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimulationFile {
    /// Seed of the random draws (default 1); the same seed gives the same speaker sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<u64>,
    /// The most turns a simulated run takes (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) max_turns: Option<u64>,
    /// Per-agent behaviour, by agent name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) agents: Option<NamedMap<AgentSimulationFile>>,
    /// A directory that `--sim` runs without `--workspace` work on a fresh copy of, kept in
    /// the run's directory (relative to the workflow file). Without it they work in an empty
    /// scratch directory there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) workspace: Option<String>,
}

/// How one agent behaves in a simulation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentSimulationFile {
    /// Reply length in tokens: a number, or `[min, max]` drawn uniformly (llm and human agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reply_tokens: Option<RangeFile<u64>>,
    /// Generation speed in tokens per second, overriding the simulated machine's figure for
    /// the model (llm agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tokens_per_second: Option<f64>,
    /// How long a turn takes: a duration, or `[min, max]` drawn uniformly (command and human
    /// agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) duration: Option<RangeFile<DurationFile>>,
    /// Share of runs that pass, from 0 to 1 (command agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pass_rate: Option<f64>,
    /// Share of replies that satisfy the agent's text conditions (`contains`, `matches`), from
    /// 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) match_rate: Option<f64>,
    /// Relative weight of each choice (routers); choices left out weigh 0 once any is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) choices: Option<NamedMap<f64>>,
}

/// A single value or an inclusive `[min, max]` range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RangeFile<T> {
    /// Always this value.
    One(T),
    /// Drawn uniformly between the two values.
    Between([T; 2]),
}

/// A map that keeps the file's order of keys (agents speak of "the first agent", and a
/// workflow reads best when it comes back in the order it was written).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NamedMap<T>(pub(crate) Vec<(String, T)>);

impl<T> Default for NamedMap<T> {
    fn default() -> Self {
        NamedMap(Vec::new())
    }
}

impl<T: Serialize> Serialize for NamedMap<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NamedMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
            type Value = NamedMap<T>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = access.next_entry::<String, T>()? {
                    entries.push(entry);
                }
                Ok(NamedMap(entries))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for NamedMap<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let value_schema = generator.subschema_for::<T>();
        json_schema!({
            "type": "object",
            "additionalProperties": value_schema,
        })
    }
}
