//! The search for the assignment of least expected wait: exact for small problems, greedy
//! with local search (moves and swaps) for large ones.

use super::cost::State;
use super::instance::Instance;
use super::report;
use super::{EXACT_ASSIGNMENTS, Placement, Search};

/// A change smaller than this is no improvement: it keeps rounding from cycling the local
/// search, and is far below [`super::PREFERENCE_SECONDS`].
const IMPROVEMENT: f64 = 1e-12;
/// The local search stops after this many rounds even if moves still pay (each round
/// lowers the cost, so it ends anyway; this only bounds the time).
const MAX_ROUNDS: usize = 64;
/// The most items a repartition of two hosts enumerates (all 2^n ways).
const REPARTITION_ITEMS: usize = 8;

/// Places the instance's items and reports the placement.
pub(super) fn solve(instance: &Instance) -> Placement {
    let order = item_order(instance);
    let assignments = exact_leaves(instance, &order);
    let (host_of, search) = if assignments <= EXACT_ASSIGNMENTS {
        (exact(instance, &order), Search::Exact)
    } else {
        (heuristic(instance, &order), Search::Heuristic)
    };
    report::build(instance, &host_of, search)
}

/// An upper bound on the complete assignments the exact search visits: the `k`-th free item
/// tries at most the hosts already in use (the pinned items' and one per earlier item) plus
/// one empty host per class among its eligible hosts.
fn exact_leaves(instance: &Instance, order: &[usize]) -> u64 {
    let mut pinned: Vec<usize> = instance
        .items
        .iter()
        .filter_map(|item| item.pinned)
        .collect();
    pinned.sort_unstable();
    pinned.dedup();
    let mut classes: Vec<usize> = Vec::new();
    order
        .iter()
        .enumerate()
        .fold(1u64, |product, (index, &item)| {
            let eligible = &instance.items[item].eligible;
            classes.clear();
            classes.extend(eligible.iter().map(|&host| instance.hosts[host].class));
            classes.sort_unstable();
            classes.dedup();
            let choices = eligible.len().min(pinned.len() + index + classes.len());
            product.saturating_mul(choices.max(1) as u64)
        })
}

/// The assignment the heuristic finds, whatever the size (for tests against [`exact`]).
#[cfg(test)]
pub(super) fn heuristic_only(instance: &Instance) -> Vec<usize> {
    heuristic(instance, &item_order(instance))
}

/// The optimal assignment (for tests against [`heuristic`]).
#[cfg(test)]
pub(super) fn exact_only(instance: &Instance) -> Vec<usize> {
    exact(instance, &item_order(instance))
}

/// The free items, heaviest first (ties: larger model, then input order).
fn item_order(instance: &Instance) -> Vec<usize> {
    let mut order: Vec<usize> = (0..instance.items.len())
        .filter(|&item| instance.items[item].pinned.is_none())
        .collect();
    order.sort_by(|&a, &b| {
        let (first, second) = (&instance.items[a], &instance.items[b]);
        second
            .weight
            .total_cmp(&first.weight)
            .then(instance.footprints[second.runner].cmp(&instance.footprints[first.runner]))
            .then(a.cmp(&b))
    });
    order
}

/// A state with the pinned items on their hosts.
fn pinned_state(instance: &Instance) -> State<'_> {
    let mut state = State::new(instance);
    for (item, spec) in instance.items.iter().enumerate() {
        if let Some(host) = spec.pinned {
            state.apply(item, Some(host));
        }
    }
    state
}

/// Which empty hosts are tried for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sameness {
    /// The first empty host of each class: hosts of one class are interchangeable in every
    /// assignment, so the exact search loses nothing.
    Class,
    /// One empty host per kind: moving the item to any empty host of a kind costs the same
    /// now. The one opened is the one that may serve most of the item's related items, so
    /// they can join it later.
    Kind,
}

/// The hosts worth trying for an item, in host order: its eligible hosts, with only one of
/// each group of equivalent empty hosts (see [`Sameness`]).
fn candidates(state: &State<'_>, item: usize, sameness: Sameness, out: &mut Vec<usize>) {
    let instance = state.instance;
    out.clear();
    // Per group of empty hosts, the one chosen so far: (key, host).
    let mut empty: Vec<(usize, usize)> = Vec::new();
    for &host in &instance.items[item].eligible {
        if state.on_host[host] > 0 {
            out.push(host);
            continue;
        }
        let spec = &instance.hosts[host];
        let key = match sameness {
            Sameness::Class => spec.class,
            Sameness::Kind => spec.kind,
        };
        match empty.iter_mut().find(|(other, _)| *other == key) {
            None => empty.push((key, host)),
            Some(entry) => {
                if sameness == Sameness::Kind
                    && instance.related_served(item, host) > instance.related_served(item, entry.1)
                {
                    entry.1 = host;
                }
            }
        }
    }
    out.extend(empty.iter().map(|&(_, host)| host));
    out.sort_unstable();
}

/// Depth-first enumeration of every assignment (identical empty hosts tried once), priced
/// move by move. No branch is cut: a partial cost is no bound, since placing a turn in
/// between can move a load's charge to a later, cheaper term.
fn exact(instance: &Instance, order: &[usize]) -> Vec<usize> {
    struct Search<'s, 'a> {
        order: &'s [usize],
        state: State<'a>,
        best: f64,
        best_hosts: Option<Vec<Option<usize>>>,
    }
    fn descend(search: &mut Search<'_, '_>, depth: usize) {
        let Some(&item) = search.order.get(depth) else {
            if search.state.cost < search.best - IMPROVEMENT {
                search.best = search.state.cost;
                search.best_hosts = Some(search.state.host_of.clone());
            }
            return;
        };
        let mut hosts = Vec::new();
        candidates(&search.state, item, Sameness::Class, &mut hosts);
        for host in hosts {
            search.state.apply(item, Some(host));
            descend(search, depth + 1);
            search.state.apply(item, None);
        }
    }
    let mut search = Search {
        order,
        state: pinned_state(instance),
        best: f64::INFINITY,
        best_hosts: None,
    };
    descend(&mut search, 0);
    let hosts = search
        .best_hosts
        .expect("every item has an eligible host, so some assignment is complete");
    hosts
        .into_iter()
        .map(|host| host.expect("a complete assignment"))
        .collect()
}

/// Greedy construction, then local search.
///
/// Greedy: heaviest item first, each to the candidate host that adds the least cost given
/// the items already placed (the heavy items decide the structure: which models share a
/// host). Local search: repeatedly, each item moves to its best host if that lowers the
/// cost; then each pair of related items (sharing a term or a phase) on different hosts
/// swaps hosts if that does (a swap escapes the local minima where neither item can move
/// alone without first crowding the other's host); then the items of one model sharing a
/// host move together to another of its hosts (a replica's first load is shared, so no
/// single move drops it). When none of these pays, the items of every pair of hosts are
/// shared out again between the two in the best of all ways (a *repartition*, for pairs
/// holding at most [`REPARTITION_ITEMS`] movable items): the exchanges of several models at
/// once that a partition of the fleet needs. Stops when a round changes nothing.
fn heuristic(instance: &Instance, order: &[usize]) -> Vec<usize> {
    let mut state = pinned_state(instance);
    let mut hosts = Vec::new();
    for &item in order {
        candidates(&state, item, Sameness::Kind, &mut hosts);
        let best = best_host(&mut state, item, &hosts);
        state.apply(item, Some(best.0));
    }
    let pairs = related_pairs(instance, order);
    for _ in 0..MAX_ROUNDS {
        let mut improved = false;
        for &item in order {
            candidates(&state, item, Sameness::Kind, &mut hosts);
            let (host, delta) = best_host(&mut state, item, &hosts);
            if delta < -IMPROVEMENT {
                state.apply(item, Some(host));
                improved = true;
            }
        }
        for &(a, b) in &pairs {
            let (Some(host_a), Some(host_b)) = (state.host_of[a], state.host_of[b]) else {
                continue;
            };
            if host_a == host_b || !instance.may_serve(host_b, a) || !instance.may_serve(host_a, b)
            {
                continue;
            }
            let before = state.cost;
            state.apply(a, Some(host_b));
            let delta = state.evaluate(b, Some(host_a));
            if state.cost + delta < before - IMPROVEMENT {
                state.apply(b, Some(host_a));
                improved = true;
            } else {
                state.apply(a, Some(host_a));
            }
        }
        improved |= merge_replicas(&mut state, order);
        // The widest neighbourhood, tried only where the narrower ones are stuck.
        if !improved && !repartition(&mut state, order) {
            break;
        }
    }
    state
        .host_of
        .into_iter()
        .map(|host| host.expect("every item is placed"))
        .collect()
}

/// Shares out the free items of each pair of hosts between the two in the best way, by
/// enumerating every split (Gray code: each step moves one item). Pairs are the hosts in use
/// with each other and with the first empty host of each kind. Returns whether anything
/// moved.
fn repartition(state: &mut State<'_>, order: &[usize]) -> bool {
    let instance = state.instance;
    let mut hosts: Vec<usize> = Vec::new();
    let mut empty_kinds: Vec<usize> = Vec::new();
    for (host, spec) in instance.hosts.iter().enumerate() {
        if state.on_host[host] > 0 {
            hosts.push(host);
        } else if !empty_kinds.contains(&spec.kind) {
            empty_kinds.push(spec.kind);
            hosts.push(host);
        }
    }
    let mut improved = false;
    let mut items: Vec<usize> = Vec::new();
    for (index, &a) in hosts.iter().enumerate() {
        for &b in &hosts[index + 1..] {
            if state.on_host[a] == 0 && state.on_host[b] == 0 {
                continue;
            }
            items.clear();
            items.extend(order.iter().copied().filter(|&item| {
                matches!(state.host_of[item], Some(host) if host == a || host == b)
                    && instance.may_serve(a, item)
                    && instance.may_serve(b, item)
            }));
            if items.is_empty() || items.len() > REPARTITION_ITEMS {
                continue;
            }
            let start = state.cost;
            let mut best = (start, 0usize);
            for step in 1..1usize << items.len() {
                let item = items[step.trailing_zeros() as usize];
                let other = if state.host_of[item] == Some(a) { b } else { a };
                state.apply(item, Some(other));
                if state.cost < best.0 - IMPROVEMENT {
                    best = (state.cost, step ^ (step >> 1));
                }
            }
            // The Gray code ends one flip of the last bit away from the start: flip back to
            // the best split from where it stands.
            let last = (1usize << items.len()) - 1;
            let at = last ^ (last >> 1);
            let flips = at ^ best.1;
            for (bit, &item) in items.iter().enumerate() {
                if flips & (1 << bit) != 0 {
                    let other = if state.host_of[item] == Some(a) { b } else { a };
                    state.apply(item, Some(other));
                }
            }
            if best.0 < start - IMPROVEMENT {
                improved = true;
            }
        }
    }
    improved
}

/// Moves together the items of one model that share a host to another host that serves
/// the model, when that pays: the replica's first load is shared by its items, so no single
/// move can drop it. Returns whether anything moved.
fn merge_replicas(state: &mut State<'_>, order: &[usize]) -> bool {
    let instance = state.instance;
    let mut improved = false;
    let mut groups: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for &item in order {
        let (runner, host) = (
            instance.items[item].runner,
            state.host_of[item].expect("placed"),
        );
        match groups
            .iter_mut()
            .find(|(other, at, _)| *other == runner && *at == host)
        {
            Some((_, _, items)) => items.push(item),
            None => groups.push((runner, host, vec![item])),
        }
    }
    for (runner, from, items) in &groups {
        let targets: Vec<usize> = groups
            .iter()
            .filter(|(other, at, _)| other == runner && at != from)
            .map(|(_, at, _)| *at)
            .collect();
        for to in targets {
            let movable = items
                .iter()
                .all(|&item| state.host_of[item] == Some(*from) && instance.may_serve(to, item));
            if !movable {
                continue;
            }
            let before = state.cost;
            for &item in items {
                state.apply(item, Some(to));
            }
            if state.cost < before - IMPROVEMENT {
                improved = true;
                break;
            }
            for &item in items {
                state.apply(item, Some(*from));
            }
        }
    }
    improved
}

/// The candidate with the lowest cost change for the item (ties: the earlier host), its
/// current host counting as a change of zero.
fn best_host(state: &mut State<'_>, item: usize, hosts: &[usize]) -> (usize, f64) {
    let current = state.host_of[item];
    let mut best: Option<(usize, f64)> = current.map(|host| (host, 0.0));
    for &host in hosts {
        if Some(host) == current {
            continue;
        }
        let delta = state.evaluate(item, Some(host));
        if best.is_none_or(|(_, lowest)| delta < lowest - IMPROVEMENT) {
            best = Some((host, delta));
        }
    }
    best.expect("every item has an eligible host")
}

/// Pairs of free items that share a cost term or a phase, each once, in a fixed order.
fn related_pairs(instance: &Instance, order: &[usize]) -> Vec<(usize, usize)> {
    let mut free = vec![false; instance.items.len()];
    for &item in order {
        free[item] = true;
    }
    let mut pairs = Vec::new();
    for (a, related) in instance.related.iter().enumerate() {
        for &b in related {
            if a < b && free[a] && free[b] {
                pairs.push((a, b));
            }
        }
    }
    pairs
}
