//! The built-in command agent: runs a configured program and reports pass or fail.

use agentrun_spec::{AgentKind, KindName};
use async_trait::async_trait;

use crate::agent::{Agent, AgentError, AgentReply, TurnContext};
use crate::command_sandbox::ConfinedError;
use crate::process::{DEFAULT_COMMAND_TIMEOUT, ProcessSpec};

/// Runs the agent's `command` (argv, no shell) in the run's workspace.
///
/// The command runs in the agent's sandbox (see [`crate::CommandSandbox`]) and sees only
/// `PATH`, `HOME`, its sandbox's `TMPDIR` and the agent's `env`. Exit status 0 is a pass,
/// which `pass`/`fail` edges branch on. The turn's text is the verdict and the output,
/// capped to its head and tail so a flood of output cannot swamp the conversation; a
/// command that outlives its `timeout` is stopped, with everything it started, and fails.
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
        let AgentKind::Command(command) = &context.spec.kind else {
            return Err(AgentError::WrongKind {
                agent: context.spec.name.clone(),
                expected_kind: KindName::Command,
            });
        };
        let shown = command.argv.join(" ");
        let timeout = command.timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT);
        let root = context.workspace.root();
        let confined = context
            .workspace
            .sandbox()
            .run(
                context.spec,
                root,
                ProcessSpec {
                    argv: &command.argv,
                    dir: root,
                    env: &command.env,
                    timeout,
                },
            )
            .await;
        let outcome = match confined {
            Ok(outcome) => outcome,
            // A command refused its sandbox fails its turn, so the run goes on and the
            // reason is in the transcript.
            Err(ConfinedError::Refused(error)) => {
                return Ok(AgentReply {
                    text: format!(
                        "`{shown}` failed: it was not run: {error}\nhint: {}",
                        error.hint()
                    ),
                    passed: Some(false),
                    ..AgentReply::default()
                });
            }
            Err(ConfinedError::Start(error)) => {
                return Err(AgentError::CommandNotStarted {
                    command: shown.clone(),
                    workspace: root.to_path_buf(),
                    source: error,
                });
            }
        };
        let passed = outcome.passed();
        let verdict = if passed { "passed" } else { "failed" };
        let text = format!(
            "`{shown}` {verdict} ({})\n{}",
            outcome.describe(timeout),
            outcome.output
        );
        Ok(AgentReply {
            text,
            passed: Some(passed),
            // Real seconds in every mode: a command runs on this machine, not on the
            // (possibly time-scaled) model server.
            generation: outcome.elapsed,
            ..AgentReply::default()
        })
    }
}
