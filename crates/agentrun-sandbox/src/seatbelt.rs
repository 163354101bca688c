//! The macOS sandbox: a Seatbelt profile (SBPL) generated as text for `sandbox-exec`.
//!
//! SBPL applies the last rule that matches an operation, so the profile allows broadly
//! first and denies the secrets at the end. On macOS loopback is the host's own: a process
//! without network can still reach servers listening on the host's `localhost`, unlike the
//! network namespace on Linux.
//!
//! This profile is checked as text only; it has not been run on a Mac by this project's
//! tests.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Where `sandbox-exec` lives on every macOS.
pub const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// What a Seatbelt profile allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatbeltProfile {
    /// Trees the process may write.
    pub writable: Vec<PathBuf>,
    /// Paths it may neither read nor write.
    pub secrets: Vec<PathBuf>,
    /// Paths inside the writable trees it may read but not write.
    pub protected: Vec<PathBuf>,
    /// Whether it reaches the network beyond loopback.
    pub network: bool,
}

impl SeatbeltProfile {
    /// The profile as SBPL text.
    pub fn render(&self) -> String {
        let mut text = String::from(
            "(version 1)\n\
             (deny default)\n\
             (allow process-exec process-fork process-info*)\n\
             (allow signal (target same-sandbox))\n\
             (allow sysctl-read mach-lookup ipc-posix-shm ipc-posix-sem pseudo-tty)\n\
             (allow file-read*)\n\
             (allow file-write-data (literal \"/dev/null\") (literal \"/dev/zero\") (literal \"/dev/dtracehelper\"))\n",
        );
        if !self.writable.is_empty() {
            text.push_str("(allow file-write*");
            for tree in &self.writable {
                let _ = write!(text, " (subpath {})", quote(tree));
            }
            text.push_str(")\n");
        }
        if self.network {
            text.push_str("(allow network*)\n");
        } else {
            text.push_str(
                "(allow network-bind network-inbound (local ip \"localhost:*\"))\n\
                 (allow network-outbound (remote ip \"localhost:*\") (remote unix-socket))\n",
            );
        }
        if !self.protected.is_empty() {
            text.push_str("(deny file-write*");
            for path in &self.protected {
                let _ = write!(text, " (subpath {})", quote(path));
            }
            text.push_str(")\n");
        }
        if !self.secrets.is_empty() {
            text.push_str("(deny file-read* file-write*");
            for secret in &self.secrets {
                let _ = write!(text, " (subpath {})", quote(secret));
            }
            text.push_str(")\n");
        }
        text
    }

    /// `sandbox-exec -p PROFILE -- argv...`.
    pub fn command(&self, argv: &[String]) -> Vec<String> {
        let mut command = vec![SANDBOX_EXEC.to_owned(), "-p".to_owned(), self.render()];
        command.push("--".to_owned());
        command.extend(argv.iter().cloned());
        command
    }
}

/// A path as an SBPL string literal: backslashes and quotes escaped, so no path can end the
/// string and add rules of its own.
fn quote(path: &Path) -> String {
    let mut quoted = String::from("\"");
    for character in path.to_string_lossy().chars() {
        match character {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(character);
            }
            '\n' => quoted.push_str("\\n"),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests;
