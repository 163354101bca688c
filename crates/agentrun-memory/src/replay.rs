//! A discrete-event model of a run in virtual time: Ollama's residency accounting, serialized
//! loads, keep_alive expiry and its own eviction order, driven by a known sequence of turns and
//! the plans of one policy. It measures policies against each other; the real simulator and
//! the executor's measurements are the reference.

use std::collections::HashMap;

use serde::Serialize;

use crate::Policy;
use crate::audit::audit_plan;
use crate::error::Error;
use crate::keep_alive::KeepAlive;
use crate::plan::{FutureTurn, LoadedModel, PlanContext, plan_turn};
use crate::wait::TraceTurn;
use crate::{LoadMode, Workload};

#[cfg(test)]
mod tests;

/// The server and executor behaviour a replay assumes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayConfig {
    /// The keep_alive of a load that carries none (`OLLAMA_KEEP_ALIVE`, 5 minutes by default).
    pub default_keep_alive: KeepAlive,
    /// Whether the planner learns during the replay (edge counts, turn lengths, load times),
    /// as the executor makes it do in a real run.
    pub learn: bool,
}

/// What a replay measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The policy replayed.
    pub policy: Policy,
    /// Each turn's load wait, for [`crate::classify_waits`].
    pub turns: Vec<TraceTurn>,
    /// Total seconds calls waited for loads.
    pub load_wait_seconds: f64,
    /// How many loads the server performed.
    pub loads: usize,
    /// How many models left the server: unloads, evictions and expiries.
    pub unloads: usize,
    /// Footprint bytes of every load.
    pub bytes_loaded: u64,
    /// Virtual seconds from the first turn's start to the last turn's end.
    pub wall_seconds: f64,
    /// Models the server evicted on its own to make room for a load.
    pub evictions: usize,
    /// Models that expired (their keep_alive ran out).
    pub expiries: usize,
    /// Broken plan rules (see [`crate::plan_turn`]), one line each; empty for a sound planner.
    pub plan_violations: Vec<String>,
    /// Models whose load mode changed during the run (each change forces a reload).
    pub load_mode_changes: usize,
}

/// Replays `turns` (agent and seconds of each turn, in order) under `policy`.
///
/// Load times are `workload`'s estimates per mode, taken as the truth. The executor model:
/// before each turn it reads the server's residency, plans, sends refreshes and unloads,
/// calls (waiting for a load if the model is not resident), then runs the plan's preloads one
/// at a time while the turn runs, dropping those that would start after the turn ends.
pub fn replay(
    policy: Policy,
    workload: &Workload,
    turns: &[FutureTurn],
    config: &ReplayConfig,
) -> Result<ReplayReport, Error> {
    let mut learnt = workload.clone();
    let mut server = Server {
        budget: workload.budget(),
        default_keep_alive: config.default_keep_alive,
        loaded: Vec::new(),
        loader_free: 0.0,
        loads: 0,
        unloads: 0,
        bytes_loaded: 0,
        evictions: 0,
        expiries: 0,
    };
    let mut report = ReplayReport {
        policy,
        turns: Vec::with_capacity(turns.len()),
        load_wait_seconds: 0.0,
        loads: 0,
        unloads: 0,
        bytes_loaded: 0,
        wall_seconds: 0.0,
        evictions: 0,
        expiries: 0,
        plan_violations: Vec::new(),
        load_mode_changes: 0,
    };
    let mut modes: HashMap<usize, LoadMode> = HashMap::new();
    let mut now = 0.0;
    let mut previous: Option<&str> = None;
    for (index, turn) in turns.iter().enumerate() {
        let agent = workload.agent_id(&turn.agent)?;
        server.expire(now);
        let resident: Vec<LoadedModel> = server
            .loaded
            .iter()
            .map(|model| LoadedModel {
                model: model.name.clone(),
                bytes: model.bytes,
                busy: model.busy_until > now,
                keep_alive: model.last_sent,
            })
            .collect();
        let context = PlanContext {
            speaker: &turn.agent,
            resident: &resident,
            future: &turns[index..],
        };
        let plan = plan_turn(policy, &learnt, &context)?;
        if let Err(violation) = audit_plan(&learnt, &context, &plan) {
            report
                .plan_violations
                .push(format!("turn {index} ({}): {violation}", turn.agent));
        }
        for refresh in &plan.refreshes {
            if let Some(model) = server.find_mut(&learnt, &refresh.model) {
                model.keep_alive = refresh.keep_alive;
                model.last_sent = Some(refresh.keep_alive);
                model.busy_until = model.busy_until.max(now);
            }
        }
        for unload in &plan.unloads {
            server.unload(&learnt, &unload.model);
        }
        let mut end = now + turn.seconds;
        let mut loader_start = now;
        if let Some(call) = &plan.call {
            let runner = learnt.agent_runner[agent].expect("a call implies a model");
            note_mode(
                &mut modes,
                runner,
                call.load_mode,
                &mut report.load_mode_changes,
            );
            let ready = match server.position(runner) {
                Some(position) => server.loaded[position].ready_at.max(now),
                None => {
                    let ready = server.load(
                        workload,
                        runner,
                        &call.model,
                        now,
                        call.load_mode,
                        call.keep_alive,
                    );
                    if config.learn {
                        let seconds = workload.runners[runner].load_times.seconds(call.load_mode);
                        learnt.record_load(&call.model, call.load_mode, seconds)?;
                    }
                    ready
                }
            };
            let position = server.position(runner).expect("the call's model is loaded");
            let model = &mut server.loaded[position];
            if let Some(keep_alive) = call.keep_alive {
                model.keep_alive = keep_alive;
                model.last_sent = Some(keep_alive);
            }
            end = ready + turn.seconds;
            model.busy_until = model.busy_until.max(end);
            let wait = ready - now;
            report.load_wait_seconds += wait;
            report.turns.push(TraceTurn {
                agent: turn.agent.clone(),
                model: Some(call.model.clone()),
                waited: wait > 1e-9,
                wait_seconds: wait,
            });
            loader_start = ready;
        } else {
            report.turns.push(TraceTurn {
                agent: turn.agent.clone(),
                model: None,
                waited: false,
                wait_seconds: 0.0,
            });
        }
        for preload in &plan.preloads {
            let start = loader_start.max(server.loader_free);
            if start >= end {
                break;
            }
            let Some(runner) = learnt.runner_named(&preload.model) else {
                continue;
            };
            note_mode(
                &mut modes,
                runner,
                preload.load_mode,
                &mut report.load_mode_changes,
            );
            if let Some(position) = server.position(runner) {
                if let Some(keep_alive) = preload.keep_alive {
                    server.loaded[position].keep_alive = keep_alive;
                    server.loaded[position].last_sent = Some(keep_alive);
                }
                continue;
            }
            server.load(
                workload,
                runner,
                &preload.model,
                start,
                preload.load_mode,
                preload.keep_alive,
            );
            if config.learn {
                let seconds = workload.runners[runner]
                    .load_times
                    .seconds(preload.load_mode);
                learnt.record_load(&preload.model, preload.load_mode, seconds)?;
            }
            loader_start = server.loader_free;
        }
        if config.learn {
            if let Some(previous) = previous {
                learnt.record_transition(previous, Some(&turn.agent))?;
            }
            learnt.record_turn_seconds(&turn.agent, turn.seconds)?;
        }
        previous = Some(&turn.agent);
        now = end;
    }
    report.wall_seconds = now;
    report.loads = server.loads;
    report.unloads = server.unloads;
    report.bytes_loaded = server.bytes_loaded;
    report.evictions = server.evictions;
    report.expiries = server.expiries;
    Ok(report)
}

fn note_mode(
    modes: &mut HashMap<usize, LoadMode>,
    runner: usize,
    mode: LoadMode,
    changes: &mut usize,
) {
    if modes
        .insert(runner, mode)
        .is_some_and(|previous| previous != mode)
    {
        *changes += 1;
    }
}

/// A model in the server.
#[derive(Debug, Clone)]
struct Loaded {
    runner: usize,
    name: String,
    bytes: u64,
    keep_alive: KeepAlive,
    last_sent: Option<KeepAlive>,
    ready_at: f64,
    /// When its last in-flight request (or its load) ends: the idle countdown starts then.
    busy_until: f64,
}

impl Loaded {
    fn expires_at(&self) -> f64 {
        match self.keep_alive.duration() {
            None => f64::INFINITY,
            Some(duration) => self.busy_until + duration.as_secs_f64(),
        }
    }
}

/// Ollama's scheduler, reduced to residency: facts rules 1-3 and 5-7.
struct Server {
    budget: crate::budget::Budget,
    default_keep_alive: KeepAlive,
    loaded: Vec<Loaded>,
    loader_free: f64,
    loads: usize,
    unloads: usize,
    bytes_loaded: u64,
    evictions: usize,
    expiries: usize,
}

impl Server {
    fn position(&self, runner: usize) -> Option<usize> {
        self.loaded.iter().position(|model| model.runner == runner)
    }

    fn find_mut(&mut self, workload: &Workload, name: &str) -> Option<&mut Loaded> {
        let runner = workload.runner_named(name)?;
        self.loaded.iter_mut().find(|model| model.runner == runner)
    }

    fn unload(&mut self, workload: &Workload, name: &str) {
        let Some(runner) = workload.runner_named(name) else {
            return;
        };
        if let Some(position) = self.position(runner) {
            // In-flight requests finish first; the memory is free for any later load, which
            // the serialized loader starts no earlier than that.
            self.loaded.remove(position);
            self.unloads += 1;
        }
    }

    fn expire(&mut self, now: f64) {
        let before = self.loaded.len();
        self.loaded.retain(|model| model.expires_at() > now);
        let expired = before - self.loaded.len();
        self.expiries += expired;
        self.unloads += expired;
    }

    /// Loads a runner no earlier than `at`, after any load in progress, evicting in Ollama's
    /// order (keep_alive ascending, forever last, ties by name; idle models only) until the
    /// count cap and the fit test pass. Returns when the model is ready.
    fn load(
        &mut self,
        workload: &Workload,
        runner: usize,
        name: &str,
        at: f64,
        mode: LoadMode,
        keep_alive: Option<KeepAlive>,
    ) -> f64 {
        let bytes = workload.runners[runner].footprint_bytes;
        let predicted = workload.runners[runner].admission_bytes();
        let mut start = at.max(self.loader_free);
        loop {
            self.expire(start);
            let used: u64 = self.loaded.iter().map(|model| model.bytes).sum();
            if self.budget.admits(predicted, self.loaded.len(), used) {
                break;
            }
            let mut order: Vec<usize> = (0..self.loaded.len()).collect();
            order.sort_by(|&a, &b| {
                let key = |model: &Loaded| {
                    model
                        .keep_alive
                        .duration()
                        .map_or(f64::INFINITY, |d| d.as_secs_f64())
                };
                key(&self.loaded[a])
                    .total_cmp(&key(&self.loaded[b]))
                    .then_with(|| self.loaded[a].name.cmp(&self.loaded[b].name))
            });
            match order
                .iter()
                .find(|&&index| self.loaded[index].busy_until <= start)
            {
                Some(&victim) => {
                    self.loaded.remove(victim);
                    self.evictions += 1;
                    self.unloads += 1;
                }
                None => start = self.loaded[order[0]].busy_until,
            }
        }
        let ready = start + workload.runners[runner].load_times.seconds(mode);
        self.loader_free = ready;
        self.loads += 1;
        self.bytes_loaded += bytes;
        self.loaded.push(Loaded {
            runner,
            name: name.to_owned(),
            bytes,
            keep_alive: keep_alive.unwrap_or(self.default_keep_alive),
            last_sent: keep_alive,
            ready_at: ready,
            busy_until: ready,
        });
        ready
    }
}
