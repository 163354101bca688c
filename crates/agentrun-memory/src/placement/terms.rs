//! The cost terms: the flows of the conversation that force a load when their ends share a
//! host on which their models conflict, drawn from the graph as a Markov chain.

use crate::workload::Workload;

use super::items::Item;

/// Turns of the Markov chain averaged for the long-run turn shares (a Cesàro mean, so loops
/// that alternate with period two converge too).
const SHARE_TURNS: usize = 256;
/// How many memory-less agents (commands, humans) in a row the search for the next model
/// turn walks through.
const SKIP_DEPTH: usize = 8;
/// Flows below this rate (per turn) make no term: they cannot change a placement.
const NEGLIGIBLE_RATE: f64 = 1e-9;
/// The most model turns a term spans. Longer paths are nearly always cut earlier, when the
/// turns in between already hide the longest load.
pub(super) const MAX_PATH_TURNS: usize = 6;
/// The most turns in between a term holds.
const MAX_MIDDLES: usize = MAX_PATH_TURNS - 2;
/// A path followed less often than this share of its first turn's occurrences makes no term
/// and is not extended: it keeps dense graphs (many hand-overs per agent) to at most a
/// hundred paths per length per first turn, and drops only flows worth under 1 % of one
/// turn's load.
const MIN_PATH_SHARE: f64 = 0.01;

/// A path of model turns `first, middles.., last` that forces a load of `last`'s model on
/// its host when `first`'s model, used on the same host, conflicts with it, and no turn in
/// between used `last`'s model there or conflicted with it there (that turn's own term then
/// counts the load: each load is charged to the latest conflicting use before it).
#[derive(Debug, Clone)]
pub(super) struct Term {
    /// Expected occurrences per turn.
    pub(super) rate: f64,
    /// The item whose model was used first.
    pub(super) first: usize,
    /// The items of the model turns in between, in order (the first `middle_count`): kept
    /// inline, so pricing a term reads one place in memory.
    middles: [usize; MAX_MIDDLES],
    middle_count: usize,
    /// The item whose model is needed now.
    pub(super) last: usize,
    /// Seconds of the load hidden when the two models are exclusive: the load starts when
    /// the first turn ends, and the turns in between run meanwhile.
    pub(super) hide_exclusive: f64,
    /// Seconds hidden when they fit as a pair but their phases crowd the host: the load is
    /// preloaded while the first turn generates, too.
    pub(super) hide_crowded: f64,
}

impl Term {
    /// The items of the model turns in between, in order.
    pub(super) fn middles(&self) -> &[usize] {
        &self.middles[..self.middle_count]
    }

    /// Every item the term reads.
    pub(super) fn items(&self) -> impl Iterator<Item = usize> + '_ {
        [self.first, self.last]
            .into_iter()
            .chain(self.middles().iter().copied())
    }
}

/// The conversation graph as a Markov chain: long-run turn shares and the next model turn.
pub(super) struct Chain {
    /// Per agent, its long-run share of turns.
    share: Vec<f64>,
    /// The share of turns after which the run ends.
    pub(super) end_rate: f64,
    /// Per agent, the agents whose model turn comes next (through memory-less agents), with
    /// probability and the expected seconds of the memory-less turns in between.
    next_model: Vec<Vec<(usize, f64, f64)>>,
}

impl Chain {
    pub(super) fn new(workload: &Workload, start: usize) -> Chain {
        let count = workload.agents().len();
        let mut current = vec![0.0; count];
        current[start] = 1.0;
        let mut share = vec![0.0; count];
        let mut end_mass = 0.0;
        for _ in 0..SHARE_TURNS {
            let mut next = vec![0.0; count];
            for (agent, &mass) in current.iter().enumerate() {
                if mass == 0.0 {
                    continue;
                }
                share[agent] += mass;
                let mut left = mass;
                for edge in &workload.out[agent] {
                    let flow = mass * edge.probability;
                    left -= flow;
                    match edge.to {
                        Some(to) => next[to] += flow,
                        None => {
                            end_mass += flow;
                            next[start] += flow;
                        }
                    }
                }
                // An agent with no way on ends the run.
                if left > NEGLIGIBLE_RATE {
                    end_mass += left;
                    next[start] += left;
                }
            }
            current = next;
        }
        for value in &mut share {
            *value /= SHARE_TURNS as f64;
        }
        let end_rate = end_mass / SHARE_TURNS as f64;
        let next_model = (0..count)
            .map(|agent| next_model_turns(workload, start, agent))
            .collect();
        Chain {
            share,
            end_rate,
            next_model,
        }
    }
}

/// The agents whose model turn follows `agent`'s turn, walking through memory-less agents (a
/// run's end leads to `start`).
fn next_model_turns(workload: &Workload, start: usize, agent: usize) -> Vec<(usize, f64, f64)> {
    // (agent, probability, probability x elapsed seconds)
    let mut found: Vec<(usize, f64, f64)> = Vec::new();
    let mut frontier: Vec<(usize, f64, f64)> = Vec::new();
    let step = |from: usize, mass: f64, timed: f64, frontier: &mut Vec<(usize, f64, f64)>| {
        for edge in &workload.out[from] {
            let to = edge.to.unwrap_or(start);
            let flow = mass * edge.probability;
            if flow <= NEGLIGIBLE_RATE {
                continue;
            }
            let timed = timed * edge.probability;
            match frontier.iter_mut().find(|(other, _, _)| *other == to) {
                Some(entry) => {
                    entry.1 += flow;
                    entry.2 += timed;
                }
                None => frontier.push((to, flow, timed)),
            }
        }
    };
    step(agent, 1.0, 0.0, &mut frontier);
    for _ in 0..SKIP_DEPTH {
        let mut next = Vec::new();
        for (to, mass, timed) in frontier {
            if workload.agent_runner[to].is_some() {
                match found.iter_mut().find(|(other, _, _)| *other == to) {
                    Some(entry) => {
                        entry.1 += mass;
                        entry.2 += timed;
                    }
                    None => found.push((to, mass, timed)),
                }
            } else {
                let elapsed = timed + mass * workload.turn_seconds[to];
                step(to, mass, elapsed, &mut next);
            }
        }
        frontier = next;
        if frontier.is_empty() {
            break;
        }
    }
    found
        .into_iter()
        .map(|(to, mass, timed)| (to, mass, timed / mass))
        .collect()
}

/// The terms: every path of model turns from a use of one model to a use of another, up to
/// [`MAX_PATH_TURNS`] long, whose turns in between do not already hide the longest load of
/// the second model on any host (such a path can never make a turn wait).
pub(super) fn terms(
    workload: &Workload,
    chain: &Chain,
    agent_item: &[Option<usize>],
    items: &[Item],
    longest_load: &[f64],
) -> Vec<Term> {
    let longest = longest_load.iter().copied().fold(0.0, f64::max);
    let mut terms = Vec::new();
    let mut middles: Vec<usize> = Vec::new();
    for (start, &share) in chain.share.iter().enumerate() {
        let Some(first) = agent_item[start] else {
            continue;
        };
        if share <= NEGLIGIBLE_RATE {
            continue;
        }
        let mut walk = Walk {
            floor: share * MIN_PATH_SHARE,
            workload,
            chain,
            agent_item,
            items,
            longest_load,
            longest,
            first,
            turn: workload.turn_seconds[start],
            terms: &mut terms,
            middles: &mut middles,
        };
        walk.extend(start, share, 0.0);
    }
    terms
}

/// The depth-first enumeration of the paths from one first turn.
struct Walk<'w> {
    /// The rate below which a path is dropped.
    floor: f64,
    workload: &'w Workload,
    chain: &'w Chain,
    agent_item: &'w [Option<usize>],
    items: &'w [Item],
    longest_load: &'w [f64],
    longest: f64,
    first: usize,
    /// The first turn's length.
    turn: f64,
    terms: &'w mut Vec<Term>,
    middles: &'w mut Vec<usize>,
}

impl Walk<'_> {
    /// Follows the model turns after `agent`, reached with probability `rate` (per turn),
    /// `elapsed` seconds after the first turn ended.
    fn extend(&mut self, agent: usize, rate: f64, elapsed: f64) {
        let runner = self.items[self.first].runner;
        for &(next, probability, gap) in &self.chain.next_model[agent] {
            let Some(item) = self.agent_item[next] else {
                continue;
            };
            let rate = rate * probability;
            let hidden = elapsed + gap;
            if rate < self.floor || rate <= NEGLIGIBLE_RATE || hidden >= self.longest {
                continue;
            }
            let next_runner = self.items[item].runner;
            // The first model used again: later loads are charged to this newer use.
            if next_runner == runner {
                continue;
            }
            if hidden < self.longest_load[next_runner] {
                let mut middles = [0; MAX_MIDDLES];
                middles[..self.middles.len()].copy_from_slice(self.middles);
                self.terms.push(Term {
                    rate,
                    first: self.first,
                    middles,
                    middle_count: self.middles.len(),
                    last: item,
                    hide_exclusive: hidden,
                    hide_crowded: hidden + self.turn,
                });
            }
            if self.middles.len() < MAX_MIDDLES {
                self.middles.push(item);
                let elapsed = hidden + self.workload.turn_seconds[next];
                self.extend(next, rate, elapsed);
                self.middles.pop();
            }
        }
    }
}
