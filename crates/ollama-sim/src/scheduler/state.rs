//! The scheduler's state and its synchronous transitions (called with the lock held).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::LoadRequest;
use super::janitor::JanitorMessage;
use crate::api;
use crate::catalogue::ModelEntry;
use crate::clock::Clock;
use crate::config::SimConfig;
use crate::faults::{Faults, LoadFault};
use crate::footprint::{Footprint, LoadOptions, RunnerOptions, plan_load};
use crate::keep_alive::SessionDuration;
use crate::log::{Event, EventLog, EvictionReason, LogEvent, UnloadReason};
use crate::page_cache::PageCache;
use crate::slots::SlotPool;

/// Ollama loads a model beside others only if it needs at most this share of the free memory.
const FIT_HEADROOM: f64 = 0.80;

/// Tolerance when comparing simulated deadlines with the clock, seconds.
const DEADLINE_SLACK: f64 = 1e-6;

const GIB: f64 = (1u64 << 30) as f64;

/// A runner in memory (loading or loaded), keyed by its weights file.
#[derive(Debug)]
struct Runner {
    id: u64,
    model: Arc<ModelEntry>,
    options: RunnerOptions,
    footprint: Footprint,
    /// Memory accounted to the runner: the prediction while loading, the measured size
    /// once loaded (Ollama's `updateFreeSpace` subtracts what the runner reports).
    bytes: u64,
    /// The part of `bytes` in GPU memory.
    vram_bytes: u64,
    /// The share of the layers on the GPU (below 1 for `num_gpu: 0` or a partial offload).
    gpu_fraction: f64,
    loading: bool,
    /// Requests holding the runner, including those waiting for a parallel slot.
    ref_count: u32,
    session: SessionDuration,
    /// Simulated second the idle countdown ends; `None` before the first idle moment and for
    /// forever.
    expires_at: Option<f64>,
    /// Why the session was set to zero by the scheduler, for the unload log entry.
    zeroed_for: Option<UnloadReason>,
    slots: Arc<SlotPool>,
}

impl Runner {
    fn grant(&self) -> Grant {
        Grant {
            runner_id: self.id,
            slots: Arc::clone(&self.slots),
            context_per_slot: self.options.context_per_slot,
            gpu_fraction: self.gpu_fraction,
            kv_bytes_per_token: self.footprint.kv_bytes as f64
                / (self.options.context_per_slot * self.options.parallel).max(1) as f64,
        }
    }
}

/// A runner whose memory is not yet free.
#[derive(Debug)]
struct Unloading {
    id: u64,
    model: Arc<ModelEntry>,
    bytes: u64,
    vram_bytes: u64,
}

/// A claim handed out by the state; the caller wraps it in a `RunnerLease`.
pub(super) struct Grant {
    pub(super) runner_id: u64,
    pub(super) slots: Arc<SlotPool>,
    pub(super) context_per_slot: u64,
    pub(super) gpu_fraction: f64,
    /// The runner's KV cache per token of context (one slot's read grows with its context).
    pub(super) kv_bytes_per_token: f64,
}

/// What the loader does next with the pending request at the head of the queue.
pub(super) enum Decision {
    Granted(Grant),
    Load(LoadPlan),
    /// Wait until an unload finishes, then decide again.
    Wait,
}

/// A load that has started.
pub(super) struct LoadPlan {
    pub(super) runner_id: u64,
    pub(super) seconds: f64,
    /// A failure due at this many seconds, with its message.
    pub(super) failure: Option<(f64, String)>,
}

pub(crate) struct SchedState {
    config: Arc<SimConfig>,
    clock: Clock,
    janitor_tx: mpsc::UnboundedSender<JanitorMessage>,
    runners: Vec<Runner>,
    unloading: Vec<Unloading>,
    page_cache: PageCache,
    next_runner_id: u64,
    next_request_id: u64,
    queue_length: usize,
    turns: HashMap<Arc<str>, u64>,
    global_turns: u64,
    log: EventLog,
    /// The deadline the janitor sleeps until, so a later deadline needs no wake-up.
    pub(super) janitor_target: Option<f64>,
}

impl SchedState {
    pub(super) fn new(
        config: Arc<SimConfig>,
        clock: Clock,
        janitor_tx: mpsc::UnboundedSender<JanitorMessage>,
    ) -> SchedState {
        let log = EventLog::new(config.log_capacity);
        SchedState {
            config,
            clock,
            janitor_tx,
            runners: Vec::new(),
            unloading: Vec::new(),
            page_cache: PageCache::default(),
            next_runner_id: 1,
            next_request_id: 1,
            queue_length: 0,
            turns: HashMap::new(),
            global_turns: 0,
            log,
            janitor_target: None,
        }
    }

    /// GPU memory accounted to loading, loaded and unloading runners.
    fn memory_in_use(&self) -> u64 {
        self.runners.iter().map(|r| r.vram_bytes).sum::<u64>()
            + self.unloading.iter().map(|u| u.vram_bytes).sum::<u64>()
    }

    /// RAM wired for loading, loaded and unloading runners (GPU and CPU parts).
    fn memory_wired(&self) -> u64 {
        self.runners.iter().map(|r| r.bytes).sum::<u64>()
            + self.unloading.iter().map(|u| u.bytes).sum::<u64>()
    }

    /// What the host reports free: RAM minus the OS reserve minus the runners.
    fn host_free(&self) -> u64 {
        self.config
            .ram_bytes
            .saturating_sub(self.config.os_reserve_bytes)
            .saturating_sub(self.memory_wired())
    }

    /// Ollama's `availableMemoryForLoad` on an integrated GPU: the GPU budget minus the
    /// runners' memory, capped by the host's free memory.
    fn available_memory(&self) -> u64 {
        self.config
            .gpu_memory_bytes
            .saturating_sub(self.memory_in_use())
            .min(self.host_free())
    }

    fn default_ctx(&self) -> u64 {
        self.config.effective_default_num_ctx()
    }

    pub(super) fn log(&mut self, event: Event) {
        let memory = self.memory_in_use();
        let (sim, wall) = (self.clock.now(), self.clock.wall_seconds());
        self.log.push(sim, wall, memory, event);
    }

    pub(super) fn log_snapshot(&self) -> Vec<LogEvent> {
        self.log.snapshot()
    }

    pub(super) fn arrive(
        &mut self,
        endpoint: &'static str,
        model: Arc<str>,
        num_ctx: Option<u64>,
    ) -> u64 {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        self.log(Event::RequestArrived {
            request_id,
            endpoint: Arc::from(endpoint),
            model,
            num_ctx,
        });
        request_id
    }

    pub(super) fn count_turn(&mut self, model: &Arc<str>) -> (u64, u64) {
        self.global_turns += 1;
        let turn = self.turns.entry(Arc::clone(model)).or_insert(0);
        *turn += 1;
        (*turn, self.global_turns)
    }

    pub(super) fn queued(&mut self, request_id: u64, model: Arc<str>) {
        self.queue_length += 1;
        let queue_length = self.queue_length;
        self.log(Event::RequestQueued {
            request_id,
            model,
            queue_length,
        });
    }

    pub(super) fn dequeued(&mut self) {
        self.queue_length = self.queue_length.saturating_sub(1);
    }

    fn runner_index(&self, weights: &str) -> Option<usize> {
        self.runners
            .iter()
            .position(|r| &*r.model.weights == weights)
    }

    fn runner_index_by_id(&self, runner_id: u64) -> Option<usize> {
        self.runners.iter().position(|r| r.id == runner_id)
    }

    /// Ollama's `useLoadedRunner`: claims a loaded runner whose load-time options match.
    /// A request carrying keep_alive overwrites the session duration (last writer wins).
    pub(super) fn try_grant(
        &mut self,
        weights: &str,
        options: &LoadOptions,
        session: Option<SessionDuration>,
    ) -> Option<Grant> {
        let default_ctx = self.default_ctx();
        let runner = self
            .runners
            .iter_mut()
            .find(|r| &*r.model.weights == weights)?;
        if runner.loading || !runner.options.serves(&runner.model, options, default_ctx) {
            return None;
        }
        runner.ref_count += 1;
        if let Some(session) = session {
            runner.session = session;
            runner.zeroed_for = None;
        }
        Some(runner.grant())
    }

    /// One step of Ollama's `processPending` for the request at the head of the queue.
    pub(super) fn decide(&mut self, pending: &LoadRequest, faults: &mut Faults) -> Decision {
        let model = &pending.model;
        let victim = match self.runner_index(&model.weights) {
            Some(index) => {
                if let Some(grant) =
                    self.try_grant(&model.weights, &pending.options, pending.session)
                {
                    return Decision::Granted(grant);
                }
                (index, EvictionReason::Reload)
            }
            None if self.runners.len() >= self.config.max_loaded_models => {
                match self.find_victim() {
                    Some(index) => (index, EvictionReason::MaxLoadedModels),
                    None => return Decision::Wait,
                }
            }
            None => {
                let available = self.available_memory();
                let (options, footprint) = plan_load(
                    model,
                    &pending.options,
                    self.default_ctx(),
                    self.config.num_parallel as u64,
                    self.config.kv_cache_type,
                    available,
                );
                if self.runners.is_empty() {
                    // The first model skips the fit test, but only once memory is really free.
                    if !self.unloading.is_empty() {
                        return Decision::Wait;
                    }
                    return Decision::Load(self.start_load(pending, options, footprint, faults));
                }
                // CPU-only and partially offloaded loads skip the fit test.
                if !pending.options.needs_fit_test(model)
                    || footprint.predicted as f64 <= FIT_HEADROOM * available as f64
                {
                    return Decision::Load(self.start_load(pending, options, footprint, faults));
                }
                if !self.unloading.is_empty() {
                    return Decision::Wait;
                }
                match self.find_victim() {
                    Some(index) => (index, EvictionReason::Memory),
                    None => return Decision::Wait,
                }
            }
        };
        self.evict(victim.0, victim.1, pending);
        Decision::Wait
    }

    /// Ollama's `findRunnerToUnload`: sorted by session duration (forever last), then by
    /// the weights' digest (Ollama sorts by model blob path); the first idle one, else the
    /// first.
    fn find_victim(&self) -> Option<usize> {
        let mut order: Vec<usize> = (0..self.runners.len())
            .filter(|&i| !self.runners[i].loading)
            .collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.runners[a], &self.runners[b]);
            a.session
                .sort_key()
                .cmp(&b.session.sort_key())
                .then_with(|| a.model.digest.cmp(&b.model.digest))
        });
        order
            .iter()
            .copied()
            .find(|&i| self.runners[i].ref_count == 0)
            .or(order.first().copied())
    }

    /// Sets the victim's session to zero so it unloads once idle (now, if it is idle).
    fn evict(&mut self, index: usize, reason: EvictionReason, pending: &LoadRequest) {
        let runner = &mut self.runners[index];
        let newly_chosen = runner.zeroed_for != Some(UnloadReason::Evicted);
        runner.session = SessionDuration::ZERO;
        runner.zeroed_for = Some(UnloadReason::Evicted);
        let busy = runner.ref_count > 0;
        let victim = Arc::clone(&runner.model.name);
        if newly_chosen {
            self.log(Event::Eviction {
                model: victim,
                for_model: Arc::clone(&pending.model.name),
                request_id: pending.request_id,
                reason,
                busy,
            });
        }
        if !busy {
            self.begin_unload(index, UnloadReason::Evicted);
        }
    }

    fn start_load(
        &mut self,
        pending: &LoadRequest,
        options: RunnerOptions,
        footprint: Footprint,
        faults: &mut Faults,
    ) -> LoadPlan {
        let predicted = footprint.predicted;
        let model = &pending.model;
        let physics = &self.config.load;
        let warm = self.page_cache.take(&model.weights);
        let mmap = pending.options.use_mmap != Some(false);
        let bandwidth = match (warm, mmap) {
            (true, _) => physics.warm_bytes_per_second,
            (false, true) => physics.cold_mmap_bytes_per_second,
            (false, false) => physics.cold_no_mmap_bytes_per_second,
        };
        let normal = physics.fixed_seconds + model.spec.size_bytes as f64 / bandwidth;
        let (factor, extra) = faults.slow_load(&model.name);
        let seconds = (normal * factor + extra).max(0.0);
        let failure = faults.take_load_failure(&model.name).map(|fault| match fault {
            LoadFault::Stall => (
                self.config.load_timeout_seconds,
                "timed out waiting for llama runner to start - progress 0.00 - ".to_owned(),
            ),
            LoadFault::Fail(message) => {
                let message = message.unwrap_or_else(|| {
                    let available = self.available_memory();
                    format!(
                        "model requires more system memory ({:.1} GiB) than is available ({:.1} GiB)",
                        predicted as f64 / GIB,
                        available as f64 / GIB
                    )
                });
                (physics.fixed_seconds.min(seconds), message)
            }
        });
        let id = self.next_runner_id;
        self.next_runner_id += 1;
        let gpu_fraction = pending.options.gpu_fraction(model);
        let slots = SlotPool::new(options.parallel as usize);
        self.runners.push(Runner {
            id,
            model: Arc::clone(model),
            options,
            footprint,
            bytes: predicted,
            vram_bytes: self.vram_share(predicted, gpu_fraction),
            gpu_fraction,
            loading: true,
            ref_count: 1,
            session: pending.session.unwrap_or(self.config.keep_alive),
            expires_at: None,
            zeroed_for: None,
            slots,
        });
        self.trim_page_cache();
        self.log(Event::LoadStarted {
            request_id: pending.request_id,
            model: Arc::clone(&model.name),
            weights: Arc::clone(&model.weights),
            bytes: predicted,
            disk_bytes: if warm { 0 } else { model.spec.size_bytes },
            cache_bytes: if warm { model.spec.size_bytes } else { 0 },
            kv_bytes: footprint.kv_bytes,
            warm,
            mmap,
            seconds,
        });
        LoadPlan {
            runner_id: id,
            seconds,
            failure,
        }
    }

    /// The part of `bytes` in GPU memory: all of it up to the budget (the first model may
    /// spill), or the offloaded share.
    fn vram_share(&self, bytes: u64, gpu_fraction: f64) -> u64 {
        if gpu_fraction >= 1.0 {
            bytes.min(self.config.gpu_memory_bytes)
        } else {
            (bytes as f64 * gpu_fraction) as u64
        }
    }

    /// The load completed: the runner is ready, claimed by the request that loaded it, and
    /// accounted at its measured size from now on.
    pub(super) fn finish_load(&mut self, runner_id: u64, request_id: u64) -> Option<Grant> {
        let index = self.runner_index_by_id(runner_id)?;
        let measured = self.runners[index].footprint.measured;
        let vram = self.vram_share(measured, self.runners[index].gpu_fraction);
        let runner = &mut self.runners[index];
        runner.loading = false;
        runner.bytes = measured;
        runner.vram_bytes = vram;
        let grant = runner.grant();
        let model = Arc::clone(&runner.model.name);
        self.trim_page_cache();
        self.log(Event::LoadFinished {
            request_id,
            model,
            measured_bytes: measured,
        });
        Some(grant)
    }

    /// The load failed: the runner never came up, so its memory is free at once.
    pub(super) fn fail_load(&mut self, runner_id: u64, request_id: u64, message: &str) {
        if let Some(index) = self.runner_index_by_id(runner_id) {
            let runner = self.runners.remove(index);
            self.log(Event::LoadFailed {
                request_id,
                model: Arc::clone(&runner.model.name),
                message: message.to_owned(),
            });
        }
    }

    /// The client went away during the load: abandon it and unload what was loaded.
    pub(super) fn abort_load(&mut self, runner_id: u64, request_id: u64) {
        if let Some(index) = self.runner_index_by_id(runner_id) {
            self.runners[index].ref_count = 0;
            let model = Arc::clone(&self.runners[index].model.name);
            self.log(Event::LoadAborted { request_id, model });
            self.begin_unload(index, UnloadReason::Aborted);
        }
    }

    /// A request let go of its runner. When the last one does, the idle countdown starts,
    /// or the runner unloads at once if its session duration is zero.
    pub(super) fn release(&mut self, runner_id: u64) {
        let Some(index) = self.runner_index_by_id(runner_id) else {
            return;
        };
        let runner = &mut self.runners[index];
        runner.ref_count = runner.ref_count.saturating_sub(1);
        if runner.ref_count > 0 || runner.loading {
            return;
        }
        if runner.session.is_zero() {
            let reason = runner.zeroed_for.unwrap_or(UnloadReason::KeepAliveZero);
            self.begin_unload(index, reason);
            return;
        }
        let deadline = runner
            .session
            .seconds()
            .map(|seconds| self.clock.now() + seconds);
        runner.expires_at = deadline;
        if let Some(deadline) = deadline
            && !self.clock.is_frozen()
            && self.janitor_target.is_none_or(|target| deadline < target)
        {
            self.janitor_target = Some(deadline);
            // A closed channel means the simulator is shutting down; nothing to wake.
            let _ = self.janitor_tx.send(JanitorMessage::Rescan);
        }
    }

    /// Ollama's `expireRunner`: `expires_at` becomes now, the session zero; the unload
    /// happens once the in-flight requests finish.
    /// A runner still loading is not in Ollama's loaded set yet, so the request is a no-op
    /// and the model stays resident after its load.
    pub(super) fn request_unload(&mut self, weights: &str) {
        let Some(index) = self.runner_index(weights) else {
            return;
        };
        if self.runners[index].loading {
            return;
        }
        let now = self.clock.now();
        let runner = &mut self.runners[index];
        runner.expires_at = Some(now);
        runner.session = SessionDuration::ZERO;
        runner.zeroed_for = Some(UnloadReason::UnloadRequest);
        if runner.ref_count == 0 {
            self.begin_unload(index, UnloadReason::UnloadRequest);
        }
    }

    /// A runtime out-of-memory error: like Ollama, every runner is expired; each unloads
    /// as soon as its in-flight requests end.
    pub(super) fn expire_all(&mut self) {
        let now = self.clock.now();
        for runner in &mut self.runners {
            runner.session = SessionDuration::ZERO;
            runner.zeroed_for = Some(UnloadReason::OutOfMemory);
            if !runner.loading {
                runner.expires_at = Some(now);
            }
        }
        while let Some(index) = self
            .runners
            .iter()
            .position(|r| r.ref_count == 0 && !r.loading)
        {
            self.begin_unload(index, UnloadReason::OutOfMemory);
        }
    }

    /// The earliest idle deadline.
    pub(super) fn next_expiry(&self) -> Option<f64> {
        self.runners
            .iter()
            .filter(|r| r.ref_count == 0 && !r.loading)
            .filter_map(|r| r.expires_at)
            .min_by(f64::total_cmp)
    }

    /// Unloads every idle runner whose countdown has ended.
    pub(super) fn expire_due(&mut self) {
        let now = self.clock.now();
        while let Some(index) = self.runners.iter().position(|r| {
            r.ref_count == 0
                && !r.loading
                && r.expires_at.is_some_and(|at| at <= now + DEADLINE_SLACK)
        }) {
            self.begin_unload(index, UnloadReason::Expired);
        }
    }

    fn begin_unload(&mut self, index: usize, reason: UnloadReason) {
        let runner = self.runners.remove(index);
        let model = Arc::clone(&runner.model.name);
        self.unloading.push(Unloading {
            id: runner.id,
            model: runner.model,
            bytes: runner.bytes,
            vram_bytes: runner.vram_bytes,
        });
        self.log(Event::UnloadStarted { model, reason });
        let _ = self.janitor_tx.send(JanitorMessage::Unload {
            runner_id: runner.id,
        });
    }

    /// The unload finished: memory is free and the weights file is in the page cache.
    pub(super) fn finish_unload(&mut self, runner_id: u64) {
        let Some(index) = self.unloading.iter().position(|u| u.id == runner_id) else {
            return;
        };
        let unloaded = self.unloading.remove(index);
        self.page_cache.insert(
            Arc::clone(&unloaded.model.weights),
            unloaded.model.spec.size_bytes,
        );
        self.trim_page_cache();
        self.log(Event::Unloaded {
            model: Arc::clone(&unloaded.model.name),
        });
    }

    /// The page cache holds what RAM leaves: RAM minus the OS reserve minus the memory
    /// wired for runners; least recently used files go first.
    fn trim_page_cache(&mut self) {
        let capacity = self.host_free();
        self.page_cache.trim(capacity);
    }

    pub(super) fn unload_seconds(&self) -> f64 {
        self.config.load.unload_seconds
    }

    pub(super) fn ps(&self) -> api::PsResponse {
        let now = self.clock.now();
        let mut models: Vec<(f64, api::PsModel)> = self
            .runners
            .iter()
            .filter(|r| !r.loading)
            .map(|r| {
                let expires = r
                    .expires_at
                    .unwrap_or_else(|| now + r.session.display_seconds());
                let entry = &r.model;
                let model = api::PsModel {
                    name: entry.name.to_string(),
                    model: entry.name.to_string(),
                    size: r.bytes,
                    digest: entry.digest.clone(),
                    details: entry.details(),
                    expires_at: self.clock.timestamp(expires),
                    size_vram: r.vram_bytes,
                    context_length: r.options.context_per_slot,
                };
                (expires, model)
            })
            .collect();
        models.sort_by(|a, b| b.0.total_cmp(&a.0));
        api::PsResponse {
            models: models.into_iter().map(|(_, model)| model).collect(),
        }
    }

    pub(super) fn reset(&mut self) {
        self.runners.clear();
        self.unloading.clear();
        self.page_cache.clear();
        self.turns.clear();
        self.global_turns = 0;
        self.janitor_target = None;
        self.log.clear();
    }
}
