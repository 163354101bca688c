//! keep_alive values: Ollama's session duration and its parsing rules (Go durations).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::api;

/// How long a model stays loaded after its last request finishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionDuration {
    /// Never expires (a negative keep_alive). Still evictable when memory is needed.
    Forever,
    /// Expires this long after going idle; zero unloads as soon as it is idle.
    For(Duration),
}

impl SessionDuration {
    /// Unload when idle.
    pub const ZERO: SessionDuration = SessionDuration::For(Duration::ZERO);

    /// Ollama's default, five minutes.
    pub const DEFAULT: SessionDuration = SessionDuration::For(Duration::from_secs(300));

    /// Parses a request's `keep_alive` as Ollama's `api.Duration` does: a number is seconds
    /// (negative = forever), a string is a Go duration (negative = forever). The error is
    /// Ollama's message, e.g. `time: missing unit in duration "300"`.
    pub fn from_request(value: &api::KeepAlive) -> Result<SessionDuration, DurationError> {
        match value {
            api::KeepAlive::Seconds(seconds) => Ok(SessionDuration::from_seconds(*seconds)),
            api::KeepAlive::Text(text) => parse_go_duration(text)
                .map(SessionDuration::from_nanos)
                .map_err(DurationError),
        }
    }

    /// Parses `OLLAMA_KEEP_ALIVE`: a Go duration, or else a plain integer of seconds.
    pub fn from_env(text: &str) -> Result<SessionDuration, DurationError> {
        let text = text.trim();
        match parse_go_duration(text) {
            Ok(nanos) => Ok(SessionDuration::from_nanos(nanos)),
            Err(message) => match text.parse::<i64>() {
                Ok(seconds) => Ok(SessionDuration::from_seconds(seconds as f64)),
                Err(_) => Err(DurationError(message)),
            },
        }
    }

    /// `seconds` seconds; negative means forever.
    pub fn from_seconds(seconds: f64) -> SessionDuration {
        if seconds < 0.0 {
            SessionDuration::Forever
        } else if seconds.is_finite() && seconds < 9.0e9 {
            SessionDuration::For(Duration::from_secs_f64(seconds))
        } else {
            SessionDuration::Forever
        }
    }

    fn from_nanos(nanos: i64) -> SessionDuration {
        if nanos < 0 {
            SessionDuration::Forever
        } else {
            SessionDuration::For(Duration::from_nanos(nanos as u64))
        }
    }

    /// Whether this unloads the model as soon as it is idle.
    pub fn is_zero(self) -> bool {
        self == SessionDuration::ZERO
    }

    /// Seconds, or `None` for forever.
    pub fn seconds(self) -> Option<f64> {
        match self {
            SessionDuration::Forever => None,
            SessionDuration::For(duration) => Some(duration.as_secs_f64()),
        }
    }

    /// Ollama's eviction sort key: the duration as unsigned nanoseconds, so forever
    /// (`math.MaxInt64`, or any negative value cast to uint64) sorts last.
    pub(crate) fn sort_key(self) -> u64 {
        match self {
            SessionDuration::Forever => u64::MAX,
            SessionDuration::For(duration) => duration.as_nanos().min(u64::MAX as u128) as u64,
        }
    }

    /// The seconds Ollama adds to "now" for `expires_at`: forever is `math.MaxInt64` ns.
    pub(crate) fn display_seconds(self) -> f64 {
        match self {
            SessionDuration::Forever => i64::MAX as f64 / 1e9,
            SessionDuration::For(duration) => duration.as_secs_f64(),
        }
    }
}

impl fmt::Display for SessionDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionDuration::Forever => f.write_str("-1"),
            SessionDuration::For(duration) => write!(f, "{}s", duration.as_secs_f64()),
        }
    }
}

impl Serialize for SessionDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SessionDuration {
    /// Accepts a number of seconds or a string in `OLLAMA_KEEP_ALIVE` syntax.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match api::KeepAlive::deserialize(deserializer)? {
            api::KeepAlive::Seconds(seconds) => Ok(SessionDuration::from_seconds(seconds)),
            api::KeepAlive::Text(text) => {
                SessionDuration::from_env(&text).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// A duration that does not parse; the text is Go's message, e.g.
/// `time: missing unit in duration "300"`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(pub String);

/// Parses a Go duration string (`time.ParseDuration`) into nanoseconds, with Go's messages.
pub(crate) fn parse_go_duration(original: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration \"{original}\"");
    let mut rest = original;
    let mut negative = false;
    if let Some(stripped) = rest.strip_prefix('-') {
        negative = true;
        rest = stripped;
    } else if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let first = rest.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        let integer_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let integer: f64 = if integer_len > 0 {
            rest[..integer_len].parse::<f64>().map_err(|_| invalid())?
        } else {
            0.0
        };
        rest = &rest[integer_len..];
        let mut fraction = 0.0;
        let mut fraction_len = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            fraction_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            if fraction_len > 0 {
                let digits = &after_dot[..fraction_len];
                fraction = format!("0.{digits}")
                    .parse::<f64>()
                    .map_err(|_| invalid())?;
            }
            rest = &after_dot[fraction_len..];
        }
        if integer_len == 0 && fraction_len == 0 {
            return Err(invalid());
        }
        let unit_len = rest
            .bytes()
            .take_while(|b| *b != b'.' && !b.is_ascii_digit())
            .count();
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{original}\""));
        }
        let nanos_per_unit: f64 = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(format!(
                    "time: unknown unit \"{unit}\" in duration \"{original}\""
                ));
            }
        };
        total += (integer + fraction) * nanos_per_unit;
        if total > i64::MAX as f64 {
            return Err(invalid());
        }
        rest = &rest[unit_len..];
    }
    let nanos = total.round() as i64;
    Ok(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests;
