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
    let bound = relaxed_bound(&instance);
    // a cold (10), b after a (the first use of b may reuse nothing: 5 at least, and its
    // cold load since the start: 12 - 20 < 0), then a warm (4) and b warm (5).
    assert!(
        (bound.wait_s - (10.0 + 5.0 + 4.0 + 5.0)).abs() < 1e-9,
        "{bound:?}"
    );
    assert_eq!(bound.per_turn_s, vec![10.0, 5.0, 4.0, 5.0]);
    // The exact optimum knows b's first load is cold and cannot precede a's: 12, not 5.
    let exact = lower_bound(&instance);
    assert!(
        exact.exact && (exact.wait_s - 31.0).abs() < 1e-9,
        "{exact:?}"
    );
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
    let bound = relaxed_bound(&instance);
    // a: 10 cold. b: cold 12 since the start, but 8 s of a's turn passed, and the window
    // from the start also holds a's wait: both windows end... only one of them counts.
    assert!((bound.wait_s - 10.0).abs() < 1e-9, "{bound:?}");
    // Exactly: loads are serialized, so b's cold load starts once a's ends: 12 - 8 more.
    let exact = lower_bound(&instance);
    assert!(
        exact.exact && (exact.wait_s - 14.0).abs() < 1e-9,
        "{exact:?}"
    );
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
    assert!((relaxed_bound(&instance).wait_s - 3.0).abs() < 1e-9);
    instance.turns[1].busy_s = 0.0;
    // Now b's load must follow a's turn: at least 1 s more.
    assert!((relaxed_bound(&instance).wait_s - 4.0).abs() < 1e-9);
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
    assert!((relaxed_bound(&instance).wait_s - 50.0).abs() < 1e-9);
    instance.ram_bytes = 55 * GB;
    // a's file (30 GB) cannot stay cached beside b (30 GB) in 55 GB: a reloads cold, and so
    // does b after a.
    assert!((relaxed_bound(&instance).wait_s - 120.0).abs() < 1e-9);
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
        let bound = relaxed_bound(&instance).wait_s;
        let optimum = super::exact::optimum(&instance).expect("small enough");
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

/// Small instances get the exact optimum; larger ones the relaxation.
#[test]
fn small_instances_are_solved_exactly() {
    // Cap 2, three models: the relaxation sees no pair that cannot share memory, but one of
    // the three always has to go.
    let instance = BoundInstance {
        models: vec![
            model("a", 5, 5.0, 3.0),
            model("b", 5, 5.0, 3.0),
            model("c", 5, 5.0, 3.0),
        ],
        capacity_bytes: 50 * GB,
        max_loaded_models: 2,
        ram_bytes: 100 * GB,
        turns: (0..6).map(|i| turn(Some(i % 3), 1.0)).collect(),
    };
    let relaxed = relaxed_bound(&instance);
    let exact = lower_bound(&instance);
    assert!(exact.exact && !relaxed.exact);
    assert!(exact.wait_s > relaxed.wait_s + 1.0, "{exact:?} {relaxed:?}");
    let total: f64 = exact.per_turn_s.iter().sum();
    assert!((total - exact.wait_s).abs() < 1e-9);
    let long = BoundInstance {
        turns: (0..9).map(|i| turn(Some(i % 3), 1.0)).collect(),
        ..instance
    };
    assert!(!lower_bound(&long).exact);
}
