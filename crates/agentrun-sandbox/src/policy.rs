//! The policy of one confined process: its mode, workspace and the secrets it may not read.

use std::path::{Path, PathBuf};

use crate::mode::SandboxMode;

/// Locations under the home directory that hold credentials: unreadable in every mode but
/// `off`.
pub const DEFAULT_SECRET_PATHS: [&str; 6] = [
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.config/gh",
    "~/.netrc",
    "~/.docker",
];

/// Paths in the workspace that stay read-only in every mode but `off`: a model that could
/// write `.git/hooks` or `.git/config` would run code the next time the user runs git.
pub const PROTECTED_IN_WORKSPACE: [&str; 1] = [".git"];

/// How one process is confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPolicy {
    /// The mode.
    pub mode: SandboxMode,
    /// The directory the process works in and (unless read-only) may write; absolute.
    pub workspace: PathBuf,
    /// Absolute paths the process may not read (files or whole directories). Paths that do
    /// not exist are ignored: the process cannot create them outside its workspace.
    pub secret_paths: Vec<PathBuf>,
    /// Absolute paths inside the workspace the process may read but not write: the
    /// workspace's `.git`, whose hooks and config run later with the user's rights outside
    /// any sandbox.
    pub protected_paths: Vec<PathBuf>,
    /// The image a `container` process runs in.
    pub image: Option<String>,
}

impl SandboxPolicy {
    /// A policy with the default secret locations under `home` plus `extra_secrets`
    /// (`~/`-relative or absolute).
    pub fn new(
        mode: SandboxMode,
        workspace: &Path,
        home: Option<&Path>,
        extra_secrets: &[String],
    ) -> SandboxPolicy {
        let secret_paths = DEFAULT_SECRET_PATHS
            .iter()
            .copied()
            .chain(extra_secrets.iter().map(String::as_str))
            .filter_map(|path| expand_home(path, home))
            .collect();
        SandboxPolicy {
            mode,
            workspace: workspace.to_path_buf(),
            secret_paths,
            protected_paths: PROTECTED_IN_WORKSPACE
                .iter()
                .map(|name| workspace.join(name))
                .collect(),
            image: None,
        }
    }
}

/// `~/x` under `home`; an absolute path as it is; `None` for `~/x` without a home or a
/// relative path (which validation refuses).
pub fn expand_home(path: &str, home: Option<&Path>) -> Option<PathBuf> {
    if path == "~" {
        return home.map(Path::to_path_buf);
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return home.map(|home| home.join(rest));
    }
    let path = Path::new(path);
    path.is_absolute().then(|| path.to_path_buf())
}
