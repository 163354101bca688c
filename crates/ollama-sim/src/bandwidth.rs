//! Decode streams share the memory bandwidth: every request decoding at once slows the
//! others, and speeds them up again when it ends.
//!
//! The rule (FIDELITY.md, "Concurrent decoding"): a decode step reads a runner's weights and
//! the KV cache of its slots. One stream alone runs at the model's own speed (`efficiency x
//! bandwidth / model bytes`, or its configured speed); it then draws `efficiency` of the
//! bandwidth for the share of its step spent in GPU layers, and the CPU's `efficiency` for
//! the share in CPU layers. All the runners decoding at once draw at most
//! `concurrent_efficiency` of each bandwidth together: when their draws add up to more, every
//! step on that memory stretches by the excess ratio. The slots of ONE runner decode as a
//! batch (llama.cpp's `processBatch` puts every sequence's next token in one batch): a step
//! reads the weights once plus each busy slot's KV cache, so with `n` slots busy a step takes
//! `(weights + (n - 1) x mean slot KV) / weights` times as long as alone, and yields a token
//! for each slot. Prompt evaluation is compute bound and neither draws on nor waits for the
//! bandwidth here.
//!
//! Progress is kept in tokens and brought up to date whenever the set of streams changes;
//! every waiting stream is then woken to re-plan the moment it reaches its next chunk, on the
//! simulated clock (virtual under paused time, scaled real time otherwise).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::clock::Clock;

/// Tokens of progress below which a target counts as reached (floating-point slack).
const TOKEN_SLACK: f64 = 1e-6;

/// What one decode stream costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct DecodeCost {
    /// The runner it decodes on: streams of one runner batch together.
    pub(crate) runner: u64,
    /// Seconds per token alone spent in GPU layers.
    pub(crate) gpu_seconds_per_token: f64,
    /// Seconds per token alone spent in CPU layers.
    pub(crate) cpu_seconds_per_token: f64,
    /// The bytes one step reads for the weights, at the same efficiency as the slot's KV.
    pub(crate) weights_bytes: f64,
    /// The bytes one step reads for this slot's KV cache (its context).
    pub(crate) slot_bytes: f64,
}

impl DecodeCost {
    fn seconds_alone(&self) -> f64 {
        self.gpu_seconds_per_token + self.cpu_seconds_per_token
    }
}

/// The streams decoding now, shared by every request of a simulator.
#[derive(Debug)]
pub(crate) struct Bandwidth {
    clock: Clock,
    /// `concurrent_efficiency / efficiency`: how many lone streams' draws the memory
    /// delivers at once.
    capacity: f64,
    state: Mutex<State>,
    /// Bumped whenever the streams' speeds change.
    changed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    /// Simulated second up to which every stream's progress is counted.
    updated: f64,
    next_id: u64,
    streams: Vec<Stream>,
}

#[derive(Debug)]
struct Stream {
    id: u64,
    cost: DecodeCost,
    /// Tokens decoded up to `State::updated`.
    tokens: f64,
    /// Tokens per second until the set of streams changes.
    rate: f64,
}

/// A stream registered with the bandwidth; it stops drawing on it when dropped.
#[derive(Debug)]
pub(crate) struct Decoding {
    bandwidth: Arc<Bandwidth>,
    /// `None` when simulated time stands still: nothing is shared then.
    id: Option<u64>,
    cost: DecodeCost,
    /// The simulated second decoding started.
    started: f64,
    /// The simulated second of the last target reached (`f64` bits): where the stream
    /// ends if dropped right after, whatever the wake-up granularity of the timer.
    reached: AtomicU64,
}

impl Bandwidth {
    /// `efficiency` is what one stream reaches alone, `concurrent_efficiency` what all reach
    /// together (at least `efficiency`).
    pub(crate) fn new(clock: Clock, efficiency: f64, concurrent_efficiency: f64) -> Arc<Bandwidth> {
        let capacity = if efficiency > 0.0 {
            (concurrent_efficiency / efficiency).max(1.0)
        } else {
            1.0
        };
        Arc::new(Bandwidth {
            clock,
            capacity,
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a decode stream at simulated second `at` (the end of its prompt evaluation;
    /// not before the last change nor after now); the others slow down.
    pub(crate) fn start(self: &Arc<Self>, cost: DecodeCost, at: f64) -> Decoding {
        if self.clock.is_frozen() {
            return Decoding {
                bandwidth: Arc::clone(self),
                id: None,
                cost,
                started: 0.0,
                reached: AtomicU64::new(0f64.to_bits()),
            };
        }
        let mut state = self.lock();
        let now = at.min(self.clock.now()).max(state.updated);
        state.advance(now);
        let id = state.next_id;
        state.next_id += 1;
        state.streams.push(Stream {
            id,
            cost,
            tokens: 0.0,
            rate: 0.0,
        });
        state.replan(self.capacity);
        drop(state);
        self.changed.send_modify(|generation| *generation += 1);
        Decoding {
            bandwidth: Arc::clone(self),
            id: Some(id),
            cost,
            started: now,
            reached: AtomicU64::new(now.to_bits()),
        }
    }

    /// Ends a stream at simulated second `at` (not before the last change nor after now).
    fn finish(&self, id: u64, at: f64) {
        let mut state = self.lock();
        let now = at.min(self.clock.now()).max(state.updated);
        state.advance(now);
        state.streams.retain(|stream| stream.id != id);
        state.replan(self.capacity);
        drop(state);
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// The number of streams decoding now.
    #[cfg(test)]
    fn streams(&self) -> usize {
        self.lock().streams.len()
    }
}

impl State {
    /// Counts every stream's progress up to `now` at its current rate.
    fn advance(&mut self, now: f64) {
        let elapsed = (now - self.updated).max(0.0);
        for stream in &mut self.streams {
            stream.tokens += stream.rate * elapsed;
        }
        self.updated = now;
    }

    /// Every stream's rate under the module's rule.
    fn replan(&mut self, capacity: f64) {
        // Per runner: busy slots, their KV bytes, and the runner's GPU and CPU shares.
        let mut runners: Vec<(u64, usize, f64, DecodeCost)> = Vec::new();
        for stream in &self.streams {
            match runners
                .iter_mut()
                .find(|(runner, ..)| *runner == stream.cost.runner)
            {
                Some((_, slots, kv, _)) => {
                    *slots += 1;
                    *kv += stream.cost.slot_bytes;
                }
                None => runners.push((stream.cost.runner, 1, stream.cost.slot_bytes, stream.cost)),
            }
        }
        let (mut gpu_draw, mut cpu_draw) = (0.0, 0.0);
        for (_, _, _, cost) in &runners {
            let alone = cost.seconds_alone();
            if alone > 0.0 {
                gpu_draw += cost.gpu_seconds_per_token / alone;
                cpu_draw += cost.cpu_seconds_per_token / alone;
            }
        }
        let gpu_stretch = (gpu_draw / capacity).max(1.0);
        let cpu_stretch = (cpu_draw / capacity).max(1.0);
        for stream in &mut self.streams {
            let (_, slots, kv, _) = runners
                .iter()
                .find(|(runner, ..)| *runner == stream.cost.runner)
                .expect("every stream's runner was counted");
            let cost = &stream.cost;
            let batch = if *slots > 1 && cost.weights_bytes > 0.0 {
                let mean_kv = kv / *slots as f64;
                (cost.weights_bytes + (*slots - 1) as f64 * mean_kv) / cost.weights_bytes
            } else {
                1.0
            };
            let step = (cost.gpu_seconds_per_token * gpu_stretch
                + cost.cpu_seconds_per_token * cpu_stretch)
                * batch;
            stream.rate = if step > 0.0 {
                1.0 / step
            } else {
                f64::INFINITY
            };
        }
    }
}

impl Decoding {
    /// Waits until the stream has decoded `tokens` tokens, re-planning whenever another
    /// stream starts or ends; returns the simulated second it got there (exact, whatever
    /// the wake-up jitter of real time).
    pub(crate) async fn until(&self, tokens: f64) -> f64 {
        let Some(id) = self.id else {
            // Frozen time: nothing waits; the figures are those of the stream alone.
            return self.started + tokens * self.cost.seconds_alone();
        };
        let bandwidth = &self.bandwidth;
        loop {
            let (at, mut changed) = {
                let state = bandwidth.lock();
                let stream = state
                    .streams
                    .iter()
                    .find(|stream| stream.id == id)
                    .expect("a live stream is registered");
                let missing = tokens - stream.tokens;
                let reached = if missing <= TOKEN_SLACK {
                    state.updated
                } else {
                    state.updated + missing / stream.rate
                };
                if reached <= bandwidth.clock.now() || missing <= TOKEN_SLACK {
                    let reached = reached.max(self.started);
                    self.reached.store(reached.to_bits(), Ordering::Relaxed);
                    return reached;
                }
                (reached, bandwidth.changed.subscribe())
            };
            tokio::select! {
                () = bandwidth.clock.sleep_until(at) => {}
                _ = changed.changed() => {}
            }
        }
    }

    /// The simulated second decoding started.
    pub(crate) fn started(&self) -> f64 {
        self.started
    }
}

impl Drop for Decoding {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let reached = f64::from_bits(self.reached.load(Ordering::Relaxed));
            self.bandwidth.finish(id, reached);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(runner: u64, seconds: f64, weights: f64, slot: f64) -> DecodeCost {
        DecodeCost {
            runner,
            gpu_seconds_per_token: seconds,
            cpu_seconds_per_token: 0.0,
            weights_bytes: weights,
            slot_bytes: slot,
        }
    }

    impl Bandwidth {
        fn start_now(self: &Arc<Self>, cost: DecodeCost) -> Decoding {
            self.start(cost, self.clock.now())
        }
    }

    fn bandwidth() -> Arc<Bandwidth> {
        Bandwidth::new(Clock::new(1.0, 0.0), 0.7, 0.85)
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_stream_decodes_at_its_own_speed() {
        let bandwidth = bandwidth();
        let decoding = bandwidth.start_now(cost(1, 0.05, 20e9, 1e9));
        let reached = decoding.until(100.0).await;
        assert!(
            (reached - decoding.started() - 5.0).abs() < 1e-9,
            "{reached}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_runners_share_the_bandwidth_and_recover() {
        let bandwidth = bandwidth();
        let first = bandwidth.start_now(cost(1, 0.05, 20e9, 1e9));
        let second = bandwidth.start_now(cost(2, 0.05, 20e9, 1e9));
        assert_eq!(bandwidth.streams(), 2);
        // Both at 1 / (2 x 0.7 / 0.85) of their speed: 20 tokens take 1.6471 s.
        let stretch = 2.0 * 0.7 / 0.85;
        let reached = second.until(20.0).await;
        assert!((reached - 20.0 * 0.05 * stretch).abs() < 1e-6, "{reached}");
        drop(second);
        // The first has 20 tokens; the next 20 come at full speed.
        let reached = first.until(40.0).await;
        assert!(
            (reached - (20.0 * 0.05 * stretch + 1.0)).abs() < 1e-6,
            "{reached}"
        );
        drop(first);
        assert_eq!(bandwidth.streams(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn slots_of_one_runner_batch() {
        let bandwidth = bandwidth();
        let first = bandwidth.start_now(cost(1, 0.05, 20e9, 1e9));
        let second = bandwidth.start_now(cost(1, 0.05, 20e9, 3e9));
        // One stream's draw; the step reads the weights and a second slot's KV (mean 2 GB).
        let reached = first.until(10.0).await;
        assert!(
            (reached - 10.0 * 0.05 * 22.0 / 20.0).abs() < 1e-6,
            "{reached}"
        );
        drop((first, second));
    }

    #[tokio::test(start_paused = true)]
    async fn cpu_layers_draw_on_the_cpu_bandwidth() {
        let bandwidth = bandwidth();
        let cpu = DecodeCost {
            runner: 1,
            gpu_seconds_per_token: 0.0,
            cpu_seconds_per_token: 0.1,
            weights_bytes: 1e9,
            slot_bytes: 0.0,
        };
        let on_cpu = bandwidth.start_now(cpu);
        let _on_gpu = bandwidth.start_now(cost(2, 0.05, 20e9, 1e9));
        // Different memories: neither slows the other.
        let reached = on_cpu.until(10.0).await;
        assert!((reached - 1.0).abs() < 1e-6, "{reached}");
    }

    #[tokio::test]
    async fn frozen_time_reports_the_lone_figures() {
        let bandwidth = Bandwidth::new(Clock::new(0.0, 0.0), 0.7, 0.85);
        let first = bandwidth.start_now(cost(1, 0.05, 20e9, 1e9));
        let _second = bandwidth.start_now(cost(2, 0.05, 20e9, 1e9));
        assert_eq!(first.until(10.0).await, 0.5);
        assert_eq!(bandwidth.streams(), 0);
    }
}
