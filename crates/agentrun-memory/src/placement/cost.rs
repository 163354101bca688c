//! The expected wait of an assignment of items to hosts, kept up to date move by move.
//!
//! A move of one item changes only its own terms and those whose conflict tests read its
//! phase's working set on the two hosts involved, so a move is priced by re-evaluating those
//! alone.

use crate::budget::Budget;

use super::instance::Instance;
use super::terms::{MAX_PATH_TURNS, Term};

/// Why a term's load happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Conflict {
    /// The two models cannot be resident together on the host.
    Exclusive,
    /// They fit as a pair, but the later model does not fit beside the working set the
    /// earlier model's phase keeps on the host.
    Crowded,
}

/// An assignment (possibly partial) and its cost.
#[derive(Debug, Clone)]
pub(super) struct State<'a> {
    pub(super) instance: &'a Instance,
    /// Per item, its host; `None` while unassigned.
    pub(super) host_of: Vec<Option<usize>>,
    /// Per host, how many items it serves.
    pub(super) on_host: Vec<usize>,
    /// Per `[runner * hosts + host]`, how many items of the runner the host serves.
    runner_items: Vec<u32>,
    /// Per `[phase * hosts + host]`, how many items of the phase the host serves.
    phase_items: Vec<u32>,
    /// The objective: wait of the active terms, first loads and preference penalties.
    pub(super) cost: f64,
    /// Marks for de-duplicating the terms a move touches.
    seen: Vec<u32>,
    epoch: u32,
}

impl<'a> State<'a> {
    pub(super) fn new(instance: &'a Instance) -> State<'a> {
        State {
            instance,
            host_of: vec![None; instance.items.len()],
            on_host: vec![0; instance.hosts.len()],
            runner_items: vec![0; instance.footprints.len() * instance.hosts.len()],
            phase_items: vec![0; instance.phase_items.len() * instance.hosts.len()],
            cost: 0.0,
            seen: vec![0; instance.terms.len()],
            epoch: 0,
        }
    }

    /// The complete assignment `host_of` (a host per item), priced from scratch.
    pub(super) fn with_assignment(instance: &'a Instance, host_of: &[usize]) -> State<'a> {
        let mut state = State::new(instance);
        for (item, &host) in host_of.iter().enumerate() {
            state.set(item, Some(host));
        }
        let (wait, penalty) = state.total();
        state.cost = wait + penalty;
        state
    }

    /// Moves `item` to `to` (or unassigns it) and updates the cost.
    pub(super) fn apply(&mut self, item: usize, to: Option<usize>) {
        let delta = self.evaluate(item, to);
        self.set(item, to);
        self.cost += delta;
    }

    /// What moving `item` to `to` would change in the cost, leaving the state as it was.
    pub(super) fn evaluate(&mut self, item: usize, to: Option<usize>) -> f64 {
        let from = self.host_of[item];
        if from == to {
            return 0.0;
        }
        let before = self.touched_cost(item, from, to) + self.own_cost(item, from);
        self.set(item, to);
        let after = self.touched_cost(item, from, to) + self.own_cost(item, to);
        self.set(item, from);
        after - before
    }

    /// The cost recomputed from scratch (no accumulated rounding): wait and penalties.
    pub(super) fn total(&self) -> (f64, f64) {
        let instance = self.instance;
        let mut wait: f64 = (0..instance.terms.len())
            .map(|term| self.term_cost(term))
            .sum();
        let hosts = instance.hosts.len();
        for (index, &count) in self.runner_items.iter().enumerate() {
            if count > 0 {
                let (runner, host) = (index / hosts, index % hosts);
                wait += instance.cold_weight * instance.load_seconds(runner, host);
            }
        }
        let penalty = self
            .host_of
            .iter()
            .enumerate()
            .filter_map(|(item, host)| host.map(|host| instance.penalty(item, host)))
            .sum();
        (wait, penalty)
    }

    /// The expected wait per turn of one term under the current assignment, its host and
    /// why; `None` when the term forces no load.
    pub(super) fn term_load(&self, index: usize) -> Option<(usize, Conflict, f64)> {
        let instance = self.instance;
        let term: &Term = &instance.terms[index];
        let host = self.host_of[term.first]?;
        if self.host_of[term.last]? != host {
            return None;
        }
        let runner = instance.items[term.last].runner;
        // Every middle must be placed for the term to count (a partial assignment prices
        // only complete paths); checked before the conflict tests, which cost more.
        let mut middles_here = 0;
        for &middle in term.middles() {
            let at = self.host_of[middle]?;
            if at == host {
                if instance.items[middle].runner == runner {
                    return None;
                }
                middles_here += 1;
            }
        }
        let conflict = match self.conflict(host, term.first, term.last) {
            Some(conflict) => conflict,
            // The models used since the first turn fill the host (its count cap or its
            // memory) without room for the later one, which was resident before them and so
            // the least recently used: it was evicted, as by an exclusive model.
            None if self.evicted_by(host, term, true) => Conflict::Exclusive,
            None => return None,
        };
        let hide = match conflict {
            Conflict::Exclusive => term.hide_exclusive,
            Conflict::Crowded => term.hide_crowded,
        };
        let exposed = (instance.load_seconds(runner, host) - hide).max(0.0);
        if exposed <= 0.0 {
            return Some((host, conflict, 0.0));
        }
        // A turn in between on the same host that conflicts with the model takes the
        // charge (its own term counts the load), as do the turns in between when their
        // models alone leave it no room.
        if middles_here > 0
            && (term.middles().iter().any(|&middle| {
                self.host_of[middle] == Some(host)
                    && self.conflict(host, middle, term.last).is_some()
            }) || self.evicted_by(host, term, false))
        {
            return None;
        }
        Some((host, conflict, term.rate * exposed))
    }

    /// Whether the models the term's turns in between (and its first turn, when
    /// `with_first`) use on `host` leave no room there for the model of its last turn:
    /// with it they exceed the count cap, or no load order passes the fit test. The later
    /// model, resident before all of them and unused since, is the least recently used and
    /// the first to go when they need room. Pairs are the conflict test's: this is the
    /// case of three or more models, none of which evicts the later one alone.
    fn evicted_by(&self, host: usize, term: &Term, with_first: bool) -> bool {
        let instance = self.instance;
        let last = instance.items[term.last].runner;
        let mut runners = [usize::MAX; MAX_PATH_TURNS];
        let mut sizes = [0u64; MAX_PATH_TURNS];
        runners[0] = last;
        sizes[0] = instance.footprints[last];
        let mut count = 1;
        let first = with_first.then_some(term.first);
        for item in first.into_iter().chain(term.middles().iter().copied()) {
            if self.host_of[item] != Some(host) {
                continue;
            }
            let runner = instance.items[item].runner;
            if !runners[..count].contains(&runner) {
                runners[count] = runner;
                sizes[count] = instance.footprints[runner];
                count += 1;
            }
        }
        // Two models are the pair test's to judge.
        if count <= 2 {
            return false;
        }
        !fits_largest_first(instance.hosts[host].budget, &mut sizes[..count])
    }

    /// Whether the model of item `before`, used on `host`, forces the model of `after` out
    /// there, and why.
    fn conflict(&self, host: usize, before: usize, after: usize) -> Option<Conflict> {
        let instance = self.instance;
        let (first, last) = (&instance.items[before], &instance.items[after]);
        let budget = instance.hosts[host].budget;
        let sizes = (
            instance.footprints[first.runner],
            instance.footprints[last.runner],
        );
        if !pair_fits(budget, sizes.0, sizes.1) {
            return Some(Conflict::Exclusive);
        }
        // The working set beside which the later model must fit is the earlier model alone
        // (or with the later one) when the phase has no other item on the host: the pair
        // test has answered.
        let companions = self.phase_items[first.phase * instance.hosts.len() + host]
            - u32::from(last.phase == first.phase && self.host_of[after] == Some(host));
        if companions <= 1 {
            None
        } else if !self.fits_beside_phase(host, first.phase, last.runner) {
            Some(Conflict::Crowded)
        } else {
            None
        }
    }

    fn term_cost(&self, index: usize) -> f64 {
        self.term_load(index).map_or(0.0, |(_, _, wait)| wait)
    }

    /// The cost of the terms a move of `item` between `from` and `to` can change: its own,
    /// and those of the items of its phase on either host (their conflict tests read the
    /// working set the phase keeps there, which the move changes).
    fn touched_cost(&mut self, item: usize, from: Option<usize>, to: Option<usize>) -> f64 {
        let instance = self.instance;
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.seen.fill(0);
            self.epoch = 1;
        }
        let phase = instance.items[item].phase;
        let neighbours = instance.phase_items[phase]
            .iter()
            .copied()
            .filter(|&other| {
                other != item
                    && self.host_of[other].is_some_and(|at| Some(at) == from || Some(at) == to)
            });
        let mut total = 0.0;
        for touched in std::iter::once(item).chain(neighbours) {
            for &term in &instance.item_terms[touched] {
                if self.seen[term] == self.epoch {
                    continue;
                }
                self.seen[term] = self.epoch;
                total += self.term_cost(term);
            }
        }
        total
    }

    /// The item's own first load (when it is its model's only item on the host) and penalty.
    fn own_cost(&self, item: usize, host: Option<usize>) -> f64 {
        let Some(host) = host else { return 0.0 };
        let instance = self.instance;
        let runner = instance.items[item].runner;
        let alone = self.runner_items[runner * instance.hosts.len() + host] == 1;
        let cold = if alone {
            instance.cold_weight * instance.load_seconds(runner, host)
        } else {
            0.0
        };
        cold + instance.penalty(item, host)
    }

    fn set(&mut self, item: usize, to: Option<usize>) {
        let hosts = self.instance.hosts.len();
        let spec = &self.instance.items[item];
        let (runner, phase) = (spec.runner, spec.phase);
        if let Some(from) = self.host_of[item] {
            self.on_host[from] -= 1;
            self.runner_items[runner * hosts + from] -= 1;
            self.phase_items[phase * hosts + from] -= 1;
        }
        if let Some(to) = to {
            self.on_host[to] += 1;
            self.runner_items[runner * hosts + to] += 1;
            self.phase_items[phase * hosts + to] += 1;
        }
        self.host_of[item] = to;
    }

    /// Whether `runner` can stay resident on `host` beside the models `phase` uses there
    /// (the working set the host holds while that phase speaks).
    fn fits_beside_phase(&self, host: usize, phase: usize, runner: usize) -> bool {
        let instance = self.instance;
        let budget = instance.hosts[host].budget;
        let mut runners = SmallSet::default();
        runners.insert(runner, instance.footprints[runner]);
        for &item in &instance.phase_items[phase] {
            let other = instance.items[item].runner;
            if self.host_of[item] == Some(host) {
                runners.insert(other, instance.footprints[other]);
            }
        }
        if runners.len > budget.max_loaded_models {
            return false;
        }
        match runners.sizes() {
            Some(sizes) => fits_largest_first(budget, sizes),
            None => {
                let mut sizes: Vec<u64> = runners.spilled.iter().map(|&(_, bytes)| bytes).collect();
                fits_largest_first(budget, &mut sizes)
            }
        }
    }
}

/// The distinct runners of a working set with their sizes, on the stack while small (a phase
/// rarely has more than a few models on one host).
#[derive(Default)]
struct SmallSet {
    runners: [usize; SmallSet::INLINE],
    bytes: [u64; SmallSet::INLINE],
    len: usize,
    spilled: Vec<(usize, u64)>,
}

impl SmallSet {
    const INLINE: usize = 16;

    fn insert(&mut self, runner: usize, bytes: u64) {
        if self.len <= Self::INLINE {
            if self.runners[..self.len].contains(&runner) {
                return;
            }
            if self.len < Self::INLINE {
                self.runners[self.len] = runner;
                self.bytes[self.len] = bytes;
                self.len += 1;
                return;
            }
            self.spilled = self.runners.iter().copied().zip(self.bytes).collect();
        }
        if !self.spilled.iter().any(|&(other, _)| other == runner) {
            self.spilled.push((runner, bytes));
            self.len = self.spilled.len().max(Self::INLINE + 1);
        }
    }

    /// The sizes, when they fit on the stack.
    fn sizes(&mut self) -> Option<&mut [u64]> {
        (self.len <= Self::INLINE).then(|| &mut self.bytes[..self.len])
    }
}

/// Whether two models can be resident together: the count cap allows two and the smaller
/// loads beside the larger.
pub(super) fn pair_fits(budget: Budget, a: u64, b: u64) -> bool {
    budget.max_loaded_models >= 2 && budget.admits(a.min(b), 1, a.max(b))
}

/// [`Budget::fits`] without its allocation: sorts `sizes` largest first and loads them in
/// that order (the order in which any fitting set fits).
fn fits_largest_first(budget: Budget, sizes: &mut [u64]) -> bool {
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut resident = 0u64;
    for (count, &bytes) in sizes.iter().enumerate() {
        if !budget.admits(bytes, count, resident) {
            return false;
        }
        resident = resident.saturating_add(bytes);
    }
    true
}
