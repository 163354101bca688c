//! The expected wait of an assignment of items to hosts, kept up to date move by move.
//!
//! A move of one item changes only the terms that read its phase (the item's own terms, and
//! every term whose conflict tests read the phase's models on a host), so a move is priced by
//! re-evaluating those alone.

use crate::budget::Budget;

use super::instance::Instance;
use super::terms::Term;

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
            cost: 0.0,
            seen: vec![0; instance.terms.len()],
            epoch: 0,
        }
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
        let before = self.touched_cost(item) + self.own_cost(item, from);
        self.set(item, to);
        let after = self.touched_cost(item) + self.own_cost(item, to);
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
        for &middle in &term.middles {
            // A turn in between on the same host either used the model (it was resident) or
            // conflicts with it (its own term charges the load), or else left it alone.
            if self.host_of[middle]? == host
                && (instance.items[middle].runner == runner
                    || self.conflict(host, middle, term.last).is_some())
            {
                return None;
            }
        }
        let (conflict, hide) = match self.conflict(host, term.first, term.last)? {
            Conflict::Exclusive => (Conflict::Exclusive, term.hide_exclusive),
            Conflict::Crowded => (Conflict::Crowded, term.hide_crowded),
        };
        let exposed = (instance.load_seconds(runner, host) - hide).max(0.0);
        Some((host, conflict, term.rate * exposed))
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
            Some(Conflict::Exclusive)
        } else if !self.fits_beside_phase(host, first.phase, last.runner) {
            Some(Conflict::Crowded)
        } else {
            None
        }
    }

    fn term_cost(&self, index: usize) -> f64 {
        self.term_load(index).map_or(0.0, |(_, _, wait)| wait)
    }

    /// The cost of the terms a move of `item` can change.
    fn touched_cost(&mut self, item: usize) -> f64 {
        let instance = self.instance;
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.seen.fill(0);
            self.epoch = 1;
        }
        let phase = instance.items[item].phase;
        let mut total = 0.0;
        for &term in &instance.phase_terms[phase] {
            if self.seen[term] == self.epoch {
                continue;
            }
            self.seen[term] = self.epoch;
            total += self.term_cost(term);
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
        let runner = self.instance.items[item].runner;
        if let Some(from) = self.host_of[item] {
            self.on_host[from] -= 1;
            self.runner_items[runner * hosts + from] -= 1;
        }
        if let Some(to) = to {
            self.on_host[to] += 1;
            self.runner_items[runner * hosts + to] += 1;
        }
        self.host_of[item] = to;
    }

    /// Whether `runner` can stay resident on `host` beside the models `phase` uses there
    /// (the working set the host holds while that phase speaks).
    fn fits_beside_phase(&self, host: usize, phase: usize, runner: usize) -> bool {
        let instance = self.instance;
        let mut runners: Vec<usize> = vec![runner];
        for &item in &instance.phase_items[phase] {
            let other = instance.items[item].runner;
            if self.host_of[item] == Some(host) && !runners.contains(&other) {
                runners.push(other);
            }
        }
        let mut sizes: Vec<u64> = runners
            .iter()
            .map(|&runner| instance.footprints[runner])
            .collect();
        fits_largest_first(instance.hosts[host].budget, &mut sizes)
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
