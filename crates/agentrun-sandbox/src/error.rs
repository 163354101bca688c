//! Why a command cannot be confined as asked.

use crate::mode::SandboxMode;

/// Why a command cannot be confined as asked. Nothing runs then: a command that needs a
/// sandbox never falls back to running bare.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// This machine cannot give the mode.
    #[error("the `{mode}` sandbox is not available here: {missing}")]
    Unavailable {
        /// The mode asked for.
        mode: SandboxMode,
        /// What is missing.
        missing: String,
    },
    /// The launcher binary was not found.
    #[error(
        "cannot find the sandbox launcher `agentrun-sandbox`: it is not beside the running program, not on PATH, and AGENTRUN_SANDBOX_LAUNCHER is not set"
    )]
    LauncherMissing,
    /// The private temporary directory could not be made.
    #[error("cannot create the command's private temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
}

impl SandboxError {
    /// What to do about it, in a sentence.
    pub fn hint(&self) -> &'static str {
        match self {
            SandboxError::Unavailable { .. } => {
                "give the agent another sandbox mode, or opt out explicitly with `sandbox: off` (the command then runs with your own rights)"
            }
            SandboxError::LauncherMissing => {
                "install `agentrun-sandbox` next to the program (cargo install builds it), or set AGENTRUN_SANDBOX_LAUNCHER to its path"
            }
            SandboxError::TempDir(_) => "check that the system's temporary directory is writable",
        }
    }
}
