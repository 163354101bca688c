//! A runner's parallel slots and the prompt cache each keeps: a request evaluates only the
//! prompt tokens after the prefix it shares with its slot's previous prompt and reply, as
//! the runner's `LoadCacheSlot` does. The slot with the longest shared prefix is chosen;
//! a reload starts a new pool, so its caches are empty.
//!
//! Prompts are compared a message at a time (a segment is one rendered message, with its
//! estimated token count): a message that differs at all counts as wholly uncached, where
//! the real cache would still reuse its common first tokens.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One rendered message of a prompt: a hash of its text and its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) hash: u64,
    pub(crate) tokens: u64,
}

/// The slots of one runner.
#[derive(Debug)]
pub(crate) struct SlotPool {
    permits: Arc<Semaphore>,
    caches: Mutex<Vec<SlotCache>>,
}

#[derive(Debug, Default)]
struct SlotCache {
    busy: bool,
    segments: Vec<Segment>,
}

/// A slot held by one request; frees the slot when dropped.
pub(crate) struct SlotGuard {
    pool: Arc<SlotPool>,
    index: usize,
    /// Prompt tokens found in the slot's cache.
    pub(crate) cached_tokens: u64,
    _permit: OwnedSemaphorePermit,
}

impl SlotPool {
    pub(crate) fn new(slots: usize) -> Arc<SlotPool> {
        let slots = slots.max(1);
        Arc::new(SlotPool {
            permits: Arc::new(Semaphore::new(slots)),
            caches: Mutex::new((0..slots).map(|_| SlotCache::default()).collect()),
        })
    }

    /// Waits for a free slot, takes the one sharing the longest prefix with `prompt`, and
    /// records `prompt` as its cache. At least one prompt token is always evaluated.
    pub(crate) async fn acquire(self: &Arc<Self>, prompt: &[Segment]) -> Option<SlotGuard> {
        // The semaphore is never closed, so acquiring only waits for a free slot.
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok()?;
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        let (index, shared) = caches
            .iter()
            .enumerate()
            .filter(|(_, cache)| !cache.busy)
            .map(|(index, cache)| (index, shared_tokens(&cache.segments, prompt)))
            .max_by_key(|&(index, shared)| (shared, std::cmp::Reverse(index)))?;
        let total: u64 = prompt.iter().map(|s| s.tokens).sum();
        let cache = &mut caches[index];
        cache.busy = true;
        cache.segments.clear();
        cache.segments.extend_from_slice(prompt);
        Some(SlotGuard {
            pool: Arc::clone(self),
            index,
            cached_tokens: shared.min(total.saturating_sub(1)),
            _permit: permit,
        })
    }
}

impl SlotGuard {
    /// The reply joins the cache after the prompt, as the generated tokens do.
    pub(crate) fn append(&self, reply: Segment) {
        let mut caches = self
            .pool
            .caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        caches[self.index].segments.push(reply);
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut caches = self
            .pool
            .caches
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        caches[self.index].busy = false;
    }
}

/// Tokens of the leading segments `cached` and `prompt` share.
fn shared_tokens(cached: &[Segment], prompt: &[Segment]) -> u64 {
    cached
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.tokens)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(hash: u64, tokens: u64) -> Segment {
        Segment { hash, tokens }
    }

    #[tokio::test]
    async fn a_slot_reuses_the_shared_prefix_and_its_reply() {
        let pool = SlotPool::new(1);
        let first = [seg(1, 100), seg(2, 20)];
        let guard = pool.acquire(&first).await.expect("slot");
        assert_eq!(guard.cached_tokens, 0);
        guard.append(seg(3, 30));
        drop(guard);
        let second = [seg(1, 100), seg(2, 20), seg(3, 30), seg(4, 10)];
        let guard = pool.acquire(&second).await.expect("slot");
        assert_eq!(guard.cached_tokens, 150);
        drop(guard);
        // The same prompt again: everything but one token is cached.
        let guard = pool.acquire(&second).await.expect("slot");
        assert_eq!(guard.cached_tokens, 159);
    }
}
