//! Starting one MCP server (a program over stdio, or an endpoint over streamable HTTP) and
//! stopping it again, process group and all.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentrun_spec::{McpServerSpec, McpTransport};
use rmcp::service::{Peer, RoleClient, RunningService, ServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::command_sandbox::CommandSandbox;
use crate::process::{CappedOutput, INHERITED_VARIABLES, ProcessGroup};

/// Bytes of a server's standard error kept in its log file; past this the rest is counted
/// and dropped, so a server that floods cannot fill the disk.
const MAX_LOG_BYTES: u64 = 1 << 20;

/// Bytes of the end of a server's standard error kept to explain a failed start.
const KEPT_ERROR_TAIL: usize = 1_500;

/// How long a stopping server gets to exit on its own once its input is closed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A running MCP server and the client session with it.
pub(crate) struct Connection {
    client: RunningService<RoleClient, ()>,
    process: Option<ServerProcess>,
}

/// The program behind a stdio server.
struct ServerProcess {
    child: tokio::process::Child,
    group: ProcessGroup,
    /// The sandbox's hold on the process (its private temporary directory), kept while it runs.
    _confined: Option<agentrun_sandbox::ConfinedCommand>,
}

impl Connection {
    /// The session's requests side, cheap to clone.
    pub(crate) fn peer(&self) -> Peer<RoleClient> {
        self.client.peer().clone()
    }

    /// Whether the server is gone: its program exited or its session closed.
    pub(crate) fn is_gone(&mut self) -> bool {
        let exited = self
            .process
            .as_mut()
            .is_some_and(|process| !matches!(process.child.try_wait(), Ok(None)));
        exited || self.client.is_closed()
    }

    /// Whether the server has stopped, giving a program whose transport just closed up to
    /// `grace` to exit: the closed pipe is often seen before the exit.
    pub(crate) async fn is_gone_within(&mut self, grace: Duration) -> bool {
        if self.is_gone() {
            return true;
        }
        match self.process.as_mut() {
            Some(process) => tokio::time::timeout(grace, process.child.wait())
                .await
                .is_ok(),
            None => false,
        }
    }

    /// Ends the session and stops the program with everything it started.
    pub(crate) async fn stop(self) {
        let Connection { client, process } = self;
        // Closing the session closes the program's input, which well-behaved servers take
        // as the signal to exit.
        let _ = tokio::time::timeout(STOP_GRACE, client.cancel()).await;
        if let Some(mut process) = process {
            let _ = tokio::time::timeout(STOP_GRACE, process.child.wait()).await;
            process.group.kill();
            let _ = process.child.start_kill();
            let _ = process.child.wait().await;
        }
    }
}

/// Starts the server and completes the protocol's handshake, within the server's time limit.
/// The error names what went wrong in words for the person running the workflow.
pub(crate) async fn connect(
    spec: &McpServerSpec,
    workspace: &Path,
    log_dir: &Path,
    sandbox: Option<&CommandSandbox>,
) -> Result<Connection, String> {
    match &spec.transport {
        McpTransport::Stdio {
            command,
            args,
            env,
            cwd,
            sandbox: mode,
        } => {
            let dir = match cwd {
                Some(cwd) => workspace.join(cwd),
                None => workspace.to_owned(),
            };
            if !dir.is_dir() {
                return Err(format!(
                    "its working directory {} is not a directory",
                    dir.display()
                ));
            }
            // Confined like the commands agents run: the launcher (or `sandbox-exec`, or the
            // container runtime) starts the program, its pipes passed through.
            let mut variables: std::collections::BTreeMap<String, String> = INHERITED_VARIABLES
                .iter()
                .filter_map(|name| Some(((*name).to_owned(), std::env::var(name).ok()?)))
                .collect();
            variables.extend(env.clone());
            // Found before it is confined, so a missing program is named as such rather than
            // as a launcher that could not run it.
            if !program_exists(command, &dir, variables.get("PATH").map(String::as_str)) {
                return Err(format!(
                    "cannot start `{command}`: no such program (is it installed and on PATH?)"
                ));
            }
            let argv: Vec<String> = std::iter::once(command.clone())
                .chain(args.iter().cloned())
                .collect();
            let confined = match sandbox {
                Some(sandbox) => Some(
                    sandbox
                        .confine_in(*mode, workspace, &argv, &dir, &variables)
                        .map_err(|error| {
                            format!(
                                "its sandbox cannot be given here: {error}; {}",
                                error.hint()
                            )
                        })?,
                ),
                None => None,
            };
            if let Some(confined) = &confined {
                variables.extend(confined.env.clone());
            }
            let started = confined.as_ref().map_or(&argv, |confined| &confined.argv);
            let mut program = tokio::process::Command::new(&started[0]);
            program
                .args(&started[1..])
                .current_dir(&dir)
                .env_clear()
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            program.envs(&variables);
            // Its own process group, so whatever the server starts is stopped with it.
            #[cfg(unix)]
            program.process_group(0);
            let mut child = program.spawn().map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "cannot start `{command}`: no such program (is it installed and on PATH?)"
                ),
                _ => format!("cannot start `{command}`: {error}"),
            })?;
            let group = ProcessGroup(child.id());
            let tail = Arc::new(Mutex::new(CappedOutput::new(KEPT_ERROR_TAIL)));
            let log = log_path(log_dir, &spec.name);
            let logging = tokio::spawn(keep_log(child.stderr.take(), log.clone(), tail.clone()));
            let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
                return Err(format!("cannot talk to `{command}`: its pipes are missing"));
            };
            let handshake = tokio::time::timeout(spec.timeout, ().serve((stdout, stdin))).await;
            let failure = match handshake {
                Ok(Ok(client)) => {
                    return Ok(Connection {
                        client,
                        process: Some(ServerProcess {
                            child,
                            group,
                            _confined: confined,
                        }),
                    });
                }
                Ok(Err(error)) => format!("the MCP handshake failed ({error})"),
                Err(_) => format!(
                    "no MCP handshake within {}",
                    humantime::format_duration(spec.timeout)
                ),
            };
            // Give a program that is exiting a moment, so its status and last words are known.
            let status = tokio::time::timeout(Duration::from_millis(300), child.wait()).await;
            group.kill();
            let _ = child.start_kill();
            let _ = child.wait().await;
            // Its last words, once the pipe is closed: the whole group is gone, so the pipe
            // closes as soon as what is buffered is read (a busy machine may take a while); the
            // limit only guards against a process that left the group and holds it open.
            let _ = tokio::time::timeout(Duration::from_secs(5), logging).await;
            let exited = match status {
                Ok(Ok(status)) => format!("; it exited ({status})"),
                _ => String::new(),
            };
            let said = tail.lock().expect("tail lock poisoned").render();
            let said = said.trim();
            Err(if said.is_empty() {
                format!("`{command}`: {failure}{exited}")
            } else {
                format!(
                    "`{command}`: {failure}{exited}; the end of its error output ({}):\n{said}",
                    log.display()
                )
            })
        }
        McpTransport::Http {
            url,
            headers_from_env,
        } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
            for (header, variable) in headers_from_env {
                let value = std::env::var(variable).map_err(|_| {
                    format!("its header `{header}` comes from the environment variable `{variable}`, which is not set")
                })?;
                let name = http::HeaderName::try_from(header.as_str())
                    .map_err(|_| format!("`{header}` is not a valid HTTP header name"))?;
                let value = http::HeaderValue::try_from(value).map_err(|_| {
                    format!(
                        "the value of `{variable}` is not a valid value for the header `{header}`"
                    )
                })?;
                config.custom_headers.insert(name, value);
            }
            let transport = StreamableHttpClientTransport::from_config(config);
            match tokio::time::timeout(spec.timeout, ().serve(transport)).await {
                Ok(Ok(client)) => Ok(Connection {
                    client,
                    process: None,
                }),
                Ok(Err(error)) => Err(format!("cannot reach {url}: {error}")),
                Err(_) => Err(format!(
                    "{url} did not complete the MCP handshake within {}",
                    humantime::format_duration(spec.timeout)
                )),
            }
        }
    }
}

/// Where a server's standard error is kept in the run's directory.
pub(crate) fn log_path(log_dir: &Path, server: &str) -> PathBuf {
    log_dir.join(format!("mcp-{server}.stderr"))
}

/// Appends a server's standard error to its log (up to [`MAX_LOG_BYTES`]) and keeps its end
/// in memory; reads on past the cap so the server never blocks on a full pipe.
async fn keep_log(
    pipe: Option<impl AsyncRead + Unpin>,
    path: PathBuf,
    tail: Arc<Mutex<CappedOutput>>,
) {
    let Some(mut pipe) = pipe else { return };
    let mut file = match tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
    {
        Ok(file) => Some(file),
        Err(error) => {
            tracing::warn!(
                "cannot keep an MCP server's error output in {}: {error}",
                path.display()
            );
            None
        }
    };
    let mut written = 0u64;
    let mut dropped = 0u64;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let bytes = &buffer[..read];
        tail.lock().expect("tail lock poisoned").push(bytes);
        let room = usize::try_from(MAX_LOG_BYTES.saturating_sub(written)).unwrap_or(usize::MAX);
        let kept = &bytes[..bytes.len().min(room)];
        dropped += (bytes.len() - kept.len()) as u64;
        if let Some(file) = file.as_mut()
            && !kept.is_empty()
            && file.write_all(kept).await.is_ok()
        {
            written += kept.len() as u64;
        }
    }
    if let Some(file) = file.as_mut()
        && dropped > 0
    {
        let _ = file
            .write_all(
                format!("\n[agentrun: {dropped} more bytes of error output were dropped]\n")
                    .as_bytes(),
            )
            .await;
    }
}

/// Whether `command` names a program that can be started: a path (relative to `dir`) to a
/// file, or a name found in one of the `PATH` directories.
fn program_exists(command: &str, dir: &Path, path: Option<&str>) -> bool {
    if command.contains('/') {
        return dir.join(command).is_file();
    }
    path.into_iter()
        .flat_map(std::env::split_paths)
        .any(|directory| directory.join(command).is_file())
}
