//! What the server has resident, read from `/api/ps` and reused while nothing can have changed it.

use std::time::Duration;

use tokio::time::Instant;

use crate::backend::{BackendError, ModelBackend, RunningModel};

/// How long an answer of `/api/ps` is reused when the run itself changed nothing.
///
/// Short turns (a router's few tokens) follow each other in milliseconds; asking
/// the server before every one of them costs more than the turn's own overhead.
/// Anything the run does to residency (a load, an unload, a keep_alive refresh)
/// forgets the answer at once, and so does time: another client of the server,
/// or an expiry, is seen within this long.
const REUSE_FOR: Duration = Duration::from_millis(500);

/// The last `/api/ps` answer and when it was read.
#[derive(Debug, Default)]
pub(crate) struct ServerView {
    last: Option<(Instant, Vec<RunningModel>)>,
}

impl ServerView {
    /// The resident models: the last answer if it is fresh, else the server's.
    pub(crate) async fn resident(
        &mut self,
        backend: &dyn ModelBackend,
    ) -> Result<Vec<RunningModel>, BackendError> {
        if let Some((read_at, models)) = &self.last
            && read_at.elapsed() < REUSE_FOR
        {
            return Ok(models.clone());
        }
        // A server that went away between turns (a restart) is waited for, within a
        // bounded time, before the run gives up on it.
        let models = crate::agent::reconnect::while_unreachable(
            || backend.running_models(),
            |error, attempt| {
                tracing::warn!(%error, attempt, "the server is unreachable; retrying");
            },
        )
        .await?;
        self.last = Some((Instant::now(), models.clone()));
        Ok(models)
    }

    /// Forgets the last answer: residency changed, or may have.
    pub(crate) fn forget(&mut self) {
        self.last = None;
    }
}
