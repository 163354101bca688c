//! Residency planning when several hosts serve a run: each host plans alone, with its own
//! budget and count cap, over the models placed on it and what it holds; the speaker's call
//! comes from its model's host, and every host's unloads, refreshes and preloads are sent.

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
    /// What it held when last asked.
    resident: BTreeSet<String>,
    /// Its budget and count cap.
    budget: Budget,
}

impl HostShare {
    fn holds(&self, model: &str) -> bool {
        self.models.contains(model) || self.resident.contains(model)
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
                    resident: host.resident.iter().map(|m| m.name.clone()).collect(),
                    budget: Budget {
                        gpu_bytes: host.spec.budget_bytes,
                        max_loaded_models: host.spec.max_loaded_models,
                    },
                })
                .collect(),
        );
    }

    /// The workload `model` is planned in: its host's share, or the whole run's on one host.
    pub(super) fn workload_of(&self, model: &str) -> Cow<'_, Workload> {
        match self
            .hosts
            .as_ref()
            .and_then(|hosts| hosts.iter().find(|host| host.holds(model)))
        {
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
        match self
            .hosts
            .as_ref()
            .and_then(|hosts| hosts.iter().find(|host| host.holds(model)))
        {
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
        let mut merged = TurnPlan::default();
        for host in hosts {
            let resident: Vec<LoadedModel> = context
                .resident
                .iter()
                .filter(|model| host.holds(&model.model))
                .cloned()
                .collect();
            let workload = self.workload.restricted(&host.models, host.budget);
            let plan = memory::plan_turn(
                self.policy,
                &workload,
                &PlanContext {
                    speaker: context.speaker,
                    resident: &resident,
                    future: context.future,
                },
            )?;
            if plan.call.is_some() {
                merged.call = plan.call;
            }
            merged.unloads.extend(plan.unloads);
            merged.refreshes.extend(plan.refreshes);
            merged.preloads.extend(plan.preloads);
        }
        Ok(merged)
    }
}
