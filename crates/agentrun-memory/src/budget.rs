//! The GPU budget and Ollama's admission rules: the model-count cap first, then the fit test.

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The memory Ollama may use and how many models it keeps loaded at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// GPU memory in bytes (on a Mac, the wired limit).
    pub gpu_bytes: u64,
    /// `OLLAMA_MAX_LOADED_MODELS` (3 per GPU by default; 3 on a Mac). At least 1.
    pub max_loaded_models: usize,
}

impl Budget {
    /// Whether Ollama loads a model of `predicted_bytes` beside `resident_count` loaded models
    /// that account for `resident_bytes`, without evicting any.
    ///
    /// The count cap is checked first (facts rule 5); then `predicted <= 0.80 x available`
    /// with `available = gpu_bytes - resident_bytes` (rule 7). The first model into an empty
    /// server is exempt from the fit test.
    pub fn admits(&self, predicted_bytes: u64, resident_count: usize, resident_bytes: u64) -> bool {
        if resident_count >= self.max_loaded_models {
            return false;
        }
        if resident_count == 0 {
            return true;
        }
        let available = self.gpu_bytes.saturating_sub(resident_bytes);
        5 * u128::from(predicted_bytes) <= 4 * u128::from(available)
    }

    /// An order in which the models of `footprints` can be loaded one after another into an
    /// empty server, each passing [`Budget::admits`], as indices into `footprints`; `None` if
    /// no order passes.
    ///
    /// Largest first is optimal: swapping two neighbours so that the larger loads first never
    /// tightens a constraint, so if any order passes, this one does.
    ///
    /// ```
    /// use agentrun_memory::Budget;
    ///
    /// let gb = 1_000_000_000;
    /// let budget = Budget { gpu_bytes: 34 * gb, max_loaded_models: 3 };
    /// // A 10 GB tester then a 20 GB coder fails (20 > 0.8 x 24); the coder first fits.
    /// assert_eq!(budget.load_order(&[10 * gb, 20 * gb]), Some(vec![1, 0]));
    /// assert_eq!(budget.load_order(&[10 * gb, 20 * gb, 5 * gb]), None);
    /// ```
    pub fn load_order(&self, footprints: &[u64]) -> Option<Vec<usize>> {
        let mut order: Vec<usize> = (0..footprints.len()).collect();
        order.sort_by(|&a, &b| footprints[b].cmp(&footprints[a]).then(a.cmp(&b)));
        let mut resident_bytes = 0u64;
        for (count, &index) in order.iter().enumerate() {
            if !self.admits(footprints[index], count, resident_bytes) {
                return None;
            }
            resident_bytes = resident_bytes.saturating_add(footprints[index]);
        }
        Some(order)
    }

    /// Whether the models of `footprints` can be resident together (in the best order).
    pub fn fits(&self, footprints: &[u64]) -> bool {
        self.load_order(footprints).is_some()
    }
}

/// The smallest GPU budget with which all of `footprints` load together, largest first, and
/// the largest one does not exceed the budget (so nothing spills to the CPU). Ignores the
/// count cap.
pub fn min_gpu_bytes(footprints: &[u64]) -> u64 {
    let mut sorted = footprints.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut needed = sorted.first().copied().unwrap_or(0);
    let mut prefix = 0u64;
    for (index, &bytes) in sorted.iter().enumerate() {
        if index > 0 {
            // 4 x (budget - prefix) >= 5 x bytes, rounded up to a whole byte.
            let fit = prefix.saturating_add(bytes.saturating_mul(5).div_ceil(4));
            needed = needed.max(fit);
        }
        prefix = prefix.saturating_add(bytes);
    }
    needed
}

/// A size for people, in decimal gigabytes with one decimal: `19.0 GB`. Every message and
/// report of a model's size uses it, so the same model reads the same everywhere.
pub fn gigabytes(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}
