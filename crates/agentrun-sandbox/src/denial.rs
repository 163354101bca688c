//! Telling a model that a failure may be the sandbox's doing, so it can adapt rather than
//! retry blindly.
//!
//! Landlock and a network namespace refuse silently: the program sees `EACCES` or
//! `ENETUNREACH` and prints its own message. The note is added when the output carries one of
//! those messages.

use crate::mode::SandboxMode;

/// Messages programs print when the filesystem refuses.
const FILESYSTEM_SIGNS: [&str; 5] = [
    "Permission denied",
    "Operation not permitted",
    "Read-only file system",
    "EACCES",
    "EPERM",
];

/// Messages programs print when the network is out of reach.
const NETWORK_SIGNS: [&str; 8] = [
    "Network is unreachable",
    "ENETUNREACH",
    "Connection refused",
    "ECONNREFUSED",
    "Temporary failure in name resolution",
    "Name or service not known",
    "nodename nor servname",
    "getaddrinfo",
];

/// What the sandbox refused, as far as the output tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The mode the command ran in.
    pub mode: SandboxMode,
    /// What the output shows: `filesystem`, `network`, or both.
    pub kinds: Vec<&'static str>,
    /// The note for the model: what the sandbox forbids and what to do.
    pub note: String,
}

/// The denial the output of a command run in `mode` suggests, if any.
pub fn detect_denial(mode: SandboxMode, output: &str) -> Option<Denial> {
    if mode == SandboxMode::Off {
        return None;
    }
    let mut kinds = Vec::new();
    if FILESYSTEM_SIGNS.iter().any(|sign| output.contains(sign)) {
        kinds.push("filesystem");
    }
    if !mode.has_network() && NETWORK_SIGNS.iter().any(|sign| output.contains(sign)) {
        kinds.push("network");
    }
    if kinds.is_empty() {
        return None;
    }
    let network = if mode.has_network() {
        "it has the network"
    } else {
        "it has no network: only its own loopback, so servers on the host (even on 127.0.0.1) and the internet are out of reach"
    };
    let writes = if mode.writes_workspace() {
        "the workspace (but not its .git) and $TMPDIR"
    } else {
        "only $TMPDIR"
    };
    let note = format!(
        "[sandbox: {mode}] the access denied above may be the sandbox's doing: this command may write {writes}, may not read secret locations such as ~/.ssh, ~/.aws or ~/.netrc, and {network}. Change the code or the test to stay within that; the workflow's author can give the agent `sandbox: network` or `sandbox: off` if it truly needs more."
    );
    Some(Denial { mode, kinds, note })
}
