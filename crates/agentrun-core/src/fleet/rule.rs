//! Which host serves each model: the hosts that have the model and carry every label its
//! agents require, those carrying more preferred labels first, and among them the first
//! where the model fits beside what is already placed there (its budget and count cap).

use std::collections::BTreeSet;

/// One host as placement sees it.
#[derive(Debug, Clone)]
pub(crate) struct HostSlot<'a> {
    /// Its GPU budget in bytes.
    pub(crate) budget_bytes: u64,
    /// How many models it keeps loaded at once.
    pub(crate) max_loaded_models: usize,
    /// Its labels.
    pub(crate) labels: &'a [String],
    /// The models it has (of those asked about).
    pub(crate) catalogue: &'a BTreeSet<String>,
    /// Whether it answers.
    pub(crate) up: bool,
    /// Bytes and count of the models placed on it already.
    pub(crate) placed_bytes: u64,
    /// How many models are placed on it already.
    pub(crate) placed_count: usize,
}

/// What one model asks of its host.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDemand {
    /// The model's name.
    pub model: String,
    /// Its predicted footprint in bytes.
    pub footprint_bytes: u64,
    /// Labels its host must carry (every agent's, together).
    pub require: Vec<String>,
    /// Labels preferred among those hosts.
    pub prefer: Vec<String>,
    /// The agents that use it, for messages.
    pub agents: Vec<String>,
}

/// Why a model has no host.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Unplaced {
    /// No host that answers carries these labels.
    NoLabel(Vec<String>),
    /// Hosts carry the labels but none has the model: these do.
    Missing {
        /// The hosts the labels allow (that answer).
        allowed: Vec<usize>,
    },
}

/// The host for `demand` among `hosts`, or why there is none.
pub(crate) fn choose_host(demand: &ModelDemand, hosts: &[HostSlot<'_>]) -> Result<usize, Unplaced> {
    let allowed: Vec<usize> = hosts
        .iter()
        .enumerate()
        .filter(|(_, host)| {
            host.up
                && demand
                    .require
                    .iter()
                    .all(|label| host.labels.contains(label))
        })
        .map(|(index, _)| index)
        .collect();
    if allowed.is_empty() {
        return Err(Unplaced::NoLabel(demand.require.clone()));
    }
    let mut candidates: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|&index| hosts[index].catalogue.contains(&demand.model))
        .collect();
    if candidates.is_empty() {
        return Err(Unplaced::Missing { allowed });
    }
    let preferred = |index: usize| {
        demand
            .prefer
            .iter()
            .filter(|label| hosts[index].labels.contains(label))
            .count()
    };
    // Stable: equal preference keeps the hosts' order.
    candidates.sort_by_key(|&index| std::cmp::Reverse(preferred(index)));
    let fits_beside = |host: &HostSlot<'_>| {
        host.placed_count < host.max_loaded_models
            && host.placed_bytes.saturating_add(demand.footprint_bytes) <= host.budget_bytes
    };
    let fits_alone = |host: &HostSlot<'_>| demand.footprint_bytes <= host.budget_bytes;
    Ok(candidates
        .iter()
        .copied()
        .find(|&index| fits_beside(&hosts[index]))
        .or_else(|| {
            candidates
                .iter()
                .copied()
                .find(|&index| fits_alone(&hosts[index]))
        })
        .unwrap_or(candidates[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1 << 30;

    fn demand(model: &str, gb: u64, require: &[&str], prefer: &[&str]) -> ModelDemand {
        ModelDemand {
            model: model.into(),
            footprint_bytes: gb * GB,
            require: require.iter().map(|s| (*s).to_owned()).collect(),
            prefer: prefer.iter().map(|s| (*s).to_owned()).collect(),
            agents: vec!["agent".into()],
        }
    }

    fn slot<'a>(
        _name: &str,
        gb: u64,
        labels: &'a [String],
        catalogue: &'a BTreeSet<String>,
    ) -> HostSlot<'a> {
        HostSlot {
            budget_bytes: gb * GB,
            max_loaded_models: 3,
            labels,
            catalogue,
            up: true,
            placed_bytes: 0,
            placed_count: 0,
        }
    }

    #[test]
    fn a_model_goes_to_the_first_host_where_it_fits_beside_what_is_there() {
        let all: BTreeSet<String> = ["a".into(), "b".into()].into();
        let none: Vec<String> = Vec::new();
        let mut hosts = vec![slot("mac", 54, &none, &all), slot("linux", 24, &none, &all)];
        assert_eq!(choose_host(&demand("a", 40, &[], &[]), &hosts), Ok(0));
        hosts[0].placed_bytes = 40 * GB;
        hosts[0].placed_count = 1;
        assert_eq!(choose_host(&demand("b", 20, &[], &[]), &hosts), Ok(1));
        // Too big beside anything anywhere: the first host it fits alone.
        assert_eq!(choose_host(&demand("a", 50, &[], &[]), &hosts), Ok(0));
    }

    #[test]
    fn labels_are_required_and_preferred() {
        let all: BTreeSet<String> = ["a".into()].into();
        let big = vec!["big".to_owned()];
        let linux = vec!["linux".to_owned()];
        let hosts = vec![slot("mac", 54, &big, &all), slot("linux", 24, &linux, &all)];
        assert_eq!(choose_host(&demand("a", 8, &[], &["linux"]), &hosts), Ok(1));
        assert_eq!(choose_host(&demand("a", 8, &["big"], &["linux"]), &hosts), Ok(0));
        assert_eq!(
            choose_host(&demand("a", 8, &["gpu"], &[]), &hosts),
            Err(Unplaced::NoLabel(vec!["gpu".into()]))
        );
    }

    #[test]
    fn a_model_no_allowed_host_has_names_the_allowed_hosts() {
        let some: BTreeSet<String> = ["a".into()].into();
        let empty = BTreeSet::new();
        let big = vec!["big".to_owned()];
        let none: Vec<String> = Vec::new();
        let mut hosts = vec![slot("mac", 54, &big, &empty), slot("linux", 24, &none, &some)];
        assert_eq!(
            choose_host(&demand("a", 8, &["big"], &[]), &hosts),
            Err(Unplaced::Missing { allowed: vec![0] })
        );
        hosts[1].up = false;
        assert_eq!(
            choose_host(&demand("a", 8, &[], &[]), &hosts),
            Err(Unplaced::Missing { allowed: vec![0] })
        );
    }
}
