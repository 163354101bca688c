//! The built-in command agent: runs a configured program and reports pass or fail.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use crate::agent::{Agent, AgentError, AgentReply, TurnContext};

/// Bytes of output kept from each end of a command's output.
const KEPT_OUTPUT_BYTES: usize = 4_000;

/// Runs the agent's `command` (argv, no shell) in the working directory.
///
/// Exit status 0 is a pass. The output becomes the turn's text, trimmed to its
/// head and tail so a flood of output cannot swamp the conversation.
#[derive(Debug, Clone, Default)]
pub struct CommandAgent {}

impl CommandAgent {
    /// A command agent.
    pub fn new() -> CommandAgent {
        CommandAgent {}
    }
}

#[async_trait]
impl Agent for CommandAgent {
    async fn respond(&self, context: TurnContext<'_>) -> Result<AgentReply, AgentError> {
        let Some(command) = &context.spec.command else {
            return Err(AgentError::Other(format!(
                "command agent '{}' has no command",
                context.spec.name
            )));
        };
        let Some((program, args)) = command.argv.split_first() else {
            return Err(AgentError::Other(format!(
                "command agent '{}' has an empty command",
                context.spec.name
            )));
        };
        let started = Instant::now();
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| AgentError::Other(format!("cannot run `{program}`: {error}")))?;
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let timeout = command.timeout.unwrap_or(Duration::from_secs(600));
        let work = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let (status, _, _) = tokio::join!(
                child.wait(),
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut err)
            );
            (status, out, err)
        };
        let (passed, text) = match tokio::time::timeout(timeout, work).await {
            Ok((Ok(status), out, err)) => {
                let mut output = String::from_utf8_lossy(&out).into_owned();
                output.push_str(&String::from_utf8_lossy(&err));
                let verdict = if status.success() { "passed" } else { "failed" };
                (
                    status.success(),
                    format!(
                        "`{}` {verdict} ({status})\n{}",
                        command.argv.join(" "),
                        trim_output(&output)
                    ),
                )
            }
            Ok((Err(error), _, _)) => {
                return Err(AgentError::Other(format!(
                    "`{program}` failed to run: {error}"
                )));
            }
            Err(_) => (
                false,
                format!(
                    "`{}` timed out after {}",
                    command.argv.join(" "),
                    humantime::format_duration(timeout)
                ),
            ),
        };
        Ok(AgentReply {
            text,
            passed: Some(passed),
            generation: started.elapsed(),
            ..AgentReply::default()
        })
    }
}

/// Keeps the head and the tail of a long output.
fn trim_output(output: &str) -> String {
    if output.len() <= 2 * KEPT_OUTPUT_BYTES {
        return output.to_owned();
    }
    let head_end = floor_char_boundary(output, KEPT_OUTPUT_BYTES);
    let tail_start = floor_char_boundary(output, output.len() - KEPT_OUTPUT_BYTES);
    format!(
        "{}\n[... {} bytes omitted ...]\n{}",
        &output[..head_end],
        tail_start - head_end,
        &output[tail_start..]
    )
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}
