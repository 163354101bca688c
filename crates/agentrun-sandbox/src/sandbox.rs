//! Turning a command into its confined form for this platform.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::container::{ContainerRun, find_runtime};
use crate::error::SandboxError;
use crate::launcher::Launcher;
use crate::mode::SandboxMode;
use crate::policy::SandboxPolicy;

/// Confines commands: knows where the launcher is and which container runtime to use.
///
/// Cheap to share; the launcher is looked for once, when the first confined command needs
/// it.
#[derive(Debug, Default)]
pub struct Sandbox {
    // macOS confines with `sandbox-exec` and needs no launcher.
    #[cfg_attr(target_os = "macos", allow(dead_code))]
    launcher: OnceLock<Result<Launcher, String>>,
    #[cfg_attr(target_os = "macos", allow(dead_code))]
    force_user_namespace: bool,
}

/// A command ready to run in its sandbox. Keep it alive until the process has ended: it owns
/// the private temporary directory, which is removed when it is dropped.
#[derive(Debug)]
pub struct ConfinedCommand {
    /// The command line to start (the launcher, `sandbox-exec` or the container runtime,
    /// followed by the command); the command itself when the mode is `off`.
    pub argv: Vec<String>,
    /// Variables to set besides the command's own (`TMPDIR`).
    pub env: BTreeMap<String, String>,
    /// The mode the command runs in.
    pub mode: SandboxMode,
    temp_dir: Option<tempfile::TempDir>,
}

impl ConfinedCommand {
    /// The private temporary directory, when the mode has one.
    pub fn temp_dir(&self) -> Option<&Path> {
        self.temp_dir.as_ref().map(tempfile::TempDir::path)
    }
}

impl Sandbox {
    /// A sandbox that finds its launcher with [`Launcher::find`].
    pub fn new() -> Sandbox {
        Sandbox::default()
    }

    /// A sandbox that uses this launcher.
    pub fn with_launcher(launcher: Launcher) -> Sandbox {
        let sandbox = Sandbox::default();
        let _ = sandbox.launcher.set(Ok(launcher));
        sandbox
    }

    /// Uses a user namespace for network isolation even when running as root, the way an
    /// unprivileged user gets it (for tests of that way).
    pub fn forcing_user_namespace(mut self) -> Sandbox {
        self.force_user_namespace = true;
        self
    }

    /// Whether this machine can give `mode`; `Err` says what is missing. Checks the kernel
    /// and the tools, not the launcher.
    pub fn check(&self, mode: SandboxMode) -> Result<(), SandboxError> {
        let unavailable = |missing: String| SandboxError::Unavailable { mode, missing };
        match mode {
            SandboxMode::Off => Ok(()),
            SandboxMode::Container => find_runtime().map(drop).ok_or_else(|| {
                unavailable(
                    "neither docker nor podman is on PATH (AGENTRUN_CONTAINER_RUNTIME names another)"
                        .to_owned(),
                )
            }),
            _ => platform_check().map_err(unavailable),
        }
    }

    /// The confined form of running `argv` in `dir` under `policy`, with the command's own
    /// variables `env` (needed to pass them into a container).
    pub fn prepare(
        &self,
        policy: &SandboxPolicy,
        argv: &[String],
        dir: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<ConfinedCommand, SandboxError> {
        let mode = policy.mode;
        self.check(mode)?;
        match mode {
            SandboxMode::Off => Ok(ConfinedCommand {
                argv: argv.to_vec(),
                env: BTreeMap::new(),
                mode,
                temp_dir: None,
            }),
            SandboxMode::Container => {
                let runtime = find_runtime().ok_or_else(|| SandboxError::Unavailable {
                    mode,
                    missing: "neither docker nor podman is on PATH".to_owned(),
                })?;
                let Some(image) = policy.image.as_deref() else {
                    return Err(SandboxError::Unavailable {
                        mode,
                        missing: "no container image is set (`sandbox.image` in the workflow)"
                            .to_owned(),
                    });
                };
                let run = ContainerRun {
                    runtime: &runtime,
                    image,
                    workspace: &policy.workspace,
                    writable: true,
                    dir,
                    protected: &policy.protected_paths,
                    user: owner(&policy.workspace),
                    network: false,
                    env,
                    argv,
                };
                Ok(ConfinedCommand {
                    argv: run.argv(),
                    env: BTreeMap::new(),
                    mode,
                    temp_dir: None,
                })
            }
            SandboxMode::WorkspaceWrite | SandboxMode::ReadOnly | SandboxMode::Network => {
                let temp_dir = tempfile::Builder::new()
                    .prefix("agentrun-sandbox-")
                    .tempdir()
                    .map_err(SandboxError::TempDir)?;
                let mut writable = vec![temp_dir.path().to_path_buf()];
                if mode.writes_workspace() {
                    writable.push(policy.workspace.clone());
                }
                let argv = self.platform_argv(policy, writable, argv)?;
                let env = BTreeMap::from([(
                    "TMPDIR".to_owned(),
                    temp_dir.path().to_string_lossy().into_owned(),
                )]);
                Ok(ConfinedCommand {
                    argv,
                    env,
                    mode,
                    temp_dir: Some(temp_dir),
                })
            }
        }
    }

    #[cfg(target_os = "macos")]
    fn platform_argv(
        &self,
        policy: &SandboxPolicy,
        writable: Vec<PathBuf>,
        argv: &[String],
    ) -> Result<Vec<String>, SandboxError> {
        let profile = crate::seatbelt::SeatbeltProfile {
            writable,
            secrets: policy.secret_paths.clone(),
            protected: policy.protected_paths.clone(),
            network: policy.mode.has_network(),
        };
        Ok(profile.command(argv))
    }

    #[cfg(not(target_os = "macos"))]
    fn platform_argv(
        &self,
        policy: &SandboxPolicy,
        writable: Vec<PathBuf>,
        argv: &[String],
    ) -> Result<Vec<String>, SandboxError> {
        let launcher = self
            .launcher
            .get_or_init(|| Launcher::find().map_err(|error| error.to_string()))
            .as_ref()
            .map_err(|_| SandboxError::LauncherMissing)?;
        let request = crate::launcher::LaunchRequest {
            isolate_network: !policy.mode.has_network(),
            force_user_namespace: self.force_user_namespace,
            writable,
            secrets: policy.secret_paths.clone(),
            protected: policy.protected_paths.clone(),
        };
        Ok(launcher.argv(&request, argv))
    }
}

#[cfg(target_os = "linux")]
fn platform_check() -> Result<(), String> {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABLE
        .get_or_init(|| {
            crate::linux::filesystem::landlock_available()?;
            crate::linux::namespaces::namespaces_available()
        })
        .clone()
}

#[cfg(target_os = "macos")]
fn platform_check() -> Result<(), String> {
    if Path::new(crate::seatbelt::SANDBOX_EXEC).is_file() {
        Ok(())
    } else {
        Err(format!("{} is missing", crate::seatbelt::SANDBOX_EXEC))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn platform_check() -> Result<(), String> {
    Err("agentrun can confine commands on Linux (Landlock) and macOS (Seatbelt) only".to_owned())
}

/// The uid and gid that own `path`.
#[cfg(unix)]
fn owner(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.uid(), metadata.gid()))
}

#[cfg(not(unix))]
fn owner(_path: &Path) -> Option<(u32, u32)> {
    None
}
