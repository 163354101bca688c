//! The `keep_alive` value sent with a request, Ollama's only residency control, as workflows
//! write it and as the wire carries it.

use std::fmt;
use std::str::FromStr;
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

/// A keep_alive that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a keep_alive: {reason}")]
pub struct KeepAliveError {
    /// The text given.
    pub text: String,
    /// Why it was rejected.
    pub reason: String,
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

    /// A number of seconds as Ollama reads it: negative is forever, zero unloads when idle.
    pub fn from_seconds(seconds: i64) -> KeepAlive {
        match seconds {
            ..0 => KeepAlive::Forever,
            0 => KeepAlive::UnloadWhenIdle,
            positive => KeepAlive::For(Duration::from_secs(positive.unsigned_abs())),
        }
    }
}

impl FromStr for KeepAlive {
    type Err = KeepAliveError;

    /// Parses the workflow file's spelling: `-1` (or any negative number or duration), `0`, a
    /// number of seconds, or a duration such as `30m`, `2h` or `1h 30m`.
    fn from_str(text: &str) -> Result<KeepAlive, KeepAliveError> {
        let trimmed = text.trim();
        if let Ok(seconds) = trimmed.parse::<i64>() {
            return Ok(KeepAlive::from_seconds(seconds));
        }
        let (negative, magnitude) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let duration = humantime::parse_duration(magnitude).map_err(|error| KeepAliveError {
            text: text.to_owned(),
            reason: error.to_string(),
        })?;
        Ok(match (negative, duration.is_zero()) {
            (true, _) => KeepAlive::Forever,
            (false, true) => KeepAlive::UnloadWhenIdle,
            (false, false) => KeepAlive::For(duration),
        })
    }
}

impl fmt::Display for KeepAlive {
    /// For people: `forever`, `0`, or a duration such as `30m` or `1h 30m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepAlive::Forever => f.write_str("forever"),
            KeepAlive::UnloadWhenIdle => f.write_str("0"),
            KeepAlive::For(duration) => write!(f, "{}", humantime::format_duration(*duration)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        let minutes = |m: u64| KeepAlive::For(Duration::from_secs(m * 60));
        assert_eq!("-1".parse(), Ok(KeepAlive::Forever));
        assert_eq!("-5m".parse(), Ok(KeepAlive::Forever));
        assert_eq!("0".parse(), Ok(KeepAlive::UnloadWhenIdle));
        assert_eq!("0s".parse(), Ok(KeepAlive::UnloadWhenIdle));
        assert_eq!("30m".parse(), Ok(minutes(30)));
        assert_eq!("2h".parse(), Ok(minutes(120)));
        assert_eq!("1h 30m".parse(), Ok(minutes(90)));
        assert_eq!("300".parse(), Ok(minutes(5)));
        assert!("soon".parse::<KeepAlive>().is_err());
        assert_eq!(KeepAlive::from_seconds(-7), KeepAlive::Forever);
        assert_eq!(KeepAlive::from_seconds(0), KeepAlive::UnloadWhenIdle);
        assert_eq!(KeepAlive::from_seconds(60), minutes(1));
    }

    #[test]
    fn renders_for_ollama_and_for_files() {
        assert_eq!(KeepAlive::Forever.to_json(), serde_json::json!(-1));
        assert_eq!(KeepAlive::UnloadWhenIdle.to_json(), serde_json::json!(0));
        let half_hour = KeepAlive::For(Duration::from_secs(1800));
        assert_eq!(half_hour.to_json(), serde_json::json!(1800));
        for value in [KeepAlive::UnloadWhenIdle, half_hour] {
            assert_eq!(value.to_string().parse(), Ok(value));
        }
        assert_eq!(half_hour.to_string(), "30m");
        assert_eq!(KeepAlive::Forever.to_string(), "forever");
        assert_eq!(half_hour.duration(), Some(Duration::from_secs(1800)));
        assert_eq!(KeepAlive::Forever.duration(), None);
    }
}
