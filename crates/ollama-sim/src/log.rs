//! The scheduler's event log, served by `GET /sim/log`, so tests can assert what happened.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One log entry: when it happened, the memory in use, and what happened.
///
/// JSON: `{"seq":3,"sim_seconds":2.5,"wall_seconds":0.025,"memory_bytes":1000,
/// "event":"load_started", ...event fields}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Position in the log since start (or the last reset), from 0.
    pub seq: u64,
    /// Simulated seconds since the simulator started.
    pub sim_seconds: f64,
    /// Wall seconds since the simulator started (tokio's clock: virtual under paused time).
    pub wall_seconds: f64,
    /// GPU memory accounted to loading, loaded and unloading models after the event, bytes.
    pub memory_bytes: u64,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// What happened. Serialized with an `"event"` tag in snake case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A chat or generate request reached the handler.
    RequestArrived {
        /// Unique per simulator.
        request_id: u64,
        /// `chat` or `generate`.
        endpoint: Arc<str>,
        /// The model as requested.
        model: Arc<str>,
        /// The `num_ctx` the request sent, if any: a load-time option, so tests can check
        /// that every call of a model sends the same.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        num_ctx: Option<u64>,
    },
    /// The request needs a load and joined the pending queue.
    RequestQueued {
        /// The request.
        request_id: u64,
        /// The model.
        model: Arc<str>,
        /// Pending requests including this one.
        queue_length: usize,
    },
    /// A load began.
    LoadStarted {
        /// The request that caused it.
        request_id: u64,
        /// The model.
        model: Arc<str>,
        /// Its weights file.
        weights: Arc<str>,
        /// Predicted memory (the fit test's figure), bytes.
        bytes: u64,
        /// Bytes read from disk: the weights file when it was not in the page cache.
        disk_bytes: u64,
        /// Bytes read from the page cache: the weights file when it was there (a warm load).
        cache_bytes: u64,
        /// KV cache allocated (measured: only the layers that have one), bytes; never read.
        kv_bytes: u64,
        /// Whether the weights file was in the page cache.
        warm: bool,
        /// Whether the file is memory-mapped (`use_mmap` not false).
        mmap: bool,
        /// Expected load time, simulated seconds.
        seconds: f64,
    },
    /// A load completed; the model is resident.
    LoadFinished {
        /// The request that caused it.
        request_id: u64,
        /// The model.
        model: Arc<str>,
        /// The size the runner reports after its load (`/api/ps` `size`), bytes.
        measured_bytes: u64,
    },
    /// A load failed (an injected fault); the request got a 500.
    LoadFailed {
        /// The request that caused it.
        request_id: u64,
        /// The model.
        model: Arc<str>,
        /// The error message.
        message: String,
    },
    /// The client disconnected during the load, which was abandoned.
    LoadAborted {
        /// The request that caused it.
        request_id: u64,
        /// The model.
        model: Arc<str>,
    },
    /// The scheduler chose a model to make room (it unloads once idle).
    Eviction {
        /// The victim.
        model: Arc<str>,
        /// The model that needs the room.
        for_model: Arc<str>,
        /// The request that needs the room.
        request_id: u64,
        /// Why.
        reason: EvictionReason,
        /// Whether the victim was busy, so the queue waits for it to drain.
        busy: bool,
    },
    /// A model started unloading; it leaves `/api/ps` now and frees memory when unloaded.
    UnloadStarted {
        /// The model.
        model: Arc<str>,
        /// Why.
        reason: UnloadReason,
    },
    /// A model finished unloading; its memory is free.
    Unloaded {
        /// The model.
        model: Arc<str>,
    },
    /// A request ended: answered, rejected or cancelled.
    RequestFinished {
        /// The request.
        request_id: u64,
        /// The model as requested.
        model: Arc<str>,
        /// HTTP status: 200 (also for errors after streaming began), 4xx/5xx, 499 when the
        /// client went away.
        status: u16,
        /// `stop`, `length`, `load` or `unload` for a complete answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done_reason: Option<String>,
        /// The error text, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// The reported load_duration, nanoseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        load_duration_ns: Option<u64>,
        /// Tokens generated.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eval_count: Option<u64>,
        /// Prompt tokens kept after cutting the history to the context.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_tokens_kept: Option<u64>,
        /// Of those, tokens found in the slot's prompt cache.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_tokens_cached: Option<u64>,
        /// Of those, tokens evaluated (`prompt_eval_count`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_tokens_evaluated: Option<u64>,
        /// Messages cut from the prompt to fit the context, oldest non-system first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt_messages_dropped: Option<u64>,
    },
}

/// Why a model was evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictionReason {
    /// `max_loaded_models` models were loaded.
    MaxLoadedModels,
    /// The new model failed the fit test.
    Memory,
    /// The same weights were loaded with different load-time options.
    Reload,
}

/// Why a model unloaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnloadReason {
    /// Its keep_alive ran out while idle.
    Expired,
    /// Its session duration was zero when it went idle.
    KeepAliveZero,
    /// An explicit unload request (`keep_alive: 0` with no prompt).
    UnloadRequest,
    /// Evicted to make room.
    Evicted,
    /// The client abandoned the load.
    Aborted,
    /// A runtime out-of-memory error expired every runner.
    OutOfMemory,
}

/// A bounded list of events.
#[derive(Debug)]
pub(crate) struct EventLog {
    events: VecDeque<LogEvent>,
    capacity: usize,
    next_seq: u64,
}

impl EventLog {
    pub(crate) fn new(capacity: usize) -> EventLog {
        EventLog {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            next_seq: 0,
        }
    }

    pub(crate) fn push(
        &mut self,
        sim_seconds: f64,
        wall_seconds: f64,
        memory_bytes: u64,
        event: Event,
    ) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(LogEvent {
            seq: self.next_seq,
            sim_seconds,
            wall_seconds,
            memory_bytes,
            event,
        });
        self.next_seq += 1;
    }

    pub(crate) fn snapshot(&self) -> Vec<LogEvent> {
        self.events.iter().cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.next_seq = 0;
    }
}
