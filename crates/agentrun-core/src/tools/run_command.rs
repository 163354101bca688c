//! `run_command`: runs a command from the agent's allow-list in the workspace.

use agentrun_spec::{Approval, CommandPolicy};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Tool, ToolContext, ToolError, ask_approval, parse_arguments};
use crate::backend::ToolSpec;
use crate::command_sandbox::ConfinedError;
use crate::process::{DEFAULT_COMMAND_TIMEOUT, ProcessSpec};

#[derive(Debug, Deserialize, JsonSchema)]
struct Args {
    /// The program and its arguments, one list item each (no shell), e.g.
    /// `["cargo", "test", "--quiet"]`.
    argv: Vec<String>,
    /// The directory to run in, relative to the workspace root (default: the root).
    #[serde(default)]
    dir: Option<String>,
}

/// Runs an allowed command.
pub(super) struct RunCommand;

#[async_trait]
impl Tool for RunCommand {
    fn spec(&self) -> ToolSpec {
        ToolSpec::for_parameters::<Args>(
            "run_command",
            "Run a command in the workspace, without a shell, and get its exit status and output. Only the commands the workflow allows can run, in the workflow's sandbox.",
        )
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext<'_>,
    ) -> Result<String, ToolError> {
        let args: Args = parse_arguments(arguments)?;
        if args
            .argv
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            return Err(ToolError::InvalidArguments(
                "`argv` is empty; give the program and its arguments as a list".to_owned(),
            ));
        }
        // Only a model agent's tools run commands; any other agent may run none.
        let nothing_allowed = CommandPolicy::default();
        let policy = context
            .agent
            .llm()
            .map_or(&nothing_allowed, |llm| &llm.command_policy);
        let shown = args.argv.join(" ");
        if !policy.allows(&args.argv) {
            let allowed: Vec<String> = policy
                .allow
                .iter()
                .map(|allowed| format!("`{}`", allowed.join(" ")))
                .collect();
            return Err(ToolError::Refused(format!(
                "`{shown}` is not on the allow-list; a command must start with one of: {}",
                if allowed.is_empty() {
                    "(nothing is allowed)".to_owned()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        let dir = context
            .workspace
            .resolve(args.dir.as_deref().unwrap_or("."))?;
        if !dir.is_dir() {
            return Err(ToolError::Failed(format!(
                "`{}` is not a directory of the workspace",
                args.dir.unwrap_or_default()
            )));
        }
        if policy.approve == Approval::Ask {
            ask_approval(context, &shown, &format!("run `{shown}`? [y/N]")).await?;
        }
        let timeout = policy.timeout.unwrap_or(DEFAULT_COMMAND_TIMEOUT);
        let outcome = context
            .workspace
            .sandbox()
            .run(
                context.agent,
                context.workspace.root(),
                ProcessSpec {
                    argv: &args.argv,
                    dir: &dir,
                    env: &policy.env,
                    timeout,
                },
            )
            .await
            .map_err(|error| match error {
                ConfinedError::Refused(error) => {
                    ToolError::Refused(format!("`{shown}` was not run: {error}; {}", error.hint()))
                }
                ConfinedError::Start(error) => {
                    ToolError::Failed(format!("cannot run `{shown}`: {error}"))
                }
            })?;
        let status = outcome.describe(timeout);
        if outcome.status.is_none() {
            return Err(ToolError::Failed(format!(
                "`{shown}` {status}; output so far:\n{}",
                outcome.output
            )));
        }
        Ok(format!("{status}\n{}", outcome.output))
    }
}
