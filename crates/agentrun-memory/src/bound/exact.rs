//! The least total wait of a small instance, by exhaustive search over every schedule of a
//! faithful model of Ollama's scheduler: one load at a time, the count cap and the fit test
//! checked when a load starts against every model in memory (loaded or loading), unloads of
//! idle models at any moment, preloads of any model, first loads cold and later ones at the
//! fastest time, turns one after another, each generating once its model is loaded, its
//! model staying in memory while it generates. Unloads are instant and the page cache holds
//! every file, as the bound assumes; between turns (a turn's gap) no model need be in memory.
//! A load is never abandoned: knowing the future, a schedule that abandons one does better by
//! not starting it. Every relaxation of the argument in the parent module holds here too, so
//! the optimum is itself a lower bound on the simulator's policies, and never below the
//! relaxed one (tested).
//!
//! The search is exponential; [`optimum`] refuses instances above [`MAX_TURNS`] turns or
//! [`MAX_MODELS`] models.

use super::{BoundInstance, FIT_HEADROOM};

#[derive(Clone, Debug)]
struct State {
    now: f64,
    /// The next turn to start or the one generating.
    turn: usize,
    /// When the turn became ready to generate, or when its generation ends.
    phase: Phase,
    /// Models in memory; `true` once loaded.
    memory: Vec<(usize, bool)>,
    /// The load in progress and when it ends.
    loading: Option<(usize, f64)>,
    loaded_before: Vec<bool>,
    waited: f64,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Waiting {
        since: f64,
    },
    Generating {
        until: f64,
    },
    /// After the generation, before the next turn is ready.
    Gap {
        until: f64,
    },
}

/// The most turns [`optimum`] searches.
pub(super) const MAX_TURNS: usize = 8;
/// The most models [`optimum`] searches.
pub(super) const MAX_MODELS: usize = 3;

/// The least total wait of `instance`, or `None` when it is too large to search.
pub(super) fn optimum(instance: &BoundInstance) -> Option<f64> {
    if instance.turns.len() > MAX_TURNS || instance.models.len() > MAX_MODELS {
        return None;
    }
    let start = State {
        now: 0.0,
        turn: 0,
        phase: Phase::Waiting { since: 0.0 },
        memory: Vec::new(),
        loading: None,
        loaded_before: vec![false; instance.models.len()],
        waited: 0.0,
    };
    let mut best = f64::INFINITY;
    search(instance, start, &mut best, 0);
    best.is_finite().then_some(best)
}

fn fits(instance: &BoundInstance, memory: &[(usize, bool)], model: usize) -> bool {
    if memory.len() >= instance.max_loaded_models {
        return false;
    }
    if memory.is_empty() {
        return true;
    }
    let held: u64 = memory
        .iter()
        .map(|&(m, _)| instance.models[m].held_bytes())
        .sum();
    let free = instance.capacity_bytes.saturating_sub(held) as f64;
    instance.models[model].predicted_bytes as f64 <= FIT_HEADROOM * free
}

/// Settles what happens at `state.now` without a choice: a finished load, a finished
/// turn, a turn whose model is loaded starts generating.
fn settle(instance: &BoundInstance, state: &mut State) {
    loop {
        if let Some((model, until)) = state.loading
            && until <= state.now + 1e-12
        {
            state.loading = None;
            for entry in &mut state.memory {
                if entry.0 == model {
                    entry.1 = true;
                }
            }
        }
        match state.phase {
            Phase::Generating { until } if until <= state.now + 1e-12 => {
                state.phase = Phase::Gap {
                    until: state.now + instance.turns[state.turn].gap_s.max(0.0),
                };
            }
            Phase::Gap { until } if until <= state.now + 1e-12 => {
                state.turn += 1;
                state.phase = Phase::Waiting { since: state.now };
            }
            Phase::Waiting { since } if state.turn < instance.turns.len() => {
                let turn = &instance.turns[state.turn];
                let ready = turn
                    .model
                    .is_none_or(|m| state.memory.iter().any(|&(x, done)| x == m && done));
                if !ready {
                    return;
                }
                state.waited += state.now - since;
                state.phase = Phase::Generating {
                    until: state.now + turn.busy_s.max(0.0),
                };
            }
            _ => return,
        }
    }
}

fn search(instance: &BoundInstance, mut state: State, best: &mut f64, loads: usize) {
    settle(instance, &mut state);
    if state.waited >= *best - 1e-12 {
        return;
    }
    if state.turn >= instance.turns.len() {
        *best = state.waited;
        return;
    }
    // Pending wait counts already: the turn waits at least until now.
    if let Phase::Waiting { since } = state.phase
        && state.waited + (state.now - since) >= *best - 1e-12
    {
        return;
    }
    let busy_model = match state.phase {
        Phase::Generating { .. } => instance.turns[state.turn].model,
        Phase::Waiting { .. } | Phase::Gap { .. } => None,
    };
    // Choice: start a load now (after unloading a set of idle models), if the loader is
    // free. Loads beyond two per turn never pay on these instances.
    if state.loading.is_none() && loads < 2 * instance.turns.len() + 2 {
        let n = instance.models.len();
        for model in 0..n {
            if state.memory.iter().any(|&(m, _)| m == model) {
                continue;
            }
            let idle: Vec<usize> = state
                .memory
                .iter()
                .map(|&(m, _)| m)
                .filter(|&m| Some(m) != busy_model)
                .collect();
            for mask in 0..(1u32 << idle.len()) {
                let memory: Vec<(usize, bool)> = state
                    .memory
                    .iter()
                    .copied()
                    .filter(|&(m, _)| {
                        idle.iter()
                            .position(|&x| x == m)
                            .is_none_or(|i| mask & (1 << i) == 0)
                    })
                    .collect();
                if !fits(instance, &memory, model) {
                    continue;
                }
                let spec = &instance.models[model];
                let seconds = if state.loaded_before[model] {
                    spec.fastest_load_s
                } else {
                    spec.cold_load_s
                };
                let mut next = state.clone();
                next.memory = memory;
                next.memory.push((model, false));
                next.loaded_before[model] = true;
                next.loading = Some((model, state.now + seconds));
                search(instance, next, best, loads + 1);
            }
        }
    }
    // Choice: start nothing now; time runs to the next event.
    let mut next_event = f64::INFINITY;
    if let Some((_, until)) = state.loading {
        next_event = next_event.min(until);
    }
    if let Phase::Generating { until } | Phase::Gap { until } = state.phase {
        next_event = next_event.min(until);
    }
    if next_event.is_finite() {
        state.now = next_event;
        search(instance, state, best, loads);
    }
}
