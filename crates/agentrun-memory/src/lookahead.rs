//! The residency algorithm shared by `smart` and `oracle`: make room for the call, preload in
//! order of next use where the expected saving beats the expected cost, and rank keep_alive
//! values so that Ollama's own eviction order matches the plan's.

use std::time::Duration;

use crate::budget::{Budget, gigabytes};
use crate::cache_room::{
    CacheOutlook, Idle, eviction_cache_cost, may_pay, preload_cache_cost, weigh_unload,
};
use crate::forecast::Outlook;
use crate::keep_alive::KeepAlive;
use crate::page_cache::Step;
use crate::plan::{CallPlan, PlanContext, Preload, Refresh, TurnPlan, Unload};
use crate::speculation::{delay_cost, preload_pays};
use crate::workload::Workload;

/// Models less likely than this to be needed within the outlook are never preloaded.
const MIN_PRELOAD_PROBABILITY: f64 = 0.05;
/// How much more an eviction that goes wrong weighs than the load it hides: the wrong guess
/// costs a reload that keeping the model would have avoided, and the run reports it.
const WRONG_EVICTION_WEIGHT: f64 = 4.0;
/// The shortest keep_alive the planner sends: a model it wants gone it unloads explicitly, so
/// expiry could only cost a reload the plan did not choose (a router unused through hours of
/// TDD loops, say). The executor releases the models when the run ends.
const KEEP_ALIVE_FLOOR: Duration = Duration::from_secs(24 * 3600);
/// The most idle models the page-cache rule weighs unloading together (every set of them
/// is tried): the least valuable ones.
const MAX_IDLE_SET: usize = 4;
/// The most preloads the page-cache check weighs withdrawing together (every set of them
/// is tried): the least valuable ones.
const MAX_WITHDRAWN_SET: usize = 4;
/// The step between ranked keep_alive values: distinct values make Ollama's eviction order
/// (ascending keep_alive, ties by blob path) exactly the planned one.
const KEEP_ALIVE_STEP: Duration = Duration::from_secs(60);

/// A resident (or planned) runner during planning.
#[derive(Debug, Clone)]
struct Slot {
    /// `None` for a model the workload does not know (another client's).
    runner: Option<usize>,
    name: String,
    bytes: u64,
    busy: bool,
    /// Loaded by this plan (the call or a preload): not to be unloaded by it again.
    planned: bool,
    keep_alive: Option<KeepAlive>,
    priority: f64,
}

pub(crate) fn plan_ahead(
    workload: &Workload,
    context: &PlanContext<'_>,
    speaker: usize,
    outlook: &impl Outlook,
) -> TurnPlan {
    let budget = workload.budget();
    let agent = &workload.agents()[speaker];
    let speaker_runner = workload.agent_runner[speaker];
    let mut slots = resident_slots(workload, context, outlook, speaker_runner);
    let mut plan = TurnPlan::default();

    if let (Some(runner), Some(model)) = (speaker_runner, &agent.model) {
        let loads = !slots.iter().any(|slot| slot.runner == Some(runner));
        if loads {
            let bytes = workload.runners[runner].footprint_bytes;
            let admission = workload.runners[runner].admission_bytes();
            // Furthest next use first; a busy model only if nothing else makes room (its
            // unload waits for its request).
            let mut pool: Vec<usize> = (0..slots.len()).collect();
            pool.sort_by(|&a, &b| {
                let (a, b) = (&slots[a], &slots[b]);
                a.busy
                    .cmp(&b.busy)
                    .then(a.priority.total_cmp(&b.priority))
                    .then(b.bytes.cmp(&a.bytes))
                    .then_with(|| a.name.cmp(&b.name))
            });
            let victims = choose_victims(&slots, admission, budget, &pool)
                .expect("an empty server admits any model");
            for slot in remove_all(&mut slots, &victims) {
                plan.unloads.push(Unload {
                    reason: format!(
                        "make room for {model} ({}), which {} calls now; {}",
                        gigabytes(bytes),
                        agent.name,
                        describe(outlook, &slot)
                    ),
                    model: slot.name,
                });
            }
            slots.push(Slot {
                runner: Some(runner),
                name: model.clone(),
                bytes,
                busy: true,
                planned: true,
                keep_alive: None,
                priority: f64::INFINITY,
            });
        }
        plan.call = Some(CallPlan {
            model: model.clone(),
            keep_alive: None,
            load_mode: workload.runners[runner].mode(),
            loads,
            reason: if loads {
                format!("{} speaks; {model} loads now", agent.name)
            } else {
                format!("{} speaks; {model} is resident", agent.name)
            },
        });
    }

    let evicting = plan_preloads(
        workload,
        context,
        outlook,
        &agent.name,
        &mut slots,
        &mut plan,
    );
    unload_latest_needed_first(workload, outlook, &mut plan);
    spare_cache(workload, context, outlook, &evicting, &mut slots, &mut plan);
    rank_keep_alives(outlook, speaker_runner, &slots, &mut plan);
    plan
}

fn resident_slots(
    workload: &Workload,
    context: &PlanContext<'_>,
    outlook: &impl Outlook,
    speaker_runner: Option<usize>,
) -> Vec<Slot> {
    let mut slots: Vec<Slot> = Vec::with_capacity(context.resident.len());
    for resident in context.resident {
        let runner = workload.runner_named(&resident.model);
        let same = |slot: &Slot| match runner {
            Some(_) => slot.runner == runner,
            None => slot.runner.is_none() && slot.name == resident.model,
        };
        if let Some(existing) = slots.iter_mut().find(|slot| same(slot)) {
            // Two names on one runner (or one name listed twice): one slot, as in Ollama.
            existing.bytes = existing.bytes.max(resident.bytes);
            existing.busy |= resident.busy;
            continue;
        }
        let priority = match runner {
            None => f64::NEG_INFINITY,
            Some(runner) if Some(runner) == speaker_runner => f64::INFINITY,
            Some(runner) => outlook.priority(runner),
        };
        slots.push(Slot {
            runner,
            name: resident.model.clone(),
            bytes: resident.bytes,
            busy: resident.busy,
            planned: false,
            keep_alive: resident.keep_alive,
            priority,
        });
    }
    slots
}

/// Preloads in order of priority while the turn runs, where the expected saving beats the
/// expected cost ([`preload_pays`]): reloads of what it evicts, and the waits of the loads
/// other models may demand while it holds the loader, and the cold reloads of evicted
/// models whose files it pushes out of the page cache ([`eviction_cache_cost`]). Returns the
/// runners whose preload evicts a model.
fn plan_preloads(
    workload: &Workload,
    context: &PlanContext<'_>,
    outlook: &impl Outlook,
    speaker_name: &str,
    slots: &mut Vec<Slot>,
    plan: &mut TurnPlan,
) -> Vec<usize> {
    let mut evicting = Vec::new();
    let budget = workload.budget();
    let window = outlook.turn_seconds();
    let mut candidates: Vec<usize> = (0..workload.runners.len())
        .filter(|&runner| outlook.use_probability(runner) >= MIN_PRELOAD_PROBABILITY)
        .filter(|&runner| !slots.iter().any(|slot| slot.runner == Some(runner)))
        .collect();
    candidates.sort_by(|&a, &b| {
        outlook
            .priority(b)
            .total_cmp(&outlook.priority(a))
            .then_with(|| workload.runners[a].name.cmp(&workload.runners[b].name))
    });
    if candidates.is_empty() {
        return evicting;
    }
    let pending: Vec<bool> = (0..workload.runners.len())
        .map(|runner| !slots.iter().any(|slot| slot.runner == Some(runner)))
        .collect();
    let demands = outlook.load_demand(&pending);
    let mut offset = 0.0;
    for candidate in candidates {
        if offset >= window {
            break;
        }
        let runner = &workload.runners[candidate];
        let priority = outlook.priority(candidate);
        let load_seconds = workload.expected_load_seconds(candidate);
        // Only models worth less than the candidate may go. The cheap checks come first: is
        // there room at all, and does the preload beat holding the loader past the turn.
        let mut pool: Vec<(usize, f64)> = slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| !slot.busy && !slot.planned && slot.priority < priority)
            .map(|(index, slot)| (index, slot.priority))
            .collect();
        let by_priority: Vec<usize> = pool.iter().map(|&(index, _)| index).collect();
        // A model that cannot fit now (a busy model is in the way) is left for a later turn.
        let Some(mut victims) =
            choose_victims(slots, runner.admission_bytes(), budget, &by_priority)
        else {
            if outlook.strict_order() {
                break;
            }
            continue;
        };
        // Loads already planned are not delayed by this one: they come first.
        let delay = delay_cost(
            candidate,
            offset,
            load_seconds,
            demands.iter().copied().filter(|demand| {
                !slots
                    .iter()
                    .any(|slot| slot.planned && slot.runner == Some(demand.runner))
            }),
        );
        let saving = outlook.preload_saving(candidate, load_seconds, offset);
        if !preload_pays(saving, 0.0, delay) {
            continue;
        }
        let mut lost = 0.0;
        if !victims.is_empty() {
            // Cheapest expected reload first: the chance each is needed before the candidate
            // times its load time.
            for (index, risk) in pool.iter_mut() {
                *risk = slots[*index].runner.map_or(0.0, |rival| {
                    outlook.needed_before(candidate, rival) * workload.runners[rival].load_seconds()
                });
            }
            pool.sort_by(|&(a, risk_a), &(b, risk_b)| {
                risk_a
                    .total_cmp(&risk_b)
                    .then(slots[a].priority.total_cmp(&slots[b].priority))
                    .then(slots[b].bytes.cmp(&slots[a].bytes))
                    .then_with(|| slots[a].name.cmp(&slots[b].name))
            });
            let by_risk: Vec<usize> = pool.iter().map(|&(index, _)| index).collect();
            victims = choose_victims(slots, runner.admission_bytes(), budget, &by_risk)
                .expect("the same pool made room in another order");
            lost = pool
                .iter()
                .filter(|(index, _)| victims.contains(index))
                .map(|(_, risk)| WRONG_EVICTION_WEIGHT * risk)
                .sum();
            // Weighed only when it could turn the decision: at most, every evicted model is
            // needed again and reloads cold instead of warm.
            let most: f64 = victims
                .iter()
                .filter_map(|&index| slots[index].runner)
                .map(|evicted| {
                    outlook.use_probability(evicted)
                        * workload.runners[evicted].warm_saving(workload.host.as_ref())
                })
                .sum();
            if preload_pays(saving, lost, delay) && !preload_pays(saving, lost + most, delay) {
                lost += evictions_pushed_out(
                    workload, context, outlook, slots, plan, candidate, &victims,
                );
            }
        }
        if !preload_pays(saving, lost, delay) {
            continue;
        }
        if !victims.is_empty() {
            evicting.push(candidate);
        }
        for slot in remove_all(slots, &victims) {
            plan.unloads.push(Unload {
                reason: format!(
                    "make room to preload {} ({}); {}",
                    runner.name,
                    gigabytes(runner.footprint_bytes),
                    describe(outlook, &slot)
                ),
                model: slot.name,
            });
        }
        slots.push(Slot {
            runner: Some(candidate),
            name: runner.name.clone(),
            bytes: runner.footprint_bytes,
            busy: true,
            planned: true,
            keep_alive: None,
            priority,
        });
        plan.preloads.push(Preload {
            model: runner.name.clone(),
            keep_alive: None,
            load_mode: runner.mode(),
            reason: format!(
                "{}; loads while {speaker_name}'s turn runs",
                outlook.describe(candidate)
            ),
        });
        offset += load_seconds;
    }
    evicting
}

/// Orders the plan's unloads so that the model needed last goes first: the page cache drops
/// the oldest file first, so the file needed soonest is the one that stays cached longest.
fn unload_latest_needed_first(workload: &Workload, outlook: &impl Outlook, plan: &mut TurnPlan) {
    let priority = |unload: &Unload| {
        workload
            .runner_named(&unload.model)
            .map_or(f64::NEG_INFINITY, |runner| outlook.priority(runner))
    };
    plan.unloads
        .sort_by(|a, b| priority(a).total_cmp(&priority(b)));
}

/// Unloads idle models whose memory is worth more as page cache ([`crate::cache_room`]):
/// when the plan unloads a model, the set of idle models whose unloading first saves the
/// most more than it costs (a large file may survive only when several go); they go before
/// the plan's other unloads. Only when the host's memory is known.
fn spare_cache(
    workload: &Workload,
    context: &PlanContext<'_>,
    outlook: &impl Outlook,
    evicting: &[usize],
    slots: &mut Vec<Slot>,
    plan: &mut TurnPlan,
) {
    let Some(mut cache) = cache_outlook(workload, context, slots, plan) else {
        return;
    };
    withdraw_costly_preloads(workload, outlook, evicting, &mut cache, slots, plan);
    // The idle models, least valuable first; only the few least valuable are tried.
    let mut candidates: Vec<(usize, Idle)> = slots
        .iter()
        .enumerate()
        .filter(|(_, slot)| !slot.busy && !slot.planned && slot.priority.is_finite())
        .filter_map(|(index, slot)| {
            let runner = slot.runner?;
            (workload.runners[runner].file_bytes > 0).then_some((
                index,
                Idle {
                    runner,
                    wired_bytes: slot.bytes,
                },
            ))
        })
        .collect();
    if candidates.is_empty()
        || !cache
            .steps
            .iter()
            .any(|step| matches!(step, Step::Unload { .. }))
    {
        return;
    }
    candidates.sort_by(|a, b| slots[a.0].priority.total_cmp(&slots[b.0].priority));
    candidates.truncate(MAX_IDLE_SET);
    // Every set of them: a file may survive only when several go together.
    let mut best: Option<(u32, f64, f64)> = None;
    for set in 1..(1u32 << candidates.len()) {
        let idle: Vec<Idle> = candidates
            .iter()
            .enumerate()
            .filter(|&(bit, _)| set & (1 << bit) != 0)
            .map(|(_, &(_, idle))| idle)
            .collect();
        if !may_pay(workload, outlook, &cache, &idle) {
            continue;
        }
        let (saving, cost) = weigh_unload(workload, outlook, &cache, &idle);
        if saving > cost && best.is_none_or(|(_, s, c)| saving - cost > s - c) {
            best = Some((set, saving, cost));
        }
    }
    let Some((set, saving, cost)) = best else {
        return;
    };
    let mut chosen: Vec<usize> = candidates
        .iter()
        .enumerate()
        .filter(|&(bit, _)| set & (1 << bit) != 0)
        .map(|(_, &(index, _))| index)
        .collect();
    // Removed from the highest index down; unloaded least valuable first, before the
    // plan's other unloads.
    chosen.sort_unstable_by(|a, b| b.cmp(a));
    let mut removed: Vec<Slot> = chosen
        .into_iter()
        .map(|index| slots.remove(index))
        .collect();
    removed.sort_by(|a, b| a.priority.total_cmp(&b.priority));
    let names: Vec<&str> = removed.iter().map(|slot| slot.name.as_str()).collect();
    let together = if names.len() > 1 {
        format!(" (with {})", names.join(", "))
    } else {
        String::new()
    };
    let unloads: Vec<Unload> = removed
        .iter()
        .map(|slot| Unload {
            reason: format!(
                "its {} serve better as page cache{together}: larger models stay cached and \
                 reload warm (expected {saving:.1} s saved against {cost:.1} s to reload); {}",
                gigabytes(slot.bytes),
                describe(outlook, slot)
            ),
            model: slot.name.clone(),
        })
        .collect();
    plan.unloads.splice(0..0, unloads);
}

/// The page cache as the plan so far leaves it: its unloads, then the call's load and the
/// preloads; `None` when the host's memory is not known.
fn cache_outlook<'a>(
    workload: &'a Workload,
    context: &PlanContext<'_>,
    slots: &[Slot],
    plan: &TurnPlan,
) -> Option<CacheOutlook<'a>> {
    let host = workload.host.as_ref()?;
    let held = |name: &str| {
        context
            .resident
            .iter()
            .filter(|model| model.model == name)
            .map(|model| model.bytes)
            .max()
            .unwrap_or(0)
    };
    let mut steps = Vec::new();
    for unload in &plan.unloads {
        if let Some(runner) = workload.runner_named(&unload.model) {
            steps.push(Step::Unload {
                runner,
                wired_bytes: held(&unload.model),
                file_bytes: workload.runners[runner].file_bytes,
            });
        }
    }
    let loads = plan
        .call
        .iter()
        .filter(|call| call.loads)
        .map(|call| call.model.as_str())
        .chain(plan.preloads.iter().map(|preload| preload.model.as_str()));
    for model in loads {
        if let Some(runner) = workload.runner_named(model) {
            steps.push(Step::Load {
                runner,
                wired_bytes: workload.runners[runner].footprint_bytes,
            });
        }
    }
    let resident: Vec<bool> = (0..workload.runners.len())
        .map(|runner| slots.iter().any(|slot| slot.runner == Some(runner)))
        .collect();
    Some(CacheOutlook {
        host,
        cache: &workload.cache,
        wired_bytes: context.resident.iter().map(|model| model.bytes).sum(),
        steps,
        resident,
        wired_after: slots.iter().map(|slot| slot.bytes).sum(),
    })
}

/// What preloading `candidate` in place of the slots at `victims` costs in evicted files
/// pushed out of the page cache by the models busy now ([`eviction_cache_cost`]); nothing
/// when the host's memory is not known.
fn evictions_pushed_out(
    workload: &Workload,
    context: &PlanContext<'_>,
    outlook: &impl Outlook,
    slots: &[Slot],
    plan: &TurnPlan,
    candidate: usize,
    victims: &[usize],
) -> f64 {
    let Some(mut cache) = cache_outlook(workload, context, slots, plan) else {
        return 0.0;
    };
    // The speaker's model and any other whose request is under way (not this plan's
    // preloads): idle by the time the candidate is called.
    let speaking = |slot: &Slot| {
        plan.call
            .as_ref()
            .is_some_and(|call| call.model == slot.name)
    };
    let preloaded = |slot: &Slot| {
        plan.preloads
            .iter()
            .any(|preload| preload.model == slot.name)
    };
    let busy: Vec<Idle> = slots
        .iter()
        .filter(|slot| (slot.busy || speaking(slot)) && !preloaded(slot))
        .filter_map(|slot| {
            Some(Idle {
                runner: slot.runner?,
                wired_bytes: slot.bytes,
            })
        })
        .collect();
    let mut evicted = Vec::new();
    let first_load = cache
        .steps
        .iter()
        .position(|step| matches!(step, Step::Load { .. }))
        .unwrap_or(cache.steps.len());
    let mut unloads = Vec::new();
    for &index in victims {
        let slot = &slots[index];
        let Some(runner) = slot.runner else {
            cache.wired_after = cache.wired_after.saturating_sub(slot.bytes);
            continue;
        };
        cache.release(runner, slot.bytes);
        evicted.push(runner);
        unloads.push(Step::Unload {
            runner,
            wired_bytes: slot.bytes,
            file_bytes: workload.runners[runner].file_bytes,
        });
    }
    cache.steps.splice(first_load..first_load, unloads);
    let bytes = workload.runners[candidate].footprint_bytes;
    cache.steps.push(Step::Load {
        runner: candidate,
        wired_bytes: bytes,
    });
    cache.resident[candidate] = true;
    cache.wired_after = cache.wired_after.saturating_add(bytes);
    eviction_cache_cost(workload, outlook, &cache, &evicted, &busy)
}

/// Drops the plan's preloads that evict nothing but whose memory costs the files already
/// cached more warm loads ([`crate::cache_room::preload_cache_cost`]) than they save; the
/// models then load when they are needed. Sets of them are weighed (the last few, every
/// set): two small preloads may push a file out together that neither pushes out alone.
fn withdraw_costly_preloads(
    workload: &Workload,
    outlook: &impl Outlook,
    evicting: &[usize],
    cache: &mut CacheOutlook<'_>,
    slots: &mut Vec<Slot>,
    plan: &mut TurnPlan,
) {
    // The plan's preloads that evict nothing, with what each saves; the last (least
    // valuable) few only.
    let mut candidates: Vec<(usize, f64)> = plan
        .preloads
        .iter()
        .filter_map(|preload| workload.runner_named(&preload.model))
        .filter(|runner| !evicting.contains(runner))
        .map(|runner| {
            let saving =
                outlook.preload_saving(runner, workload.expected_load_seconds(runner), 0.0);
            (runner, saving)
        })
        .collect();
    if candidates.is_empty() {
        return;
    }
    let skip = candidates.len().saturating_sub(MAX_WITHDRAWN_SET);
    candidates.drain(..skip);
    let mut best: Option<(Vec<usize>, f64)> = None;
    for set in 1..(1u32 << candidates.len()) {
        let (runners, savings): (Vec<usize>, Vec<f64>) = candidates
            .iter()
            .enumerate()
            .filter(|&(bit, _)| set & (1 << bit) != 0)
            .map(|(_, &candidate)| candidate)
            .unzip();
        let cost = preload_cache_cost(workload, outlook, cache, &runners);
        let net = cost - savings.iter().sum::<f64>();
        // Ties go to the smaller set, tried first among sets of equal worth.
        if net > 0.0 && best.as_ref().is_none_or(|(_, worth)| net > *worth) {
            best = Some((runners, net));
        }
    }
    let Some((withdrawn, _)) = best else {
        return;
    };
    for runner in withdrawn {
        plan.preloads
            .retain(|preload| workload.runner_named(&preload.model) != Some(runner));
        slots.retain(|slot| !(slot.planned && slot.runner == Some(runner)));
        cache.drop_load(runner, workload.runners[runner].footprint_bytes);
    }
}

/// Gives every resident runner of the workload a distinct keep_alive, shortest for the one
/// needed last, so that if Ollama evicts on its own it evicts what the plan would.
fn rank_keep_alives(
    outlook: &impl Outlook,
    speaker_runner: Option<usize>,
    slots: &[Slot],
    plan: &mut TurnPlan,
) {
    let mut ranked: Vec<&Slot> = slots.iter().filter(|slot| slot.runner.is_some()).collect();
    ranked.sort_by(|a, b| {
        a.priority
            .total_cmp(&b.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    let longest_gap = ranked
        .iter()
        .filter_map(|slot| slot.runner)
        .filter(|&runner| Some(runner) != speaker_runner)
        .map(|runner| outlook.gap_seconds(runner))
        .filter(|gap| gap.is_finite())
        .fold(0.0_f64, f64::max);
    // Twice the longest expected gap, in whole hours, so the base rarely changes.
    let hours = ((2.0 * longest_gap) / 3600.0).ceil().clamp(1.0, 24.0 * 7.0) as u64;
    let base = KEEP_ALIVE_FLOOR.max(Duration::from_secs(hours * 3600));
    let count = ranked.len();
    for (rank, slot) in ranked.into_iter().enumerate() {
        let keep_alive = KeepAlive::For(base + KEEP_ALIVE_STEP * rank as u32);
        let runner = slot.runner.expect("only the workload's runners are ranked");
        if Some(runner) == speaker_runner {
            if let Some(call) = plan.call.as_mut() {
                call.keep_alive = Some(keep_alive);
            }
            continue;
        }
        if let Some(preload) = plan
            .preloads
            .iter_mut()
            .find(|preload| preload.model == slot.name)
        {
            preload.keep_alive = Some(keep_alive);
            continue;
        }
        if slot.busy || slot.keep_alive == Some(keep_alive) {
            continue;
        }
        plan.refreshes.push(Refresh {
            model: slot.name.clone(),
            keep_alive,
            reason: format!(
                "evicted #{} of {count} if Ollama needs room ({}); shortest keep_alive goes first",
                rank + 1,
                outlook.describe(runner)
            ),
        });
    }
}

/// The slots to unload (indices) so that a model whose fit test compares `bytes` loads
/// beside the rest, taken from `pool` in its order; `None` if the whole pool is not enough.
fn choose_victims(
    slots: &[Slot],
    bytes: u64,
    budget: Budget,
    pool: &[usize],
) -> Option<Vec<usize>> {
    let mut count = slots.len();
    let mut used: u64 = slots.iter().map(|slot| slot.bytes).sum();
    if budget.admits(bytes, count, used) {
        return Some(Vec::new());
    }
    let mut chosen = Vec::new();
    for &index in pool {
        chosen.push(index);
        count -= 1;
        used -= slots[index].bytes;
        if budget.admits(bytes, count, used) {
            break;
        }
    }
    if !budget.admits(bytes, count, used) {
        return None;
    }
    // Give back victims that turned out unnecessary, the most valuable first.
    for position in (0..chosen.len()).rev() {
        let index = chosen[position];
        if budget.admits(bytes, count + 1, used + slots[index].bytes) {
            chosen.remove(position);
            count += 1;
            used += slots[index].bytes;
        }
    }
    Some(chosen)
}

/// Removes the slots at `indices` and returns them, lowest priority first.
fn remove_all(slots: &mut Vec<Slot>, indices: &[usize]) -> Vec<Slot> {
    let mut sorted = indices.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut removed: Vec<Slot> = sorted
        .into_iter()
        .map(|index| slots.remove(index))
        .collect();
    removed.sort_by(|a, b| {
        a.priority
            .total_cmp(&b.priority)
            .then_with(|| a.name.cmp(&b.name))
    });
    removed
}

fn describe(outlook: &impl Outlook, slot: &Slot) -> String {
    match slot.runner {
        Some(runner) => format!("{} {}", slot.name, outlook.describe(runner)),
        None => format!("{} is not a model of this workflow", slot.name),
    }
}
