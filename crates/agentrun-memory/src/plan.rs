//! The turn plan: what the executor does around one turn, and the policies that make it.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::Error;
use crate::forecast::{Forecast, Foresight};
use crate::keep_alive::KeepAlive;
use crate::load_mode::LoadMode;
use crate::lookahead::plan_ahead;
use crate::policy::Policy;
use crate::workload::Workload;

#[cfg(test)]
mod tests;

/// A model the server holds, as `/api/ps` lists it, with what the executor knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedModel {
    /// The model name `/api/ps` lists (`model` field).
    pub model: String,
    /// The bytes the server accounts for it (`/api/ps` `size`).
    pub bytes: u64,
    /// A request of the executor to it is in flight: a call, or a preload still loading
    /// (list a loading preload here too, with its predicted footprint).
    pub busy: bool,
    /// The last keep_alive the executor sent for it, if it knows.
    pub keep_alive: Option<KeepAlive>,
}

/// A turn of the run's known future (the `oracle` policy only).
#[derive(Debug, Clone, PartialEq)]
pub struct FutureTurn {
    /// The speaking agent.
    pub agent: String,
    /// How long the turn takes once its model is resident.
    pub seconds: f64,
}

/// What the planner knows when a turn is about to start.
#[derive(Debug, Clone, Copy)]
pub struct PlanContext<'a> {
    /// The agent about to speak.
    pub speaker: &'a str,
    /// What the server holds now (from `/api/ps`): the plan trusts this over any earlier plan.
    pub resident: &'a [LoadedModel],
    /// For [`Policy::Oracle`] only: this turn and every later one, in order (so
    /// `future[0].agent == speaker`). Other policies ignore it; pass `&[]`.
    pub future: &'a [FutureTurn],
}

/// What the executor does around one turn, in this order:
///
/// 1. send the `refreshes` (each an empty request with its keep_alive to a resident model,
///    answered at once; it only moves the model in Ollama's eviction order);
/// 2. send the `unloads`, in order (each an empty request with `keep_alive: 0`);
/// 3. make the `call`, if the speaker has a model, with its keep_alive and load mode;
/// 4. once the call's model is resident (its first streamed chunk), send the `preloads` one
///    at a time, each held open until it answers `done_reason: "load"`. A preload not yet
///    started when the turn ends is dropped: the next turn's plan replaces it. A preload still
///    loading when the next turn starts is first judged ([`crate::judge_preload`]); if kept,
///    it is listed as a busy resident model in the next turn's context.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnPlan {
    /// The speaker's call; `None` for command and human agents.
    pub call: Option<CallPlan>,
    /// Models to unload before the call, in order.
    pub unloads: Vec<Unload>,
    /// Models to load while the turn runs, in order, one at a time.
    pub preloads: Vec<Preload>,
    /// New keep_alive values for resident models.
    pub refreshes: Vec<Refresh>,
}

/// The speaker's model call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallPlan {
    /// The model the speaker calls.
    pub model: String,
    /// The keep_alive to send with the call; `None` sends none.
    #[serde(serialize_with = "serialize_keep_alive")]
    pub keep_alive: Option<KeepAlive>,
    /// The load mode every call of this model uses (`use_mmap: false` for `NoMmap`).
    pub load_mode: LoadMode,
    /// Whether the model is expected to load for this call (it is not resident).
    pub loads: bool,
    /// Why, in a few words.
    pub reason: String,
}

/// A model to unload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unload {
    /// The model name.
    pub model: String,
    /// Why, in a few words.
    pub reason: String,
}

/// A model to load ahead of its use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preload {
    /// The model name.
    pub model: String,
    /// The keep_alive to send with the preload.
    #[serde(serialize_with = "serialize_keep_alive")]
    pub keep_alive: Option<KeepAlive>,
    /// The model's load mode.
    pub load_mode: LoadMode,
    /// Why, in a few words.
    pub reason: String,
}

/// A new keep_alive for a resident model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refresh {
    /// The model name.
    pub model: String,
    /// The keep_alive to send.
    #[serde(serialize_with = "serialize_keep_alive_value")]
    pub keep_alive: KeepAlive,
    /// Why, in a few words.
    pub reason: String,
}

/// Plans one turn: the keep_alive, unloads, preloads and refreshes around the speaker's call.
///
/// Deterministic: the same workload and context give the same plan. Every plan keeps these
/// rules, checked by the property tests: the loads it implies (the call's, then each
/// preload) pass Ollama's count cap and fit test in that order against what is resident
/// after the unloads; it never unloads the speaker's model or a model it preloads; it never
/// loads a model already resident or loading; and it uses one load mode per model.
pub fn plan_turn(
    policy: Policy,
    workload: &Workload,
    context: &PlanContext<'_>,
) -> Result<TurnPlan, Error> {
    let speaker = workload.agent_id(context.speaker)?;
    match policy {
        Policy::OllamaDefault => Ok(passive_plan(workload, context, speaker, None)),
        Policy::Static => {
            let keep_alive = workload.agents()[speaker].static_keep_alive;
            Ok(passive_plan(workload, context, speaker, keep_alive))
        }
        Policy::Smart => {
            let forecast = Forecast::new(workload, speaker);
            Ok(plan_ahead(workload, context, speaker, &forecast))
        }
        Policy::Oracle => {
            let future = oracle_future(workload, context)?;
            let foresight = Foresight::new(workload, &future);
            Ok(plan_ahead(workload, context, speaker, &foresight))
        }
    }
}

/// A plan that leaves residency to Ollama: one call with a fixed keep_alive (or none), in the
/// model's load mode (Ollama's default, mmap, unless the run set one for every policy).
fn passive_plan(
    workload: &Workload,
    context: &PlanContext<'_>,
    speaker: usize,
    keep_alive: Option<KeepAlive>,
) -> TurnPlan {
    let agent = &workload.agents()[speaker];
    let call = agent.model.as_ref().map(|model| {
        let runner = workload.agent_runner[speaker];
        let loads = !context
            .resident
            .iter()
            .any(|resident| workload.runner_named(&resident.model) == runner);
        let keep_alive_text = keep_alive.map_or_else(
            || "no keep_alive".to_owned(),
            |value| format!("keep_alive {value}"),
        );
        CallPlan {
            model: model.clone(),
            keep_alive,
            load_mode: workload.load_mode(model).unwrap_or(LoadMode::Mmap),
            loads,
            reason: format!(
                "{} speaks; {keep_alive_text}, Ollama decides residency",
                agent.name
            ),
        }
    });
    TurnPlan {
        call,
        ..TurnPlan::default()
    }
}

pub(crate) fn oracle_future(
    workload: &Workload,
    context: &PlanContext<'_>,
) -> Result<Vec<(usize, f64)>, Error> {
    match context.future.first() {
        Some(first) if first.agent == context.speaker => {}
        first => {
            return Err(Error::FutureMismatch {
                speaker: context.speaker.to_owned(),
                found: first.map(|turn| turn.agent.clone()),
            });
        }
    }
    context
        .future
        .iter()
        .map(|turn| {
            let agent = workload.agent_id(&turn.agent)?;
            let seconds = crate::error::check_number(
                || format!("seconds of a future turn of '{}'", turn.agent),
                turn.seconds,
            )?;
            Ok((agent, seconds))
        })
        .collect()
}

fn serialize_keep_alive<S: Serializer>(
    value: &Option<KeepAlive>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.map(KeepAlive::to_json).serialize(serializer)
}

fn serialize_keep_alive_value<S: Serializer>(
    value: &KeepAlive,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    value.to_json().serialize(serializer)
}

impl fmt::Display for TurnPlan {
    /// One action a line, in the order the executor performs them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keep_alive = |value: Option<KeepAlive>| {
            value.map_or_else(|| "none".to_owned(), |value| value.to_string())
        };
        for refresh in &self.refreshes {
            writeln!(
                f,
                "refresh {} keep_alive={} ({})",
                refresh.model, refresh.keep_alive, refresh.reason
            )?;
        }
        for unload in &self.unloads {
            writeln!(f, "unload {} ({})", unload.model, unload.reason)?;
        }
        match &self.call {
            Some(call) => writeln!(
                f,
                "call {} keep_alive={} mode={}{} ({})",
                call.model,
                keep_alive(call.keep_alive),
                call.load_mode,
                if call.loads { " loads" } else { "" },
                call.reason
            )?,
            None => writeln!(f, "no call")?,
        }
        for preload in &self.preloads {
            writeln!(
                f,
                "preload {} keep_alive={} mode={} ({})",
                preload.model,
                keep_alive(preload.keep_alive),
                preload.load_mode,
                preload.reason
            )?;
        }
        Ok(())
    }
}
