//! Residency planning when several hosts serve a run: each host plans alone, with its own
//! budget and count cap, over the models placed on it and what it holds; the speaker's call
//! comes from the host its model's calls go to now, and every host's unloads, refreshes and
//! preloads are sent. A replicated model is the speaker's only on that host: another host
//! it is placed on plans the turn as one its model takes elsewhere (unless it holds a copy
//! already, which it keeps planning for).

use std::borrow::Cow;
use std::collections::BTreeSet;

use agentrun_memory::{self as memory, Budget, LoadedModel, PlanContext, TurnPlan, Workload};

use super::Residency;
use crate::fleet::HostView;

/// One host's share of the run, as planning needs it.
#[derive(Debug, Clone)]
pub(crate) struct HostShare {
    /// The models placed on it.
    models: BTreeSet<String>,
    /// Of those, the ones whose calls go to it now.
    serves: BTreeSet<String>,
    /// What it held when last asked.
    resident: BTreeSet<String>,
    /// Its budget and count cap.
    budget: Budget,
}

impl HostShare {
    fn holds(&self, model: &str) -> bool {
        self.models.contains(model) || self.resident.contains(model)
    }

    /// The models this host plans for in a turn of a model agent on `speaker_model`: its
    /// own, less a replica whose calls go elsewhere now and that it does not hold, so it
    /// makes no room for a call it will not serve.
    fn planned_models(&self, speaker_model: Option<&str>) -> Cow<'_, BTreeSet<String>> {
        match speaker_model {
            Some(model)
                if self.models.contains(model)
                    && !self.serves.contains(model)
                    && !self.resident.contains(model) =>
            {
                let mut models = self.models.clone();
                models.remove(model);
                Cow::Owned(models)
            }
            _ => Cow::Borrowed(&self.models),
        }
    }
}

impl Residency {
    /// Plans per host from now on, with the hosts as they are now (placement and what each
    /// holds). Hosts that do not answer plan nothing.
    pub(crate) fn set_hosts(&mut self, hosts: &[HostView]) {
        self.hosts = Some(
            hosts
                .iter()
                .filter(|host| host.up)
                .map(|host| HostShare {
                    models: host.models.clone(),
                    serves: host.serves.clone(),
                    resident: host.resident.iter().map(|m| m.name.clone()).collect(),
                    budget: Budget {
                        gpu_bytes: host.spec.budget_bytes,
                        max_loaded_models: host.spec.max_loaded_models,
                    },
                })
                .collect(),
        );
    }

    /// The host whose share `model` is planned in: the one its calls go to now, else one
    /// that has it placed or resident.
    fn host_of(&self, model: &str) -> Option<&HostShare> {
        let hosts = self.hosts.as_ref()?;
        hosts
            .iter()
            .find(|host| host.serves.contains(model))
            .or_else(|| hosts.iter().find(|host| host.holds(model)))
    }

    /// The workload `model` is planned in: its host's share, or the whole run's on one host.
    pub(super) fn workload_of(&self, model: &str) -> Cow<'_, Workload> {
        match self.host_of(model) {
            Some(host) => Cow::Owned(self.workload.restricted(&host.models, host.budget)),
            None => Cow::Borrowed(&self.workload),
        }
    }

    /// Of what the servers hold, what the host of `model` holds: a host's plans never
    /// count another host's memory.
    pub(super) fn resident_beside(
        &self,
        model: &str,
        resident: Vec<LoadedModel>,
    ) -> Vec<LoadedModel> {
        match self.host_of(model) {
            Some(host) => resident
                .into_iter()
                .filter(|loaded| host.holds(&loaded.model))
                .collect(),
            None => resident,
        }
    }

    /// The plan of a turn: the planner's over the whole run on one host, or each host's
    /// plan over its own share, put together.
    pub(super) fn plan(&self, context: &PlanContext<'_>) -> Result<TurnPlan, memory::Error> {
        let Some(hosts) = &self.hosts else {
            return memory::plan_turn(self.policy, &self.workload, context);
        };
        let speaker_model = self
            .workload
            .agents()
            .iter()
            .find(|agent| agent.name == context.speaker)
            .and_then(|agent| agent.model.as_deref());
        // What some host reported resident is that host's alone (a replicated model may be
        // resident on one of its hosts only); what none reported (a preload still loading)
        // belongs to the hosts it is placed on.
        let reported: BTreeSet<&str> = hosts
            .iter()
            .flat_map(|host| host.resident.iter().map(String::as_str))
            .collect();
        let mut merged = TurnPlan::default();
        let mut call_served = false;
        for host in hosts {
            let resident: Vec<LoadedModel> = context
                .resident
                .iter()
                .filter(|model| {
                    host.resident.contains(&model.model)
                        || (!reported.contains(model.model.as_str()) && host.holds(&model.model))
                })
                .cloned()
                .collect();
            let workload = self
                .workload
                .restricted(&host.planned_models(speaker_model), host.budget);
            let plan = memory::plan_turn(
                self.policy,
                &workload,
                &PlanContext {
                    speaker: context.speaker,
                    resident: &resident,
                    future: context.future,
                },
            )?;
            // The call is planned by the host that serves it.
            let serves = speaker_model.is_some_and(|model| host.serves.contains(model));
            if plan.call.is_some() && (serves || !call_served) {
                merged.call = plan.call;
                call_served |= serves;
            }
            merged.unloads.extend(plan.unloads);
            merged.refreshes.extend(plan.refreshes);
            merged.preloads.extend(plan.preloads);
        }
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(models: &[&str], serves: &[&str], resident: &[&str]) -> HostShare {
        let set = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
        HostShare {
            models: set(models),
            serves: set(serves),
            resident: set(resident),
            budget: Budget {
                gpu_bytes: 24_000_000_000,
                max_loaded_models: 3,
            },
        }
    }

    #[test]
    fn a_replica_whose_calls_go_elsewhere_is_not_planned_for_unless_it_is_resident() {
        let names = |models: Cow<'_, BTreeSet<String>>| {
            models.iter().cloned().collect::<Vec<_>>().join(" ")
        };
        // The helper's calls go to another host now: this one makes no room for it.
        let elsewhere = share(&["big", "helper"], &["big"], &[]);
        assert_eq!(names(elsewhere.planned_models(Some("helper"))), "big");
        // Another speaker's turn: the host keeps planning for every model placed on it.
        assert_eq!(names(elsewhere.planned_models(Some("big"))), "big helper");
        assert_eq!(names(elsewhere.planned_models(None)), "big helper");
        // It serves the call, or holds a copy already: the helper stays in its plan.
        let serving = share(&["big", "helper"], &["big", "helper"], &[]);
        assert_eq!(names(serving.planned_models(Some("helper"))), "big helper");
        let holding = share(&["big", "helper"], &["big"], &["helper"]);
        assert_eq!(names(holding.planned_models(Some("helper"))), "big helper");
    }
}
