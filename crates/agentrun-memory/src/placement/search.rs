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

/// Places the instance's items and reports the placement.
pub(super) fn solve(instance: &Instance) -> Placement {
    let order = item_order(instance);
    let assignments = order.iter().fold(1u64, |product, &item| {
        product.saturating_mul(instance.items[item].eligible.len().max(1) as u64)
    });
    let (host_of, search) = if assignments <= EXACT_ASSIGNMENTS {
        (exact(instance, &order), Search::Exact)
    } else {
        (heuristic(instance, &order), Search::Heuristic)
    };
    report::build(instance, &host_of, search)
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

/// The hosts worth trying for an item: its eligible hosts, of which only the first empty
/// host of each class (identical empty hosts give identical costs).
fn candidates(state: &State<'_>, item: usize, out: &mut Vec<usize>) {
    let instance = state.instance;
    out.clear();
    let mut empty_classes: Vec<usize> = Vec::new();
    for &host in &instance.items[item].eligible {
        let empty = state.on_host[host] == 0;
        if empty {
            let class = instance.hosts[host].class;
            if empty_classes.contains(&class) {
                continue;
            }
            empty_classes.push(class);
        }
        out.push(host);
    }
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
        candidates(&search.state, item, &mut hosts);
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
/// swaps hosts if that does. A swap escapes the local minima where neither item can move
/// alone without first crowding the other's host. Stops when a round changes nothing.
fn heuristic(instance: &Instance, order: &[usize]) -> Vec<usize> {
    let mut state = pinned_state(instance);
    let mut hosts = Vec::new();
    for &item in order {
        candidates(&state, item, &mut hosts);
        let best = best_host(&mut state, item, &hosts);
        state.apply(item, Some(best.0));
    }
    let pairs = related_pairs(instance, order);
    for _ in 0..MAX_ROUNDS {
        let mut improved = false;
        for &item in order {
            candidates(&state, item, &mut hosts);
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
            if host_a == host_b
                || !instance.items[a].eligible.contains(&host_b)
                || !instance.items[b].eligible.contains(&host_a)
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
        if !improved {
            break;
        }
    }
    state
        .host_of
        .into_iter()
        .map(|host| host.expect("every item is placed"))
        .collect()
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
            let movable = items.iter().all(|&item| {
                state.host_of[item] == Some(*from) && instance.items[item].eligible.contains(&to)
            });
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
    let free: Vec<bool> = {
        let mut free = vec![false; instance.items.len()];
        for &item in order {
            free[item] = true;
        }
        free
    };
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut add = |a: usize, b: usize| {
        if a != b && free[a] && free[b] {
            pairs.push((a.min(b), a.max(b)));
        }
    };
    for term in &instance.terms {
        add(term.first, term.last);
        for &middle in &term.middles {
            add(term.first, middle);
            add(middle, term.last);
        }
    }
    for items in &instance.phase_items {
        for (index, &a) in items.iter().enumerate() {
            for &b in &items[index + 1..] {
                add(a, b);
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}
