//! The operating system's page cache of weights files, which decides warm or cold loads.
//!
//! A file is cached after its model unloads, and leaves the cache when it loads again (it is
//! then counted as the loaded model's memory). The cache holds what fits in RAM beside the
//! loaded models, least recently used files go first.

use std::collections::VecDeque;
use std::sync::Arc;

/// Weights files in RAM, least recently used first.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    files: VecDeque<(Arc<str>, u64)>,
}

impl PageCache {
    /// Removes `weights` from the cache; returns whether it was there (a warm load).
    pub(crate) fn take(&mut self, weights: &str) -> bool {
        match self.files.iter().position(|(file, _)| &**file == weights) {
            Some(index) => {
                self.files.remove(index);
                true
            }
            None => false,
        }
    }

    /// Adds `weights` as the most recently used file.
    pub(crate) fn insert(&mut self, weights: Arc<str>, bytes: u64) {
        self.take(&weights);
        self.files.push_back((weights, bytes));
    }

    /// Drops least recently used files until the cache fits in `capacity_bytes`.
    pub(crate) fn trim(&mut self, capacity_bytes: u64) {
        while self.bytes() > capacity_bytes {
            if self.files.pop_front().is_none() {
                break;
            }
        }
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, bytes)| bytes).sum()
    }

    pub(crate) fn clear(&mut self) {
        self.files.clear();
    }
}
