//! Residency hints: how long a model stays loaded (`keep_alive`) and how its weights are read.

use agentrun_memory::{KeepAlive, LoadModeChoice};

/// Residency hints of one agent's model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidencySpec {
    /// The keep_alive the `static` policy sends with every call; `None` sends none.
    pub keep_alive: Option<KeepAlive>,
    /// How the weights are read; `None` inherits `memory.load_mode`.
    pub load_mode: Option<LoadModeChoice>,
}
