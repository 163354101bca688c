//! The workspace: the one directory a run's tools may touch, and the path rules that keep
//! them inside it.

use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};

use super::ToolError;
use crate::command_sandbox::CommandSandbox;

/// Directories that listings and searches skip: version control, build output, caches.
const SKIPPED_DIRS: [&str; 10] = [
    ".agentrun",
    ".git",
    "target",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    ".mypy_cache",
    ".pytest_cache",
    ".hg",
];

/// The directory a run works in.
///
/// Every path a model gives is relative to it. [`Workspace::resolve`] refuses absolute
/// paths, `..`, and symbolic links that lead out, so a tool can never read or write
/// outside it. The commands agents run here are confined by its [`CommandSandbox`], which
/// lets them write nothing outside it (unless a workflow turns the sandbox off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    root: PathBuf,
    sandbox: CommandSandbox,
}

impl Workspace {
    /// The workspace at `dir`, which must be an existing directory, with the default
    /// sandbox (`workspace-write`, the launcher found by `agentrun_sandbox::Launcher::find`).
    pub fn new(dir: &Path) -> std::io::Result<Workspace> {
        let root = dir.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        let sandbox = CommandSandbox::new(
            std::sync::Arc::new(agentrun_sandbox::Sandbox::new()),
            agentrun_spec::SandboxSpec::default(),
        );
        Ok(Workspace { root, sandbox })
    }

    /// The workspace with its commands confined by `sandbox`.
    pub fn with_sandbox(self, sandbox: CommandSandbox) -> Workspace {
        Workspace { sandbox, ..self }
    }

    /// How the commands agents run here are confined.
    pub fn sandbox(&self) -> &CommandSandbox {
        &self.sandbox
    }

    /// The workspace's real path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of `path`, given relative to the workspace; refused when it is absolute,
    /// goes up with `..`, or leads outside through a symbolic link. The path need not exist
    /// (a file about to be written).
    pub fn resolve(&self, path: &str) -> Result<PathBuf, ToolError> {
        let trimmed = path.trim();
        let given = Path::new(if trimmed.is_empty() { "." } else { trimmed });
        for component in given.components() {
            match component {
                Component::Prefix(_) | Component::RootDir => {
                    return Err(ToolError::Refused(format!(
                        "`{path}` is an absolute path; give a path relative to the workspace, e.g. `src/main.rs`"
                    )));
                }
                Component::ParentDir => {
                    return Err(ToolError::Refused(format!(
                        "`{path}` goes up with `..`; paths must stay inside the workspace"
                    )));
                }
                Component::CurDir | Component::Normal(_) => {}
            }
        }
        let joined = self.root.join(given);
        // Symbolic links are followed by the operating system, so the deepest part of the
        // path that exists is resolved and must still be inside.
        let mut existing = joined.as_path();
        while std::fs::symlink_metadata(existing).is_err() {
            match existing.parent() {
                Some(parent) => existing = parent,
                None => break,
            }
        }
        let rest = joined
            .strip_prefix(existing)
            .expect("an ancestor is a prefix")
            .to_path_buf();
        match existing.canonicalize() {
            // Joining an empty rest would add a trailing `/`, which a file refuses.
            Ok(real) if real.starts_with(&self.root) && rest.as_os_str().is_empty() => Ok(real),
            Ok(real) if real.starts_with(&self.root) => Ok(real.join(rest)),
            Ok(_) => Err(ToolError::Refused(format!(
                "`{path}` leads outside the workspace through a symbolic link"
            ))),
            Err(_) => Err(ToolError::Refused(format!(
                "`{path}` goes through a symbolic link whose target does not exist"
            ))),
        }
    }

    /// A real path inside the workspace as the model knows it: relative, with `/`.
    pub fn display(&self, real: &Path) -> String {
        match real.strip_prefix(&self.root) {
            Ok(relative) if relative.as_os_str().is_empty() => ".".to_owned(),
            Ok(relative) => relative
                .components()
                .map(|component| component.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            Err(_) => real.display().to_string(),
        }
    }

    /// Visits the entries under `dir` depth first in name order, without following symbolic
    /// links and skipping build and version-control directories, until `visit` says stop.
    /// With `recursive` false only `dir`'s own entries are visited.
    pub(crate) fn walk(
        &self,
        dir: &Path,
        recursive: bool,
        visit: &mut dyn FnMut(&Path, &Metadata) -> bool,
    ) -> std::io::Result<()> {
        let mut pending: Vec<(PathBuf, Metadata)> = sorted_entries(dir)?;
        pending.reverse();
        while let Some((path, metadata)) = pending.pop() {
            if !visit(&path, &metadata) {
                return Ok(());
            }
            let skipped = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| SKIPPED_DIRS.contains(&name));
            if recursive && metadata.is_dir() && !skipped {
                // An unreadable directory is left out rather than ending the walk.
                let children = sorted_entries(&path).unwrap_or_default();
                pending.extend(children.into_iter().rev());
            }
        }
        Ok(())
    }
}

/// A directory's entries in name order, with their own metadata (links not followed).
fn sorted_entries(dir: &Path) -> std::io::Result<Vec<(PathBuf, Metadata)>> {
    let mut entries: Vec<(PathBuf, Metadata)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let metadata = std::fs::symlink_metadata(entry.path()).ok()?;
            Some((entry.path(), metadata))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}
