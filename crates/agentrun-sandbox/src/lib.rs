//! Confines the processes agentrun starts on a model's behalf: the command agents' programs,
//! the commands a model runs with `run_command`, and (later) stdio tool servers.
//!
//! A model writes the code that a test runner then executes with the user's rights; this
//! crate makes that code unable to write outside the workspace, read credentials, or reach
//! the network, unless the workflow says otherwise.
//!
//! Start with:
//!
//! - [`SandboxMode`]: `workspace-write` (the default), `read-only`, `network`, `container`,
//!   `off`.
//! - [`SandboxPolicy`]: a mode, the workspace and the secret paths of one command.
//! - [`Sandbox::prepare`]: turns a command into a [`ConfinedCommand`], the command line to
//!   start instead. The caller starts it the way it starts any process (so any process
//!   runner works, and a stdio server can be confined the same way), keeps the
//!   [`ConfinedCommand`] alive until the process ends, and reads [`detect_denial`] from its
//!   output to tell the model what the sandbox refused.
//!
//! # How each platform confines
//!
//! - **Linux**: the command is started through the launcher, a small single-threaded
//!   process ([`launcher_main`]) that enters a fresh network namespace with only loopback
//!   up (inside a user namespace when not root), binds the workspace's `.git` read-only in
//!   a mount namespace of its own, restricts itself with Landlock (read everything but the
//!   secrets, write only the workspace, its private `TMPDIR` and `/dev/null`), and executes
//!   the command. Landlock needs Linux 5.13 or newer; without
//!   it a confined command is refused, never run bare.
//! - **macOS**: `sandbox-exec` with a generated Seatbelt profile ([`SeatbeltProfile`]). Not
//!   run by this project's tests, which run on Linux.
//! - **container**: `docker run` or `podman run` with only the workspace mounted
//!   ([`ContainerRun`]).
//!
//! # Finding the launcher
//!
//! [`Sandbox::new`] looks for the launcher the first time it needs it ([`Launcher::find`]):
//! `$AGENTRUN_SANDBOX_LAUNCHER`, then `agentrun-sandbox` beside the running program (or one
//! directory up), then on `PATH`. A program can instead be its own launcher: call
//! [`launcher_main`] at the top of `main` when the first argument is [`LAUNCHER_ARGUMENT`],
//! and hand [`Launcher::entry_point`] of the running executable to
//! [`Sandbox::with_launcher`]; the `agentrun` binary does that.
//!
//! # Example
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use std::path::Path;
//! use agentrun_sandbox::{Sandbox, SandboxMode, SandboxPolicy};
//!
//! let workspace = Path::new("/work/project");
//! let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
//! let policy = SandboxPolicy::new(SandboxMode::WorkspaceWrite, workspace, home.as_deref(), &[]);
//! let argv = vec!["cargo".to_owned(), "test".to_owned()];
//! let confined = Sandbox::new().prepare(&policy, &argv, workspace, &BTreeMap::new())?;
//! let status = std::process::Command::new(&confined.argv[0])
//!     .args(&confined.argv[1..])
//!     .envs(&confined.env)
//!     .current_dir(workspace)
//!     .status()?;
//! drop(confined); // removes the private TMPDIR
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The crate has no `unsafe` code: the namespaces go through `nix`, Landlock through the
//! `landlock` crate, and the launcher hands on with `exec`.

mod container;
mod denial;
mod error;
mod launcher;
#[cfg(target_os = "linux")]
mod linux;
mod mode;
mod policy;
mod sandbox;
mod seatbelt;

pub use container::{ContainerRun, RUNTIME_VARIABLE, RUNTIMES, find_runtime};
pub use denial::{Denial, detect_denial};
pub use error::SandboxError;
pub use launcher::{
    LAUNCH_FAILED_STATUS, LAUNCHER_ARGUMENT, LAUNCHER_BINARY, LAUNCHER_VARIABLE, LaunchError,
    Launcher, launcher_main,
};
pub use mode::{SandboxMode, UnknownMode};
pub use policy::{DEFAULT_SECRET_PATHS, PROTECTED_IN_WORKSPACE, SandboxPolicy, expand_home};
pub use sandbox::{ConfinedCommand, Sandbox};
pub use seatbelt::{SANDBOX_EXEC, SeatbeltProfile};
