//! Residency planning when several hosts serve a run: each host plans alone, with its own
//! budget and count cap, over the models placed on it and what it holds; the speaker's call
//! comes from the host its model's calls go to now, and every host's unloads, refreshes and
//! preloads are sent. A replicated model is the speaker's only on that host: another host
//! it is placed on plans the turn as one its model takes elsewhere (unless it holds a copy
//! already, which it keeps planning for). Each host plans with its own load times: those
//! this run measured there, else its calibration or machine settings, else the workload's.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use agentrun_memory::{
    self as memory, Budget, LoadMode, LoadTimes, LoadedModel, PlanContext, TurnPlan, Workload,
};

use super::Residency;
use crate::fleet::HostView;

/// One host's share of the run, as planning needs it.
#[derive(Debug, Clone)]
pub(crate) struct HostShare {
    /// Its address: what it measured is kept under it.
    url: String,
    /// Its own load times where known (calibrated, or from its machine's load speed), by
    /// model; a model missing here loads as fast as the workload says.
    load_times: BTreeMap<String, LoadTimes>,
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
                    url: host.spec.url.clone(),
                    load_times: own_load_times(host, &self.workload),
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
            Some(host) => Cow::Owned(self.host_workload(host, &host.models)),
            None => Cow::Borrowed(&self.workload),
        }
    }

    /// The address of the host a load of `model` happens on now (the one its calls go to),
    /// when several hosts serve the run.
    pub(super) fn loading_host(&self, model: &str) -> Option<String> {
        self.host_of(model).map(|host| host.url.clone())
    }

    /// `host`'s share of the workload over `models`, with the host's own load times: what
    /// this run and earlier ones measured there per mode, else its calibrated or
    /// machine-derived times, else the workload's.
    fn host_workload(&self, host: &HostShare, models: &BTreeSet<String>) -> Workload {
        let mut workload = self.workload.restricted(models, host.budget);
        for model in models {
            let Ok(base) = workload.load_times(model) else {
                continue;
            };
            let mut times = host.load_times.get(model).copied().unwrap_or(base);
            for mode in [LoadMode::Mmap, LoadMode::NoMmap] {
                if let Some(seconds) = self.host_loads.host_load_seconds(&host.url, model, mode) {
                    match mode {
                        LoadMode::Mmap => times.mmap_seconds = seconds,
                        LoadMode::NoMmap => times.no_mmap_seconds = seconds,
                    }
                }
            }
            if times != base {
                super::not_learnt(workload.set_load_times(model, times), "a host's load times");
            }
        }
        workload
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
            let workload = self.host_workload(host, &host.planned_models(speaker_model));
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

/// A host's own load times for its models: measured there by calibration, else derived
/// from its machine's load speed and each model's footprint.
fn own_load_times(host: &HostView, workload: &Workload) -> BTreeMap<String, LoadTimes> {
    host.models
        .iter()
        .filter_map(|model| {
            let measured = host
                .spec
                .load_times
                .iter()
                .find(|(name, _)| name == model)
                .map(|(_, times)| *times);
            let derived = || {
                let speed = host.spec.load_speed?;
                let bytes = workload.footprint_bytes(model).ok()?;
                Some(LoadTimes::from_bandwidth(
                    bytes,
                    speed.fixed_seconds,
                    speed.mmap_bytes_per_second,
                    speed.no_mmap_bytes_per_second,
                ))
            };
            Some((model.clone(), measured.or_else(derived)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(models: &[&str], serves: &[&str], resident: &[&str]) -> HostShare {
        let set = |names: &[&str]| names.iter().map(|name| (*name).to_owned()).collect();
        HostShare {
            url: "http://host".to_owned(),
            load_times: BTreeMap::new(),
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

    /// Two hosts that each serve one model of a workflow, the slow one calibrated.
    fn two_host_residency(experience: crate::observations::Observations) -> Residency {
        use std::path::Path;

        use agentrun_spec::Workflow;

        use crate::backend::ModelDetails;
        use crate::fleet::HostSpec;

        let workflow = Workflow::from_yaml_str(
            "name: pair\n\
             agents:\n  \
               writer: { model: 'big:70b', prompt: p }\n  \
               reviewer: { model: 'small:8b', prompt: p }\n\
             flow:\n  start: writer\n  edges:\n    \
               - { from: writer, to: reviewer }\n    \
               - { from: reviewer, to: end }\n",
            Path::new("pair.yaml"),
        )
        .expect("a valid workflow");
        let details = ["big:70b", "small:8b"]
            .into_iter()
            .map(|name| {
                let found = ModelDetails {
                    name: name.to_owned(),
                    file_bytes: 5_000_000_000,
                    ..ModelDetails::default()
                };
                (name.to_owned(), found)
            })
            .collect();
        let mut residency = Residency::new(
            &workflow,
            &details,
            super::super::ResidencySettings {
                policy: memory::Policy::Smart,
                gpu_budget: Some(64_000_000_000),
                load_mode: None,
                future: None,
                measured_load_times: BTreeMap::new(),
                experience,
                host_memory: None,
            },
        )
        .expect("a workload");
        let view = |name: &str, model: &str, load_times: Vec<(String, LoadTimes)>| HostView {
            spec: HostSpec {
                name: name.to_owned(),
                url: format!("http://{name}:11434"),
                budget_bytes: 24_000_000_000,
                max_loaded_models: 2,
                labels: Vec::new(),
                load_speed: None,
                load_times,
            },
            up: true,
            models: BTreeSet::from([model.to_owned()]),
            serves: BTreeSet::from([model.to_owned()]),
            resident: Vec::new(),
        };
        let slow = LoadTimes {
            mmap_seconds: 40.0,
            no_mmap_seconds: 30.0,
        };
        residency.set_hosts(&[
            view("slow", "big:70b", vec![("big:70b".to_owned(), slow)]),
            view("fast", "small:8b", Vec::new()),
        ]);
        residency
    }

    #[test]
    fn each_host_plans_with_the_load_times_calibrated_and_measured_there() {
        let mut residency = two_host_residency(Default::default());
        let planned = |residency: &Residency, model: &str| {
            residency
                .workload_of(model)
                .load_times(model)
                .expect("planned on its host")
        };
        // The slow host's calibration, not the workload's estimate.
        let big = planned(&residency, "big:70b");
        assert_eq!((big.mmap_seconds, big.no_mmap_seconds), (40.0, 30.0));
        assert_ne!(
            residency.workload.load_times("big:70b").expect("known"),
            big
        );
        // The uncalibrated host keeps the workload's figures.
        assert_eq!(
            planned(&residency, "small:8b"),
            residency.workload.load_times("small:8b").expect("known")
        );
        // A load measured on the slow host replaces its figure for that mode there only.
        let mode = residency.load_mode_of("big:70b");
        residency.record_load("big:70b", 55.0);
        assert_eq!(planned(&residency, "big:70b").seconds(mode), 55.0);
        let kept = residency.take_observations();
        assert!(kept.hosts.contains_key("http://slow:11434"));
        assert!(!kept.hosts.contains_key("http://fast:11434"));
    }

    #[test]
    fn a_host_plans_with_the_load_times_earlier_runs_measured_there() {
        let mut experience = crate::observations::Observations::default();
        experience.load_on("http://fast:11434", "small:8b", LoadMode::Mmap, 2.0);
        experience.load_on("http://fast:11434", "small:8b", LoadMode::NoMmap, 1.5);
        // Measured on another address: not this run's fast host.
        experience.load_on("http://elsewhere:11434", "big:70b", LoadMode::Mmap, 99.0);
        let residency = two_host_residency(experience);
        let small = residency
            .workload_of("small:8b")
            .load_times("small:8b")
            .expect("planned");
        assert_eq!((small.mmap_seconds, small.no_mmap_seconds), (2.0, 1.5));
        let big = residency
            .workload_of("big:70b")
            .load_times("big:70b")
            .expect("planned");
        assert_eq!(big.mmap_seconds, 40.0);
    }
}
