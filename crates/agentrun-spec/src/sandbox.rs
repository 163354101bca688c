//! The workflow's sandbox settings: the default mode for every agent's commands, extra
//! secret paths, and the image of the `container` mode.

use crate::agent::SandboxMode;

/// The workflow-wide sandbox settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxSpec {
    /// The mode of agents that do not name their own.
    pub mode: SandboxMode,
    /// Paths unreadable besides the default secret locations, each absolute or `~/`-relative.
    pub secret_paths: Vec<String>,
    /// The image `container` agents run their commands in.
    pub image: Option<String>,
}
