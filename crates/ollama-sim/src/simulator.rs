//! The simulator handle: configuration, catalogue, script and scheduler behind one `Arc`.

use std::sync::Arc;

use crate::api;
use crate::catalogue::Catalogue;
use crate::clock::{Clock, unix_now};
use crate::config::SimConfig;
use crate::faults::Faults;
use crate::log::LogEvent;
use crate::scheduler::Scheduler;
use crate::script::{Script, ScriptState};

/// An Ollama-compatible server's behaviour without the HTTP layer: the scheduler, the
/// replies, the event log and the injected faults. Cheap to clone (an `Arc` inside).
///
/// Request methods run in any tokio runtime; background tasks (the loader and the idle
/// timers) start on the first request. Created and used inside a runtime with paused time
/// (`start_paused`) and a time scale of 1.0, the simulation runs in virtual time.
#[derive(Clone)]
pub struct Simulator {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: Arc<SimConfig>,
    pub(crate) catalogue: Catalogue,
    pub(crate) scheduler: Arc<Scheduler>,
    pub(crate) script: ScriptState,
}

impl Simulator {
    /// A simulator with `config` (its `script` field included). `config` should have passed
    /// [`SimConfig::validated`]; files loaded with [`SimConfig::from_file`] have.
    pub fn new(config: SimConfig) -> Simulator {
        let epoch = config.epoch_unix_seconds.unwrap_or_else(unix_now);
        let clock = Clock::new(config.time_scale, epoch);
        let mut config = config;
        let script = std::mem::take(&mut config.script);
        let config = Arc::new(config);
        let catalogue = Catalogue::new(&config, &clock.timestamp(0.0));
        let scheduler = Scheduler::new(Arc::clone(&config), clock);
        Simulator {
            inner: Arc::new(Inner {
                config,
                catalogue,
                scheduler,
                script: ScriptState::new(script),
            }),
        }
    }

    /// Replaces the script (and restarts every rule's reply sequence).
    pub fn with_script(self, script: Script) -> Simulator {
        self.set_script(script);
        self
    }

    /// Replaces the script of a running simulator.
    pub fn set_script(&self, script: Script) {
        self.inner.script.replace(script);
    }

    /// The configuration in use (without the script).
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// `GET /api/ps`: the loaded models, latest expiry first. Models still loading are not
    /// listed; a model that is stopping (unload requested while busy) shows an `expires_at`
    /// in the past.
    pub fn ps(&self) -> api::PsResponse {
        self.inner.scheduler.ps()
    }

    /// `GET /api/tags`: the catalogue.
    pub fn tags(&self) -> api::TagsResponse {
        api::TagsResponse {
            models: self
                .inner
                .catalogue
                .entries()
                .iter()
                .map(|entry| api::TagModel {
                    name: entry.name.to_string(),
                    model: entry.name.to_string(),
                    modified_at: entry.modified_at.clone(),
                    size: entry.spec.size_bytes,
                    digest: entry.digest.clone(),
                    details: entry.details(),
                    capabilities: entry.spec.capabilities.clone(),
                })
                .collect(),
        }
    }

    /// `GET /sim/log`: every event since start or the last reset (up to `log_capacity`).
    pub fn log(&self) -> Vec<LogEvent> {
        self.inner.scheduler.log()
    }

    /// `POST /sim/reset`: forgets loaded models (at once, without unload time), the page
    /// cache, the log, the faults and the turn and script counters. The clock keeps running.
    pub fn reset(&self) {
        self.inner.scheduler.reset();
        self.inner.script.reset_counters();
    }

    /// `POST /sim/faults`: replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.inner.scheduler.set_faults(faults);
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("time_scale", &self.inner.config.time_scale)
            .field("models", &self.inner.config.models.len())
            .finish_non_exhaustive()
    }
}
