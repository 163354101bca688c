//! Sandbox modes: what a confined process may read, write and reach. The mode is the
//! workflow format's own type, so a file, a plan and a confined process name one thing.

pub use agentrun_spec::{SandboxMode, UnknownSandboxMode as UnknownMode};
