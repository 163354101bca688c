//! The janitor task: ends idle countdowns and carries out unloads (which take time).

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use super::Scheduler;

pub(crate) enum JanitorMessage {
    /// A countdown now ends earlier than the janitor's current wake-up.
    Rescan,
    /// A runner started unloading; free its memory after the unload time.
    Unload { runner_id: u64 },
}

pub(super) async fn run(
    scheduler: Weak<Scheduler>,
    mut messages: mpsc::UnboundedReceiver<JanitorMessage>,
) {
    loop {
        let wake_at = {
            let Some(scheduler) = scheduler.upgrade() else {
                return;
            };
            let mut state = scheduler.lock();
            let next = state.next_expiry();
            state.janitor_target = next;
            drop(state);
            next.and_then(|at| scheduler.clock.wall_instant(at))
        };
        let sleep = async {
            match wake_at {
                Some(instant) => tokio::time::sleep_until(instant).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = messages.recv() => match message {
                None => return,
                Some(JanitorMessage::Rescan) => {}
                Some(JanitorMessage::Unload { runner_id }) => {
                    if let Some(scheduler) = scheduler.upgrade() {
                        tokio::spawn(unload(scheduler, runner_id));
                    }
                }
            },
            () = sleep => {
                if let Some(scheduler) = scheduler.upgrade() {
                    scheduler.lock().expire_due();
                }
            }
        }
    }
}

async fn unload(scheduler: Arc<Scheduler>, runner_id: u64) {
    let seconds = scheduler.lock().unload_seconds();
    scheduler.clock.sleep(seconds).await;
    scheduler.lock().finish_unload(runner_id);
    scheduler.unloads.send_modify(|count| *count += 1);
}
