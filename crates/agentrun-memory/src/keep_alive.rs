//! The `keep_alive` value sent with a request, Ollama's only residency control.

use std::fmt;
use std::time::Duration;

/// How long Ollama should keep a model resident after its last request ends.
///
/// Ollama evicts models in ascending order of this value when it needs room
/// (`Forever` sorts last), so the planner steers eviction through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeepAlive {
    /// Never expire (`-1` on the wire). Still evictable when memory is needed.
    Forever,
    /// Unload as soon as the last in-flight request ends (`0` on the wire).
    UnloadWhenIdle,
    /// Expire after this long idle.
    For(Duration),
}

impl KeepAlive {
    /// The value as Ollama's JSON field: a number of seconds, `-1` for forever.
    pub fn to_json(self) -> serde_json::Value {
        match self {
            KeepAlive::Forever => serde_json::json!(-1),
            KeepAlive::UnloadWhenIdle => serde_json::json!(0),
            KeepAlive::For(duration) => {
                let secs = duration.as_secs_f64();
                if secs.fract() == 0.0 {
                    serde_json::json!(duration.as_secs())
                } else {
                    serde_json::json!(secs)
                }
            }
        }
    }

    /// The idle duration this value gives, `None` for forever.
    pub fn duration(self) -> Option<Duration> {
        match self {
            KeepAlive::Forever => None,
            KeepAlive::UnloadWhenIdle => Some(Duration::ZERO),
            KeepAlive::For(duration) => Some(duration),
        }
    }
}

impl fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepAlive::Forever => f.write_str("forever"),
            KeepAlive::UnloadWhenIdle => f.write_str("0"),
            KeepAlive::For(duration) => write!(f, "{}", humantime::format_duration(*duration)),
        }
    }
}
