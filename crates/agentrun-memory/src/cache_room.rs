//! Idle models that cost more page cache than they save: unloading one frees the memory it
//! wires for the cache, so that a larger model evicted now (or earlier) stays cached and
//! reloads warm instead of from disk.
//!
//! The choice is made in expectation, with the page cache projected over the plan's own
//! unloads and loads and then each load the coming turns may demand:
//!
//! - the saving is, for every model whose file survives only if the idle model goes, the
//!   chance it is needed before the idle model times its cold load minus its warm load;
//! - the cost is the idle model's own reload (warm if its file survives, cold otherwise)
//!   times the chance it is needed again.
//!
//! The idle model unloads first, before the plan's other unloads, so that its file is older
//! in the cache than theirs and goes first when the cache shrinks.

use crate::forecast::Outlook;
use crate::page_cache::{CachedFiles, HostMemory, Step, project};
use crate::speculation::Demand;
use crate::workload::Workload;

#[cfg(test)]
mod tests;

/// A resident model the rule may unload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Idle {
    pub(crate) runner: usize,
    /// The bytes it wires now.
    pub(crate) wired_bytes: u64,
}

/// The page cache as the plan leaves it: the starting estimate, the memory wired now, the
/// plan's unloads and loads in order, and the loads the coming turns may demand after it.
pub(crate) struct CacheOutlook<'a> {
    pub(crate) host: &'a HostMemory,
    pub(crate) cache: &'a CachedFiles,
    pub(crate) wired_bytes: u64,
    pub(crate) steps: Vec<Step>,
    /// The loads the coming turns may demand; computed only when some idle model could pay.
    pub(crate) demands: Option<Vec<Demand>>,
    /// Runners resident once the plan is carried out (their files are not in the cache).
    pub(crate) resident: Vec<bool>,
}

impl CacheOutlook<'_> {
    /// The cache after the plan (with `first` done before it) and then the load of
    /// `demanded`, if any.
    fn after(
        &self,
        workload: &Workload,
        first: Option<Step>,
        demanded: Option<usize>,
    ) -> CachedFiles {
        let then = demanded.map(|runner| Step::Load {
            runner,
            wired_bytes: workload.runners[runner].footprint_bytes,
        });
        project(
            self.cache,
            self.host,
            self.wired_bytes,
            first
                .into_iter()
                .chain(self.steps.iter().copied())
                .chain(then),
        )
    }
}

/// Whether unloading `idle` could pay at all, before the demands are forecast: some other
/// model's file must be cached once the plan is done with the idle model gone (a later load
/// only ever trims the cache), and all such files reloading warm must save more than the
/// idle model's cheapest reload.
pub(crate) fn may_pay(
    workload: &Workload,
    outlook: &impl Outlook,
    cache: &CacheOutlook<'_>,
    idle: Idle,
) -> bool {
    let spec = &workload.runners[idle.runner];
    let first = Step::Unload {
        runner: idle.runner,
        wired_bytes: idle.wired_bytes,
        file_bytes: spec.file_bytes,
    };
    let freed = cache.after(workload, Some(first), None);
    let most: f64 = workload
        .runners
        .iter()
        .enumerate()
        .filter(|&(runner, _)| {
            runner != idle.runner && !cache.resident[runner] && freed.contains(runner)
        })
        .map(|(_, model)| model.load_seconds() - model.warm_load_seconds(Some(cache.host)))
        .sum();
    most > outlook.use_probability(idle.runner) * spec.warm_load_seconds(Some(cache.host))
}

/// The expected seconds unloading `idle` now saves and costs, per the rule above.
pub(crate) fn weigh_unload(
    workload: &Workload,
    outlook: &impl Outlook,
    cache: &CacheOutlook<'_>,
    idle: Idle,
) -> (f64, f64) {
    let spec = &workload.runners[idle.runner];
    let first = Step::Unload {
        runner: idle.runner,
        wired_bytes: idle.wired_bytes,
        file_bytes: spec.file_bytes,
    };
    // Each demanded load in turn, with its probability; the rest of the mass is "no load".
    let mut scenarios: Vec<(Option<usize>, f64)> = cache
        .demands
        .iter()
        .flatten()
        .filter(|demand| demand.runner != idle.runner && !cache.resident[demand.runner])
        .map(|demand| (Some(demand.runner), demand.probability))
        .collect();
    let demanded: f64 = scenarios.iter().map(|&(_, p)| p).sum();
    scenarios.push((None, (1.0 - demanded).max(0.0)));
    let mut saving = 0.0;
    let mut idle_cached = 0.0;
    // Each race is run once, however many scenarios ask for it.
    let mut before: Vec<Option<f64>> = vec![None; workload.runners.len()];
    let kept_now = cache.after(workload, None, None);
    let freed_now = cache.after(workload, Some(first), None);
    for (demand, probability) in scenarios {
        if probability <= 0.0 {
            continue;
        }
        // The demanded model meets the cache as the plan leaves it; the others meet it
        // after that load too.
        let later = demand.map(|demand| {
            (
                cache.after(workload, None, Some(demand)),
                cache.after(workload, Some(first), Some(demand)),
            )
        });
        for (runner, model) in workload.runners.iter().enumerate() {
            if runner == idle.runner || cache.resident[runner] {
                continue;
            }
            let (kept, freed) = match &later {
                Some(_) if Some(runner) == demand => (&kept_now, &freed_now),
                Some((kept, freed)) => (kept, freed),
                None => (&kept_now, &freed_now),
            };
            if freed.contains(runner) && !kept.contains(runner) {
                let warm_gain = model.load_seconds() - model.warm_load_seconds(Some(cache.host));
                let first = *before[runner]
                    .get_or_insert_with(|| outlook.needed_before(idle.runner, runner));
                saving += probability * first * warm_gain;
            }
        }
        let freed = later.as_ref().map_or(&freed_now, |(_, freed)| freed);
        if freed.contains(idle.runner) {
            idle_cached += probability;
        }
    }
    let reload = idle_cached * spec.warm_load_seconds(Some(cache.host))
        + (1.0 - idle_cached) * spec.load_seconds();
    (saving, outlook.use_probability(idle.runner) * reload)
}
