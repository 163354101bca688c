//! Simulated time: tokio time divided by the time scale, and its calendar timestamps.
//!
//! Only tokio's clock is read, so a runtime with paused time (`start_paused`) runs the
//! simulation in virtual time, deterministically.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Converts between wall time (tokio's clock) and simulated seconds.
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    start: Instant,
    time_scale: f64,
    epoch_unix_seconds: f64,
}

impl Clock {
    /// A clock starting now. `time_scale` is wall seconds per simulated second; zero freezes
    /// simulated time (nothing sleeps, no idle timer ever fires).
    pub(crate) fn new(time_scale: f64, epoch_unix_seconds: f64) -> Clock {
        Clock {
            start: Instant::now(),
            time_scale,
            epoch_unix_seconds,
        }
    }

    /// Whether simulated time stands still.
    pub(crate) fn is_frozen(&self) -> bool {
        self.time_scale <= 0.0
    }

    /// Wall seconds since the clock started (tokio's clock; virtual under paused time).
    pub(crate) fn wall_seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Simulated seconds since the clock started.
    pub(crate) fn now(&self) -> f64 {
        if self.is_frozen() {
            0.0
        } else {
            self.wall_seconds() / self.time_scale
        }
    }

    /// Simulated seconds elapsed since `since`, a tokio instant.
    pub(crate) fn since(&self, since: Instant) -> f64 {
        if self.is_frozen() {
            0.0
        } else {
            since.elapsed().as_secs_f64() / self.time_scale
        }
    }

    /// The wall instant at simulated second `at`, or `None` if it never comes.
    pub(crate) fn wall_instant(&self, at: f64) -> Option<Instant> {
        if self.is_frozen() || !at.is_finite() {
            return None;
        }
        let wall = (at * self.time_scale).max(0.0);
        if wall > 1.0e9 {
            return None;
        }
        // One nanosecond late, so that `now()` at wake-up is never below `at` after rounding.
        Some(self.start + Duration::from_secs_f64(wall) + Duration::from_nanos(1))
    }

    /// Sleeps for `seconds` of simulated time; forever if `seconds` is infinite.
    pub(crate) async fn sleep(&self, seconds: f64) {
        if seconds == f64::INFINITY {
            std::future::pending::<()>().await;
        }
        if let Some(duration) = self.wall_duration(seconds) {
            tokio::time::sleep(duration).await;
        }
    }

    /// Sleeps until simulated second `at`.
    pub(crate) async fn sleep_until(&self, at: f64) {
        if let Some(instant) = self.wall_instant(at) {
            tokio::time::sleep_until(instant).await;
        }
    }

    fn wall_duration(&self, seconds: f64) -> Option<Duration> {
        if self.is_frozen() || seconds.is_nan() || seconds <= 0.0 {
            return None;
        }
        Duration::try_from_secs_f64(seconds * self.time_scale).ok()
    }

    /// RFC 3339 calendar time of simulated second `at` (UTC, nanoseconds).
    pub(crate) fn timestamp(&self, at: f64) -> String {
        let unix = self.epoch_unix_seconds + at;
        let time = Duration::try_from_secs_f64(unix)
            .ok()
            .and_then(|offset| UNIX_EPOCH.checked_add(offset))
            .unwrap_or(UNIX_EPOCH);
        humantime::format_rfc3339_nanos(time).to_string()
    }

    /// RFC 3339 calendar time of the present simulated moment.
    pub(crate) fn timestamp_now(&self) -> String {
        self.timestamp(self.now())
    }
}

/// The Unix time now, read once when a simulator is created without a configured epoch.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|duration| duration.as_secs_f64())
        .unwrap_or(0.0)
}
