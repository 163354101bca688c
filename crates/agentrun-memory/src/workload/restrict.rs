//! One host's share of a workload: when several servers serve a run, each plans its
//! residency alone, with its own budget, over the models placed on it.

use std::collections::{BTreeSet, HashMap};

use super::{Runner, Workload};
use crate::Budget;

impl Workload {
    /// This workload as one host sees it: only the models in `models` (the ones placed on
    /// the host), under the host's `budget`. Agents whose model lives elsewhere keep their
    /// turns, edges and learnt lengths but use no memory here, as commands do, so the host's
    /// plan still knows when its own models speak next.
    ///
    /// Names in `models` the workload does not know are ignored.
    pub fn restricted(&self, models: &BTreeSet<String>, budget: Budget) -> Workload {
        let mut runner_map: HashMap<usize, usize> = HashMap::new();
        let mut runners: Vec<Runner> = Vec::new();
        let mut kept_models = Vec::new();
        let mut model_runner = Vec::new();
        let mut model_index = HashMap::new();
        for (index, model) in self.models.iter().enumerate() {
            if !models.contains(&model.name) {
                continue;
            }
            let old = self.model_runner[index];
            let runner = *runner_map.entry(old).or_insert_with(|| {
                runners.push(self.runners[old].clone());
                runners.len() - 1
            });
            model_index.insert(model.name.clone(), kept_models.len());
            kept_models.push(model.clone());
            model_runner.push(runner);
        }
        let mut agents = self.agents.clone();
        let mut agent_runner = Vec::with_capacity(agents.len());
        for (agent, old) in agents.iter_mut().zip(&self.agent_runner) {
            let runner = old.and_then(|old| runner_map.get(&old).copied());
            if runner.is_none() {
                agent.model = None;
            }
            agent_runner.push(runner);
        }
        let runner_count = runners.len();
        Workload {
            budget: Budget {
                gpu_bytes: budget.gpu_bytes,
                max_loaded_models: budget.max_loaded_models.max(1),
            },
            models: kept_models,
            agents,
            model_index,
            agent_index: self.agent_index.clone(),
            runners,
            model_runner,
            agent_runner,
            turn_seconds: self.turn_seconds.clone(),
            turn_samples: self.turn_samples.clone(),
            out: self.out.clone(),
            // One machine's page cache says nothing of another host's.
            host: None,
            cache: Default::default(),
            observed: vec![None; runner_count],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LoadModeChoice, LoadTimes, ModelSpec, PlannedAgent, PlannedEdge, PlannedTarget};

    fn model(name: &str, gb: u64) -> ModelSpec {
        ModelSpec {
            name: name.into(),
            runner_key: name.into(),
            footprint_bytes: gb << 30,
            load_times: LoadTimes {
                mmap_seconds: 10.0,
                no_mmap_seconds: 5.0,
            },
            load_mode: LoadModeChoice::Auto,
        }
    }

    fn agent(name: &str, model: &str) -> PlannedAgent {
        PlannedAgent {
            name: name.into(),
            model: Some(model.into()),
            mean_turn_seconds: 30.0,
            static_keep_alive: None,
            num_ctx: None,
        }
    }

    fn edge(from: &str, to: &str) -> PlannedEdge {
        PlannedEdge {
            from: from.into(),
            to: PlannedTarget::Agent(to.into()),
            prior_weight: None,
            count: 0,
        }
    }

    #[test]
    fn a_host_keeps_its_models_and_sees_the_others_agents_without_memory() {
        let workload = Workload::new(
            vec![model("big", 40), model("small", 8)],
            vec![agent("architect", "big"), agent("coder", "small")],
            vec![edge("architect", "coder"), edge("coder", "architect")],
            Budget {
                gpu_bytes: 64 << 30,
                max_loaded_models: 3,
            },
        )
        .expect("valid");
        let host = workload.restricted(
            &BTreeSet::from(["small".to_owned()]),
            Budget {
                gpu_bytes: 24 << 30,
                max_loaded_models: 2,
            },
        );
        assert_eq!(host.budget().gpu_bytes, 24 << 30);
        assert_eq!(host.budget().max_loaded_models, 2);
        assert_eq!(host.models().len(), 1);
        assert_eq!(host.footprint_bytes("small").expect("kept"), 8 << 30);
        assert!(host.footprint_bytes("big").is_err());
        assert_eq!(host.agents()[0].model, None);
        assert_eq!(host.agents()[1].model.as_deref(), Some("small"));
        assert_eq!(
            host.transition_probability("architect", Some("coder"))
                .expect("edge kept"),
            workload
                .transition_probability("architect", Some("coder"))
                .expect("edge")
        );
    }
}
