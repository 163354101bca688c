//! Residency hints: how long a model stays loaded (`keep_alive`) and how its weights are read.

use agentrun_memory::{KeepAlive, LoadModeChoice};

/// Residency hints of one agent's model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidencySpec {
    /// The keep_alive the `static` policy sends with every call; `None` sends none.
    pub keep_alive: Option<KeepAlive>,
    /// How the weights are read; `None` inherits `memory.load_mode`.
    pub load_mode: Option<LoadModeChoice>,
    /// Host labels the model's host must carry (`big`, `linux`), when several Ollama hosts
    /// serve the run; a workflow names labels, never addresses, so it stays portable.
    pub require_labels: Vec<String>,
    /// Host labels the placement prefers, among the hosts that satisfy `require_labels`.
    pub prefer_labels: Vec<String>,
}

/// Whether `label` is a host label: lowercase letters, digits, `-` and `_`, starting with
/// a letter or digit.
pub fn is_host_label(label: &str) -> bool {
    let mut chars = label.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}
