//! What runs measure for the planner: turn lengths per agent, the edges taken, load times per
//! model and load mode, and decode speeds per model.
//!
//! One type serves both directions: a run returns what it observed
//! ([`crate::RunOutcome::observations`]), and a later run takes what earlier runs observed as
//! the planner's prior ([`crate::RunOptions::experience`]). Keeping what applies across runs,
//! and forgetting what a changed workflow or model no longer supports, is the caller's job.

use std::collections::BTreeMap;

use agentrun_memory::LoadMode;
use agentrun_spec::EdgeTarget;
use serde::{Deserialize, Serialize};

/// A running total of measured seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    /// The sum of the measured seconds.
    pub total_s: f64,
    /// How many measurements.
    pub count: u64,
}

impl Samples {
    /// One measurement.
    pub fn one(seconds: f64) -> Samples {
        Samples {
            total_s: seconds,
            count: 1,
        }
    }

    /// Adds a measurement.
    pub fn add(&mut self, seconds: f64) {
        self.total_s += seconds;
        self.count += 1;
    }

    /// Adds another total.
    pub fn merge(&mut self, other: Samples) {
        self.total_s += other.total_s;
        self.count += other.count;
    }

    /// The mean, when anything was measured.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.total_s / self.count as f64)
    }
}

/// Tokens generated and the seconds they took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct DecodeSamples {
    /// Tokens generated.
    pub tokens: u64,
    /// Seconds of generation.
    pub seconds: f64,
}

impl DecodeSamples {
    /// Tokens per second, when enough was measured to say.
    pub fn tokens_per_second(&self) -> Option<f64> {
        (self.tokens > 0 && self.seconds > 0.0).then(|| self.tokens as f64 / self.seconds)
    }
}

/// Measured figures of one or more runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// Turn lengths by agent: generation time for model agents, the whole turn for commands
    /// and people, in the run's seconds.
    pub turns: BTreeMap<String, Samples>,
    /// How often each edge was taken: from, to, count.
    pub edges: Vec<(String, EdgeTarget, u64)>,
    /// Load times by model and load mode.
    pub loads: BTreeMap<String, BTreeMap<LoadMode, Samples>>,
    /// Generation speed by model.
    pub decode: BTreeMap<String, DecodeSamples>,
    /// With several hosts: load times by host address, model and load mode, each measured
    /// on that host (one host's loads say nothing of another's speed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, BTreeMap<String, BTreeMap<LoadMode, Samples>>>,
}

impl Observations {
    /// Whether nothing was observed.
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
            && self.edges.is_empty()
            && self.loads.is_empty()
            && self.decode.is_empty()
            && self.hosts.is_empty()
    }

    /// Records one turn's length.
    pub fn turn(&mut self, agent: &str, seconds: f64) {
        self.turns.entry(agent.to_owned()).or_default().add(seconds);
    }

    /// Records that `to` followed `from`.
    pub fn edge(&mut self, from: &str, to: &EdgeTarget) {
        self.edge_taken(from, to, 1);
    }

    /// Records that `to` followed `from` `count` times.
    pub fn edge_taken(&mut self, from: &str, to: &EdgeTarget, count: u64) {
        match self
            .edges
            .iter_mut()
            .find(|(known_from, known_to, _)| known_from == from && known_to == to)
        {
            Some((_, _, known)) => *known += count,
            None => self.edges.push((from.to_owned(), to.clone(), count)),
        }
    }

    /// Records a model's load time in a mode.
    pub fn load(&mut self, model: &str, mode: LoadMode, seconds: f64) {
        self.loads
            .entry(model.to_owned())
            .or_default()
            .entry(mode)
            .or_default()
            .add(seconds);
    }

    /// Records a model's load time in a mode on the host at `host` (its address).
    pub fn load_on(&mut self, host: &str, model: &str, mode: LoadMode, seconds: f64) {
        self.hosts
            .entry(host.to_owned())
            .or_default()
            .entry(model.to_owned())
            .or_default()
            .entry(mode)
            .or_default()
            .add(seconds);
    }

    /// The mean load time of a model in a mode on the host at `host`, when measured there.
    pub fn host_load_seconds(&self, host: &str, model: &str, mode: LoadMode) -> Option<f64> {
        self.hosts.get(host)?.get(model)?.get(&mode)?.mean()
    }

    /// Records a model's generation of `tokens` in `seconds`.
    pub fn decode(&mut self, model: &str, tokens: u64, seconds: f64) {
        let known = self.decode.entry(model.to_owned()).or_default();
        known.tokens += tokens;
        known.seconds += seconds;
    }

    /// The mean load time of a model in a mode, when measured.
    pub fn load_seconds(&self, model: &str, mode: LoadMode) -> Option<f64> {
        self.loads.get(model)?.get(&mode)?.mean()
    }
}
