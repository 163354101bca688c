//! Tools from Model Context Protocol servers: the servers a workflow names are started for
//! the run, their tools offered to the agents that list them as `SERVER__TOOL`, and every
//! call goes through the same discipline as a built-in tool's (approval, events, transcript,
//! capped result, time limit). A server that stops is restarted once; after that its tools
//! answer the model with an error and the run goes on.

mod connection;
mod schema;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentrun_spec::{AgentSpec, Approval, MCP_NAME_SEPARATOR, McpServerSpec, McpToolChoice};
use async_trait::async_trait;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents};
use rmcp::service::{Peer, RoleClient, ServiceError};

use crate::backend::ToolSpec;
use crate::command_sandbox::CommandSandbox;
use crate::process::{KEPT_OUTPUT_BYTES, cap_text};
use crate::tools::{Tool, ToolContext, ToolError, ask_approval, parse_arguments};
use connection::Connection;

/// Why the MCP servers of a workflow cannot serve its agents. Each names the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    /// The server did not start or did not complete the handshake.
    #[error("the MCP server `{server}` did not start: {reason}")]
    Start {
        /// The server's name in the workflow.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The server started but did not list its tools.
    #[error("the MCP server `{server}` did not list its tools: {reason}")]
    List {
        /// The server's name in the workflow.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// An agent lists a tool the server does not have.
    #[error(
        "agent `{agent}` lists the tool `{tool}` of the MCP server `{server}`, which has no such tool; it has: {known}"
    )]
    UnknownTool {
        /// The agent.
        agent: String,
        /// The server.
        server: String,
        /// The tool asked for.
        tool: String,
        /// The tools the server has.
        known: String,
    },
    /// A tool's input schema cannot be put in a model's tool format.
    #[error(
        "the tool `{tool}` of the MCP server `{server}` cannot be offered to a model: {reason}; list the tools agent `{agent}` may use in its `mcp_tools.{server}` without it"
    )]
    Schema {
        /// The agent.
        agent: String,
        /// The server.
        server: String,
        /// The tool.
        tool: String,
        /// What the model format cannot express.
        reason: String,
    },
    /// Two of a server's tools would reach the model under one name.
    #[error(
        "the MCP server `{server}` has two tools a model would see as `{name}` (`{first}` and `{second}`); list the tools agent `{agent}` may use in its `mcp_tools.{server}` so only one of them is offered"
    )]
    Collision {
        /// The agent.
        agent: String,
        /// The server.
        server: String,
        /// The name the model would see.
        name: String,
        /// One tool.
        first: String,
        /// The other.
        second: String,
    },
}

/// One tool a server offers, as the model will see it.
#[derive(Debug, Clone)]
pub struct McpToolInfo {
    /// The name the model sees: `SERVER__TOOL`.
    pub name: String,
    /// The server's own name for it.
    pub remote_name: String,
    /// The server's description.
    pub description: String,
    /// The input schema as the server gives it.
    pub input_schema: serde_json::Map<String, serde_json::Value>,
}

/// How long a server whose transport failed may take to exit before the failure is taken
/// for a failed call rather than a stopped server.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// The MCP servers of a run, started. Dropping them stops every server's process group;
/// [`McpServers::stop`] does it gracefully.
pub struct McpServers {
    servers: Vec<Arc<ServerHandle>>,
}

impl McpServers {
    /// Starts every server of the workflow, one after another, and lists its tools. `workspace`
    /// is where stdio servers run (their `cwd` is relative to it); `log_dir` keeps each one's
    /// standard error as `mcp-NAME.stderr`. On an error the servers already started are stopped.
    pub async fn start(
        specs: &[McpServerSpec],
        workspace: &Path,
        log_dir: &Path,
        sandbox: Option<Arc<CommandSandbox>>,
    ) -> Result<McpServers, McpError> {
        let mut servers = Vec::new();
        for spec in specs {
            let connection = connection::connect(spec, workspace, log_dir, sandbox.as_deref())
                .await
                .map_err(|reason| McpError::Start {
                    server: spec.name.clone(),
                    reason,
                });
            let connection = match connection {
                Ok(connection) => connection,
                Err(error) => {
                    McpServers { servers }.stop().await;
                    return Err(error);
                }
            };
            let listed =
                tokio::time::timeout(spec.timeout, connection.peer().list_all_tools()).await;
            let tools = match listed {
                Ok(Ok(tools)) => tools,
                failed => {
                    connection.stop().await;
                    McpServers { servers }.stop().await;
                    return Err(McpError::List {
                        server: spec.name.clone(),
                        reason: match failed {
                            Ok(Err(error)) => error.to_string(),
                            _ => format!(
                                "no answer within {}",
                                humantime::format_duration(spec.timeout)
                            ),
                        },
                    });
                }
            };
            let tools = tools
                .into_iter()
                .map(|tool| McpToolInfo {
                    name: model_name(&spec.name, &tool.name),
                    remote_name: tool.name.to_string(),
                    description: tool
                        .description
                        .map(|text| text.to_string())
                        .unwrap_or_default(),
                    input_schema: (*tool.input_schema).clone(),
                })
                .collect();
            servers.push(Arc::new(ServerHandle {
                spec: spec.clone(),
                workspace: workspace.to_owned(),
                log_dir: log_dir.to_owned(),
                sandbox: sandbox.clone(),
                tools,
                state: tokio::sync::Mutex::new(State {
                    connection: Some(connection),
                    generation: 0,
                    restarted: false,
                    failure: None,
                }),
            }));
        }
        Ok(McpServers { servers })
    }

    /// Each server's name and the tools it lists.
    pub fn listing(&self) -> Vec<(&str, &[McpToolInfo])> {
        self.servers
            .iter()
            .map(|server| (server.spec.name.as_str(), server.tools.as_slice()))
            .collect()
    }

    /// The tools `agent` may call, in the order its `mcp_tools` gives the servers; an error
    /// when it lists a tool the server lacks, a tool's schema cannot be offered, or two tools
    /// would share a name.
    pub fn tools_for(&self, agent: &AgentSpec) -> Result<Vec<Arc<dyn Tool>>, McpError> {
        let Some(llm) = agent.llm() else {
            return Ok(Vec::new());
        };
        let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
        for (server_name, choice) in &llm.mcp_tools {
            // Validation makes sure each named server is in the workflow.
            let Some(server) = self
                .servers
                .iter()
                .find(|server| server.spec.name == *server_name)
            else {
                continue;
            };
            let chosen: Vec<&McpToolInfo> = match choice {
                McpToolChoice::All => server.tools.iter().collect(),
                McpToolChoice::Named(names) => names
                    .iter()
                    .map(|name| {
                        server
                            .tools
                            .iter()
                            .find(|tool| tool.remote_name == *name)
                            .ok_or_else(|| McpError::UnknownTool {
                                agent: agent.name.clone(),
                                server: server_name.clone(),
                                tool: name.clone(),
                                known: server
                                    .tools
                                    .iter()
                                    .map(|tool| tool.remote_name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                            })
                    })
                    .collect::<Result<_, _>>()?,
            };
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            for tool in chosen {
                if let Some(first) = seen.insert(&tool.name, &tool.remote_name) {
                    return Err(McpError::Collision {
                        agent: agent.name.clone(),
                        server: server_name.clone(),
                        name: tool.name.clone(),
                        first: first.to_owned(),
                        second: tool.remote_name.clone(),
                    });
                }
                let parameters =
                    schema::ollama_parameters(&tool.input_schema).map_err(|reason| {
                        McpError::Schema {
                            agent: agent.name.clone(),
                            server: server_name.clone(),
                            tool: tool.remote_name.clone(),
                            reason,
                        }
                    })?;
                tools.push(Arc::new(McpTool {
                    server: server.clone(),
                    remote_name: tool.remote_name.clone(),
                    spec: ToolSpec {
                        name: tool.name.clone(),
                        description: tool.description.clone(),
                        parameters,
                    },
                }));
            }
        }
        Ok(tools)
    }

    /// Ends every session and stops every server with its process group.
    pub async fn stop(self) {
        for server in self.servers {
            let connection = server.state.lock().await.connection.take();
            if let Some(connection) = connection {
                connection.stop().await;
            }
        }
    }
}

/// Where a run keeps the standard error of its MCP server `server`, in `log_dir`.
pub fn mcp_log_path(log_dir: &Path, server: &str) -> PathBuf {
    connection::log_path(log_dir, server)
}

/// The name a model sees for a server's tool: `SERVER__TOOL`, with any character a model's
/// function name cannot hold replaced by `_`.
pub fn model_name(server: &str, tool: &str) -> String {
    let tool: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{server}{MCP_NAME_SEPARATOR}{tool}")
}

/// One server of the run and the state of its session.
struct ServerHandle {
    spec: McpServerSpec,
    workspace: PathBuf,
    log_dir: PathBuf,
    /// Confines a stdio server's program (at every start, restarts included).
    sandbox: Option<Arc<CommandSandbox>>,
    tools: Vec<McpToolInfo>,
    state: tokio::sync::Mutex<State>,
}

struct State {
    /// The live session; `None` once the server failed for good or the run stopped it.
    connection: Option<Connection>,
    /// Counts sessions, so two calls that saw one crash restart the server once.
    generation: u32,
    /// Whether the one restart has been used.
    restarted: bool,
    /// Why the server's tools no longer work.
    failure: Option<String>,
}

impl ServerHandle {
    /// The current session, or why there is none.
    async fn session(&self) -> Result<(Peer<RoleClient>, u32), ToolError> {
        let state = self.state.lock().await;
        match (&state.connection, &state.failure) {
            (Some(connection), _) => Ok((connection.peer(), state.generation)),
            (None, Some(failure)) => Err(ToolError::Failed(failure.clone())),
            (None, None) => Err(ToolError::Failed(format!(
                "the MCP server `{}` has been stopped",
                self.spec.name
            ))),
        }
    }

    /// Calls a tool; a server that went away is restarted once and the call tried again.
    async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<CallToolResult, ToolError> {
        for attempt in 0..2 {
            let (peer, generation) = self.session().await?;
            let mut params = CallToolRequestParams::new(tool.to_owned());
            params.arguments = Some(arguments.clone());
            let answer = tokio::time::timeout(self.spec.timeout, peer.call_tool(params)).await;
            match answer {
                Ok(Ok(result)) => return Ok(result),
                Ok(Err(ServiceError::McpError(error))) => {
                    return Err(ToolError::Failed(format!(
                        "the MCP server `{}` refused the call: {}",
                        self.spec.name, error.message
                    )));
                }
                Err(_) => {
                    let silent = format!(
                        "no answer within {}",
                        humantime::format_duration(self.spec.timeout)
                    );
                    // A server that died without closing its pipes is only noticed here.
                    if !self.recover(generation, &silent).await || attempt == 1 {
                        return Err(ToolError::Failed(self.unavailable(&silent).await));
                    }
                }
                Ok(Err(error)) => {
                    if !self.recover(generation, &error.to_string()).await || attempt == 1 {
                        return Err(ToolError::Failed(
                            self.unavailable(&error.to_string()).await,
                        ));
                    }
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// After a failed call on session `generation`: restarts the server if it is gone and
    /// has not been restarted yet. Returns whether a live session is there to try again.
    async fn recover(&self, generation: u32, error: &str) -> bool {
        let mut state = self.state.lock().await;
        if state.generation != generation {
            // Another call restarted it already.
            return state.connection.is_some();
        }
        let gone = match state.connection.as_mut() {
            Some(connection) => connection.is_gone_within(EXIT_GRACE).await,
            None => true,
        };
        if !gone {
            return false;
        }
        if let Some(old) = state.connection.take() {
            old.stop().await;
        }
        if state.restarted {
            state.failure = Some(format!(
                "the MCP server `{}` stopped again ({error}) after its one restart; its tools \
                 are unavailable for the rest of the run (its error output is in {})",
                self.spec.name,
                connection::log_path(&self.log_dir, &self.spec.name).display()
            ));
            return false;
        }
        state.restarted = true;
        state.generation += 1;
        tracing::warn!(
            "the MCP server `{}` stopped ({error}); restarting it once",
            self.spec.name
        );
        match connection::connect(
            &self.spec,
            &self.workspace,
            &self.log_dir,
            self.sandbox.as_deref(),
        )
        .await
        {
            Ok(connection) => {
                state.connection = Some(connection);
                true
            }
            Err(reason) => {
                state.failure = Some(format!(
                    "the MCP server `{}` stopped and could not be restarted ({reason}); its \
                     tools are unavailable for the rest of the run",
                    self.spec.name
                ));
                false
            }
        }
    }

    /// What the model is told when the server cannot take the call.
    async fn unavailable(&self, error: &str) -> String {
        let state = self.state.lock().await;
        state.failure.clone().unwrap_or_else(|| {
            format!(
                "the MCP server `{}` failed the call: {error}",
                self.spec.name
            )
        })
    }
}

/// A tool of an MCP server, offered to a model.
struct McpTool {
    server: Arc<ServerHandle>,
    remote_name: String,
    spec: ToolSpec,
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext<'_>,
    ) -> Result<String, ToolError> {
        let arguments: serde_json::Map<String, serde_json::Value> = parse_arguments(arguments)?;
        let approve = context
            .agent
            .llm()
            .is_some_and(|llm| llm.command_policy.approve == Approval::Ask);
        if approve {
            let shown = format!(
                "{} {}",
                self.spec.name,
                serde_json::Value::Object(arguments.clone())
            );
            ask_approval(context, &shown, &format!("call `{shown}`? [y/N]")).await?;
        }
        let result = self.server.call(&self.remote_name, arguments).await?;
        let text = cap_text(&result_text(&result), KEPT_OUTPUT_BYTES);
        if result.is_error == Some(true) {
            Err(ToolError::Failed(text))
        } else {
            Ok(text)
        }
    }
}

/// A call's result as the text a model reads: the text parts in order, other parts named,
/// the structured result when there is no text.
fn result_text(result: &CallToolResult) -> String {
    let mut parts: Vec<String> = Vec::new();
    for block in &result.content {
        parts.push(match block {
            ContentBlock::Text(text) => text.text.clone(),
            ContentBlock::Resource(resource) => match &resource.resource {
                ResourceContents::TextResourceContents { text, .. } => text.clone(),
                _ => "[binary content, not shown]".to_owned(),
            },
            other => {
                let kind = serde_json::to_value(other)
                    .ok()
                    .and_then(|value| value["type"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "other".to_owned());
                format!("[{kind} content, not shown]")
            }
        });
    }
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        return structured.to_string();
    }
    parts.join("\n")
}
