//! The container sandbox: the command runs in Docker or Podman with only the workspace
//! mounted (at the same path, so paths in its output mean the same), as the workspace's
//! owner, with every capability dropped and, unless the mode has network, no network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The variable that names the container runtime to use (a program name or path).
pub const RUNTIME_VARIABLE: &str = "AGENTRUN_CONTAINER_RUNTIME";

/// Container runtimes tried in order when [`RUNTIME_VARIABLE`] is unset.
pub const RUNTIMES: [&str; 2] = ["docker", "podman"];

/// One command to run in a container.
#[derive(Debug, Clone)]
pub struct ContainerRun<'a> {
    /// `docker` or `podman` (a name or a path).
    pub runtime: &'a Path,
    /// The image to run in.
    pub image: &'a str,
    /// The workspace, mounted read-write (read-only when `writable` is false).
    pub workspace: &'a Path,
    /// Whether the workspace is mounted writable.
    pub writable: bool,
    /// Paths inside the workspace mounted read-only over the writable workspace (those that
    /// exist).
    pub protected: &'a [PathBuf],
    /// The working directory, inside the workspace.
    pub dir: &'a Path,
    /// `uid:gid` to run as, so files the command writes belong to the workspace's owner.
    pub user: Option<(u32, u32)>,
    /// Whether the container has the network.
    pub network: bool,
    /// Variables set in the container.
    pub env: &'a BTreeMap<String, String>,
    /// The program and its arguments.
    pub argv: &'a [String],
}

impl ContainerRun<'_> {
    /// The runtime's command line.
    pub fn argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = [
            &self.runtime.to_string_lossy(),
            "run",
            "--rm",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--tmpfs=/tmp",
            "--env=TMPDIR=/tmp",
            "--env=HOME=/tmp",
        ]
        .iter()
        .map(|word| (*word).to_owned())
        .collect();
        if !self.network {
            argv.push("--network=none".to_owned());
        }
        if let Some((uid, gid)) = self.user {
            argv.push(format!("--user={uid}:{gid}"));
        }
        let workspace = self.workspace.to_string_lossy();
        let access = if self.writable { "rw" } else { "ro" };
        argv.push(format!("--volume={workspace}:{workspace}:{access}"));
        for path in self.protected.iter().filter(|path| path.exists()) {
            let path = path.to_string_lossy();
            argv.push(format!("--volume={path}:{path}:ro"));
        }
        argv.push(format!("--workdir={}", self.dir.to_string_lossy()));
        for (name, value) in self.env {
            argv.push(format!("--env={name}={value}"));
        }
        argv.push(self.image.to_owned());
        argv.extend(self.argv.iter().cloned());
        argv
    }
}

/// The container runtime to use: [`RUNTIME_VARIABLE`], else the first of [`RUNTIMES`] on
/// `PATH`.
pub fn find_runtime() -> Option<PathBuf> {
    if let Some(named) = std::env::var_os(RUNTIME_VARIABLE).filter(|named| !named.is_empty()) {
        return Some(PathBuf::from(named));
    }
    RUNTIMES.iter().find_map(|name| on_path(name))
}

/// The first `name` on `PATH`.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests;
