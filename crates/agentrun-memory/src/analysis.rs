//! `agentrun plan`: the residency a workflow needs, phase by phase, without running it.

use serde::Serialize;

use crate::budget::{Budget, gigabytes, min_gpu_bytes};
use crate::{LoadMode, Workload};

#[cfg(test)]
mod tests;

/// How many turns ahead two agents must reach each other to count as alternating.
const ALTERNATION_TURNS: usize = 6;
/// The probability, both ways, with which they must.
const ALTERNATION_PROBABILITY: f64 = 0.5;

/// The residency plan of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// The budget analysed against.
    pub budget: Budget,
    /// Groups of agents that alternate frequently, in the order of their first agent.
    pub phases: Vec<Phase>,
    /// Hand-overs from one phase to another and the loads they force.
    pub transitions: Vec<PhaseTransition>,
    /// Problems, each with its fix.
    pub warnings: Vec<Warning>,
}

/// A group of agents that alternate frequently (each reaches the other within a few turns
/// with probability at least 1/2), and the models they keep resident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// The agents' names joined with ` + `.
    pub name: String,
    /// The agents, command agents included.
    pub agents: Vec<String>,
    /// The models (one name per set of weights): the phase's working set.
    pub models: Vec<String>,
    /// The working set's total footprint.
    pub footprint_bytes: u64,
    /// Whether the working set can be resident together (count cap and fit test).
    pub fits: bool,
    /// The order to load it in so that it fits (largest first); empty when it does not fit.
    pub load_order: Vec<String>,
    /// The smallest GPU budget with which the working set fits.
    pub min_gpu_bytes: u64,
    /// Models of neighbouring phases (a router, say) that stay resident beside the working set.
    pub also_resident: Vec<String>,
}

/// The hand-over from one phase to another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseTransition {
    /// The phase handing over.
    pub from: String,
    /// The phase taking over.
    pub to: String,
    /// The edges that make the hand-over, as `agent -> agent`.
    pub via: Vec<String>,
    /// Models of the earlier phase that must leave to make room.
    pub unloads: Vec<String>,
    /// Models the new phase must load.
    pub loads: Vec<TransitionLoad>,
    /// Seconds of loading in all.
    pub load_seconds: f64,
    /// Seconds of it that a turn waits for, at best (the rest loads while agents generate).
    pub exposed_seconds: f64,
}

/// One load of a phase transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitionLoad {
    /// The model.
    pub model: String,
    /// The load mode it uses.
    pub load_mode: LoadMode,
    /// Estimated load seconds.
    pub seconds: f64,
    /// Estimated seconds a turn waits for it.
    pub exposed_seconds: f64,
}

/// A problem in a workflow's residency, with the fix spelled out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Warning {
    /// What kind of problem, with its figures.
    pub kind: WarningKind,
    /// The problem in one sentence.
    pub message: String,
    /// What to change.
    pub fix: String,
}

/// The kinds of residency problems.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WarningKind {
    /// A phase's working set cannot be resident together: its models swap every turn.
    PhaseDoesNotFit {
        /// The phase.
        phase: String,
        /// The smallest GPU budget with which it fits.
        needed_gpu_bytes: u64,
    },
    /// A phase needs more co-resident models than the server keeps loaded.
    TooManyModels {
        /// The phase.
        phase: String,
        /// How many models it needs at once.
        needed: usize,
        /// The server's `OLLAMA_MAX_LOADED_MODELS`.
        max_loaded_models: usize,
    },
    /// Agents on the same weights send different `num_ctx` values, so each call reloads.
    SharedWeightsDifferentNumCtx {
        /// The models (names) involved.
        models: Vec<String>,
        /// Each agent with the `num_ctx` it sends.
        agents: Vec<(String, u64)>,
    },
    /// A model is larger than the whole GPU budget: it spills to the CPU and runs slowly.
    BudgetUnderLargestModel {
        /// The model.
        model: String,
        /// Its footprint.
        footprint_bytes: u64,
    },
}

/// Analyses a workload's residency from its graph, edge weights, models and budget.
///
/// ```
/// use agentrun_memory::{
///     PlannedAgent, Budget, PlannedEdge, PlannedTarget, LoadModeChoice, LoadTimes, ModelSpec, Workload,
///     analyze,
/// };
///
/// let gb = 1_000_000_000;
/// let model = |name: &str, bytes: u64| ModelSpec {
///     name: name.into(),
///     runner_key: name.into(),
///     footprint_bytes: bytes,
///     load_times: LoadTimes::from_bandwidth(bytes, 2.0, 0.8e9, 5e9),
///     load_mode: LoadModeChoice::Auto,
/// };
/// let agent = |name: &str, model: &str| PlannedAgent {
///     name: name.into(),
///     model: Some(model.into()),
///     mean_turn_seconds: 60.0,
///     static_keep_alive: None,
///     num_ctx: None,
/// };
/// let edge = |from: &str, to: &str| PlannedEdge {
///     from: from.into(),
///     to: PlannedTarget::Agent(to.into()),
///     prior_weight: None,
///     count: 0,
/// };
/// let workload = Workload::new(
///     vec![model("coder-32b", 19 * gb), model("tester-14b", 9 * gb)],
///     vec![agent("coder", "coder-32b"), agent("tester", "tester-14b")],
///     vec![edge("coder", "tester"), edge("tester", "coder")],
///     Budget { gpu_bytes: 24 * gb, max_loaded_models: 3 },
/// )?;
/// let analysis = analyze(&workload);
/// assert_eq!(analysis.phases.len(), 1);
/// assert!(!analysis.phases[0].fits);
/// assert!(analysis.warnings[0].fix.contains("GPU budget"));
/// # Ok::<(), agentrun_memory::Error>(())
/// ```
pub fn analyze(workload: &Workload) -> Analysis {
    let budget = workload.budget();
    let groups = alternating_groups(workload);
    let phases: Vec<PhaseDraft> = groups
        .into_iter()
        .map(|agents| PhaseDraft::new(workload, agents))
        .filter(|draft| !draft.runners.is_empty())
        .collect();
    let mut phase_of = vec![None; workload.agents().len()];
    for (index, draft) in phases.iter().enumerate() {
        for &agent in &draft.agents {
            phase_of[agent] = Some(index);
        }
    }
    let also: Vec<Vec<usize>> = (0..phases.len())
        .map(|index| also_resident(workload, &phases, &phase_of, index))
        .collect();
    let mut warnings = Vec::new();
    budget_warnings(workload, &mut warnings);
    num_ctx_warnings(workload, &mut warnings);
    let mut report_phases = Vec::with_capacity(phases.len());
    for (draft, also) in phases.iter().zip(&also) {
        report_phases.push(draft.report(workload, also, &mut warnings));
    }
    let transitions = transitions(workload, &phases, &phase_of, &also);
    Analysis {
        budget,
        phases: report_phases,
        transitions,
        warnings,
    }
}

/// A phase before it is reported: agent and runner indices.
struct PhaseDraft {
    name: String,
    agents: Vec<usize>,
    runners: Vec<usize>,
}

impl PhaseDraft {
    fn new(workload: &Workload, agents: Vec<usize>) -> PhaseDraft {
        let mut runners = Vec::new();
        for &agent in &agents {
            if let Some(runner) = workload.agent_runner[agent]
                && !runners.contains(&runner)
            {
                runners.push(runner);
            }
        }
        let name = agents
            .iter()
            .map(|&agent| workload.agents()[agent].name.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        PhaseDraft {
            name,
            agents,
            runners,
        }
    }

    fn report(&self, workload: &Workload, also: &[usize], warnings: &mut Vec<Warning>) -> Phase {
        let budget = workload.budget();
        let footprints = footprints(workload, &self.runners);
        let order = budget.load_order(&footprints);
        let uncapped = Budget {
            max_loaded_models: usize::MAX,
            ..budget
        };
        let needed_gpu_bytes = min_gpu_bytes(&footprints);
        if !uncapped.fits(&footprints) {
            warnings.push(Warning {
                kind: WarningKind::PhaseDoesNotFit {
                    phase: self.name.clone(),
                    needed_gpu_bytes,
                },
                message: format!(
                    "phase {} needs {} resident together but the GPU budget is {}: its models reload each other on every hand-over",
                    self.name,
                    gigabytes(needed_gpu_bytes),
                    gigabytes(budget.gpu_bytes)
                ),
                fix: format!(
                    "raise the GPU budget to at least {}, or give these agents smaller models (quantization) or a smaller num_ctx",
                    gigabytes(needed_gpu_bytes)
                ),
            });
        } else if self.runners.len() > budget.max_loaded_models {
            warnings.push(Warning {
                kind: WarningKind::TooManyModels {
                    phase: self.name.clone(),
                    needed: self.runners.len(),
                    max_loaded_models: budget.max_loaded_models,
                },
                message: format!(
                    "phase {} alternates between {} models but the server keeps at most {} loaded",
                    self.name,
                    self.runners.len(),
                    budget.max_loaded_models
                ),
                fix: format!(
                    "set OLLAMA_MAX_LOADED_MODELS={} in the Ollama server's environment and restart it",
                    self.runners.len() + also.len()
                ),
            });
        }
        Phase {
            name: self.name.clone(),
            agents: self
                .agents
                .iter()
                .map(|&agent| workload.agents()[agent].name.clone())
                .collect(),
            models: names(workload, &self.runners),
            footprint_bytes: footprints.iter().sum(),
            fits: order.is_some(),
            load_order: order
                .map(|order| {
                    order
                        .iter()
                        .map(|&index| workload.runners[self.runners[index]].name.clone())
                        .collect()
                })
                .unwrap_or_default(),
            min_gpu_bytes: needed_gpu_bytes,
            also_resident: names(workload, also),
        }
    }
}

/// Agents grouped by mutual reachability within [`ALTERNATION_TURNS`] turns.
pub(crate) fn alternating_groups(workload: &Workload) -> Vec<Vec<usize>> {
    let count = workload.agents().len();
    // reach[target][source]: probability that target speaks within the horizon after source.
    let reach: Vec<Vec<f64>> = (0..count)
        .map(|target| reach_probabilities(workload, target))
        .collect();
    let mut parent: Vec<usize> = (0..count).collect();
    fn root(parent: &mut [usize], mut node: usize) -> usize {
        while parent[node] != node {
            parent[node] = parent[parent[node]];
            node = parent[node];
        }
        node
    }
    for (a, reach_a) in reach.iter().enumerate() {
        for (b, reach_b) in reach.iter().enumerate().skip(a + 1) {
            if reach_b[a].min(reach_a[b]) >= ALTERNATION_PROBABILITY {
                let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
                parent[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut group_of_root = vec![None; count];
    for agent in 0..count {
        let r = root(&mut parent, agent);
        match group_of_root[r] {
            Some(group) => {
                let members: &mut Vec<usize> = &mut groups[group];
                members.push(agent);
            }
            None => {
                group_of_root[r] = Some(groups.len());
                groups.push(vec![agent]);
            }
        }
    }
    groups
}

/// For every agent, the probability that `target` speaks within the horizon after it.
fn reach_probabilities(workload: &Workload, target: usize) -> Vec<f64> {
    let count = workload.agents().len();
    let mut within = vec![0.0; count];
    for _ in 0..ALTERNATION_TURNS {
        let next: Vec<f64> = (0..count)
            .map(|agent| {
                workload.out[agent]
                    .iter()
                    .map(|edge| match edge.to {
                        Some(to) if to == target => edge.probability,
                        Some(to) => edge.probability * within[to],
                        None => 0.0,
                    })
                    .sum()
            })
            .collect();
        within = next;
    }
    within
}

/// Models of neighbouring phases that can stay resident beside the phase's working set, most
/// used hand-over first.
fn also_resident(
    workload: &Workload,
    phases: &[PhaseDraft],
    phase_of: &[Option<usize>],
    index: usize,
) -> Vec<usize> {
    let phase = &phases[index];
    let mut neighbours: Vec<(f64, usize)> = Vec::new();
    let mut add = |runner: Option<usize>, weight: f64| {
        let Some(runner) = runner else { return };
        if phase.runners.contains(&runner) {
            return;
        }
        match neighbours.iter_mut().find(|(_, other)| *other == runner) {
            Some(entry) => entry.0 += weight,
            None => neighbours.push((weight, runner)),
        }
    };
    for (agent, edges) in workload.out.iter().enumerate() {
        for edge in edges {
            let Some(to) = edge.to else { continue };
            let inside_from = phase_of[agent] == Some(index);
            let inside_to = phase_of[to] == Some(index);
            if inside_from && !inside_to {
                add(workload.agent_runner[to], edge.probability);
            } else if inside_to && !inside_from {
                add(workload.agent_runner[agent], edge.probability);
            }
        }
    }
    neighbours.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let budget = workload.budget();
    let mut set = phase.runners.clone();
    let mut also = Vec::new();
    if !budget.fits(&footprints(workload, &set)) {
        return also;
    }
    for (_, runner) in neighbours {
        set.push(runner);
        if budget.fits(&footprints(workload, &set)) {
            also.push(runner);
        } else {
            set.pop();
        }
    }
    also
}

fn transitions(
    workload: &Workload,
    phases: &[PhaseDraft],
    phase_of: &[Option<usize>],
    also: &[Vec<usize>],
) -> Vec<PhaseTransition> {
    let mut result: Vec<(usize, usize, PhaseTransition)> = Vec::new();
    for (agent, edges) in workload.out.iter().enumerate() {
        for edge in edges {
            let Some(to) = edge.to else { continue };
            let (Some(from_phase), Some(to_phase)) = (phase_of[agent], phase_of[to]) else {
                continue;
            };
            if from_phase == to_phase {
                continue;
            }
            let via = format!(
                "{} -> {}",
                workload.agents()[agent].name,
                workload.agents()[to].name
            );
            if let Some((_, _, existing)) = result
                .iter_mut()
                .find(|(from, into, _)| *from == from_phase && *into == to_phase)
            {
                existing.via.push(via);
                continue;
            }
            let handover = Handover {
                last: agent,
                first: to,
            };
            let transition = transition(
                workload,
                &phases[from_phase],
                &also[from_phase],
                &phases[to_phase],
                &handover,
                via,
            );
            result.push((from_phase, to_phase, transition));
        }
    }
    result.sort_by_key(|(from, to, _)| (*from, *to));
    result
        .into_iter()
        .map(|(_, _, transition)| transition)
        .collect()
}

/// The edge that hands over from one phase to the next.
struct Handover {
    /// The last speaker of the earlier phase.
    last: usize,
    /// The first speaker of the new phase.
    first: usize,
}

/// How many turns of the new phase the cost estimate follows.
const TRANSITION_TURNS: usize = 12;

/// The unloads and loads of entering phase `to` from phase `from`.
fn transition(
    workload: &Workload,
    from: &PhaseDraft,
    from_also: &[usize],
    to: &PhaseDraft,
    handover: &Handover,
    via: String,
) -> PhaseTransition {
    let budget = workload.budget();
    let before: Vec<usize> = from.runners.iter().chain(from_also).copied().collect();
    // What may stay: models the new phase needs first, then the rest smallest first, each
    // only if the new phase's other models still load beside it (largest first).
    let mut kept: Vec<usize> = Vec::new();
    let mut preference: Vec<usize> = before.clone();
    preference.sort_by_key(|&runner| {
        (
            !to.runners.contains(&runner),
            workload.runners[runner].footprint_bytes,
        )
    });
    for runner in preference {
        kept.push(runner);
        let new: Vec<usize> = to
            .runners
            .iter()
            .copied()
            .filter(|runner| !kept.contains(runner))
            .collect();
        if !loads_beside(workload, budget, &kept, &new) {
            kept.pop();
        }
    }
    let unloads = before
        .iter()
        .filter(|runner| !kept.contains(runner))
        .map(|&runner| workload.runners[runner].name.clone())
        .collect();
    let loads = transition_loads(workload, budget, &kept, to, handover);
    PhaseTransition {
        from: from.name.clone(),
        to: to.name.clone(),
        via: vec![via],
        unloads,
        // Folds from +0.0: an empty f64 sum is -0.0, which prints as "-0.0".
        load_seconds: loads.iter().fold(0.0, |total, load| total + load.seconds),
        exposed_seconds: loads
            .iter()
            .fold(0.0, |total, load| total + load.exposed_seconds),
        loads,
    }
}

/// Whether `new` loads one after another, largest first, beside the resident `kept`.
fn loads_beside(workload: &Workload, budget: Budget, kept: &[usize], new: &[usize]) -> bool {
    let mut sizes: Vec<u64> = new
        .iter()
        .map(|&runner| workload.runners[runner].footprint_bytes)
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut used: u64 = kept
        .iter()
        .map(|&runner| workload.runners[runner].footprint_bytes)
        .sum();
    for (count, bytes) in (kept.len()..).zip(sizes) {
        if !budget.admits(bytes, count, used) {
            return false;
        }
        used += bytes;
    }
    true
}

/// Follows the most likely speakers of the new phase, loading its missing models back to back
/// in the order they speak, and charges each turn's wait to the load it waited for. The first
/// load starts during the last turn of the earlier phase when it fits beside that turn's model.
fn transition_loads(
    workload: &Workload,
    budget: Budget,
    kept: &[usize],
    to: &PhaseDraft,
    handover: &Handover,
) -> Vec<TransitionLoad> {
    let mut order: Vec<usize> = Vec::new();
    let mut speaker = handover.first;
    let mut walk = Vec::new();
    for _ in 0..TRANSITION_TURNS {
        walk.push(speaker);
        if let Some(runner) = workload.agent_runner[speaker]
            && to.runners.contains(&runner)
            && !kept.contains(&runner)
            && !order.contains(&runner)
        {
            order.push(runner);
        }
        let next = workload.out[speaker]
            .iter()
            .filter_map(|edge| edge.to.map(|to| (edge.probability, to)))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        match next {
            Some((_, to)) => speaker = to,
            None => break,
        }
    }
    for &runner in &to.runners {
        if !kept.contains(&runner) && !order.contains(&runner) {
            order.push(runner);
        }
    }
    let seconds: Vec<f64> = order
        .iter()
        .map(|&runner| workload.runners[runner].load_seconds())
        .collect();
    let mut exposed = vec![0.0; order.len()];
    let mut loader_free = match (order.first(), workload.agent_runner[handover.last]) {
        (Some(&first), Some(last)) => {
            let bytes = workload.runners[first].footprint_bytes;
            let last_bytes = workload.runners[last].footprint_bytes;
            if budget.admits(bytes, 1, last_bytes) {
                -workload.turn_seconds[handover.last]
            } else {
                0.0
            }
        }
        (Some(_), None) => -workload.turn_seconds[handover.last],
        (None, _) => 0.0,
    };
    let mut ready = Vec::with_capacity(order.len());
    for load in &seconds {
        loader_free += load;
        ready.push(loader_free);
    }
    let mut now = 0.0;
    for speaker in walk {
        let waiting_for = workload.agent_runner[speaker]
            .and_then(|runner| order.iter().position(|&other| other == runner));
        if let Some(index) = waiting_for
            && ready[index] > now
        {
            exposed[index] += ready[index] - now;
            now = ready[index];
        }
        now += workload.turn_seconds[speaker];
    }
    order
        .iter()
        .zip(seconds)
        .zip(exposed)
        .map(|((&runner, seconds), exposed_seconds)| TransitionLoad {
            model: workload.runners[runner].name.clone(),
            load_mode: workload.runners[runner].mode(),
            seconds,
            exposed_seconds,
        })
        .collect()
}

fn budget_warnings(workload: &Workload, warnings: &mut Vec<Warning>) {
    let budget = workload.budget();
    let Some(largest) = workload.runners.iter().max_by(|a, b| {
        a.footprint_bytes
            .cmp(&b.footprint_bytes)
            .then_with(|| b.name.cmp(&a.name))
    }) else {
        return;
    };
    if largest.footprint_bytes > budget.gpu_bytes {
        warnings.push(Warning {
            kind: WarningKind::BudgetUnderLargestModel {
                model: largest.name.clone(),
                footprint_bytes: largest.footprint_bytes,
            },
            message: format!(
                "{} needs {} but the GPU budget is {}: it spills to the CPU and runs slowly",
                largest.name,
                gigabytes(largest.footprint_bytes),
                gigabytes(budget.gpu_bytes)
            ),
            fix: format!(
                "raise the GPU memory limit to at least {} (leaving the OS a safe margin), or use a smaller quantization of {}",
                gigabytes(largest.footprint_bytes),
                largest.name
            ),
        });
    }
}

fn num_ctx_warnings(workload: &Workload, warnings: &mut Vec<Warning>) {
    for runner in 0..workload.runners.len() {
        let agents: Vec<(String, u64)> = workload
            .agents()
            .iter()
            .enumerate()
            .filter(|(index, _)| workload.agent_runner[*index] == Some(runner))
            .filter_map(|(_, agent)| agent.num_ctx.map(|num_ctx| (agent.name.clone(), num_ctx)))
            .collect();
        let Some(largest) = agents.iter().map(|(_, num_ctx)| *num_ctx).max() else {
            continue;
        };
        if agents.iter().all(|(_, num_ctx)| *num_ctx == largest) {
            continue;
        }
        let mut models: Vec<String> = workload
            .agents()
            .iter()
            .enumerate()
            .filter(|(index, _)| workload.agent_runner[*index] == Some(runner))
            .filter_map(|(_, agent)| agent.model.clone())
            .collect();
        models.sort();
        models.dedup();
        let listed = agents
            .iter()
            .map(|(name, num_ctx)| format!("{name} num_ctx={num_ctx}"))
            .collect::<Vec<_>>()
            .join(", ");
        warnings.push(Warning {
            message: format!(
                "{listed} share the weights of {} but send different num_ctx: Ollama reloads the model whenever the speaker changes",
                models.join(" / ")
            ),
            fix: format!(
                "give {} the same num_ctx (e.g. {largest} for all)",
                agents.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            kind: WarningKind::SharedWeightsDifferentNumCtx { models, agents },
        });
    }
}

fn footprints(workload: &Workload, runners: &[usize]) -> Vec<u64> {
    runners
        .iter()
        .map(|&runner| workload.runners[runner].footprint_bytes)
        .collect()
}

fn names(workload: &Workload, runners: &[usize]) -> Vec<String> {
    runners
        .iter()
        .map(|&runner| workload.runners[runner].name.clone())
        .collect()
}
