//! Tests of keep_alive parsing against Go's `time.ParseDuration` and Ollama's rules.

use std::time::Duration;

use super::*;

#[track_caller]
fn check_request(value: api::KeepAlive, expected: Result<SessionDuration, &str>) {
    let actual = SessionDuration::from_request(&value);
    assert_eq!(
        actual,
        expected.map_err(|m| DurationError(m.to_owned())),
        "for {value:?}"
    );
}

fn secs(seconds: f64) -> SessionDuration {
    SessionDuration::For(Duration::from_secs_f64(seconds))
}

#[test]
fn request_values_follow_ollama() {
    use api::KeepAlive::{Seconds, Text};
    check_request(Seconds(300.0), Ok(secs(300.0)));
    check_request(Seconds(1.5), Ok(secs(1.5)));
    check_request(Seconds(0.0), Ok(SessionDuration::ZERO));
    check_request(Seconds(-1.0), Ok(SessionDuration::Forever));
    check_request(Text("5m".into()), Ok(secs(300.0)));
    check_request(Text("1h30m".into()), Ok(secs(5400.0)));
    check_request(Text("1.5h".into()), Ok(secs(5400.0)));
    check_request(Text("250ms".into()), Ok(secs(0.25)));
    check_request(Text("0".into()), Ok(SessionDuration::ZERO));
    check_request(Text("-1m".into()), Ok(SessionDuration::Forever));
    check_request(
        Text("300".into()),
        Err("time: missing unit in duration \"300\""),
    );
    check_request(Text("".into()), Err("time: invalid duration \"\""));
    check_request(
        Text("5x".into()),
        Err("time: unknown unit \"x\" in duration \"5x\""),
    );
    check_request(Text("m".into()), Err("time: invalid duration \"m\""));
}

#[test]
fn env_values_accept_plain_seconds() {
    assert_eq!(SessionDuration::from_env("300"), Ok(secs(300.0)));
    assert_eq!(SessionDuration::from_env("10m"), Ok(secs(600.0)));
    assert_eq!(
        SessionDuration::from_env("-1"),
        Ok(SessionDuration::Forever)
    );
    assert!(SessionDuration::from_env("soon").is_err());
}

#[test]
fn forever_sorts_after_every_duration() {
    assert!(SessionDuration::Forever.sort_key() > secs(1e9).sort_key());
    assert!(SessionDuration::ZERO.sort_key() < secs(1.0).sort_key());
}
