//! The background loader: runs the planner's preloads one at a time per host, each held open
//! until resident. A queued preload can be withdrawn and a loading one aborted: dropping its request
//! closes the connection, and Ollama abandons a load whose client has gone.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc, watch};
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
    /// The agent expected to call the model next: on several hosts a replicated model's
    /// preload warms the copy that agent's call will use.
    pub(crate) caller: Option<String>,
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
    /// No queued preload starts until the next plan replaces the queue: the turn that
    /// planned them has ended, and the next speaker may need something else.
    held: bool,
}

/// The preload the loader is running.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Loading {
    /// The host the preload loads on.
    host: String,
    /// Counts the host's jobs, so an abort reaches only the job it was meant for.
    job: u64,
    pub(crate) model: String,
    started: Instant,
}

impl Loading {
    /// Seconds, in the run's time, since the preload was sent.
    pub(crate) fn seconds(&self, clock: RunClock) -> f64 {
        clock.to_reported(self.started.elapsed()).as_secs_f64()
    }
}

/// A finished preload, reported back to the executor.
#[derive(Debug, Clone)]
pub(crate) struct PreloadDone {
    pub(crate) model: String,
    /// Server-measured load time; `None` when the preload failed or was aborted.
    pub(crate) load_s: Option<f64>,
}

/// The host a model loads on; with one server every model is on the same host.
pub(crate) type HostOf = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Runs preloads in background tasks, one at a time per host.
///
/// Ollama serializes loads per server; running each host's preloads one at a time keeps
/// the plan's order and means a new plan can withdraw queued preloads that are no longer
/// wanted, while preloads on different hosts load at once.
/// [`Preloader::abort`] and dropping the loader close an in-flight preload's
/// connection, and Ollama then abandons that load.
pub(crate) struct Preloader {
    backend: Arc<dyn ModelBackend>,
    events: EventSink,
    clock: RunClock,
    host_of: HostOf,
    /// Each host's loader, started with the first preload planned on it.
    lanes: Arc<Mutex<BTreeMap<String, Lane>>>,
    done_tx: mpsc::UnboundedSender<PreloadDone>,
    done: mpsc::UnboundedReceiver<PreloadDone>,
}

/// One host's loader: its queue and the task that runs it.
struct Lane {
    queue: Arc<Mutex<Queue>>,
    wake: Arc<Notify>,
    busy: watch::Receiver<Option<Loading>>,
    /// The job to abort: the loader drops that job's request.
    abort: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Lane {
    fn spawn(
        host: String,
        backend: Arc<dyn ModelBackend>,
        events: EventSink,
        clock: RunClock,
        done_tx: mpsc::UnboundedSender<PreloadDone>,
    ) -> Lane {
        let queue: Arc<Mutex<Queue>> = Arc::default();
        let wake = Arc::new(Notify::new());
        let (busy_tx, busy) = watch::channel(None::<Loading>);
        let (abort, abort_rx) = watch::channel(0_u64);
        let task = tokio::spawn({
            let queue = queue.clone();
            let wake = wake.clone();
            async move {
                let mut jobs_started = 0_u64;
                loop {
                    let (held, gate) = {
                        let queue = queue.lock().expect("loader queue lock poisoned");
                        (queue.held, queue.gate.clone())
                    };
                    if held {
                        wake.notified().await;
                        continue;
                    }
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
                        if let Some(job) = &job {
                            jobs_started += 1;
                            busy_tx.send_replace(Some(Loading {
                                host: host.clone(),
                                job: jobs_started,
                                model: job.model.clone(),
                                started: Instant::now(),
                            }));
                        }
                        job
                    };
                    let Some(job) = job else {
                        wake.notified().await;
                        continue;
                    };
                    let this_job = jobs_started;
                    events.emit(Event::LoadStarted {
                        model: job.model.clone(),
                        cause: LoadCause::Preload,
                        expected_s: job.expected_s,
                        at_s: clock.now_s(),
                    });
                    let started = Instant::now();
                    let mut abort_rx = abort_rx.clone();
                    let result = tokio::select! {
                        result = crate::fleet::maybe_as_caller(
                            job.caller.clone(),
                            backend.preload(&job.model, &job.options, job.keep_alive),
                        ) => {
                            Some(result)
                        }
                        // Dropping the request future closes its connection.
                        _ = abort_rx.wait_for(|&job| job == this_job) => None,
                    };
                    let load_s = match result {
                        None => None,
                        Some(Ok(report)) => {
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
                        Some(Err(error)) => {
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
                    busy_tx.send_replace(None);
                }
            }
        });
        Lane {
            queue,
            wake,
            busy,
            abort,
            task,
        }
    }

    /// Replaces the queued preloads; returns the withdrawn ones' models.
    fn replace(&self, jobs: Vec<PreloadJob>, gate: Option<String>) -> Vec<String> {
        let mut queue = self.queue.lock().expect("loader queue lock poisoned");
        let withdrawn = queue
            .jobs
            .drain(..)
            .filter(|old| !jobs.iter().any(|job| job.model == old.model))
            .map(|old| old.model)
            .collect();
        queue.jobs.extend(jobs);
        queue.gate = gate;
        queue.held = false;
        drop(queue);
        self.wake.notify_one();
        withdrawn
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Preloader {
    /// A loader whose preloads all load on one host.
    pub(crate) fn spawn(
        backend: Arc<dyn ModelBackend>,
        events: EventSink,
        clock: RunClock,
    ) -> Preloader {
        Preloader::on_hosts(backend, events, clock, Arc::new(|_: &str| String::new()))
    }

    /// A loader that runs one preload at a time on each host `host_of` names.
    pub(crate) fn on_hosts(
        backend: Arc<dyn ModelBackend>,
        events: EventSink,
        clock: RunClock,
        host_of: HostOf,
    ) -> Preloader {
        let (done_tx, done) = mpsc::unbounded_channel();
        Preloader {
            backend,
            events,
            clock,
            host_of,
            lanes: Arc::default(),
            done_tx,
            done,
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Lane>> {
        self.lanes.lock().expect("loader lanes lock poisoned")
    }

    /// Replaces the queued preloads with a new plan's and returns the models of the
    /// queued ones the new plan no longer wants (withdrawn before they started). A
    /// preload already in flight is left alone ([`Preloader::abort`] ends it).
    /// The preloads on the host of `gate` (the turn's own model) start once it is resident.
    pub(crate) fn replace(&self, jobs: Vec<PreloadJob>, gate: Option<String>) -> Vec<String> {
        let gate_host = gate.as_deref().map(|model| (self.host_of)(model));
        let mut by_host: BTreeMap<String, Vec<PreloadJob>> = BTreeMap::new();
        for job in jobs {
            by_host
                .entry((self.host_of)(&job.model))
                .or_default()
                .push(job);
        }
        let mut lanes = self.lanes();
        for host in by_host.keys() {
            if !lanes.contains_key(host) {
                let lane = Lane::spawn(
                    host.clone(),
                    self.backend.clone(),
                    self.events.clone(),
                    self.clock,
                    self.done_tx.clone(),
                );
                lanes.insert(host.clone(), lane);
            }
        }
        let mut withdrawn = Vec::new();
        for (host, lane) in lanes.iter() {
            let jobs = by_host.remove(host).unwrap_or_default();
            let gate = gate.clone().filter(|_| gate_host.as_ref() == Some(host));
            withdrawn.extend(lane.replace(jobs, gate));
        }
        withdrawn
    }

    /// Starts no queued preload until the next [`Preloader::replace`]: the turn
    /// that planned them has ended.
    pub(crate) fn hold(&self) {
        for lane in self.lanes().values() {
            lane.queue.lock().expect("loader queue lock poisoned").held = true;
        }
    }

    /// Aborts the preload in flight, if it is still `loading`, and returns once its
    /// request is dropped (the loader then reports it as failed).
    pub(crate) async fn abort(&mut self, loading: &Loading) {
        let lane = self
            .lanes()
            .get(&loading.host)
            .map(|lane| (lane.abort.clone(), lane.busy.clone()));
        let Some((abort, mut busy)) = lane else {
            return;
        };
        abort.send_replace(loading.job);
        let _ = busy
            .wait_for(|busy| busy.as_ref().is_none_or(|busy| busy.job != loading.job))
            .await;
    }

    /// Lets queued preloads start: the turn's own model is resident (its call answered).
    pub(crate) fn open_gate(&self) {
        open_gates(&self.lanes);
    }

    /// A hook that opens the gate, for the turn's first streamed text: a model
    /// that streams is resident.
    pub(crate) fn gate_opener(&self) -> Arc<dyn Fn() + Send + Sync> {
        let lanes = self.lanes.clone();
        Arc::new(move || open_gates(&lanes))
    }

    /// The model being preloaded right now on the host of `model` (any host's when
    /// `model` is `None`): the load a call of `model` would wait behind.
    pub(crate) fn in_flight(&self, model: Option<&str>) -> Option<String> {
        self.loading(model).map(|loading| loading.model)
    }

    /// The preload running right now on the host of `model` (any host's when `model`
    /// is `None`).
    pub(crate) fn loading(&self, model: Option<&str>) -> Option<Loading> {
        let lanes = self.lanes();
        match model {
            Some(model) => lanes
                .get(&(self.host_of)(model))
                .and_then(|lane| lane.busy.borrow().clone()),
            None => lanes.values().find_map(|lane| lane.busy.borrow().clone()),
        }
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

fn open_gates(lanes: &Mutex<BTreeMap<String, Lane>>) {
    let lanes = lanes.lock().expect("loader lanes lock poisoned");
    for lane in lanes.values() {
        open_gate(&lane.queue, &lane.wake);
    }
}

fn open_gate(queue: &Mutex<Queue>, wake: &Notify) {
    let mut queue = queue.lock().expect("loader queue lock poisoned");
    if queue.gate.take().is_some() {
        drop(queue);
        wake.notify_one();
    }
}

#[cfg(test)]
mod tests;
