//! The background loader: runs the planner's preloads one at a time, each held open until resident.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backend::{KeepAlive, ModelBackend, ModelOptions};
use crate::clock::RunClock;
use crate::event::{Event, EventSink, LoadCause};

/// One preload to run.
#[derive(Debug, Clone)]
pub(crate) struct PreloadJob {
    pub(crate) model: String,
    pub(crate) options: ModelOptions,
    pub(crate) keep_alive: Option<KeepAlive>,
    pub(crate) expected_s: Option<f64>,
}

/// How often (in reported time) the loader asks the server whether the turn's own
/// model is resident yet.
const GATE_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// The queued preloads, and the model that must be resident before they start.
#[derive(Debug, Default)]
struct Queue {
    jobs: VecDeque<PreloadJob>,
    /// The turn's own model: preloads wait for it, so they never compete with
    /// the load the turn is waiting on (Ollama loads one model at a time).
    gate: Option<String>,
}

/// A finished preload, reported back to the executor.
#[derive(Debug, Clone)]
pub(crate) struct PreloadDone {
    pub(crate) model: String,
    /// Server-measured load time; `None` when the preload failed.
    pub(crate) load_s: Option<f64>,
}

/// Runs preloads sequentially in a background task.
///
/// Ollama serializes loads anyway; running them one at a time keeps the plan's
/// order and means a new plan can drop queued preloads that are no longer wanted.
/// Dropping the loader aborts the task, which closes an in-flight preload's
/// connection, and Ollama then abandons that load.
pub(crate) struct Preloader {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    done: mpsc::UnboundedReceiver<PreloadDone>,
    busy: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
}

impl Preloader {
    pub(crate) fn spawn(
        backend: Arc<dyn ModelBackend>,
        events: EventSink,
        clock: RunClock,
    ) -> Preloader {
        let queue: Arc<Mutex<Queue>> = Arc::default();
        let wake = Arc::new(Notify::new());
        let busy: Arc<Mutex<Option<String>>> = Arc::default();
        let (done_tx, done) = mpsc::unbounded_channel();
        let task = tokio::spawn({
            let queue = queue.clone();
            let wake = wake.clone();
            let busy = busy.clone();
            async move {
                loop {
                    let gate = queue
                        .lock()
                        .expect("loader queue lock poisoned")
                        .gate
                        .clone();
                    if let Some(gate) = gate {
                        let resident = backend
                            .running_models()
                            .await
                            .map(|models| models.iter().any(|model| model.name == gate))
                            .unwrap_or(false);
                        if !resident {
                            tokio::select! {
                                _ = tokio::time::sleep(clock.to_real(GATE_POLL)) => {}
                                _ = wake.notified() => {}
                            }
                            continue;
                        }
                        let mut queue = queue.lock().expect("loader queue lock poisoned");
                        if queue.gate.as_deref() == Some(gate.as_str()) {
                            queue.gate = None;
                        }
                        continue;
                    }
                    let job = {
                        let mut queue = queue.lock().expect("loader queue lock poisoned");
                        let job = queue.jobs.pop_front();
                        *busy.lock().expect("loader busy lock poisoned") =
                            job.as_ref().map(|job| job.model.clone());
                        job
                    };
                    let Some(job) = job else {
                        wake.notified().await;
                        continue;
                    };
                    events.emit(Event::LoadStarted {
                        model: job.model.clone(),
                        cause: LoadCause::Preload,
                        expected_s: job.expected_s,
                        at_s: clock.now_s(),
                    });
                    let started = Instant::now();
                    let result = backend
                        .preload(&job.model, &job.options, job.keep_alive)
                        .await;
                    let load_s = match result {
                        Ok(report) => {
                            // Ollama sends no timing fields with a preload's answer, so
                            // the client's own measure stands in for them.
                            let load_s = report
                                .load_duration
                                .unwrap_or_else(|| clock.to_reported(started.elapsed()))
                                .as_secs_f64();
                            events.emit(Event::LoadFinished {
                                model: job.model.clone(),
                                cause: LoadCause::Preload,
                                load_s,
                                at_s: clock.now_s(),
                            });
                            Some(load_s)
                        }
                        Err(error) => {
                            tracing::warn!(model = %job.model, %error, "preload failed");
                            None
                        }
                    };
                    // Report before clearing `busy`: whoever sees the loader idle
                    // finds the result already sent.
                    let _ = done_tx.send(PreloadDone {
                        model: job.model,
                        load_s,
                    });
                    *busy.lock().expect("loader busy lock poisoned") = None;
                }
            }
        });
        Preloader {
            queue,
            wake,
            done,
            busy,
            task,
        }
    }

    /// Replaces the queued preloads with a new plan's. A preload already in
    /// flight is left to finish: aborting it would waste the work done.
    /// The preloads start once `gate` (the turn's own model) is resident.
    pub(crate) fn replace(&self, jobs: Vec<PreloadJob>, gate: Option<String>) {
        let mut queue = self.queue.lock().expect("loader queue lock poisoned");
        queue.jobs.clear();
        queue.jobs.extend(jobs);
        queue.gate = gate;
        drop(queue);
        self.wake.notify_one();
    }

    /// Lets queued preloads start: the turn's own model is resident (its call answered).
    pub(crate) fn open_gate(&self) {
        open_gate(&self.queue, &self.wake);
    }

    /// A hook that opens the gate, for the turn's first streamed text: a model
    /// that streams is resident.
    pub(crate) fn gate_opener(&self) -> Arc<dyn Fn() + Send + Sync> {
        let queue = self.queue.clone();
        let wake = self.wake.clone();
        Arc::new(move || open_gate(&queue, &wake))
    }

    /// The model being loaded right now, if any.
    pub(crate) fn in_flight(&self) -> Option<String> {
        self.busy.lock().expect("loader busy lock poisoned").clone()
    }

    /// Preloads finished since the last call.
    pub(crate) fn finished(&mut self) -> Vec<PreloadDone> {
        let mut finished = Vec::new();
        while let Ok(done) = self.done.try_recv() {
            finished.push(done);
        }
        finished
    }
}

fn open_gate(queue: &Mutex<Queue>, wake: &Notify) {
    let mut queue = queue.lock().expect("loader queue lock poisoned");
    if queue.gate.take().is_some() {
        drop(queue);
        wake.notify_one();
    }
}

impl Drop for Preloader {
    fn drop(&mut self) {
        self.task.abort();
    }
}
