//! Checks a plan against the rules every plan must keep, against the context it was made for.

use crate::plan::{PlanContext, TurnPlan};
use crate::workload::Workload;

/// The first broken rule of `plan`, if any.
///
/// Rules: unloads name distinct resident models other than the speaker's; the call is there
/// exactly when the speaker has a model, names it and says correctly whether it loads; each
/// load (the call's, then the preloads in order) targets a model neither resident nor already
/// loading and passes the count cap and the fit test (its prediction against what is resident
/// by then).
pub(crate) fn audit_plan(
    workload: &Workload,
    context: &PlanContext<'_>,
    plan: &TurnPlan,
) -> Result<(), String> {
    let budget = workload.budget();
    let speaker = workload
        .agent_id(context.speaker)
        .map_err(|error| error.to_string())?;
    let speaker_runner = workload.agent_runner[speaker];
    // (runner, name, bytes) of what is resident.
    let mut resident: Vec<(Option<usize>, String, u64)> = Vec::new();
    for model in context.resident {
        let runner = workload.runner_named(&model.model);
        let listed = resident.iter_mut().find(|(other, name, _)| match runner {
            Some(_) => *other == runner,
            None => other.is_none() && *name == model.model,
        });
        if let Some((_, _, bytes)) = listed {
            *bytes = (*bytes).max(model.bytes);
            continue;
        }
        resident.push((runner, model.model.clone(), model.bytes));
    }
    for unload in &plan.unloads {
        let runner = workload.runner_named(&unload.model);
        if runner.is_some() && runner == speaker_runner {
            return Err(format!("unloads the speaker's model {}", unload.model));
        }
        let position = resident
            .iter()
            .position(|(other, name, _)| match runner {
                Some(_) => *other == runner,
                None => *name == unload.model,
            })
            .ok_or_else(|| format!("unloads {}, which is not resident", unload.model))?;
        resident.remove(position);
    }
    let mut load = |runner: usize, name: &str| -> Result<(), String> {
        if resident.iter().any(|(other, _, _)| *other == Some(runner)) {
            return Err(format!("loads {name}, which is resident or loading"));
        }
        let bytes = workload.runners[runner].footprint_bytes;
        let predicted = workload.runners[runner].admission_bytes();
        let used: u64 = resident.iter().map(|(_, _, bytes)| bytes).sum();
        if !budget.admits(predicted, resident.len(), used) {
            return Err(format!(
                "loading {name} ({predicted} bytes) beside {} models ({used} bytes) fails the cap or fit test",
                resident.len()
            ));
        }
        resident.push((Some(runner), name.to_owned(), bytes));
        Ok(())
    };
    match (&plan.call, speaker_runner) {
        (None, None) => {}
        (Some(call), Some(runner)) => {
            if workload.runner_named(&call.model) != Some(runner) {
                return Err(format!("calls {}, not the speaker's model", call.model));
            }
            let is_resident = context
                .resident
                .iter()
                .any(|model| workload.runner_named(&model.model) == Some(runner));
            if call.loads == is_resident {
                return Err(format!(
                    "says the call loads={} but resident={is_resident}",
                    call.loads
                ));
            }
            if call.loads {
                load(runner, &call.model)?;
            }
        }
        (Some(call), None) => {
            return Err(format!("calls {} for an agent without a model", call.model));
        }
        (None, Some(_)) => return Err("no call for an agent with a model".to_owned()),
    }
    for preload in &plan.preloads {
        let runner = workload
            .runner_named(&preload.model)
            .ok_or_else(|| format!("preloads unknown model {}", preload.model))?;
        load(runner, &preload.model)?;
    }
    Ok(())
}
