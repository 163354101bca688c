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
    /// Real seconds per reported second.
    scale: f64,
}

impl RunClock {
    pub(crate) fn start(scale: f64) -> RunClock {
        RunClock {
            start: Instant::now(),
            scale: if scale > 0.0 { scale } else { 1.0 },
        }
    }

    /// The real instant the run started.
    pub(crate) fn started(self) -> Instant {
        self.start
    }

    /// Reported seconds since the run started.
    pub(crate) fn now_s(self) -> f64 {
        self.to_reported(self.start.elapsed()).as_secs_f64()
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
