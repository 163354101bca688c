//! Residency hints: how long a model stays loaded (`keep_alive`) and how its weights are read.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::{DurationError, format_duration, parse_duration};

/// Residency hints of one agent's model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidencySpec {
    /// The keep_alive the `static` policy sends with every call; `None` sends none.
    pub keep_alive: Option<KeepAliveSpec>,
    /// How the weights are read; `None` inherits `memory.load_mode`.
    pub load_mode: Option<LoadMode>,
}

/// How long Ollama keeps a model loaded after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeepAliveSpec {
    /// Never expire (`-1`, or any negative value).
    Forever,
    /// Unload as soon as the call finishes (`0`).
    Zero,
    /// Expire after this long idle.
    Duration(Duration),
}

impl KeepAliveSpec {
    /// The idle time before expiry; `None` for [`KeepAliveSpec::Forever`].
    pub fn as_duration(&self) -> Option<Duration> {
        match self {
            KeepAliveSpec::Forever => None,
            KeepAliveSpec::Zero => Some(Duration::ZERO),
            KeepAliveSpec::Duration(duration) => Some(*duration),
        }
    }

    /// The value as Ollama's `keep_alive` field takes it: `-1`, `0`, or whole seconds such as
    /// `"1800s"`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            KeepAliveSpec::Forever => serde_json::Value::from(-1),
            KeepAliveSpec::Zero => serde_json::Value::from(0),
            KeepAliveSpec::Duration(duration) => {
                serde_json::Value::from(format!("{}s", duration.as_secs().max(1)))
            }
        }
    }

    /// A number of seconds: negative is forever, zero unloads at once.
    pub fn from_seconds(seconds: i64) -> KeepAliveSpec {
        match seconds {
            ..0 => KeepAliveSpec::Forever,
            0 => KeepAliveSpec::Zero,
            positive => KeepAliveSpec::Duration(Duration::from_secs(positive.unsigned_abs())),
        }
    }
}

impl FromStr for KeepAliveSpec {
    type Err = DurationError;

    /// Parses `-1` (or any negative number or duration), `0`, a number of seconds, or a
    /// duration such as `30m`, `2h` or `1h 30m`.
    fn from_str(text: &str) -> Result<KeepAliveSpec, DurationError> {
        let trimmed = text.trim();
        if let Ok(seconds) = trimmed.parse::<i64>() {
            return Ok(KeepAliveSpec::from_seconds(seconds));
        }
        if let Some(positive) = trimmed.strip_prefix('-') {
            parse_duration(positive)?;
            return Ok(KeepAliveSpec::Forever);
        }
        let duration = parse_duration(trimmed)?;
        Ok(if duration.is_zero() {
            KeepAliveSpec::Zero
        } else {
            KeepAliveSpec::Duration(duration)
        })
    }
}

impl fmt::Display for KeepAliveSpec {
    /// `-1`, `0`, or a duration such as `30m`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepAliveSpec::Forever => formatter.write_str("-1"),
            KeepAliveSpec::Zero => formatter.write_str("0"),
            KeepAliveSpec::Duration(duration) => formatter.write_str(&format_duration(*duration)),
        }
    }
}

/// How a model's weights are read when it loads (Ollama's `use_mmap` load-time option).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoadMode {
    /// Let the planner pick per model from measured load times.
    #[default]
    Auto,
    /// Memory-map the weights (Ollama's default; slow cold loads on Apple Silicon).
    Mmap,
    /// Read the weights into memory (`use_mmap: false`).
    NoMmap,
}

impl LoadMode {
    /// Every load mode, in the order the documentation lists them.
    pub const ALL: [LoadMode; 3] = [LoadMode::Auto, LoadMode::Mmap, LoadMode::NoMmap];

    /// The kebab-case name used in files and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            LoadMode::Auto => "auto",
            LoadMode::Mmap => "mmap",
            LoadMode::NoMmap => "no-mmap",
        }
    }
}

impl fmt::Display for LoadMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for LoadMode {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<LoadMode, UnknownName> {
        LoadMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == text)
            .ok_or_else(|| UnknownName::new("load mode", text, &["auto", "mmap", "no-mmap"]))
    }
}

/// A name that is not one of the accepted ones (a policy or a load mode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`; expected one of: {}", expected.join(", "))]
pub struct UnknownName {
    /// What was being named, e.g. "policy".
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted names.
    pub expected: Vec<&'static str>,
}

impl UnknownName {
    pub(crate) fn new(what: &'static str, name: &str, expected: &[&'static str]) -> UnknownName {
        UnknownName {
            what,
            name: name.to_owned(),
            expected: expected.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_parses_every_spelling() {
        let minutes = |m: u64| KeepAliveSpec::Duration(Duration::from_secs(m * 60));
        assert_eq!("-1".parse(), Ok(KeepAliveSpec::Forever));
        assert_eq!("-5m".parse(), Ok(KeepAliveSpec::Forever));
        assert_eq!("0".parse(), Ok(KeepAliveSpec::Zero));
        assert_eq!("0s".parse(), Ok(KeepAliveSpec::Zero));
        assert_eq!("30m".parse(), Ok(minutes(30)));
        assert_eq!("2h".parse(), Ok(minutes(120)));
        assert_eq!("1h 30m".parse(), Ok(minutes(90)));
        assert_eq!("300".parse(), Ok(minutes(5)));
        assert!("soon".parse::<KeepAliveSpec>().is_err());
        assert_eq!(KeepAliveSpec::from_seconds(-7), KeepAliveSpec::Forever);
        assert_eq!(KeepAliveSpec::from_seconds(0), KeepAliveSpec::Zero);
        assert_eq!(KeepAliveSpec::from_seconds(60), minutes(1));
    }

    #[test]
    fn keep_alive_renders_for_ollama_and_for_people() {
        assert_eq!(KeepAliveSpec::Forever.to_json(), serde_json::json!(-1));
        assert_eq!(KeepAliveSpec::Zero.to_json(), serde_json::json!(0));
        let half_hour = KeepAliveSpec::Duration(Duration::from_secs(1800));
        assert_eq!(half_hour.to_json(), serde_json::json!("1800s"));
        assert_eq!(half_hour.to_string(), "30m");
        assert_eq!(half_hour.as_duration(), Some(Duration::from_secs(1800)));
        assert_eq!(KeepAliveSpec::Forever.as_duration(), None);
    }

    #[test]
    fn load_mode_names_round_trip() {
        for mode in LoadMode::ALL {
            assert_eq!(mode.to_string().parse(), Ok(mode));
        }
        let error = "nommap".parse::<LoadMode>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown load mode `nommap`; expected one of: auto, mmap, no-mmap"
        );
    }
}
