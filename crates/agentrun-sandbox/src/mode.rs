//! Sandbox modes: what a confined process may read, write and reach.

use std::fmt;
use std::str::FromStr;

/// How a process agentrun starts on a model's behalf is confined.
///
/// In every mode but [`SandboxMode::Off`] the secret locations (`~/.ssh`, `~/.aws`, ... and
/// whatever the workflow adds) cannot be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SandboxMode {
    /// Reads the filesystem as toolchains need, writes only the workspace and a private
    /// temporary directory, and has no network: its own loopback works, nothing else does.
    #[default]
    WorkspaceWrite,
    /// Like `workspace-write`, but the workspace is read-only too (the private temporary
    /// directory stays writable).
    ReadOnly,
    /// `workspace-write` with the host's network.
    Network,
    /// In a Docker or Podman container with only the workspace mounted, and no network.
    Container,
    /// No confinement at all: the process runs with the user's own rights.
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

impl fmt::Display for SandboxMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A name that is not a sandbox mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a sandbox mode; use workspace-write, read-only, network, container or off")]
pub struct UnknownMode(pub String);

impl FromStr for SandboxMode {
    type Err = UnknownMode;

    fn from_str(text: &str) -> Result<SandboxMode, UnknownMode> {
        SandboxMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| UnknownMode(text.to_owned()))
    }
}
