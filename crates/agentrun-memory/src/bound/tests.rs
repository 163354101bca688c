use super::*;

const GB: u64 = 1_000_000_000;

fn model(name: &str, gb: u64, cold_s: f64, warm_s: f64) -> BoundModel {
    BoundModel {
        name: name.into(),
        resident_bytes: gb * GB,
        predicted_bytes: gb * GB,
        cold_load_s: cold_s,
        fastest_load_s: warm_s,
        file_bytes: gb * GB,
    }
}

fn turn(model: Option<usize>, busy_s: f64) -> BoundTurn {
    BoundTurn {
        model,
        busy_s,
        gap_s: 0.0,
    }
}

/// Two models that cannot share 50 GB: every switch pays a full warm load, the first use
/// of each a cold one.
#[test]
fn exclusive_models_pay_every_switch() {
    let instance = BoundInstance {
        models: vec![model("a", 30, 10.0, 4.0), model("b", 30, 12.0, 5.0)],
        capacity_bytes: 50 * GB,
        max_loaded_models: 3,
        ram_bytes: 100 * GB,
        turns: vec![
            turn(Some(0), 20.0),
            turn(Some(1), 20.0),
            turn(Some(0), 20.0),
            turn(Some(1), 20.0),
        ],
    };
    assert!(instance.exclusive(0, 1));
    let bound = lower_bound(&instance);
    // a cold (10), b after a (the first use of b may reuse nothing: 5 at least, and its
    // cold load since the start: 12 - 20 < 0), then a warm (4) and b warm (5).
    assert!(
        (bound.wait_s - (10.0 + 5.0 + 4.0 + 5.0)).abs() < 1e-9,
        "{bound:?}"
    );
    assert_eq!(bound.per_turn_s, vec![10.0, 5.0, 4.0, 5.0]);
}

/// Models that fit together: only the first load of each is certain, and a long first turn
/// hides the second model's cold load.
#[test]
fn models_that_fit_together_pay_only_what_cannot_be_hidden() {
    let instance = BoundInstance {
        models: vec![model("a", 10, 10.0, 4.0), model("b", 10, 12.0, 5.0)],
        capacity_bytes: 50 * GB,
        max_loaded_models: 3,
        ram_bytes: 100 * GB,
        turns: vec![turn(Some(0), 8.0), turn(Some(1), 20.0), turn(Some(0), 20.0)],
    };
    assert!(!instance.exclusive(0, 1));
    let bound = lower_bound(&instance);
    // a: 10 cold. b: cold 12 since the start, but 8 s of a's turn passed, and the window
    // from the start also holds a's wait: both windows end... only one of them counts.
    assert!((bound.wait_s - 10.0).abs() < 1e-9, "{bound:?}");
}

/// The count cap of one makes every pair exclusive.
#[test]
fn a_count_cap_of_one_excludes_everything() {
    let mut instance = BoundInstance {
        models: vec![model("a", 1, 3.0, 1.0), model("b", 1, 3.0, 1.0)],
        capacity_bytes: 50 * GB,
        max_loaded_models: 1,
        ram_bytes: 100 * GB,
        turns: vec![turn(Some(0), 1.0), turn(None, 30.0), turn(Some(1), 1.0)],
    };
    assert!(instance.exclusive(0, 1));
    // The command turn between gives b's load 30 s: only a's cold load is certain... and
    // b's window from a's turn: 1 - 30 < 0.
    assert!((lower_bound(&instance).wait_s - 3.0).abs() < 1e-9);
    instance.turns[1].busy_s = 0.0;
    // Now b's load must follow a's turn: at least 1 s more.
    assert!((lower_bound(&instance).wait_s - 4.0).abs() < 1e-9);
}

/// The fit test, not the sum of sizes, decides: 30 + 20 fit in 54 GB by size but the
/// second load may take only 80 % of what is free.
#[test]
fn the_fit_test_decides_exclusion() {
    let instance = BoundInstance {
        models: vec![model("a", 30, 1.0, 1.0), model("b", 20, 1.0, 1.0)],
        capacity_bytes: 54 * GB,
        max_loaded_models: 3,
        ram_bytes: 100 * GB,
        turns: Vec::new(),
    };
    // 20 > 0.8 * 24 and 30 > 0.8 * 34.
    assert!(instance.exclusive(0, 1));
    let roomy = BoundInstance {
        capacity_bytes: 56 * GB,
        ..instance
    };
    // 20 <= 0.8 * 26.
    assert!(!roomy.exclusive(0, 1));
}

/// A file that cannot stay in the page cache beside the model that displaced it reloads
/// cold.
#[test]
fn a_reload_is_cold_when_the_page_cache_cannot_hold_the_file() {
    let mut instance = BoundInstance {
        models: vec![model("a", 30, 40.0, 5.0), model("b", 30, 40.0, 5.0)],
        capacity_bytes: 50 * GB,
        max_loaded_models: 3,
        ram_bytes: 100 * GB,
        turns: vec![
            turn(Some(0), 100.0),
            turn(Some(1), 100.0),
            turn(Some(0), 1.0),
        ],
    };
    // 40 cold for a, 5 for b's load after a (its cold load hides in a's turn), 5 for a.
    assert!((lower_bound(&instance).wait_s - 50.0).abs() < 1e-9);
    instance.ram_bytes = 55 * GB;
    // a's file (30 GB) cannot stay cached beside b (30 GB) in 55 GB: a reloads cold, and so
    // does b after a.
    assert!((lower_bound(&instance).wait_s - 120.0).abs() < 1e-9);
}

/// The least total wait of a small instance, by exhaustive search over every schedule of a
/// faithful model of Ollama's scheduler: one load at a time, the count cap and the fit test
/// checked when a load starts against every model in memory (loaded or loading), unloads of
/// idle models at any moment, preloads of any model, first loads cold and later ones at the
/// fastest time, turns one after another, each generating once its model is loaded, its
/// model staying in memory while it generates. Unloads are instant and the page cache holds
/// every file, as the bound assumes. A load is never abandoned: knowing the future, a
/// schedule that abandons one does better by not starting it.
mod exact {
    use super::super::{BoundInstance, FIT_HEADROOM};

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
        Waiting { since: f64 },
        Generating { until: f64 },
    }

    pub(super) fn optimum(instance: &BoundInstance) -> f64 {
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
        best
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
            .map(|&(m, _)| instance.models[m].resident_bytes)
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
                        until: state.now + turn.busy_s,
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
            Phase::Waiting { .. } => None,
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
        if let Phase::Generating { until } = state.phase {
            next_event = next_event.min(until);
        }
        if next_event.is_finite() {
            state.now = next_event;
            search(instance, state, best, loads);
        }
    }
}

/// On small random instances the bound never exceeds the exact optimum.
#[test]
fn the_bound_never_exceeds_the_exact_optimum_on_small_instances() {
    let mut rng = SplitMix(7);
    let mut tight = 0;
    let mut gap = 0.0;
    for case in 0..300 {
        let count = rng.int(1, 3) as usize;
        let models: Vec<BoundModel> = (0..count)
            .map(|i| {
                let gb = rng.int(2, 30);
                let warm = rng.float(1.0, 8.0);
                model(&format!("m{i}"), gb, warm + rng.float(0.0, 20.0), warm)
            })
            .collect();
        let turns: Vec<BoundTurn> = (0..rng.int(2, 5))
            .map(|_| BoundTurn {
                model: if rng.float(0.0, 1.0) < 0.15 {
                    None
                } else {
                    Some(rng.int(0, count as u64 - 1) as usize)
                },
                busy_s: rng.float(0.0, 15.0),
                gap_s: 0.0,
            })
            .collect();
        let instance = BoundInstance {
            models,
            capacity_bytes: rng.int(30, 64) * GB,
            max_loaded_models: rng.int(1, 3) as usize,
            ram_bytes: 1000 * GB,
            turns,
        };
        let bound = lower_bound(&instance).wait_s;
        let optimum = exact::optimum(&instance);
        assert!(
            optimum.is_finite(),
            "case {case}: no schedule: {instance:#?}"
        );
        assert!(
            bound <= optimum + 1e-9,
            "case {case}: bound {bound} > optimum {optimum}: {instance:#?}"
        );
        if (optimum - bound).abs() < 1e-9 {
            tight += 1;
        }
        gap += optimum - bound;
    }
    eprintln!(
        "bound = optimum on {tight} of 300 small instances; mean gap {:.2} s",
        gap / 300.0
    );
    // The bound is not vacuous: on most small instances it is the optimum.
    assert!(tight >= 150, "tight on {tight} of 300");
}

/// A small deterministic generator for the random instances.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    fn int(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// Uniform in `low..high`.
    fn float(&mut self, low: f64, high: f64) -> f64 {
        low + (self.next() >> 11) as f64 / (1u64 << 53) as f64 * (high - low)
    }
}
