//! The filesystem half of the Linux sandbox: Landlock rules that let a process read
//! everything but the secrets and write only where its mode allows.
//!
//! Landlock grants access to whole trees and cannot carve a hole into a granted tree, so a
//! tree that contains a secret is not granted as a whole: each of its entries is, except the
//! way down to the secret. The directories on that way can then not be listed, but everything
//! in them but the secret can be opened by name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::launcher::LaunchError;

/// The newest Landlock ABI whose rights this sandbox asks for; older kernels get what they
/// support of it (best effort), a kernel without Landlock is refused.
const TARGET_ABI: ABI = ABI::V6;

/// Device files every program may write: discarding output and reading zeros is not an
/// escape.
const WRITABLE_DEVICES: [&str; 3] = ["/dev/null", "/dev/zero", "/dev/full"];

/// What a process may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilesystemRules {
    /// Trees readable (and executable) as a whole.
    pub(crate) readable: Vec<PathBuf>,
    /// Trees writable as a whole.
    pub(crate) writable: Vec<PathBuf>,
}

/// The trees under `root` that may be granted so that none of `secrets` (canonical paths)
/// is reachable, following `root`'s entries to where they lead.
pub(crate) fn trees_without(root: &Path, secrets: &[PathBuf]) -> Vec<PathBuf> {
    let mut granted = Vec::new();
    let mut visited = BTreeSet::new();
    collect(root, secrets, &mut granted, &mut visited);
    granted
}

fn collect(
    tree: &Path,
    secrets: &[PathBuf],
    granted: &mut Vec<PathBuf>,
    visited: &mut BTreeSet<PathBuf>,
) {
    // Landlock follows inodes, not names: a link to a secret's directory would grant it.
    let Ok(real) = tree.canonicalize() else {
        return;
    };
    if secrets.iter().any(|secret| real.starts_with(secret)) {
        return;
    }
    if !secrets.iter().any(|secret| secret.starts_with(&real)) {
        granted.push(tree.to_path_buf());
        return;
    }
    if !visited.insert(real.clone()) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(&real) else {
        return;
    };
    for entry in entries.flatten() {
        collect(&entry.path(), secrets, granted, visited);
    }
}

impl FilesystemRules {
    /// The rules for a process that may write `writable` trees (the workspace and its temp
    /// dir), read everything else, and touch none of `secrets`.
    pub(crate) fn new(writable: &[PathBuf], secrets: &[PathBuf]) -> FilesystemRules {
        let secrets: Vec<PathBuf> = secrets
            .iter()
            .filter_map(|secret| secret.canonicalize().ok())
            .collect();
        let readable = trees_without(Path::new("/"), &secrets);
        let mut writable: Vec<PathBuf> = writable
            .iter()
            .flat_map(|tree| trees_without(tree, &secrets))
            .collect();
        writable.extend(WRITABLE_DEVICES.iter().map(PathBuf::from));
        FilesystemRules { readable, writable }
    }

    /// Confines the calling thread (and what it executes) to these rules.
    pub(crate) fn enforce(&self) -> Result<(), LaunchError> {
        let landlock = |error: landlock::RulesetError| LaunchError::Landlock(error.to_string());
        let read = AccessFs::from_read(TARGET_ABI);
        let all = AccessFs::from_all(TARGET_ABI);
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(all)
            .map_err(landlock)?
            .scope(Scope::from_all(TARGET_ABI))
            .map_err(landlock)?
            .create()
            .map_err(landlock)?;
        for (trees, access) in [(&self.readable, read), (&self.writable, all)] {
            for tree in trees {
                // An entry may vanish between listing and opening; it is then not granted.
                let Ok(fd) = PathFd::new(tree) else { continue };
                let access = if tree.is_dir() {
                    access
                } else {
                    access & AccessFs::from_file(TARGET_ABI)
                };
                ruleset = ruleset
                    .add_rule(PathBeneath::new(fd, access))
                    .map_err(landlock)?;
            }
        }
        let status = ruleset.restrict_self().map_err(landlock)?;
        if status.ruleset == RulesetStatus::NotEnforced {
            return Err(LaunchError::Landlock(
                "this kernel does not enforce Landlock (it needs Linux 5.13 or newer with Landlock enabled at boot, e.g. `lsm=landlock,...`)".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Whether this kernel offers Landlock; `Err` says what is missing.
pub(crate) fn landlock_available() -> Result<(), String> {
    let access: BitFlags<AccessFs> = AccessFs::from_all(ABI::V1);
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(access)
        .and_then(|ruleset| ruleset.create())
        .map(drop)
        .map_err(|error| {
            format!("Landlock is not available in this kernel ({error}); it needs Linux 5.13 or newer with Landlock enabled at boot")
        })
}

#[cfg(test)]
mod tests;
