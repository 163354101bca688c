//! Durations as people write them in workflow files: `90s`, `30m`, `1h 30m`, or seconds.

use std::time::Duration;

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a duration: {reason}")]
pub struct DurationError {
    /// The text given.
    pub text: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Parses a duration such as `90s`, `30m`, `2h`, `1h 30m` or `500ms`; a bare number is
/// seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if let Ok(seconds) = trimmed.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(trimmed).map_err(|error| DurationError {
        text: text.to_owned(),
        reason: error.to_string(),
    })
}

/// Writes a duration the way a person would write it in a file: `30m`, `1h 30m`, `90s`.
pub(crate) fn format_duration(duration: Duration) -> String {
    humantime::format_duration(duration)
        .to_string()
        .replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_units_and_bare_seconds() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn formats_back_to_what_it_reads() {
        for text in ["30m", "1h30m", "90s", "2h", "500ms"] {
            let duration = parse_duration(text).expect("valid");
            assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
    }
}
