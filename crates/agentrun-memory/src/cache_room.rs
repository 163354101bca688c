//! Idle models that cost more page cache than they save: unloading one frees the memory it
//! wires for the cache, so that a larger model evicted now stays cached and reloads warm
//! instead of from disk.
//!
//! The cache drops the least recently used file first, so a model's file survives until its
//! next use only while it, the memory wired then and every file cached after it fit in RAM.
//! An idle model kept resident counts against that file for the whole gap: wired while it
//! stays, a newer file once it goes. Unloaded before the file's model, its own file is the
//! older one and goes first; so the rule is judged when a larger model unloads, over the
//! gap until that model's next use:
//!
//! - the saving is, for every model the plan unloads, the chance it is needed before the
//!   idle model, times how much likelier its file is to survive until that use with the
//!   idle model gone, times its cold load minus its warm load;
//! - the cost is the idle model's own reload (warm as likely as its file survives until it
//!   is needed, cold otherwise) times the chance it is needed again.
//!
//! A file survives when its bytes, the memory wired once the plan is done, the files cached
//! after it and the models that may load before its next use (each with its chance to come
//! first) fit in the machine's RAM beside the system's reserve.
//!
//! The idle model unloads first, before the plan's other unloads, so that its file is older
//! in the cache than theirs and goes first when the cache shrinks.

use crate::forecast::Outlook;
use crate::page_cache::{CachedFiles, HostMemory, Step, project};
use crate::workload::Workload;

#[cfg(test)]
mod tests;

/// Buckets of the distribution of bytes the coming loads add: fine enough that rounding
/// each load up to a bucket moves a survival by little, coarse enough to stay cheap.
const PRESSURE_BUCKETS: u64 = 64;
/// Chances below this are taken as none.
const NEGLIGIBLE: f64 = 1e-6;

/// A resident model the rule may unload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Idle {
    pub(crate) runner: usize,
    /// The bytes it wires now.
    pub(crate) wired_bytes: u64,
}

/// The page cache as the plan leaves it: the starting estimate, the memory wired now, the
/// plan's unloads and loads in order, and what stays resident.
#[derive(Clone)]
pub(crate) struct CacheOutlook<'a> {
    pub(crate) host: &'a HostMemory,
    pub(crate) cache: &'a CachedFiles,
    pub(crate) wired_bytes: u64,
    pub(crate) steps: Vec<Step>,
    /// Runners resident once the plan is carried out (their files are not in the cache).
    pub(crate) resident: Vec<bool>,
    /// The bytes wired once the plan is carried out, every resident model counted (the
    /// idle model too).
    pub(crate) wired_after: u64,
}

impl CacheOutlook<'_> {
    /// `runner` no longer resident once the plan is done: its `wired_bytes` are free.
    pub(crate) fn release(&mut self, runner: usize, wired_bytes: u64) {
        self.resident[runner] = false;
        self.wired_after = self.wired_after.saturating_sub(wired_bytes);
    }

    /// The plan without its load of `runner`, which would have wired `wired_bytes`.
    pub(crate) fn drop_load(&mut self, runner: usize, wired_bytes: u64) {
        self.steps
            .retain(|step| !matches!(*step, Step::Load { runner: loaded, .. } if loaded == runner));
        self.release(runner, wired_bytes);
    }

    /// The cache after the plan, with `first` done before it.
    fn after(&self, first: &[Step]) -> CachedFiles {
        project(
            self.cache,
            self.host,
            self.wired_bytes,
            first.iter().chain(&self.steps).copied(),
        )
    }

    /// The chance that `runner`'s file, cached in `cache` as the plan leaves it with
    /// `wired` bytes held, survives until the runner's next use: the models that may load
    /// before it (other than those of `skip`, and those resident) are each counted with
    /// their chance of coming first, `before(runner, other)`.
    fn survival(
        &self,
        workload: &Workload,
        before: impl Fn(usize, usize) -> f64,
        cache: &CachedFiles,
        wired: u64,
        runner: usize,
        skip: &[usize],
    ) -> f64 {
        if !cache.contains(runner) {
            return 0.0;
        }
        let mut certain = workload.runners[runner].file_bytes.saturating_add(wired);
        let newer: Vec<(usize, u64)> = cache.newer_than(runner).collect();
        certain = certain.saturating_add(newer.iter().map(|&(_, bytes)| bytes).sum::<u64>());
        let mut loads: Vec<(u64, f64)> = Vec::new();
        for (other, model) in workload.runners.iter().enumerate() {
            if other == runner || skip.contains(&other) || self.resident[other] {
                continue;
            }
            let chance = before(runner, other);
            if chance <= NEGLIGIBLE {
                continue;
            }
            // A file already counted as cached only adds what loading it wires beyond it.
            let counted = newer
                .iter()
                .find(|&&(cached, _)| cached == other)
                .map_or(0, |&(_, bytes)| bytes);
            loads.push((model.footprint_bytes.saturating_sub(counted), chance));
        }
        fits(self.host.cache_capacity(0), certain, &loads)
    }
}

/// The chance that `certain` bytes plus each of `loads` (bytes, independent chance) fit in
/// `capacity`: the distribution of the added bytes in [`PRESSURE_BUCKETS`] buckets, each
/// load rounded up to whole buckets.
fn fits(capacity: u64, certain: u64, loads: &[(u64, f64)]) -> f64 {
    let Some(room) = capacity.checked_sub(certain) else {
        return 0.0;
    };
    if loads.is_empty() {
        return 1.0;
    }
    let bucket = room.div_ceil(PRESSURE_BUCKETS).max(1);
    let slots = (room / bucket) as usize + 1;
    // mass[i]: the chance that the loads so far add i buckets; what overflows is dropped.
    let mut mass = vec![0.0; slots];
    mass[0] = 1.0;
    for &(bytes, chance) in loads {
        let size = bytes.div_ceil(bucket) as usize;
        let chance = chance.clamp(0.0, 1.0);
        for used in (0..slots).rev() {
            let here = mass[used];
            if here == 0.0 {
                continue;
            }
            mass[used] = here * (1.0 - chance);
            if used + size < slots {
                mass[used + size] += here * chance;
            }
        }
    }
    mass.iter().sum::<f64>().clamp(0.0, 1.0)
}

/// The unloads of `idle`, least valuable first, to do before the plan's own.
fn unloads(workload: &Workload, idle: &[Idle]) -> Vec<Step> {
    idle.iter()
        .map(|idle| Step::Unload {
            runner: idle.runner,
            wired_bytes: idle.wired_bytes,
            file_bytes: workload.runners[idle.runner].file_bytes,
        })
        .collect()
}

/// The runners the plan itself unloads: the only files an idle model unloaded first can
/// keep cached (a file cached earlier is older than the idle model's and goes first).
fn unloaded_by_plan<'a>(cache: &'a CacheOutlook<'_>) -> impl Iterator<Item = usize> + 'a {
    cache.steps.iter().filter_map(|step| match *step {
        Step::Unload { runner, .. } => Some(runner),
        Step::Load { .. } => None,
    })
}

/// Whether unloading the models of `idle` together could pay at all, before any chance is
/// weighed: a model the plan unloads must stay cached through the plan with them gone (a
/// later load only ever trims the cache), and all such files reloading warm must save more
/// than the idle models' cheapest reloads.
pub(crate) fn may_pay(
    workload: &Workload,
    outlook: &impl Outlook,
    cache: &CacheOutlook<'_>,
    idle: &[Idle],
) -> bool {
    let freed = cache.after(&unloads(workload, idle));
    let most: f64 = unloaded_by_plan(cache)
        .filter(|&runner| !cache.resident[runner] && freed.contains(runner))
        .map(|runner| {
            let model = &workload.runners[runner];
            model.warm_saving(Some(cache.host))
        })
        .sum();
    let least: f64 = idle
        .iter()
        .map(|idle| {
            outlook.use_probability(idle.runner)
                * workload.runners[idle.runner].warm_load_seconds(Some(cache.host))
        })
        .sum();
    most > least
}

/// The expected seconds of warm loads the preloads of `runners` (the plan's loads of them,
/// which hold their memory from now on) cost the files already cached: the memory they wire
/// counts against each of them until its next use, while left alone each would load before
/// that use only by chance. Weighed together, since one small preload may push a file out
/// only beside the others.
pub(crate) fn preload_cache_cost(
    workload: &Workload,
    outlook: &impl Outlook,
    cache: &CacheOutlook<'_>,
    runners: &[usize],
) -> f64 {
    let with = cache.after(&[]);
    let mut without = cache.clone();
    for &runner in runners {
        without.drop_load(runner, workload.runners[runner].footprint_bytes);
    }
    let skipped = without.after(&[]);
    let likely = |runner, other| outlook.likely_before(runner, other);
    let mut cost = 0.0;
    for (other, model) in workload.runners.iter().enumerate() {
        if runners.contains(&other) || cache.resident[other] || !skipped.contains(other) {
            continue;
        }
        let warm_gain = model.warm_saving(Some(cache.host));
        if warm_gain <= 0.0 {
            continue;
        }
        let left = without.survival(workload, likely, &skipped, without.wired_after, other, &[]);
        let loaded = cache.survival(workload, likely, &with, cache.wired_after, other, &[]);
        if left > loaded {
            cost += outlook.use_probability(other) * (left - loaded) * warm_gain;
        }
    }
    cost
}

/// The expected seconds of cold reloads a preload's unloads of `evicted` cost beyond
/// waiting for the call: done now, while the models of `busy` still hold their memory, an
/// evicted model's file may be pushed out of the cache at once, where at the call those
/// models would be idle and could go first, leaving the file cached. `cache` is the plan
/// with the preload and its unloads in it. For each evicted model: the chance it is needed
/// again, times how much likelier its file is to survive with the busy models gone, times
/// the part of its cold load a warm one saves beyond what the turn before its use hides.
pub(crate) fn eviction_cache_cost(
    workload: &Workload,
    outlook: &impl Outlook,
    cache: &CacheOutlook<'_>,
    evicted: &[usize],
    busy: &[Idle],
) -> f64 {
    if busy.is_empty() {
        return 0.0;
    }
    let now = cache.after(&[]);
    let mut waiting = cache.clone();
    for idle in busy {
        waiting.release(idle.runner, idle.wired_bytes);
    }
    let freed = waiting.after(&unloads(workload, busy));
    let gone: Vec<usize> = busy.iter().map(|idle| idle.runner).collect();
    // Given the evicted model is needed (its reload is what is weighed), the chance another
    // loads first: at least its chance of coming first at all, shared among fewer futures.
    // Asked for a few models only, so the exact race is affordable: a chain's next steps
    // are certain to come first, which the cheap estimate takes as an even race.
    let likely = |runner, other| {
        let needed = outlook.use_probability(runner);
        if needed <= NEGLIGIBLE {
            return 0.0;
        }
        (outlook.needed_before(runner, other) / needed).min(1.0)
    };
    let mut cost = 0.0;
    for &runner in evicted {
        let model = &workload.runners[runner];
        // Only the part of the reload the turn before its use cannot hide is waited for.
        let lead = workload.lead_seconds(runner);
        let exposed = |seconds: f64| (seconds - lead).max(0.0);
        let warm_gain =
            exposed(model.load_seconds()) - exposed(model.warm_load_seconds(Some(cache.host)));
        if warm_gain <= 0.0 || !freed.contains(runner) {
            continue;
        }
        // Given the busy models go at the call, none of them loads again before its use: a
        // busy model's next turn may well come first, but while it is resident.
        let later = waiting.survival(workload, likely, &freed, waiting.wired_after, runner, &gone);
        let at_once = cache.survival(workload, likely, &now, cache.wired_after, runner, &[]);
        if later > at_once {
            cost += outlook.use_probability(runner) * (later - at_once) * warm_gain;
        }
    }
    cost
}

/// The expected seconds unloading the models of `idle` now saves and costs, per the rule
/// above.
pub(crate) fn weigh_unload(
    workload: &Workload,
    outlook: &impl Outlook,
    cache: &CacheOutlook<'_>,
    idle: &[Idle],
) -> (f64, f64) {
    let gone: Vec<usize> = idle.iter().map(|idle| idle.runner).collect();
    let kept = cache.after(&[]);
    let freed = cache.after(&unloads(workload, idle));
    let wired_freed = idle.iter().fold(cache.wired_after, |wired, idle| {
        wired.saturating_sub(idle.wired_bytes)
    });
    let likely = |runner, other| outlook.likely_before(runner, other);
    let mut saving = 0.0;
    for runner in unloaded_by_plan(cache) {
        if gone.contains(&runner) || cache.resident[runner] || !freed.contains(runner) {
            continue;
        }
        let model = &workload.runners[runner];
        let warm_gain = model.warm_saving(Some(cache.host));
        if warm_gain <= 0.0 {
            continue;
        }
        // Given it comes before the idle models, none of them loads in between.
        let with = cache.survival(workload, likely, &freed, wired_freed, runner, &gone);
        if with <= NEGLIGIBLE {
            continue;
        }
        let without = cache.survival(workload, likely, &kept, cache.wired_after, runner, &gone);
        if with <= without {
            continue;
        }
        let first: f64 = gone
            .iter()
            .map(|&idle| outlook.needed_before(idle, runner))
            .product();
        saving += first * (with - without) * warm_gain;
    }
    let mut cost = 0.0;
    for idle in idle {
        let spec = &workload.runners[idle.runner];
        let cached = cache.survival(
            workload,
            likely,
            &freed,
            wired_freed,
            idle.runner,
            &[idle.runner],
        );
        let reload = cached * spec.warm_load_seconds(Some(cache.host))
            + (1.0 - cached) * spec.load_seconds();
        cost += outlook.use_probability(idle.runner) * reload;
    }
    (saving, cost)
}
