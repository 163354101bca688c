//! The bridge between the executor's fan-outs and the planner's concurrency decision: at each
//! fan-out it asks [`agentrun_memory::plan_fan_out`] whether the branches run at once, in
//! co-resident groups or one after the other, from what the server holds and what the run
//! has learnt, and turns the answer into the groups the branch cursor runs.

use std::collections::BTreeMap;

use agentrun_memory::{
    DecodeBytes, FanOut, FanOutPlan, FootprintInputs, LoadedModel, MemoryBandwidth, Workload,
    plan_fan_out,
};
use agentrun_spec::Workflow;

use crate::backend::{ModelDetails, RunningModel};
use crate::num_ctx::{DEFAULT_NUM_CTX, shared_num_ctx};
use crate::turn_prior::{DECODE_EFFICIENCY, TARGET_BANDWIDTH_BYTES_PER_SECOND};

/// The share of the memory bandwidth all decode streams together reach (one stream reaches
/// [`DECODE_EFFICIENCY`]): the hardware assumption the simulator's default
/// `concurrent_efficiency` also reads.
const PEAK_EFFICIENCY: f64 = agentrun_size::hardware::CONCURRENT_DECODE_EFFICIENCY;

/// The context a branch's turn is taken to read per token: a typical prompt, at most the
/// model's `num_ctx`.
const TYPICAL_CONTEXT_TOKENS: u64 = 4096;

/// How a run's fan-outs run their branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BranchMode {
    /// As the planner decides at each fan-out: at once, in co-resident groups, or one after
    /// the other (the default).
    #[default]
    Planned,
    /// One after the other, in branch order, each branch to the join before the next starts.
    Sequential,
    /// All at once, whatever the planner would decide (the server queues what it cannot serve).
    AllAtOnce,
}

/// What the decision needs that the workload does not hold.
#[derive(Debug, Clone)]
pub(crate) struct FanOutPlanner {
    decode: BTreeMap<String, DecodeBytes>,
    num_parallel: usize,
    bandwidth: MemoryBandwidth,
}

/// How a fan-out's branches run, as the cursor takes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FanOutDecision {
    /// Groups of branch indices, run one group after the other.
    pub(crate) groups: Vec<Vec<usize>>,
    /// Branches that start at once and no later group waits for (commands and persons).
    pub(crate) overlap: Vec<usize>,
    /// `concurrent`, `grouped`, `serialized`, or `sequential` / `all-at-once` when the run
    /// forces it.
    pub(crate) concurrency: String,
    /// Why, in one line.
    pub(crate) reason: String,
}

impl FanOutPlanner {
    /// The planner for a workflow on a server whose models are `details`.
    pub(crate) fn new(
        workflow: &Workflow,
        details: &BTreeMap<String, ModelDetails>,
    ) -> FanOutPlanner {
        let num_ctx = shared_num_ctx(workflow, details);
        let num_parallel = workflow.memory.num_parallel.unwrap_or(1).max(1);
        let decode = details
            .iter()
            .map(|(model, found)| {
                let inputs = FootprintInputs {
                    file_bytes: found.file_bytes,
                    block_count: found.block_count.unwrap_or(0),
                    head_count: found.head_count.unwrap_or(1),
                    head_count_kv: found.head_count_kv.unwrap_or(0),
                    embedding_length: found.embedding_length.unwrap_or(0),
                    trained_context: found.context_length.unwrap_or(DEFAULT_NUM_CTX),
                    num_ctx: num_ctx.get(model).copied().unwrap_or(DEFAULT_NUM_CTX),
                    num_parallel: u64::from(num_parallel),
                    num_batch: 512,
                };
                (
                    model.clone(),
                    DecodeBytes::from_footprint_inputs(&inputs, TYPICAL_CONTEXT_TOKENS),
                )
            })
            .collect();
        FanOutPlanner {
            decode,
            num_parallel: num_parallel as usize,
            bandwidth: MemoryBandwidth::from_efficiency(
                TARGET_BANDWIDTH_BYTES_PER_SECOND,
                DECODE_EFFICIENCY,
                PEAK_EFFICIENCY,
            ),
        }
    }

    /// Decides how the branches starting at `starts` (agent names, in branch order) run,
    /// given what the server holds, unless `mode` forces one after the other or all at once. A
    /// planner error runs them at once, as the server can.
    pub(crate) fn decide(
        &self,
        workload: &Workload,
        starts: &[&str],
        models: &[Option<&str>],
        running: &[RunningModel],
        mode: BranchMode,
    ) -> FanOutDecision {
        if mode == BranchMode::AllAtOnce {
            return FanOutDecision {
                groups: vec![(0..starts.len()).collect()],
                overlap: Vec::new(),
                concurrency: "all-at-once".to_owned(),
                reason: "the run starts every branch at once".to_owned(),
            };
        }
        if mode == BranchMode::Sequential {
            return FanOutDecision {
                groups: (0..starts.len()).map(|index| vec![index]).collect(),
                overlap: Vec::new(),
                concurrency: "sequential".to_owned(),
                reason:
                    "the run is sequential: each branch runs to the join before the next starts"
                        .to_owned(),
            };
        }
        match self.plan(workload, starts, models, running) {
            Ok(plan) => FanOutDecision {
                groups: plan.chosen.groups.clone(),
                overlap: plan.chosen.overlap.clone(),
                concurrency: plan.chosen.concurrency.to_string(),
                reason: plan.reason,
            },
            Err(error) => FanOutDecision {
                groups: vec![(0..starts.len()).collect()],
                overlap: Vec::new(),
                concurrency: "concurrent".to_owned(),
                reason: format!(
                    "the planner could not weigh the branches ({error}); they run at once"
                ),
            },
        }
    }

    /// The planner's full decision for the branches starting at `starts`, with every option.
    pub(crate) fn plan(
        &self,
        workload: &Workload,
        starts: &[&str],
        models: &[Option<&str>],
        running: &[RunningModel],
    ) -> Result<FanOutPlan, agentrun_memory::Error> {
        let branches = starts
            .iter()
            .zip(models)
            .map(|(agent, model)| {
                let decode = model
                    .and_then(|model| self.decode.get(model))
                    .copied()
                    .unwrap_or(DecodeBytes {
                        weights_per_token: 0.0,
                        slot_per_token: 0.0,
                    });
                workload.fan_out_branch(agent, decode)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let resident: Vec<LoadedModel> = running
            .iter()
            .map(|model| LoadedModel {
                model: model.name.clone(),
                bytes: model.size_bytes,
                busy: false,
                keep_alive: None,
            })
            .collect();
        plan_fan_out(&FanOut {
            branches: &branches,
            resident: &resident,
            budget: workload.budget(),
            num_parallel: self.num_parallel,
            bandwidth: self.bandwidth,
        })
    }
}
