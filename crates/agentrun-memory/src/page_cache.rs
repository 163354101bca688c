//! The operating system's page cache of weights files, as the planner estimates it: which
//! model files a reload finds in RAM (a warm load, at memory speed) and which it must read
//! from disk (a cold load).
//!
//! The rule is the operating system's: a model's file enters the cache when the model
//! unloads (its pages stay in RAM) and leaves it when the model loads again (its memory is
//! then the runner's). The cache holds what RAM leaves beside the memory wired for loaded
//! models and the system's own reserve; when a load wires more memory, the least recently
//! used files go first. So keeping an idle model resident takes its bytes from the cache,
//! and the file of a model evicted earlier may not survive the next load.

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The machine Ollama runs on, as far as the page cache and warm loads go.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HostMemory {
    /// The machine's RAM, bytes.
    pub ram_bytes: u64,
    /// What the operating system and other programs keep, bytes: neither page cache nor
    /// memory for models.
    pub os_reserve_bytes: u64,
    /// How fast a load reads a file still in the page cache, bytes per second.
    pub warm_bytes_per_second: f64,
    /// A load's fixed cost (the runner's start-up), seconds.
    pub load_fixed_seconds: f64,
}

impl HostMemory {
    /// The page cache's capacity while `wired_bytes` are held by loaded models.
    pub fn cache_capacity(&self, wired_bytes: u64) -> u64 {
        self.ram_bytes
            .saturating_sub(self.os_reserve_bytes)
            .saturating_sub(wired_bytes)
    }

    /// Seconds to load a file of `file_bytes` from the page cache.
    pub fn warm_load_seconds(&self, file_bytes: u64) -> f64 {
        if self.warm_bytes_per_second > 0.0 {
            self.load_fixed_seconds + file_bytes as f64 / self.warm_bytes_per_second
        } else {
            f64::INFINITY
        }
    }
}

/// The files of a workload's runners that are in the page cache, least recently used
/// first, by runner index with the file's bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CachedFiles {
    files: Vec<(usize, u64)>,
}

impl CachedFiles {
    /// Whether the runner's file is cached.
    pub(crate) fn contains(&self, runner: usize) -> bool {
        self.files.iter().any(|&(cached, _)| cached == runner)
    }

    /// The files cached after the runner's (more recently used), with their bytes; none when
    /// its file is not cached. The cache drops the runner's file before any of these.
    pub(crate) fn newer_than(&self, runner: usize) -> impl Iterator<Item = (usize, u64)> + '_ {
        let from = self
            .files
            .iter()
            .position(|&(cached, _)| cached == runner)
            .map_or(self.files.len(), |index| index + 1);
        self.files[from..].iter().copied()
    }

    /// The runner loads: its file leaves the cache (its memory is the runner's now).
    pub(crate) fn take(&mut self, runner: usize) {
        self.files.retain(|&(cached, _)| cached != runner);
    }

    /// The runner unloads: its file becomes the most recently used one.
    pub(crate) fn insert(&mut self, runner: usize, file_bytes: u64) {
        self.take(runner);
        if file_bytes > 0 {
            self.files.push((runner, file_bytes));
        }
    }

    /// Drops least recently used files until the rest fits in `capacity_bytes`.
    pub(crate) fn trim(&mut self, capacity_bytes: u64) {
        let mut total: u64 = self.files.iter().map(|&(_, bytes)| bytes).sum();
        let mut dropped = 0;
        while total > capacity_bytes && dropped < self.files.len() {
            total -= self.files[dropped].1;
            dropped += 1;
        }
        self.files.drain(..dropped);
    }
}

/// A change of residency to project onto the cache, in the order the server performs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Step {
    /// A runner unloads: its wired bytes are freed, its file of `file_bytes` is cached.
    Unload {
        runner: usize,
        wired_bytes: u64,
        file_bytes: u64,
    },
    /// A runner loads: its file leaves the cache and `wired_bytes` are wired.
    Load { runner: usize, wired_bytes: u64 },
}

/// The cache after `steps`, starting from `cache` with `wired_bytes` held by loaded models.
pub(crate) fn project(
    cache: &CachedFiles,
    host: &HostMemory,
    mut wired_bytes: u64,
    steps: impl IntoIterator<Item = Step>,
) -> CachedFiles {
    let mut cache = cache.clone();
    for step in steps {
        match step {
            Step::Unload {
                runner,
                wired_bytes: freed,
                file_bytes,
            } => {
                wired_bytes = wired_bytes.saturating_sub(freed);
                cache.insert(runner, file_bytes);
            }
            Step::Load {
                runner,
                wired_bytes: wired,
            } => {
                cache.take(runner);
                wired_bytes = wired_bytes.saturating_add(wired);
            }
        }
        cache.trim(host.cache_capacity(wired_bytes));
    }
    cache
}
