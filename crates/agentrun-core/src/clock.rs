//! The run's clock: seconds since the run started, in the backend's time.

use std::time::Duration;

use tokio::time::Instant;

/// Measures a run in reported seconds.
///
/// Against a real server one reported second is one real second. Against a
/// time-scaled simulator it is one simulated second, so the run's own figures
/// agree with the `load_duration` and `eval_duration` the server reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunClock {
    start: Instant,
    /// Reported time the run had already run before this start (a resumed run).
    offset: Duration,
    /// Real seconds per reported second.
    scale: f64,
}

impl RunClock {
    /// A clock that reads `offset_s` now: 0 for a new run, and for a resumed run
    /// the seconds it had run, so its times go on from where it stopped.
    pub(crate) fn start(scale: f64, offset_s: f64) -> RunClock {
        RunClock {
            start: Instant::now(),
            offset: Duration::try_from_secs_f64(offset_s).unwrap_or(Duration::ZERO),
            scale: if scale > 0.0 { scale } else { 1.0 },
        }
    }

    /// The real instant this start of the run began.
    pub(crate) fn started(self) -> Instant {
        self.start
    }

    /// Reported seconds since the run started.
    pub(crate) fn now_s(self) -> f64 {
        self.elapsed().as_secs_f64()
    }

    /// Reported time since the run started, earlier starts included.
    pub(crate) fn elapsed(self) -> Duration {
        self.offset
            .saturating_add(self.to_reported(self.start.elapsed()))
    }

    /// The real time left of `limit` (real time) once earlier starts are counted.
    pub(crate) fn remaining(self, limit: Duration) -> Duration {
        let used = Duration::try_from_secs_f64(self.offset.as_secs_f64() * self.scale)
            .unwrap_or(Duration::MAX);
        limit.saturating_sub(used)
    }

    /// A reported duration in real time.
    pub(crate) fn to_real(self, reported: Duration) -> Duration {
        reported.mul_f64(self.scale)
    }

    /// A real duration in reported time.
    pub(crate) fn to_reported(self, real: Duration) -> Duration {
        real.div_f64(self.scale)
    }
}
