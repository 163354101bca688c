//! Which load waits of a run some policy could have avoided: a wait is avoidable when the
//! model had been used before and every model used since fits in the budget together with it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::workload::Workload;

#[cfg(test)]
mod tests;

/// One turn of a finished run, as the executor measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceTurn {
    /// The speaking agent.
    pub agent: String,
    /// The model it called; `None` for command and human agents.
    pub model: Option<String>,
    /// Whether the call waited for its model to load (it was not resident when called).
    pub waited: bool,
    /// How long it waited, in seconds.
    pub wait_seconds: f64,
}

/// The verdict on one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitClass {
    /// No wait (or no model).
    NoWait,
    /// The model's first use in the run: it was never resident before, so the wait counts as
    /// unavoidable.
    FirstUse,
    /// The models used since the model's previous use cannot all be resident with it.
    Unavoidable,
    /// They can: some policy could have kept the model resident.
    Avoidable,
}

/// Load waits of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelWaits {
    /// Seconds of avoidable waits.
    pub avoidable_seconds: f64,
    /// Seconds of unavoidable waits (first uses included).
    pub unavoidable_seconds: f64,
    /// How many avoidable waits.
    pub avoidable_waits: usize,
    /// How many unavoidable waits.
    pub unavoidable_waits: usize,
}

/// A run's load waits, classified.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WaitReport {
    /// One verdict per turn of the trace.
    pub turns: Vec<WaitClass>,
    /// Per model name.
    pub models: BTreeMap<String, ModelWaits>,
    /// Total avoidable seconds.
    pub avoidable_seconds: f64,
    /// Total unavoidable seconds.
    pub unavoidable_seconds: f64,
}

/// Classifies every load wait of a trace.
///
/// A wait for model M at turn i is avoidable when M (its weights: names on one runner count
/// as one model) was used at an earlier turn j and the set of M and every model used in turns
/// j+1..i-1 passes the workload's budget: at most `max_loaded_models` models and a load order
/// passing Ollama's fit test ([`crate::Budget::fits`]).
pub fn classify_waits(trace: &[TraceTurn], workload: &Workload) -> Result<WaitReport, Error> {
    let budget = workload.budget();
    let runners: Vec<Option<usize>> = trace
        .iter()
        .map(|turn| {
            turn.model
                .as_deref()
                .map(|model| workload.runner_of_model(model))
                .transpose()
        })
        .collect::<Result<_, _>>()?;
    let mut last_use: Vec<Option<usize>> = vec![None; workload.runners.len()];
    let mut report = WaitReport::default();
    for (index, (turn, runner)) in trace.iter().zip(&runners).enumerate() {
        let (Some(runner), Some(model)) = (*runner, &turn.model) else {
            report.turns.push(WaitClass::NoWait);
            continue;
        };
        let class = if !turn.waited {
            WaitClass::NoWait
        } else {
            match last_use[runner] {
                None => WaitClass::FirstUse,
                Some(previous) => {
                    let mut set = vec![runner];
                    for other in runners[previous + 1..index].iter().flatten() {
                        if !set.contains(other) {
                            set.push(*other);
                        }
                    }
                    let footprints: Vec<u64> = set
                        .iter()
                        .map(|&runner| workload.runners[runner].footprint_bytes)
                        .collect();
                    if budget.fits(&footprints) {
                        WaitClass::Avoidable
                    } else {
                        WaitClass::Unavoidable
                    }
                }
            }
        };
        last_use[runner] = Some(index);
        if class != WaitClass::NoWait {
            let seconds = turn.wait_seconds.max(0.0);
            let waits = report.models.entry(model.clone()).or_default();
            if class == WaitClass::Avoidable {
                waits.avoidable_seconds += seconds;
                waits.avoidable_waits += 1;
                report.avoidable_seconds += seconds;
            } else {
                waits.unavoidable_seconds += seconds;
                waits.unavoidable_waits += 1;
                report.unavoidable_seconds += seconds;
            }
        }
        report.turns.push(class);
    }
    Ok(report)
}
