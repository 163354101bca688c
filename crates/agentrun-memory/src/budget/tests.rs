//! The fit test and the best load order, on the figures of the facts file.

use super::*;

const GB: u64 = 1_000_000_000;

fn budget(gb: u64, max_loaded_models: usize) -> Budget {
    Budget {
        gpu_bytes: gb * GB,
        max_loaded_models,
    }
}

#[test]
fn fit_test_is_eighty_percent_of_what_is_left() {
    let budget = budget(34, 3);
    // 10 <= 0.8 x (34 - 20) = 11.2
    assert!(budget.admits(10 * GB, 1, 20 * GB));
    // 20 > 0.8 x (34 - 10) = 19.2
    assert!(!budget.admits(20 * GB, 1, 10 * GB));
    // Exactly 80% fits: 8 <= 0.8 x 10.
    assert!(budget.admits(8 * GB, 1, 24 * GB));
    assert!(!budget.admits(8 * GB + 1, 1, 24 * GB));
}

#[test]
fn first_model_into_an_empty_server_is_exempt() {
    assert!(budget(54, 3).admits(80 * GB, 0, 0));
    assert!(!budget(54, 3).admits(GB, 1, 60 * GB));
}

#[test]
fn count_cap_comes_before_memory() {
    let budget = budget(100, 2);
    assert!(budget.admits(GB, 1, GB));
    assert!(!budget.admits(GB, 2, 2 * GB));
}

#[test]
fn load_order_puts_the_largest_first() {
    let budget = budget(54, 3);
    let sizes = [9 * GB, 1_400_000_000, 19 * GB];
    assert_eq!(budget.load_order(&sizes), Some(vec![2, 0, 1]));
    assert!(budget.fits(&sizes));
    assert!(!budget.fits(&[52 * GB, 19 * GB]));
    assert!(budget.fits(&[52 * GB]));
    assert!(budget.fits(&[]));
    // The router fits beside the architect: 1.4 <= 0.8 x 2 = 1.6.
    assert!(budget.fits(&[52 * GB, 1_400_000_000]));
}

#[test]
fn load_order_respects_the_count_cap() {
    assert!(!budget(100, 2).fits(&[GB, GB, GB]));
    assert!(budget(100, 3).fits(&[GB, GB, GB]));
}

#[test]
fn min_gpu_bytes_is_the_tightest_budget_that_fits() {
    let sizes = [20 * GB, 10 * GB];
    // 20 + 10 x 1.25 = 32.5
    assert_eq!(min_gpu_bytes(&sizes), 32_500_000_000);
    assert!(budget(1, 3).fits(&[]));
    let tight = Budget {
        gpu_bytes: min_gpu_bytes(&sizes),
        max_loaded_models: 3,
    };
    assert!(tight.fits(&sizes));
    let short = Budget {
        gpu_bytes: min_gpu_bytes(&sizes) - 1,
        max_loaded_models: 3,
    };
    assert!(!short.fits(&sizes));
    assert_eq!(min_gpu_bytes(&[52 * GB]), 52 * GB);
    assert_eq!(min_gpu_bytes(&[]), 0);
}
