//! Waiting out a server that went away mid-run (a restart, a crash): calls that find
//! nothing listening are retried with backoff for a bounded time, then the error stands.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::backend::BackendError;

/// How long a run waits for its server to come back before it stops. Ollama restarts in
/// seconds; a server still gone after this needs a person.
pub(crate) const RECONNECT_WINDOW: Duration = Duration::from_secs(60);

/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The pause before reconnect attempt `attempt` (from 1): 0.5 s, doubling, at most 8 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500)
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// Whether the clock started at `since` still allows waiting for the server.
pub(crate) fn within_window(since: Instant) -> bool {
    since.elapsed() < RECONNECT_WINDOW
}

/// Runs `call` until it does not fail with [`BackendError::Unreachable`] or the window has
/// passed; `on_retry` hears each failure that is retried, with its attempt number.
pub(crate) async fn while_unreachable<T, F, Fut>(
    mut call: F,
    mut on_retry: impl FnMut(&BackendError, u32),
) -> Result<T, BackendError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BackendError>>,
{
    let since = Instant::now();
    let mut attempt = 0;
    loop {
        match call().await {
            Err(error @ BackendError::Unreachable { .. }) if within_window(since) => {
                attempt += 1;
                on_retry(&error, attempt);
                tokio::time::sleep(backoff(attempt)).await;
            }
            outcome => return outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn gone() -> BackendError {
        BackendError::Unreachable {
            url: "http://127.0.0.1:11434".into(),
            reason: "connection refused".into(),
        }
    }

    #[test]
    fn the_pause_doubles_up_to_eight_seconds() {
        let pauses: Vec<u64> = (1..=7).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(pauses, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_comes_back_is_waited_for() {
        let calls = Cell::new(0);
        let mut retried = Vec::new();
        let started = Instant::now();
        let answer = while_unreachable(
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move { if n <= 3 { Err(gone()) } else { Ok(n) } }
            },
            |_, attempt| retried.push(attempt),
        )
        .await;
        assert_eq!(answer.expect("the server came back"), 4);
        assert_eq!(retried, [1, 2, 3]);
        assert_eq!(started.elapsed(), Duration::from_millis(500 + 1000 + 2000));
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_stays_away_is_given_up_on_after_the_window() {
        let started = Instant::now();
        let error = while_unreachable(|| async { Err::<(), _>(gone()) }, |_, _| {})
            .await
            .expect_err("never reachable");
        assert!(matches!(error, BackendError::Unreachable { .. }));
        let waited = started.elapsed();
        assert!(
            waited >= RECONNECT_WINDOW && waited < RECONNECT_WINDOW + MAX_BACKOFF,
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn other_failures_are_not_retried_here() {
        let calls = Cell::new(0);
        let error = while_unreachable(
            || {
                calls.set(calls.get() + 1);
                async {
                    Err::<(), _>(BackendError::Busy {
                        message: "queue full".into(),
                    })
                }
            },
            |_, _| {},
        )
        .await
        .expect_err("busy");
        assert!(matches!(error, BackendError::Busy { .. }));
        assert_eq!(calls.get(), 1);
    }
}
