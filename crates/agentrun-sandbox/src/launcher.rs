//! The launcher: a small, fresh, single-threaded process that confines itself and then
//! executes the command.
//!
//! agentrun's own process runs tokio's threads; a user namespace can only be entered by a
//! single-threaded process, and Landlock confines the thread that asks. So the confinement
//! happens here, in a process started for it, and `exec` hands it on to the command: the
//! command is the launcher's process, with its pid, its process group and its pipes.
//!
//! The launcher is the `agentrun-sandbox` binary of this crate, or any binary that calls
//! [`launcher_main`] when started with [`LAUNCHER_ARGUMENT`] first (the `agentrun` binary
//! does). [`Launcher::find`] says how a library finds it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::SandboxError;

/// The variable that names the launcher program, for embedders and unusual installs.
pub const LAUNCHER_VARIABLE: &str = "AGENTRUN_SANDBOX_LAUNCHER";

/// The launcher binary's name.
pub const LAUNCHER_BINARY: &str = "agentrun-sandbox";

/// The first argument that turns a binary calling [`launcher_main`] into the launcher.
pub const LAUNCHER_ARGUMENT: &str = "__agentrun-sandbox";

/// Exit status of a launcher that could not confine the command (nothing was run).
pub const LAUNCH_FAILED_STATUS: i32 = 126;

/// Where the launcher is: a program and the arguments that make it act as the launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    program: PathBuf,
    leading_arguments: Vec<String>,
}

impl Launcher {
    /// The `agentrun-sandbox` binary (or another launcher program) at `program`.
    pub fn binary(program: &Path) -> Launcher {
        Launcher {
            program: program.to_path_buf(),
            leading_arguments: Vec::new(),
        }
    }

    /// A binary that calls [`launcher_main`] when its first argument is
    /// [`LAUNCHER_ARGUMENT`], e.g. the running program itself.
    pub fn entry_point(program: &Path) -> Launcher {
        Launcher {
            program: program.to_path_buf(),
            leading_arguments: vec![LAUNCHER_ARGUMENT.to_owned()],
        }
    }

    /// The program started.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Finds the launcher: the program named by [`LAUNCHER_VARIABLE`]; else
    /// `agentrun-sandbox` beside the running program or one directory up (where cargo puts
    /// binaries next to test executables); else `agentrun-sandbox` on `PATH`.
    pub fn find() -> Result<Launcher, SandboxError> {
        if let Some(named) = std::env::var_os(LAUNCHER_VARIABLE).filter(|named| !named.is_empty()) {
            return Ok(Launcher::binary(Path::new(&named)));
        }
        let beside = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_path_buf))
            .into_iter()
            .flat_map(|dir| {
                let up = dir.parent().map(|up| up.join(LAUNCHER_BINARY));
                std::iter::once(dir.join(LAUNCHER_BINARY)).chain(up)
            });
        beside
            .chain(crate::container::on_path(LAUNCHER_BINARY))
            .find(|candidate| candidate.is_file())
            .map(|found| Launcher::binary(&found))
            .ok_or(SandboxError::LauncherMissing)
    }

    /// The launcher's command line for one confined command.
    pub(crate) fn argv(&self, request: &LaunchRequest, command: &[String]) -> Vec<String> {
        let mut argv = vec![self.program.to_string_lossy().into_owned()];
        argv.extend(self.leading_arguments.iter().cloned());
        argv.extend(request.to_arguments());
        argv.push("--".to_owned());
        argv.extend(command.iter().cloned());
        argv
    }
}

/// What the launcher does before it executes the command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
// Only the Linux launcher reads it; elsewhere it is parsed to refuse clearly.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct LaunchRequest {
    /// Enter a fresh network namespace with only loopback.
    pub(crate) isolate_network: bool,
    /// Use a user namespace for it even when running as root (to test the unprivileged way).
    pub(crate) force_user_namespace: bool,
    /// Trees the command may write.
    pub(crate) writable: Vec<PathBuf>,
    /// Paths the command may not read.
    pub(crate) secrets: Vec<PathBuf>,
    /// Paths inside writable trees that the command may read but not write.
    pub(crate) protected: Vec<PathBuf>,
}

impl LaunchRequest {
    fn to_arguments(&self) -> Vec<String> {
        let mut arguments = Vec::new();
        if self.isolate_network {
            arguments.push("--isolate-network".to_owned());
        }
        if self.force_user_namespace {
            arguments.push("--user-namespace".to_owned());
        }
        for (flag, paths) in [
            ("--write", &self.writable),
            ("--secret", &self.secrets),
            ("--protect", &self.protected),
        ] {
            for path in paths {
                arguments.push(flag.to_owned());
                arguments.push(path.to_string_lossy().into_owned());
            }
        }
        arguments
    }

    /// The request and the command from the launcher's arguments (after the program name and
    /// any [`LAUNCHER_ARGUMENT`]).
    pub(crate) fn parse(
        arguments: impl IntoIterator<Item = OsString>,
    ) -> Result<(LaunchRequest, Vec<OsString>), LaunchError> {
        let mut request = LaunchRequest::default();
        let mut arguments = arguments.into_iter();
        while let Some(argument) = arguments.next() {
            match argument.to_str() {
                Some("--") => {
                    let command: Vec<OsString> = arguments.collect();
                    if command.is_empty() {
                        return Err(LaunchError::Usage("no command after `--`".to_owned()));
                    }
                    return Ok((request, command));
                }
                Some("--isolate-network") => request.isolate_network = true,
                Some("--user-namespace") => request.force_user_namespace = true,
                Some(flag @ ("--write" | "--secret" | "--protect")) => {
                    let Some(path) = arguments.next() else {
                        return Err(LaunchError::Usage(format!("`{flag}` needs a path")));
                    };
                    let list = match flag {
                        "--write" => &mut request.writable,
                        "--secret" => &mut request.secrets,
                        _ => &mut request.protected,
                    };
                    list.push(PathBuf::from(path));
                }
                _ => {
                    return Err(LaunchError::Usage(format!(
                        "unknown argument `{}`",
                        argument.to_string_lossy()
                    )));
                }
            }
        }
        Err(LaunchError::Usage("no `--` before the command".to_owned()))
    }
}

/// Why the launcher could not confine a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The arguments are not the launcher's.
    #[error(
        "{0}; usage: agentrun-sandbox [--isolate-network] [--write DIR]... [--secret PATH]... [--protect PATH]... -- PROGRAM [ARGS]..."
    )]
    Usage(String),
    /// Landlock refused or is missing.
    #[error("cannot confine the filesystem: {0}")]
    Landlock(String),
    /// The network namespace could not be set up.
    #[error("cannot isolate the network: {0}")]
    Namespace(String),
    /// This platform has no launcher-based sandbox.
    #[error("this platform has no launcher-based sandbox")]
    Unsupported,
    /// The command could not be executed.
    #[error("cannot run `{program}`: {reason}")]
    Exec {
        /// The program.
        program: String,
        /// What went wrong.
        reason: String,
    },
}

/// The launcher's `main`: reads the process's arguments (skipping [`LAUNCHER_ARGUMENT`] when
/// it comes first), confines the process, and executes the command. Returns only on failure,
/// with the exit status to end with after the message has been printed on standard error.
pub fn launcher_main() -> i32 {
    let mut arguments = std::env::args_os().skip(1).peekable();
    if arguments.peek().and_then(|first| first.to_str()) == Some(LAUNCHER_ARGUMENT) {
        arguments.next();
    }
    let error = match LaunchRequest::parse(arguments) {
        Ok((request, command)) => confine_and_exec(&request, &command),
        Err(error) => error,
    };
    // The launcher is a program's entry point: its standard error is the command's, which
    // the model reads.
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "agentrun-sandbox: {error}\nagentrun-sandbox: nothing was run; to run this command without a sandbox, the workflow must say `sandbox: off` for the agent"
        );
    }
    match error {
        LaunchError::Exec { .. } => 127,
        _ => LAUNCH_FAILED_STATUS,
    }
}

#[cfg(target_os = "linux")]
fn confine_and_exec(request: &LaunchRequest, command: &[OsString]) -> LaunchError {
    use std::os::unix::process::CommandExt;

    if let Err(error) = crate::linux::namespaces::enter_namespaces(request) {
        return error;
    }
    let rules = crate::linux::filesystem::FilesystemRules::new(&request.writable, &request.secrets);
    if let Err(error) = rules.enforce() {
        return error;
    }
    let error = std::process::Command::new(&command[0])
        .args(&command[1..])
        .exec();
    LaunchError::Exec {
        program: command[0].to_string_lossy().into_owned(),
        reason: error.to_string(),
    }
}

#[cfg(not(target_os = "linux"))]
fn confine_and_exec(_request: &LaunchRequest, _command: &[OsString]) -> LaunchError {
    LaunchError::Unsupported
}

#[cfg(test)]
mod tests;
