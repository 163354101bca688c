//! Ollama's scheduler: serialized loads, the fast path for resident models, keep_alive,
//! eviction, the fit test, and the page cache that makes reloads warm.
//!
//! The state lives behind one `std::sync::Mutex` that is never held across an `.await`; the
//! waiting happens in two background tasks, the loader (the pending queue, one load at a
//! time, like Ollama's `processPending`) and the janitor (idle timers and unloads).

mod janitor;
mod loader;
mod state;
mod ticket;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{mpsc, oneshot, watch};

use crate::api::{self, ApiError};
use crate::bandwidth::Bandwidth;
use crate::catalogue::ModelEntry;
use crate::clock::Clock;
use crate::config::SimConfig;
use crate::faults::{Faults, StreamFault};
use crate::footprint::LoadOptions;
use crate::keep_alive::SessionDuration;
use crate::log::LogEvent;
use crate::slots::SlotPool;

use janitor::JanitorMessage;
use state::SchedState;
pub(crate) use ticket::{Outcome, PromptTokens, Ticket};

/// The scheduler shared by the request handlers and the background tasks.
pub(crate) struct Scheduler {
    clock: Clock,
    /// The decode streams sharing the memory bandwidth.
    bandwidth: Arc<Bandwidth>,
    state: Mutex<SchedState>,
    pending_tx: mpsc::Sender<Pending>,
    /// Bumped after every finished unload; the loader waits on it for memory.
    unloads: watch::Sender<u64>,
    faults: Mutex<Faults>,
    faults_active: AtomicBool,
    started: AtomicBool,
    receivers: Mutex<Option<Receivers>>,
}

struct Receivers {
    pending: mpsc::Receiver<Pending>,
    janitor: mpsc::UnboundedReceiver<JanitorMessage>,
}

/// A request waiting for the loader.
pub(crate) struct Pending {
    load: LoadRequest,
    reply: oneshot::Sender<Result<RunnerLease, ApiError>>,
}

/// What the loader needs to know about a pending request.
pub(crate) struct LoadRequest {
    request_id: u64,
    model: Arc<ModelEntry>,
    options: LoadOptions,
    session: Option<SessionDuration>,
}

/// A claim on a loaded runner: while it lives the runner counts the request as in flight and
/// cannot be evicted. Dropping it releases the claim (and may start the idle countdown).
pub(crate) struct RunnerLease {
    scheduler: Arc<Scheduler>,
    runner_id: u64,
    slots: Arc<SlotPool>,
    context_per_slot: u64,
    gpu_fraction: f64,
    kv_bytes_per_token: f64,
    /// Simulated seconds this request's own load took (0 on the fast path).
    load_seconds: f64,
    armed: bool,
}

impl RunnerLease {
    pub(crate) fn slots(&self) -> Arc<SlotPool> {
        Arc::clone(&self.slots)
    }

    /// The runner's context per slot, tokens.
    pub(crate) fn context_per_slot(&self) -> u64 {
        self.context_per_slot
    }

    /// The share of the model's layers on the GPU.
    pub(crate) fn gpu_fraction(&self) -> f64 {
        self.gpu_fraction
    }

    pub(crate) fn load_seconds(&self) -> f64 {
        self.load_seconds
    }

    /// The runner's identity: requests on one runner decode as one batch.
    pub(crate) fn runner_id(&self) -> u64 {
        self.runner_id
    }

    /// The runner's KV cache bytes per token of one slot's context.
    pub(crate) fn kv_bytes_per_token(&self) -> f64 {
        self.kv_bytes_per_token
    }

    /// Gives up the lease without releasing; the caller releases `runner_id` itself.
    fn disarm(mut self) -> u64 {
        self.armed = false;
        self.runner_id
    }
}

impl Drop for RunnerLease {
    fn drop(&mut self) {
        if self.armed {
            self.scheduler.lock().release(self.runner_id);
        }
    }
}

impl Scheduler {
    pub(crate) fn new(config: Arc<SimConfig>, clock: Clock) -> Arc<Scheduler> {
        let (pending_tx, pending_rx) = mpsc::channel(config.max_queue.max(1));
        let (janitor_tx, janitor_rx) = mpsc::unbounded_channel();
        let bandwidth = Bandwidth::new(
            clock.clone(),
            config.decode.efficiency,
            config.decode.concurrent_efficiency,
        );
        let state = SchedState::new(config, clock.clone(), janitor_tx);
        Arc::new(Scheduler {
            bandwidth,
            clock,
            state: Mutex::new(state),
            pending_tx,
            unloads: watch::Sender::new(0),
            faults: Mutex::new(Faults::default()),
            faults_active: AtomicBool::new(false),
            started: AtomicBool::new(false),
            receivers: Mutex::new(Some(Receivers {
                pending: pending_rx,
                janitor: janitor_rx,
            })),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SchedState> {
        // The state is updated in small synchronous steps, so it stays consistent even if a
        // panic poisoned the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn bandwidth(&self) -> &Arc<Bandwidth> {
        &self.bandwidth
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Spawns the loader and the janitor on first use (this must run inside a tokio runtime).
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let receivers = self
            .receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(receivers) = receivers {
            tokio::spawn(loader::run(Arc::downgrade(self), receivers.pending));
            tokio::spawn(janitor::run(Arc::downgrade(self), receivers.janitor));
        }
        self.started.store(true, Ordering::Release);
    }

    /// Logs the arrival of a request (with the `num_ctx` it sent) and returns its ticket.
    pub(crate) fn arrive(
        self: &Arc<Self>,
        endpoint: &'static str,
        model: &str,
        num_ctx: Option<u64>,
    ) -> Ticket {
        let model: Arc<str> = Arc::from(model);
        let request_id = self.lock().arrive(endpoint, Arc::clone(&model), num_ctx);
        Ticket::new(Arc::clone(self), request_id, model)
    }

    /// Gets a runner for `model`: at once if it is loaded with matching options (Ollama's
    /// fast path), else through the pending queue, waiting for loads and evictions.
    /// With `count_turn`, also counts the request for scripts and returns
    /// `(turn for this model, global turn)`.
    pub(crate) async fn schedule(
        self: &Arc<Self>,
        ticket: &mut Ticket,
        model: &Arc<ModelEntry>,
        options: LoadOptions,
        session: Option<SessionDuration>,
        count_turn: bool,
    ) -> Result<(u64, u64), ApiError> {
        let (turns, receiver) = {
            let mut state = self.lock();
            let turns = if count_turn {
                state.count_turn(&model.name)
            } else {
                (0, 0)
            };
            if let Some(grant) = state.try_grant(&model.weights, &options, session) {
                drop(state);
                ticket.adopt(self.lease(grant, 0.0));
                return Ok(turns);
            }
            let (reply, receiver) = oneshot::channel();
            let pending = Pending {
                load: LoadRequest {
                    request_id: ticket.request_id(),
                    model: Arc::clone(model),
                    options,
                    session,
                },
                reply,
            };
            if self.pending_tx.try_send(pending).is_err() {
                return Err(ApiError::server_busy());
            }
            state.queued(ticket.request_id(), Arc::clone(&model.name));
            (turns, receiver)
        };
        match receiver.await {
            Ok(Ok(lease)) => {
                ticket.adopt(lease);
                Ok(turns)
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ApiError::new(500, "the scheduler stopped")),
        }
    }

    fn lease(self: &Arc<Self>, grant: state::Grant, load_seconds: f64) -> RunnerLease {
        RunnerLease {
            scheduler: Arc::clone(self),
            runner_id: grant.runner_id,
            slots: grant.slots,
            context_per_slot: grant.context_per_slot,
            gpu_fraction: grant.gpu_fraction,
            kv_bytes_per_token: grant.kv_bytes_per_token,
            load_seconds,
            armed: true,
        }
    }

    /// An explicit unload (`keep_alive: 0`, nothing to generate): the model unloads as soon
    /// as its in-flight requests finish.
    pub(crate) fn request_unload(&self, model: &ModelEntry) {
        self.lock().request_unload(&model.weights);
    }

    /// A runtime out-of-memory error: every runner expires.
    pub(crate) fn expire_all(&self) {
        self.lock().expire_all();
    }

    pub(crate) fn ps(&self) -> api::PsResponse {
        self.lock().ps()
    }

    pub(crate) fn log(&self) -> Vec<LogEvent> {
        self.lock().log_snapshot()
    }

    /// Forgets every model, the log, the counters and the faults.
    pub(crate) fn reset(&self) {
        self.lock().reset();
        self.set_faults(Faults::default());
        self.unloads.send_modify(|count| *count += 1);
    }

    pub(crate) fn set_faults(&self, faults: Faults) {
        let active = !faults.is_empty();
        *self.lock_faults() = faults;
        self.faults_active.store(active, Ordering::Release);
    }

    fn faults_active(&self) -> bool {
        self.faults_active.load(Ordering::Acquire)
    }

    /// Whether this request gets an injected 503.
    pub(crate) fn take_unavailable(&self) -> bool {
        self.faults_active() && self.lock_faults().take_unavailable()
    }

    pub(crate) fn take_stream_fault(&self, model: &str) -> Option<StreamFault> {
        if !self.faults_active() {
            return None;
        }
        self.lock_faults().take_stream_fault(model)
    }
}
