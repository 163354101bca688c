//! Whether a speculative preload pays: its expected saving against its expected cost, before
//! it starts and again while it loads.
//!
//! Ollama loads one model at a time, so a preload holds the loader: a load that a later turn
//! demands while it runs waits for its remainder. A preload not yet started costs nothing to
//! withdraw; one in progress can be aborted (Ollama abandons a load whose client
//! disconnects), which wastes what it loaded so far but frees the loader at once.

use crate::error::Error;
use crate::forecast::{Forecast, Foresight, Outlook};
use crate::plan::{PlanContext, oracle_future};
use crate::policy::Policy;
use crate::workload::Workload;

#[cfg(test)]
mod tests;

/// When a load that a preload could delay is demanded, in seconds from the start of the
/// current turn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DemandTime {
    /// Known exactly (the oracle's foresight).
    Certain(f64),
    /// Only its mean is known; taken as exponentially distributed, the widest spread a mean
    /// alone allows, so a demand that usually comes late still sometimes comes early.
    Mean(f64),
}

/// The chance that a model other than a preload's is the next one a turn must load, and when.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Demand {
    /// The runner demanded.
    pub(crate) runner: usize,
    /// Probability that it is the first model not resident that a turn needs.
    pub(crate) probability: f64,
    /// When that happens.
    pub(crate) at: DemandTime,
}

/// The expected seconds a load demanded at `at` waits behind a preload that holds the loader
/// from `start` to `start + load_seconds`. A demand that comes before the preload starts
/// costs nothing: the next plan withdraws a preload not yet started.
pub(crate) fn expected_delay(start: f64, load_seconds: f64, at: DemandTime) -> f64 {
    let end = start + load_seconds;
    match at {
        DemandTime::Certain(time) if time < start => 0.0,
        DemandTime::Certain(time) => (end - time).max(0.0),
        // E[(end - t) 1{start <= t < end}] for t ~ Exp(mean):
        // e^(-start/mean) x (L - mean x (1 - e^(-L/mean))).
        DemandTime::Mean(mean) if mean <= 0.0 => {
            if start <= 0.0 {
                load_seconds
            } else {
                0.0
            }
        }
        DemandTime::Mean(mean) => {
            let reached = (-start / mean).exp();
            let overlap = load_seconds - mean * (1.0 - (-load_seconds / mean).exp());
            reached * overlap.max(0.0)
        }
    }
}

/// The expected seconds a preload of `candidate` from `start` for `load_seconds` delays the
/// other loads the coming turns may demand (`demands`, those of `candidate` skipped).
pub(crate) fn delay_cost(
    candidate: usize,
    start: f64,
    load_seconds: f64,
    demands: impl IntoIterator<Item = Demand>,
) -> f64 {
    demands
        .into_iter()
        .filter(|demand| demand.runner != candidate)
        .map(|demand| demand.probability * expected_delay(start, load_seconds, demand.at))
        .sum()
}

/// A preload is started only when the seconds it is expected to hide exceed the seconds it
/// is expected to cost: the reloads of what it evicts plus the waits it imposes on other loads.
pub(crate) fn preload_pays(saving: f64, eviction_cost: f64, delay_cost: f64) -> bool {
    saving > eviction_cost + delay_cost
}

/// A loading preload is kept while what it can still save is at least what finishing it
/// costs: the speaker, whose own model must load next, waits for the rest of it.
pub(crate) fn loading_pays(remaining_seconds: f64, keep_value: f64) -> bool {
    keep_value >= remaining_seconds
}

/// A preload the loader is running when a turn is about to start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadingPreload<'a> {
    /// The model being preloaded.
    pub model: &'a str,
    /// Seconds since the preload was sent.
    pub loading_seconds: f64,
}

/// What to do with a loading preload.
#[derive(Debug, Clone, PartialEq)]
pub enum PreloadVerdict {
    /// Let it finish.
    Keep,
    /// Abort it (close its request): finishing it costs more than it can still save.
    Abort {
        /// Why, in a few words.
        reason: String,
    },
}

/// Judges a preload still loading when the turn of `context.speaker` is about to start.
///
/// It is aborted only when the speaker needs another model that is not resident (that load
/// would wait behind the preload) and the seconds it would wait exceed what keeping the
/// preloaded model is expected to save later (nothing, if the two models cannot be resident
/// together). Passive policies send no preloads, so they keep whatever loads. Call it before
/// [`crate::plan_turn`]; after an abort, plan without the aborted model.
pub fn judge_preload(
    policy: Policy,
    workload: &Workload,
    context: &PlanContext<'_>,
    preload: &LoadingPreload<'_>,
) -> Result<PreloadVerdict, Error> {
    let speaker = workload.agent_id(context.speaker)?;
    match policy {
        Policy::Static | Policy::OllamaDefault => Ok(PreloadVerdict::Keep),
        Policy::Smart => {
            let forecast = Forecast::races_only(workload, speaker);
            Ok(judge(workload, context, speaker, preload, &forecast))
        }
        Policy::Oracle => {
            let future = oracle_future(workload, context)?;
            let foresight = Foresight::new(workload, &future);
            Ok(judge(workload, context, speaker, preload, &foresight))
        }
    }
}

fn judge(
    workload: &Workload,
    context: &PlanContext<'_>,
    speaker: usize,
    preload: &LoadingPreload<'_>,
    outlook: &impl Outlook,
) -> PreloadVerdict {
    let Some(candidate) = workload.runner_named(preload.model) else {
        return PreloadVerdict::Keep;
    };
    let Some(needed) = workload.agent_runner[speaker] else {
        return PreloadVerdict::Keep;
    };
    let resident = context
        .resident
        .iter()
        .any(|model| workload.runner_named(&model.model) == Some(needed));
    if needed == candidate || resident {
        return PreloadVerdict::Keep;
    }
    let load_seconds = workload.runners[candidate].load_seconds();
    let remaining = (load_seconds - preload.loading_seconds).max(0.0);
    let together = workload.coexist(candidate, needed);
    // Loading began `loading_seconds` ago: as a preload started that long before this turn.
    let keep_value = if together {
        outlook.preload_saving(candidate, load_seconds, -preload.loading_seconds)
    } else {
        0.0
    };
    if loading_pays(remaining, keep_value) {
        return PreloadVerdict::Keep;
    }
    let speaker_model = &workload.runners[needed].name;
    PreloadVerdict::Abort {
        reason: if together {
            format!(
                "{} needs {speaker_model}, which would wait ~{remaining:.0} s behind it; \
                 it is expected to save ~{:.1} s",
                context.speaker,
                keep_value.max(0.0)
            )
        } else {
            format!(
                "{} needs {speaker_model}, which cannot be resident beside it",
                context.speaker
            )
        },
    }
}
