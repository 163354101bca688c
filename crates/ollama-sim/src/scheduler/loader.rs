//! The loader task: takes pending requests one at a time, FIFO, and blocks on each until its
//! model is loaded, like Ollama's `processPending`.

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use super::state::Decision;
use super::{Pending, RunnerLease, Scheduler};
use crate::api::ApiError;

pub(super) async fn run(scheduler: Weak<Scheduler>, mut pending: mpsc::Receiver<Pending>) {
    while let Some(request) = pending.recv().await {
        let Some(scheduler) = scheduler.upgrade() else {
            return;
        };
        scheduler.lock().dequeued();
        scheduler.process(request).await;
    }
}

impl Scheduler {
    async fn process(self: &Arc<Self>, pending: Pending) {
        let Pending { load, mut reply } = pending;
        let request_id = load.request_id;
        // A request whose client left while it was queued is skipped, as in Ollama.
        if reply.is_closed() {
            return;
        }
        let mut unloads = self.unloads.subscribe();
        loop {
            unloads.borrow_and_update();
            let decision = {
                let mut faults = self.lock_faults();
                self.lock().decide(&load, &mut faults)
            };
            match decision {
                Decision::Granted(grant) => {
                    let lease = self.lease(grant, 0.0);
                    deliver(reply, Ok(lease));
                    return;
                }
                Decision::Load(plan) => {
                    let waited = plan.failure.as_ref().map_or(plan.seconds, |f| f.0);
                    let aborted = tokio::select! {
                        () = self.clock.sleep(waited) => false,
                        () = reply.closed() => true,
                    };
                    if aborted {
                        self.lock().abort_load(plan.runner_id, request_id);
                        return;
                    }
                    if let Some((_, message)) = plan.failure {
                        self.lock().fail_load(plan.runner_id, request_id, &message);
                        deliver(reply, Err(ApiError::new(500, message)));
                        return;
                    }
                    let grant = self.lock().finish_load(plan.runner_id, request_id);
                    let result = match grant {
                        Some(grant) => Ok(self.lease(grant, plan.seconds)),
                        None => Err(ApiError::new(500, "the model was unloaded by a reset")),
                    };
                    deliver(reply, result);
                    return;
                }
                Decision::Wait => {
                    tokio::select! {
                        changed = unloads.changed() => {
                            if changed.is_err() {
                                return;
                            }
                        }
                        () = reply.closed() => return,
                    }
                }
            }
        }
    }
}

/// Hands the result to the waiting handler; if it has gone, dropping the lease releases it
/// (outside the state lock, which the release takes).
fn deliver(
    reply: tokio::sync::oneshot::Sender<Result<RunnerLease, ApiError>>,
    result: Result<RunnerLease, ApiError>,
) {
    drop(reply.send(result));
}
