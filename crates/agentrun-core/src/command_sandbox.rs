//! The sandbox of the processes a run starts for its agents: which mode each agent gets,
//! the workflow's secret paths, and running a command confined, with a note for the model
//! when the sandbox seems to have refused something.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentrun_sandbox::{Sandbox, SandboxError, SandboxMode, SandboxPolicy, detect_denial};
use agentrun_spec::{AgentSpec, SandboxSpec};

use crate::process::{ProcessOutcome, ProcessSpec, run_process};

/// How a run confines the commands of its agents: the workflow's sandbox settings and the
/// [`Sandbox`] that applies them.
///
/// Every process a run starts on a model's behalf goes through [`CommandSandbox::run`]
/// (command agents, `run_command`); a stdio tool server would take its command line from
/// [`CommandSandbox::confine`] the same way.
#[derive(Debug, Clone)]
pub struct CommandSandbox {
    sandbox: Arc<Sandbox>,
    settings: SandboxSpec,
    home: Option<PathBuf>,
}

/// Why a confined command did not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfinedError {
    /// The sandbox cannot be given here; nothing ran.
    #[error("{0}; {hint}", hint = .0.hint())]
    Refused(SandboxError),
    /// The process did not start.
    #[error("{0}")]
    Start(std::io::Error),
}

impl CommandSandbox {
    /// The workflow's `settings` applied by `sandbox`; `~` in secret paths is the `HOME` of
    /// this process.
    pub fn new(sandbox: Arc<Sandbox>, settings: SandboxSpec) -> CommandSandbox {
        CommandSandbox {
            sandbox,
            settings,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// The mode the agent's commands run in: its own, or the workflow's default.
    pub fn mode_of(&self, agent: &AgentSpec) -> SandboxMode {
        mode(agent.sandbox.unwrap_or(self.settings.mode))
    }

    /// Whether this machine can give the agent's mode; `Err` says what is missing.
    pub fn check(&self, agent: &AgentSpec) -> Result<(), SandboxError> {
        self.sandbox.check(self.mode_of(agent))
    }

    /// The policy of a command the agent runs in `workspace`.
    pub fn policy(&self, agent: &AgentSpec, workspace: &Path) -> SandboxPolicy {
        self.policy_in(self.mode_of(agent), workspace)
    }

    /// The policy of a command run in `mode` in `workspace`.
    fn policy_in(&self, mode: SandboxMode, workspace: &Path) -> SandboxPolicy {
        let mut policy = SandboxPolicy::new(
            mode,
            workspace,
            self.home.as_deref(),
            &self.settings.secret_paths,
        );
        policy.image = self.settings.image.clone();
        policy
    }

    /// The command line that runs `argv` confined, for a process started elsewhere; keep
    /// the result alive while the process runs.
    pub fn confine(
        &self,
        agent: &AgentSpec,
        workspace: &Path,
        argv: &[String],
        dir: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<agentrun_sandbox::ConfinedCommand, SandboxError> {
        self.sandbox
            .prepare(&self.policy(agent, workspace), argv, dir, env)
    }

    /// The command line that runs a program the run starts for itself (an MCP server) in
    /// `mode`, or in the workflow's default mode when `None`; keep the result alive while
    /// the process runs. A mode this machine cannot give is refused.
    pub fn confine_in(
        &self,
        mode: Option<SandboxMode>,
        workspace: &Path,
        argv: &[String],
        dir: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<agentrun_sandbox::ConfinedCommand, SandboxError> {
        let mode = mode.unwrap_or(self.settings.mode);
        self.sandbox.check(mode)?;
        self.sandbox
            .prepare(&self.policy_in(mode, workspace), argv, dir, env)
    }

    /// Runs a command of `agent` confined to `workspace`. A command that cannot be confined
    /// does not run. When the output suggests the sandbox refused something, it ends with a
    /// note that says what the sandbox forbids, for the model to adapt.
    pub(crate) async fn run(
        &self,
        agent: &AgentSpec,
        workspace: &Path,
        spec: ProcessSpec<'_>,
    ) -> Result<ProcessOutcome, ConfinedError> {
        let confined = self
            .confine(agent, workspace, spec.argv, spec.dir, spec.env)
            .map_err(ConfinedError::Refused)?;
        let mut env = spec.env.clone();
        env.extend(confined.env.clone());
        let mut outcome = run_process(ProcessSpec {
            argv: &confined.argv,
            env: &env,
            ..spec
        })
        .await
        .map_err(ConfinedError::Start)?;
        // The temporary directory goes once the process has.
        drop(confined);
        let denial = if outcome.passed() {
            None
        } else {
            detect_denial(self.mode_of(agent), &outcome.output)
        };
        if let Some(denial) = denial {
            tracing::info!(
                agent = %agent.name,
                mode = %denial.mode,
                kinds = ?denial.kinds,
                "a command's output suggests its sandbox refused an access"
            );
            if !outcome.output.ends_with('\n') && !outcome.output.is_empty() {
                outcome.output.push('\n');
            }
            outcome.output.push_str(&denial.note);
        }
        Ok(outcome)
    }
}

impl PartialEq for CommandSandbox {
    /// The same settings applied by the same sandbox.
    fn eq(&self, other: &CommandSandbox) -> bool {
        Arc::ptr_eq(&self.sandbox, &other.sandbox)
            && self.settings == other.settings
            && self.home == other.home
    }
}

impl Eq for CommandSandbox {}

/// The sandbox crate's mode for the workflow format's.
fn mode(mode: agentrun_spec::SandboxMode) -> SandboxMode {
    match mode {
        agentrun_spec::SandboxMode::WorkspaceWrite => SandboxMode::WorkspaceWrite,
        agentrun_spec::SandboxMode::ReadOnly => SandboxMode::ReadOnly,
        agentrun_spec::SandboxMode::Network => SandboxMode::Network,
        agentrun_spec::SandboxMode::Container => SandboxMode::Container,
        agentrun_spec::SandboxMode::Off => SandboxMode::Off,
    }
}
