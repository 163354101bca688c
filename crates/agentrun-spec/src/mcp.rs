//! Model Context Protocol servers a workflow names, and which of their tools an agent may call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::SandboxMode;

/// An MCP server whose tools the workflow's agents may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerSpec {
    /// The name in `mcp_servers`; it prefixes the server's tools (`NAME__TOOL`).
    pub name: String,
    /// How the server is reached.
    pub transport: McpTransport,
    /// How long one tool call may take before it fails.
    pub timeout: Duration,
}

impl McpServerSpec {
    /// How long a call may take when the workflow does not say.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
}

/// How an MCP server is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A program started for the run, spoken to over its standard input and output.
    Stdio {
        /// The program.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// Variables set besides `PATH` and `HOME`; nothing else is inherited.
        env: BTreeMap<String, String>,
        /// The working directory, relative to the run's workspace; the workspace itself
        /// when `None`.
        cwd: Option<PathBuf>,
        /// The sandbox the program runs in; the workflow's `sandbox.mode` when `None`.
        sandbox: Option<SandboxMode>,
    },
    /// A server already running, reached over streamable HTTP.
    Http {
        /// The endpoint, e.g. `http://127.0.0.1:8000/mcp`.
        url: String,
        /// Request headers, each taken from the environment variable named here, so a
        /// token is never written in the file.
        headers_from_env: BTreeMap<String, String>,
    },
}

/// Which of a server's tools an agent may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpToolChoice {
    /// Every tool the server lists.
    All,
    /// These tools, by the server's names for them.
    Named(Vec<String>),
}

/// The separator between a server's name and its tool's name in the name a model sees.
/// Server names may not contain it, and built-in tool names never do, so the names a model
/// sees cannot collide across servers or with the built-in tools.
pub const MCP_NAME_SEPARATOR: &str = "__";

/// Whether `name` can name an MCP server: letters, digits, `-` and `_`, without `__`.
pub fn is_mcp_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.contains(MCP_NAME_SEPARATOR)
        && !name.ends_with('_')
}
