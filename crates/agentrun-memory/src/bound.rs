//! A lower bound on the load wait of any residency policy, computed offline on a known
//! future.
//!
//! The instance ([`BoundInstance`]) is everything a policy with perfect knowledge could know:
//! the speaker of every turn, how long each turn generates once its model is resident, each
//! model's load time warm and cold, the memory a model takes, Ollama's fit test and count
//! cap. [`lower_bound`] returns seconds of load wait that no schedule of loads, unloads and
//! preloads can go below.
//!
//! # The argument
//!
//! Call two models *exclusive* when they can never be in memory together: the count cap is
//! below two, or neither can be loaded beside the other under Ollama's fit test (the model
//! loaded second needs at most 80 % of what the first leaves free). A model needed at turn
//! `t` that is exclusive with the model of an earlier turn `k` was not in memory while turn
//! `k` generated, so its load started after turn `k`'s generation ended. Between that moment
//! and the start of turn `t` pass the gap after turn `k`, the generation and gaps of the
//! turns in between, and their load waits. The load takes at least the model's fastest load
//! time (warm when its file can be in the page cache and it may have been loaded before;
//! cold, in the faster load mode, when it is the model's first use or when its file cannot
//! have stayed in the page cache while turn `k`'s model was loaded), so the waits of turns
//! `k+1 ..= t` add up to at least `load − (gaps and generation in between)`.
//!
//! Each such inequality covers a window of turns. Every schedule's waits meet all of them at
//! once, so the least total wait that meets them all is a bound; [`lower_bound`] computes it
//! exactly, greedily (an interval covering problem). A model's
//! first use with no exclusive model before it gives a window from the start of the run
//! (every load of a run starts cold: the page cache begins empty).
//!
//! Every relaxation only makes the bound smaller: the turns' generation and gaps are the
//! longest measured, footprints the smallest measured, unloads take no time, loads of other
//! models do not delay the one counted, and three models that fit pairwise but not together
//! are not used against each other. It is therefore valid, and usually well below the
//! optimum when most waits come from the count cap or from three-way conflicts.
//!
//! Small instances (at most 8 turns and 3 models) are solved exactly instead, by exhaustive
//! search over every schedule of the scheduler's model (`bound/exact.rs`), which makes the
//! same optimistic assumptions about unloads, the page cache and the measured figures.

/// One model of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundModel {
    /// The model's name, for reports.
    pub name: String,
    /// Memory the model takes once loaded (the smallest measured).
    pub resident_bytes: u64,
    /// Memory Ollama predicts for the load, which its fit test compares (the smallest seen).
    pub predicted_bytes: u64,
    /// Seconds of its fastest cold load (empty page cache) in the load modes allowed.
    pub cold_load_s: f64,
    /// Seconds of its fastest load of all (from the page cache when it can be there).
    pub fastest_load_s: f64,
    /// The size of its weights file, which the page cache holds between loads.
    pub file_bytes: u64,
}

/// One turn of the future.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundTurn {
    /// The model the turn calls (an index into [`BoundInstance::models`]); `None` for
    /// command and human turns.
    pub model: Option<usize>,
    /// Seconds the turn runs once its model is resident (generation, or a command's run):
    /// its model is in memory for all of it.
    pub busy_s: f64,
    /// Seconds from the end of the turn to the start of the next, when no model need be
    /// resident.
    pub gap_s: f64,
}

/// A future and the machine it runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundInstance {
    /// The models.
    pub models: Vec<BoundModel>,
    /// Memory for models: the GPU budget, capped by RAM less what the OS keeps.
    pub capacity_bytes: u64,
    /// Ollama's `OLLAMA_MAX_LOADED_MODELS`.
    pub max_loaded_models: usize,
    /// RAM for loaded models and the page cache together: RAM less what the OS keeps.
    pub ram_bytes: u64,
    /// The turns, in order.
    pub turns: Vec<BoundTurn>,
}

/// Ollama loads a model beside others only if it needs at most this share of the free memory.
const FIT_HEADROOM: f64 = 0.80;

impl BoundModel {
    /// The least memory the model holds while it is loaded or loading.
    fn held_bytes(&self) -> u64 {
        self.resident_bytes.min(self.predicted_bytes)
    }
}

impl BoundInstance {
    /// Whether models `a` and `b` can never be in memory at once.
    pub fn exclusive(&self, a: usize, b: usize) -> bool {
        if a == b {
            return false;
        }
        if self.max_loaded_models < 2 {
            return true;
        }
        let capacity = self.capacity_bytes as f64;
        let beside = |first: &BoundModel, second: &BoundModel| {
            let held = first.held_bytes() as f64;
            second.predicted_bytes as f64 <= FIT_HEADROOM * (capacity - held).max(0.0)
        };
        let (a, b) = (&self.models[a], &self.models[b]);
        !beside(a, b) && !beside(b, a)
    }
}

/// The bound and the windows that make it up.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    /// Seconds of load wait no policy can go below.
    pub wait_s: f64,
    /// Whether `wait_s` is the exact optimum of the scheduler's model (small instances:
    /// at most 8 turns and 3 models), found by exhaustive search; `windows` are the
    /// relaxation's either way.
    pub exact: bool,
    /// The bound's wait on each turn: the least waits that meet every window, each
    /// shortfall on the last turn of its window (and, when exact, what the search adds on the
    /// last turn). Adds up to [`Bound::wait_s`].
    pub per_turn_s: Vec<f64>,
    /// Every window: `(first turn, last turn, seconds)`, turns 0-based and inclusive; any
    /// schedule's waits over the turns of a window add up to at least its seconds.
    pub windows: Vec<(usize, usize, f64)>,
}

/// The lower bound of `instance`: the exact optimum of the scheduler's model when the
/// instance is small enough to search ([`Bound::exact`]), else the relaxation the module
/// documentation argues for.
pub fn lower_bound(instance: &BoundInstance) -> Bound {
    let relaxed = relaxed_bound(instance);
    match exact::optimum(instance) {
        // Never below the relaxation; the maximum guards against rounding.
        Some(optimum) => {
            let mut bound = relaxed;
            let optimum = optimum.max(bound.wait_s);
            // The search gives a total, not a split: what it adds to the relaxation goes to
            // the last turn, where the run's waits have all happened.
            if let Some(last) = bound.per_turn_s.last_mut() {
                *last += optimum - bound.wait_s;
            }
            bound.wait_s = optimum;
            bound.exact = true;
            bound
        }
        None => relaxed,
    }
}

/// The relaxation: the least waits that meet every window of the module documentation.
fn relaxed_bound(instance: &BoundInstance) -> Bound {
    let turns = &instance.turns;
    let n = turns.len();
    // elapsed[i]: seconds of generation and gaps before turn i starts, waits left out.
    let mut elapsed = Vec::with_capacity(n + 1);
    let mut total = 0.0;
    elapsed.push(0.0);
    for turn in turns {
        total += turn.busy_s.max(0.0) + turn.gap_s.max(0.0);
        elapsed.push(total);
    }
    // The latest earlier turn whose model excludes each model, as the turns go by.
    let mut last_exclusive: Vec<Option<usize>> = vec![None; instance.models.len()];
    let mut used_before = vec![false; instance.models.len()];
    // window_at[t]: the windows ending at turn t, as (first turn, seconds).
    let mut window_at: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    for (t, turn) in turns.iter().enumerate() {
        let Some(model) = turn.model else {
            continue;
        };
        let spec = &instance.models[model];
        if let Some(k) = last_exclusive[model] {
            // Its load starts once turn k has generated: after the gap of turn k and the
            // generation and gaps of the turns between. It may reload a copy preloaded
            // before turn k, so only the fastest load is certain, and not even that when
            // its file cannot have stayed in the page cache beside turn k's model (the
            // cache holds what RAM leaves beside loaded models).
            let free = elapsed[t] - elapsed[k] - turns[k].busy_s.max(0.0);
            let held = turns[k]
                .model
                .map_or(0, |other| instance.models[other].held_bytes());
            let cached = spec.file_bytes.saturating_add(held) <= instance.ram_bytes;
            let load = if cached {
                spec.fastest_load_s
            } else {
                spec.cold_load_s
            };
            window_at[t].push((k + 1, load - free));
        }
        if !used_before[model] {
            // The first use: a cold load happened somewhere since the start of the run.
            window_at[t].push((0, spec.cold_load_s - elapsed[t]));
        }
        window_at[t].retain(|&(_, seconds)| seconds > 0.0);
        used_before[model] = true;
        // This turn's model now excludes every model exclusive with it.
        for (other, last) in last_exclusive.iter_mut().enumerate() {
            if instance.exclusive(model, other) {
                *last = Some(t);
            }
        }
    }
    // The least total wait that meets every window: taken window by window in the order of
    // their last turns, each short of its seconds gets the shortfall on its last turn. For
    // constraints over intervals this greedy choice is optimal (a wait placed on the last
    // turn of a window counts for every later window that still covers it).
    let mut waits = vec![0.0_f64; n];
    let mut prefix = vec![0.0_f64; n + 1];
    let mut windows = Vec::new();
    for t in 0..n {
        let mut need = 0.0_f64;
        for &(first, seconds) in &window_at[t] {
            // Waits of turns first..t-1 already placed.
            let covered = prefix[t] - prefix[first];
            if seconds - covered > need {
                need = seconds - covered;
            }
            windows.push((first, t, seconds));
        }
        waits[t] = need;
        prefix[t + 1] = prefix[t] + need;
    }
    Bound {
        wait_s: prefix[n],
        exact: false,
        per_turn_s: waits,
        windows,
    }
}

#[path = "bound/exact.rs"]
mod exact;

#[cfg(test)]
#[path = "bound/tests.rs"]
mod tests;
