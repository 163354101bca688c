//! Running totals of a run, turned into its summary at the end.

use std::collections::BTreeMap;
use std::time::Duration;

use agentrun_memory::Policy;
use agentrun_spec::Workflow;

use crate::agent::AgentReply;
use agentrun_memory::{self as memory, Workload};

use crate::planning::RESIDENT_LOAD_S;
use crate::summary::{AgentSummary, ContextTurn, ModelSummary, RunStatus, RunSummary};
use crate::transcript::TranscriptEntry;

pub(crate) struct Tally {
    policy: Policy,
    agents: BTreeMap<String, AgentSummary>,
    models: BTreeMap<String, ModelSummary>,
    router_repairs: u32,
    router_fallbacks: u32,
    turns: u32,
    load_wait_s: f64,
    context: Vec<ContextTurn>,
    /// One small record per turn, for the avoidable-wait classification at the end:
    /// the transcript itself need not stay in memory.
    trace: Vec<memory::TraceTurn>,
}

impl Tally {
    pub(crate) fn new(workflow: &Workflow, policy: Policy) -> Tally {
        let agents = workflow
            .agents
            .iter()
            .map(|spec| (spec.name.clone(), AgentSummary::default()))
            .collect();
        let models = workflow
            .agents
            .iter()
            .filter_map(|spec| spec.model().map(str::to_owned))
            .map(|model| (model, ModelSummary::default()))
            .collect();
        Tally {
            policy,
            agents,
            models,
            router_repairs: 0,
            router_fallbacks: 0,
            turns: 0,
            load_wait_s: 0.0,
            context: Vec::new(),
            trace: Vec::new(),
        }
    }

    pub(crate) fn preloaded(&mut self, model: &str, load_s: f64) {
        if load_s >= RESIDENT_LOAD_S {
            let model = self.models.entry(model.to_owned()).or_default();
            model.loads += 1;
            model.load_s += load_s;
        }
    }

    /// Counts the load of a turn that then failed: the run waited for it, though the turn
    /// left no transcript entry.
    pub(crate) fn failed_turn_loaded(&mut self, agent: &str, model: &str, load_s: f64) {
        self.load_wait_s += load_s;
        self.agents.entry(agent.to_owned()).or_default().load_wait_s += load_s;
        let model = self.models.entry(model.to_owned()).or_default();
        model.loads += 1;
        model.load_s += load_s;
    }

    pub(crate) fn unloaded(&mut self, model: &str) {
        self.models.entry(model.to_owned()).or_default().unloads += 1;
    }

    /// Counts a turn. `counts_load`: whether a wait of the turn's for its model was a load
    /// of its own; not when it waited for the tail of a preload, which counts itself.
    pub(crate) fn turn(&mut self, entry: &TranscriptEntry, reply: &AgentReply, counts_load: bool) {
        self.router_repairs += reply.repairs;
        self.router_fallbacks += u32::from(reply.fallback);
        self.count_turn(entry, counts_load);
    }

    /// Counts a turn from its transcript entry alone: a turn of an earlier start of a
    /// resumed run, whose router repairs are not known. Its preloads are not replayed, so
    /// a wait for its model counts as the load.
    pub(crate) fn past_turn(&mut self, entry: &TranscriptEntry) {
        self.count_turn(entry, true);
    }

    fn count_turn(&mut self, entry: &TranscriptEntry, counts_load: bool) {
        self.turns += 1;
        self.load_wait_s += entry.load_wait_s;
        if let Some(context) = &entry.context {
            self.context.push(ContextTurn {
                turn: entry.turn,
                agent: entry.agent.clone(),
                context: context.clone(),
            });
        }
        self.trace.push(memory::TraceTurn {
            agent: entry.agent.clone(),
            model: entry.model.clone(),
            waited: entry.load_wait_s >= RESIDENT_LOAD_S,
            wait_seconds: entry.load_wait_s,
        });
        let agent = self.agents.entry(entry.agent.clone()).or_default();
        agent.turns += 1;
        agent.generation_s += entry.generation_s;
        agent.load_wait_s += entry.load_wait_s;
        agent.tokens += entry.tokens;
        if let Some(model) = &entry.model
            && counts_load
            && entry.load_wait_s >= RESIDENT_LOAD_S
        {
            let model = self.models.entry(model.clone()).or_default();
            model.loads += 1;
            model.load_s += entry.load_wait_s;
        }
    }

    pub(crate) fn finish(
        mut self,
        status: RunStatus,
        reason: String,
        wall: Duration,
        workload: &Workload,
        workflow: &Workflow,
    ) -> RunSummary {
        let waits = crate::planning::classify_waits(self.trace, workload);
        for (model, (avoidable, unavoidable)) in &waits {
            let summary = self.models.entry(model.clone()).or_default();
            summary.avoidable_wait_s = *avoidable;
            summary.unavoidable_wait_s = *unavoidable;
        }
        RunSummary {
            workflow: workflow.name.clone(),
            status,
            reason,
            turns: self.turns,
            wall_s: wall.as_secs_f64(),
            load_wait_s: self.load_wait_s,
            // A fold from +0.0: an empty f64 sum is -0.0, which prints as "-0.0".
            avoidable_wait_s: waits
                .values()
                .fold(0.0, |total, (avoidable, _)| total + avoidable),
            router_repairs: self.router_repairs,
            router_fallbacks: self.router_fallbacks,
            policy: self.policy,
            agents: self.agents,
            models: self.models,
            context_cuts: self
                .context
                .iter()
                .filter(|turn| turn.context.cut_by_server)
                .count() as u32,
            context: self.context,
            hosts: BTreeMap::new(),
        }
    }
}
