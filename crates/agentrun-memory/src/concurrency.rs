//! Whether the branches of a fan-out run at once or one after the other, and in which load
//! order.
//!
//! At a fan-out several branches are about to start, each with its first agent. Running them
//! at once is not free on one machine: their models must be resident together (the fit test
//! and the count cap hold for the co-resident set), Ollama loads one model at a time, a model
//! serves at most `num_parallel` requests at once, and every model decoding at once draws on
//! the same memory bandwidth. [`plan_fan_out`] estimates the wall time and the load wait of
//! each way to run them and picks the fastest, preferring the more sequential one unless
//! running together saves a clear margin.
//!
//! # The bandwidth rule
//!
//! The same rule as the simulator's (`ollama-sim`'s FIDELITY.md): a model turn is taken to be
//! decoding throughout (prompt evaluation and tool calls are short beside it, and counting
//! them as decoding only makes concurrency look less attractive than it is). A decode stream
//! alone draws [`MemoryBandwidth::stream_bytes_per_second`]; the memory delivers at most
//! [`MemoryBandwidth::peak_bytes_per_second`] to all of them together, so `k` models decoding
//! at once each slow down by `max(1, k x stream / peak)`. Requests to ONE model decode as a
//! batch: a step reads the weights once and every slot's own KV cache, so with `n` slots busy
//! a step takes `(weights + (n - 1) x slot) / weights` times as long as alone (for the
//! per-token bytes of [`DecodeBytes`]) and still counts as one stream. A command or person
//! branch takes no memory and no bandwidth: it always starts at once, and no group waits for
//! it ([`FanOutOption::overlap`]). Its length is known only by its mean, so an option's wall
//! time is the mean over the command lengths spread evenly from half to one and a half times
//! it: the model branches' finish still counts when the command may end first.
//!
//! # The options
//!
//! - **concurrent**: every branch at once; only when all their models fit together.
//! - **grouped**: the models that can be co-resident run together, group after group (when
//!   not all fit, but some do).
//! - **serialized**: the model branches one after the other.
//!
//! In every option the loads are serialized in a load order that passes the fit test against
//! what is resident; a model the next group needs loads while the current group runs when it
//! fits beside it (the planner's preload), else once the group has finished.

use std::collections::VecDeque;
use std::fmt;

use serde::Serialize;

use crate::budget::{Budget, gigabytes};
use crate::error::{Error, check_number};
use crate::footprint::FootprintInputs;
use crate::plan::LoadedModel;
use crate::workload::Workload;

#[cfg(test)]
mod tests;

/// Running branches together must save at least this share of the more sequential option's
/// wall time: the estimates are rough, and concurrency holds more memory and delays the first
/// reply.
const MIN_SAVING_SHARE: f64 = 0.03;
/// ... and at least this many seconds.
const MIN_SAVING_SECONDS: f64 = 1.0;
/// The lengths, as shares of its mean, a command or person branch's turn is weighed at.
const COMMAND_SPREAD: [f64; 5] = [0.5, 0.75, 1.0, 1.25, 1.5];
/// Up to this many loads in one group, every load order that passes the fit test is tried.
const MAX_PERMUTED_LOADS: usize = 5;
/// Remaining work below this many seconds counts as done (floating-point slack).
const EPSILON: f64 = 1e-9;

/// The memory bandwidth decode streams share.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MemoryBandwidth {
    /// Bytes per second one decode stream draws alone (efficiency x bandwidth).
    pub stream_bytes_per_second: f64,
    /// Bytes per second all streams together can draw at most.
    pub peak_bytes_per_second: f64,
}

impl MemoryBandwidth {
    /// The bandwidth of a machine: `stream_efficiency` and `peak_efficiency` are the shares of
    /// `bytes_per_second` one stream and all streams together reach.
    pub fn from_efficiency(
        bytes_per_second: f64,
        stream_efficiency: f64,
        peak_efficiency: f64,
    ) -> MemoryBandwidth {
        MemoryBandwidth {
            stream_bytes_per_second: bytes_per_second * stream_efficiency,
            peak_bytes_per_second: bytes_per_second * peak_efficiency.max(stream_efficiency),
        }
    }

    /// How much slower each of `streams` models decoding at once runs than alone.
    pub fn slowdown(&self, streams: usize) -> f64 {
        if streams == 0 || self.peak_bytes_per_second <= 0.0 {
            return 1.0;
        }
        (streams as f64 * self.stream_bytes_per_second / self.peak_bytes_per_second).max(1.0)
    }
}

/// The bytes a model reads from memory per generated token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DecodeBytes {
    /// The weights, read once per decode step whatever the number of busy slots.
    pub weights_per_token: f64,
    /// The KV cache one slot reads per step (its context so far).
    pub slot_per_token: f64,
}

impl DecodeBytes {
    /// From the facts the footprint prediction reads: the weights file, and the f16 K and V
    /// of `context_tokens` tokens of context per slot (capped by `num_ctx`).
    pub fn from_footprint_inputs(inputs: &FootprintInputs, context_tokens: u64) -> DecodeBytes {
        let head_dim = inputs
            .embedding_length
            .checked_div(inputs.head_count)
            .unwrap_or(0);
        let per_token = 2.0 * inputs.block_count as f64 * inputs.head_count_kv as f64 * 2.0;
        let tokens = if inputs.num_ctx == 0 {
            context_tokens
        } else {
            context_tokens.min(inputs.num_ctx)
        };
        DecodeBytes {
            weights_per_token: inputs.file_bytes as f64,
            slot_per_token: per_token * head_dim as f64 * tokens as f64,
        }
    }

    /// How much slower a batched step with `slots` busy slots is than a step with one.
    fn batch_slowdown(&self, slots: usize) -> f64 {
        if slots <= 1 || self.weights_per_token <= 0.0 {
            return 1.0;
        }
        (self.weights_per_token + (slots - 1) as f64 * self.slot_per_token) / self.weights_per_token
    }
}

/// The model a branch's first agent calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BranchModel {
    /// The model's name; branches naming the same model share its runner and slots.
    pub name: String,
    /// The bytes it takes resident (the planner's footprint).
    pub footprint_bytes: u64,
    /// Seconds to load it (warm or cold, as the caller expects it).
    pub load_seconds: f64,
    /// What it reads per token.
    pub decode: DecodeBytes,
}

/// A branch about to start: its first agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BranchStart {
    /// The branch's name (its first agent's), for the reason and reports.
    pub name: String,
    /// The model its first agent calls; `None` for a command or a person.
    pub model: Option<BranchModel>,
    /// Expected seconds of the turn alone once its model is resident.
    pub turn_seconds: f64,
}

/// Everything the decision reads.
#[derive(Debug, Clone, Copy)]
pub struct FanOut<'a> {
    /// The branches, in the workflow's order.
    pub branches: &'a [BranchStart],
    /// What the server holds now (`/api/ps`).
    pub resident: &'a [LoadedModel],
    /// The memory budget and count cap.
    pub budget: Budget,
    /// `OLLAMA_NUM_PARALLEL`: requests one model serves at once (0 is read as 1).
    pub num_parallel: usize,
    /// The memory bandwidth decode streams share.
    pub bandwidth: MemoryBandwidth,
}

/// How the branches run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Concurrency {
    /// All at once.
    Concurrent,
    /// The co-resident groups one after the other, each group's branches at once.
    Grouped,
    /// The model branches one after the other.
    Serialized,
}

impl fmt::Display for Concurrency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Concurrency::Concurrent => "concurrent",
            Concurrency::Grouped => "grouped",
            Concurrency::Serialized => "serialized",
        })
    }
}

/// One way to run the branches, with its estimates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FanOutOption {
    /// Which way.
    pub concurrency: Concurrency,
    /// The groups in the order they run, as indices into the branches: the branches of a
    /// group start together (each once its model is loaded and a slot is free), a group once
    /// the previous one has finished. Command and person branches are in the first group.
    pub groups: Vec<Vec<usize>>,
    /// The command and person branches: they start at once and no later group waits for
    /// them (they take no memory and no bandwidth), as the wall time counts them.
    pub overlap: Vec<usize>,
    /// The models to load, in order, one at a time.
    pub load_order: Vec<String>,
    /// Expected seconds from the fan-out until every branch's first turn has finished.
    pub wall_seconds: f64,
    /// Expected seconds branches wait for loads, summed over the branches.
    pub load_wait_seconds: f64,
}

/// The decision at a fan-out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FanOutPlan {
    /// The chosen option.
    pub chosen: FanOutOption,
    /// Every option considered, the chosen one included, most concurrent first.
    pub options: Vec<FanOutOption>,
    /// Why, in one line.
    pub reason: String,
}

/// Decides how the branches of a fan-out run: at once, in co-resident groups, or one after
/// the other, and in which load order. Deterministic and pure.
///
/// Errors on a negative or non-finite number (naming the branch and field) and on a budget
/// without model slots.
pub fn plan_fan_out(fan_out: &FanOut<'_>) -> Result<FanOutPlan, Error> {
    if fan_out.budget.max_loaded_models == 0 {
        return Err(Error::NoModelSlots);
    }
    let setup = Setup::new(fan_out)?;
    let sequential: Vec<Vec<usize>> = setup
        .model_branches
        .iter()
        .map(|&branch| vec![branch])
        .collect();
    let all_fit = setup.fits(&(0..setup.models.len()).collect::<Vec<_>>());
    let mut options = Vec::new();
    if all_fit && setup.model_branches.len() > 1 {
        let together = vec![setup.model_branches.clone()];
        options.push(setup.best_option(Concurrency::Concurrent, together));
    } else if !all_fit {
        let grouped = setup
            .co_resident_groupings()
            .into_iter()
            .filter(|groups| groups.len() > 1 && groups.len() < setup.model_branches.len())
            .map(|groups| setup.best_option(Concurrency::Grouped, groups))
            .reduce(|best, option| {
                if option.wall_seconds < best.wall_seconds - EPSILON {
                    option
                } else {
                    best
                }
            });
        options.extend(grouped);
    }
    options.push(setup.best_option(Concurrency::Serialized, sequential));
    // The most sequential option unless a more concurrent one saves a clear margin.
    let mut chosen = options.len() - 1;
    for (index, option) in options.iter().enumerate().rev().skip(1) {
        let best = &options[chosen];
        let margin = (MIN_SAVING_SHARE * best.wall_seconds).max(MIN_SAVING_SECONDS);
        if option.wall_seconds + margin < best.wall_seconds {
            chosen = index;
        }
    }
    let reason = setup.reason(&options, chosen, all_fit);
    Ok(FanOutPlan {
        chosen: options[chosen].clone(),
        options,
        reason,
    })
}

/// A model of the fan-out: the branches' models and the resident ones.
#[derive(Debug, Clone)]
struct Model {
    name: String,
    bytes: u64,
    load_seconds: f64,
    decode: DecodeBytes,
}

/// The validated input, indexed.
struct Setup<'a> {
    fan_out: &'a FanOut<'a>,
    models: Vec<Model>,
    /// The model of each branch (an index into `models`).
    branch_model: Vec<Option<usize>>,
    /// The branches with a model, in the workflow's order.
    model_branches: Vec<usize>,
    /// Whether each model is resident at the fan-out.
    resident: Vec<bool>,
    /// Resident models no branch uses: `(name, bytes)`.
    others: Vec<(String, u64)>,
    slots: usize,
}

impl<'a> Setup<'a> {
    fn new(fan_out: &'a FanOut<'a>) -> Result<Setup<'a>, Error> {
        check_number(
            || "stream_bytes_per_second of the memory bandwidth".to_owned(),
            fan_out.bandwidth.stream_bytes_per_second,
        )?;
        check_number(
            || "peak_bytes_per_second of the memory bandwidth".to_owned(),
            fan_out.bandwidth.peak_bytes_per_second,
        )?;
        let mut models: Vec<Model> = Vec::new();
        let mut branch_model = Vec::with_capacity(fan_out.branches.len());
        let mut model_branches = Vec::new();
        for (index, branch) in fan_out.branches.iter().enumerate() {
            check_number(
                || format!("turn_seconds of branch '{}'", branch.name),
                branch.turn_seconds,
            )?;
            let Some(model) = &branch.model else {
                branch_model.push(None);
                continue;
            };
            check_number(
                || format!("load_seconds of branch '{}'", branch.name),
                model.load_seconds,
            )?;
            check_number(
                || format!("decode weights_per_token of branch '{}'", branch.name),
                model.decode.weights_per_token,
            )?;
            check_number(
                || format!("decode slot_per_token of branch '{}'", branch.name),
                model.decode.slot_per_token,
            )?;
            model_branches.push(index);
            let id = match models.iter().position(|known| known.name == model.name) {
                Some(id) => {
                    // Two branches on one model: plan with the larger figures, as the
                    // workload does for names on one runner.
                    let known = &mut models[id];
                    known.bytes = known.bytes.max(model.footprint_bytes);
                    known.load_seconds = known.load_seconds.max(model.load_seconds);
                    id
                }
                None => {
                    models.push(Model {
                        name: model.name.clone(),
                        bytes: model.footprint_bytes,
                        load_seconds: model.load_seconds,
                        decode: model.decode,
                    });
                    models.len() - 1
                }
            };
            branch_model.push(Some(id));
        }
        let mut resident = vec![false; models.len()];
        let mut others: Vec<(String, u64)> = Vec::new();
        for loaded in fan_out.resident {
            match models.iter().position(|model| model.name == loaded.model) {
                Some(id) => {
                    resident[id] = true;
                    models[id].bytes = models[id].bytes.max(loaded.bytes);
                }
                None if others.iter().any(|(name, _)| *name == loaded.model) => {}
                None => others.push((loaded.model.clone(), loaded.bytes)),
            }
        }
        Ok(Setup {
            fan_out,
            models,
            branch_model,
            model_branches,
            resident,
            others,
            slots: fan_out.num_parallel.max(1),
        })
    }

    /// The distinct models of some branches, in the branches' order.
    fn models_of(&self, branches: &[usize]) -> Vec<usize> {
        let mut ids = Vec::new();
        for &branch in branches {
            if let Some(id) = self.branch_model[branch]
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        ids
    }

    fn fits(&self, ids: &[usize]) -> bool {
        let bytes: Vec<u64> = ids.iter().map(|&id| self.models[id].bytes).collect();
        self.fan_out.budget.fits(&bytes)
    }

    /// Candidate partitions of the models into groups that can be resident together: first
    /// fit with the resident models first, then the larger ones; the larger ones first; the
    /// smaller ones first. Each group's branches in the workflow's order; no duplicates.
    fn co_resident_groupings(&self) -> Vec<Vec<Vec<usize>>> {
        let bytes = |id: usize| self.models[id].bytes;
        let mut resident_first: Vec<usize> = (0..self.models.len()).collect();
        resident_first.sort_by(|&a, &b| {
            self.resident[b]
                .cmp(&self.resident[a])
                .then(bytes(b).cmp(&bytes(a)))
                .then(a.cmp(&b))
        });
        let mut largest_first: Vec<usize> = (0..self.models.len()).collect();
        largest_first.sort_by(|&a, &b| bytes(b).cmp(&bytes(a)).then(a.cmp(&b)));
        let mut smallest_first: Vec<usize> = (0..self.models.len()).collect();
        smallest_first.sort_by(|&a, &b| bytes(a).cmp(&bytes(b)).then(a.cmp(&b)));
        let mut groupings: Vec<Vec<Vec<usize>>> = Vec::new();
        for order in [resident_first, largest_first, smallest_first] {
            let grouping = self.first_fit(&order);
            if !groupings.contains(&grouping) {
                groupings.push(grouping);
            }
        }
        groupings
    }

    /// First fit of the models, in `order`, into groups that can be resident together.
    fn first_fit(&self, order: &[usize]) -> Vec<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for &id in order {
            let slot = groups.iter_mut().find(|group| {
                let mut with: Vec<usize> = group.to_vec();
                with.push(id);
                self.fits(&with)
            });
            match slot {
                Some(group) => group.push(id),
                None => groups.push(vec![id]),
            }
        }
        groups
            .into_iter()
            .map(|group| {
                self.model_branches
                    .iter()
                    .copied()
                    .filter(|&branch| {
                        self.branch_model[branch].is_some_and(|id| group.contains(&id))
                    })
                    .collect()
            })
            .collect()
    }

    /// The option with the best order of the groups and loads.
    fn best_option(&self, concurrency: Concurrency, groups: Vec<Vec<usize>>) -> FanOutOption {
        let mut best: Option<FanOutOption> = None;
        for order in self.group_orders(&groups) {
            let ordered: Vec<Vec<usize>> =
                order.iter().map(|&index| groups[index].clone()).collect();
            let option = self.simulate(concurrency, ordered);
            if best
                .as_ref()
                .is_none_or(|best| option.wall_seconds < best.wall_seconds - EPSILON)
            {
                best = Some(option);
            }
        }
        let mut option = best.expect("at least one order");
        let commands: Vec<usize> = (0..self.fan_out.branches.len())
            .filter(|&branch| self.branch_model[branch].is_none())
            .collect();
        if option.groups.is_empty() {
            option.groups.push(Vec::new());
        }
        option.groups[0].extend(commands.iter().copied());
        option.groups[0].sort_unstable();
        option.overlap = commands;
        option
    }

    /// Candidate orders of the groups: as given, resident groups first, and shortest turns
    /// first; each only once.
    fn group_orders(&self, groups: &[Vec<usize>]) -> Vec<Vec<usize>> {
        let given: Vec<usize> = (0..groups.len()).collect();
        let mut orders = vec![given.clone()];
        if groups.len() <= 1 {
            return orders;
        }
        let loads = |group: &Vec<usize>| -> f64 {
            self.models_of(group)
                .into_iter()
                .filter(|&id| !self.resident[id])
                .map(|id| self.models[id].load_seconds)
                .sum()
        };
        let turns = |group: &Vec<usize>| -> f64 {
            group
                .iter()
                .map(|&branch| self.fan_out.branches[branch].turn_seconds)
                .sum()
        };
        let mut resident_first = given.clone();
        resident_first.sort_by(|&a, &b| loads(&groups[a]).total_cmp(&loads(&groups[b])));
        let mut longest_first = resident_first.clone();
        // The longest group first among equal loads gives the next loads the most time.
        longest_first.sort_by(|&a, &b| {
            loads(&groups[a])
                .total_cmp(&loads(&groups[b]))
                .then(turns(&groups[b]).total_cmp(&turns(&groups[a])))
        });
        for order in [resident_first, longest_first] {
            if !orders.contains(&order) {
                orders.push(order);
            }
        }
        orders
    }

    /// The timeline of the groups in order: loads one at a time, each group's branches at
    /// once sharing the bandwidth.
    fn simulate(&self, concurrency: Concurrency, groups: Vec<Vec<usize>>) -> FanOutOption {
        let mut held = Held::new(self);
        let mut loader_free = 0.0_f64;
        let mut group_start = 0.0_f64;
        let mut previous: Vec<usize> = Vec::new();
        let mut load_order = Vec::new();
        let mut load_wait = 0.0;
        for (position, group) in groups.iter().enumerate() {
            let ids = self.models_of(group);
            let later: Vec<usize> = groups[position + 1..]
                .iter()
                .flat_map(|group| self.models_of(group))
                .collect();
            let missing: Vec<usize> = ids.iter().copied().filter(|&id| !held.has(id)).collect();
            let order = self.load_order(&held, &previous, &ids, &missing, group_start, loader_free);
            let mut ready = vec![group_start; self.models.len()];
            let mut queue: VecDeque<usize> = order.into();
            while let Some(id) = queue.pop_front() {
                // Load while the previous group runs if it fits beside it, else after it.
                let start = if held.make_room(self, id, &previous, &ids, &later) {
                    loader_free
                } else {
                    if !held.make_room(self, id, &[], &ids, &later) {
                        // A resident model of the group loaded before a larger one that
                        // cannot join it: everything makes room, and the group loads from
                        // empty largest first, which passes since the group fits together.
                        held.models.clear();
                        // Models of the running group were among them: after it ends.
                        loader_free = loader_free.max(group_start);
                        let mut all = ids.clone();
                        all.sort_by(|&a, &b| {
                            self.models[b]
                                .bytes
                                .cmp(&self.models[a].bytes)
                                .then(a.cmp(&b))
                        });
                        queue = all.into();
                        continue;
                    }
                    loader_free.max(group_start)
                };
                held.add(id);
                loader_free = start + self.models[id].load_seconds;
                ready[id] = loader_free.max(group_start);
                load_order.push(self.models[id].name.clone());
            }
            let starts: Vec<f64> = group
                .iter()
                .map(|&branch| ready[self.branch_model[branch].expect("a model branch")])
                .collect();
            load_wait += starts.iter().map(|start| start - group_start).sum::<f64>();
            group_start = self.run_group(group, &starts);
            previous = ids;
        }
        let commands = (0..self.fan_out.branches.len())
            .filter(|&branch| self.branch_model[branch].is_none())
            .map(|branch| self.fan_out.branches[branch].turn_seconds)
            .fold(0.0_f64, f64::max);
        // A command's or person's turn is only known by its mean: the wall time is the mean
        // over lengths spread evenly from half to one and a half times it, so the model
        // branches' own finish still counts when the command may end first.
        let wall_seconds = COMMAND_SPREAD
            .iter()
            .map(|scale| group_start.max(commands * scale))
            .sum::<f64>()
            / COMMAND_SPREAD.len() as f64;
        FanOutOption {
            concurrency,
            groups,
            overlap: Vec::new(),
            load_order,
            wall_seconds,
            load_wait_seconds: load_wait,
        }
    }

    /// The order of a group's loads: every order that passes the fit test for few loads, else
    /// largest first (which passes whenever any order does); the one whose group finishes
    /// first.
    fn load_order(
        &self,
        held: &Held,
        previous: &[usize],
        ids: &[usize],
        missing: &[usize],
        group_start: f64,
        loader_free: f64,
    ) -> Vec<usize> {
        let mut largest_first = missing.to_vec();
        largest_first.sort_by(|&a, &b| {
            self.models[b]
                .bytes
                .cmp(&self.models[a].bytes)
                .then(a.cmp(&b))
        });
        if missing.len() <= 1 || missing.len() > MAX_PERMUTED_LOADS {
            return largest_first;
        }
        let group: Vec<usize> = self
            .model_branches
            .iter()
            .copied()
            .filter(|&branch| self.branch_model[branch].is_some_and(|id| ids.contains(&id)))
            .collect();
        let mut best = (f64::INFINITY, largest_first.clone());
        for order in permutations(&largest_first) {
            // The fit test in this order, beside what stays resident of the group.
            let mut trial = held.clone();
            let mut admitted = true;
            let mut free = loader_free;
            let mut ready = vec![group_start; self.models.len()];
            for &id in &order {
                let beside_previous = trial.make_room(self, id, previous, ids, &[]);
                if !beside_previous && !trial.make_room(self, id, &[], ids, &[]) {
                    admitted = false;
                    break;
                }
                trial.add(id);
                let start = if beside_previous {
                    free
                } else {
                    free.max(group_start)
                };
                free = start + self.models[id].load_seconds;
                ready[id] = free.max(group_start);
            }
            if !admitted {
                continue;
            }
            let starts: Vec<f64> = group
                .iter()
                .map(|&branch| ready[self.branch_model[branch].expect("a model branch")])
                .collect();
            let end = self.run_group(&group, &starts);
            if end < best.0 - EPSILON {
                best = (end, order);
            }
        }
        best.1
    }

    /// When a group's branches have all finished, given when each can start: the bandwidth
    /// rule of the module documentation, slots taken in the branches' order.
    fn run_group(&self, group: &[usize], starts: &[f64]) -> f64 {
        let mut remaining: Vec<f64> = group
            .iter()
            .map(|&branch| self.fan_out.branches[branch].turn_seconds)
            .collect();
        let mut running = vec![false; group.len()];
        let mut now = starts.iter().copied().fold(f64::INFINITY, f64::min);
        if !now.is_finite() {
            return 0.0;
        }
        // Every branch ends no earlier than it can start (a zero-length turn included).
        let mut end = starts.iter().copied().fold(now, f64::max);
        let mut busy = vec![0usize; self.models.len()];
        loop {
            // Start what is ready and has a slot, in order.
            for (index, &branch) in group.iter().enumerate() {
                let id = self.branch_model[branch].expect("a model branch");
                if !running[index]
                    && remaining[index] > EPSILON
                    && starts[index] <= now + EPSILON
                    && busy[id] < self.slots
                {
                    running[index] = true;
                    busy[id] += 1;
                }
            }
            let streams = busy.iter().filter(|&&count| count > 0).count();
            let shared = self.fan_out.bandwidth.slowdown(streams);
            let rate = |index: usize| -> f64 {
                let id = self.branch_model[group[index]].expect("a model branch");
                1.0 / (shared * self.models[id].decode.batch_slowdown(busy[id]))
            };
            let mut step = f64::INFINITY;
            for index in 0..group.len() {
                if running[index] {
                    step = step.min(remaining[index] / rate(index));
                } else if remaining[index] > EPSILON && starts[index] > now + EPSILON {
                    step = step.min(starts[index] - now);
                }
            }
            if !step.is_finite() {
                break;
            }
            let rates: Vec<f64> = (0..group.len()).map(rate).collect();
            now += step;
            for index in 0..group.len() {
                if running[index] {
                    remaining[index] -= rates[index] * step;
                    if remaining[index] <= EPSILON {
                        remaining[index] = 0.0;
                        running[index] = false;
                        let id = self.branch_model[group[index]].expect("a model branch");
                        busy[id] -= 1;
                        end = end.max(now);
                    }
                }
            }
        }
        end
    }

    fn reason(&self, options: &[FanOutOption], chosen: usize, all_fit: bool) -> String {
        let option = &options[chosen];
        let names = |branches: &[usize]| -> String {
            branches
                .iter()
                .map(|&branch| self.fan_out.branches[branch].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let figures = |option: &FanOutOption| {
            format!(
                "~{:.0} s, {:.0} s load wait",
                option.wall_seconds, option.load_wait_seconds
            )
        };
        let commands: Vec<usize> = (0..self.fan_out.branches.len())
            .filter(|&branch| self.branch_model[branch].is_none())
            .collect();
        let overlap = if commands.is_empty() {
            String::new()
        } else {
            format!("; {} overlap (no model)", names(&commands))
        };
        let serialized = options.last().expect("the serialized option");
        match option.concurrency {
            Concurrency::Concurrent => format!(
                "concurrent: {} fit together ({}) and finish in {} instead of {} one after \
                 the other{overlap}",
                self.model_names(&self.model_branches),
                gigabytes(self.bytes_of(&self.model_branches)),
                figures(option),
                figures(serialized)
            ),
            Concurrency::Grouped => format!(
                "grouped: {} cannot all be resident together; {} in {} instead of {} one \
                 after the other{overlap}",
                self.model_names(&self.model_branches),
                option
                    .groups
                    .iter()
                    .map(|group| format!("[{}]", names(&self.only_models(group))))
                    .collect::<Vec<_>>()
                    .join(" then "),
                figures(option),
                figures(serialized)
            ),
            Concurrency::Serialized if self.model_branches.len() <= 1 => format!(
                "serialized: one model branch ({}){overlap}",
                figures(option)
            ),
            Concurrency::Serialized if options.len() == 1 && !all_fit => format!(
                "serialized: {} cannot be resident together ({}){overlap}",
                self.model_names(&self.model_branches),
                figures(option)
            ),
            Concurrency::Serialized => {
                let rival = &options[0];
                let why = if rival.load_wait_seconds > option.load_wait_seconds + EPSILON {
                    "the loads and the shared memory bandwidth"
                } else {
                    "the shared memory bandwidth"
                };
                format!(
                    "serialized: {} {} would take {} ({why}) against {} one after the \
                     other{overlap}",
                    rival.concurrency,
                    self.model_names(&self.model_branches),
                    figures(rival),
                    figures(option)
                )
            }
        }
    }

    fn only_models(&self, branches: &[usize]) -> Vec<usize> {
        branches
            .iter()
            .copied()
            .filter(|&branch| self.branch_model[branch].is_some())
            .collect()
    }

    fn model_names(&self, branches: &[usize]) -> String {
        let ids = self.models_of(branches);
        let names: Vec<&str> = ids
            .iter()
            .map(|&id| self.models[id].name.as_str())
            .collect();
        let counted = |id: usize| {
            branches
                .iter()
                .filter(|&&branch| self.branch_model[branch] == Some(id))
                .count()
        };
        if ids.len() == 1 {
            format!("{} requests to {}", counted(ids[0]), names[0])
        } else {
            names.join(" and ")
        }
    }

    fn bytes_of(&self, branches: &[usize]) -> u64 {
        self.models_of(branches)
            .iter()
            .map(|&id| self.models[id].bytes)
            .sum()
    }
}

/// The models resident during the timeline, in load order.
#[derive(Debug, Clone)]
struct Held {
    /// Branch models (`Ok`) and other resident models (`Err`, their bytes).
    models: Vec<Result<usize, u64>>,
}

impl Held {
    fn new(setup: &Setup<'_>) -> Held {
        let mut models: Vec<Result<usize, u64>> =
            setup.others.iter().map(|(_, bytes)| Err(*bytes)).collect();
        models.extend(
            (0..setup.models.len())
                .filter(|&id| setup.resident[id])
                .map(Ok),
        );
        Held { models }
    }

    fn has(&self, id: usize) -> bool {
        self.models.contains(&Ok(id))
    }

    fn bytes(&self, setup: &Setup<'_>, entry: Result<usize, u64>) -> u64 {
        match entry {
            Ok(id) => setup.models[id].bytes,
            Err(bytes) => bytes,
        }
    }

    fn admits(&self, setup: &Setup<'_>, id: usize) -> bool {
        let used = self
            .models
            .iter()
            .map(|&entry| self.bytes(setup, entry))
            .sum();
        setup
            .fan_out
            .budget
            .admits(setup.models[id].bytes, self.models.len(), used)
    }

    /// Unloads what it must so that `id` loads, never a model of `busy` or `group`: models
    /// no later group needs first, then the others, oldest first. Whether it succeeded (it
    /// unloads nothing if not).
    fn make_room(
        &mut self,
        setup: &Setup<'_>,
        id: usize,
        busy: &[usize],
        group: &[usize],
        later: &[usize],
    ) -> bool {
        let mut trial = self.clone();
        let protected = |entry: &Result<usize, u64>| matches!(entry, Ok(model) if busy.contains(model) || group.contains(model));
        while !trial.admits(setup, id) {
            let victim = trial
                .models
                .iter()
                .position(|entry| !protected(entry) && !matches!(entry, Ok(m) if later.contains(m)))
                .or_else(|| trial.models.iter().position(|entry| !protected(entry)));
            match victim {
                Some(index) => {
                    let _ = trial.models.remove(index);
                }
                None => return false,
            }
        }
        *self = trial;
        true
    }

    fn add(&mut self, id: usize) {
        self.models.push(Ok(id));
    }
}

/// Every order of `items` (few of them), the given order first.
fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut result = Vec::new();
    for (index, &first) in items.iter().enumerate() {
        let mut rest = items.to_vec();
        rest.remove(index);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            result.push(tail);
        }
    }
    result
}

impl Workload {
    /// A branch whose first agent is `agent`, with the workload's footprint, load time and
    /// mean turn length, and what its model reads per token (`decode`; ignored for a command
    /// or person agent).
    pub fn fan_out_branch(&self, agent: &str, decode: DecodeBytes) -> Result<BranchStart, Error> {
        let id = self.agent_id(agent)?;
        let model = self.agent_runner[id].map(|runner| {
            let runner = &self.runners[runner];
            BranchModel {
                name: runner.name.clone(),
                footprint_bytes: runner.footprint_bytes,
                load_seconds: runner.load_seconds(),
                decode,
            }
        });
        Ok(BranchStart {
            name: agent.to_owned(),
            model,
            turn_seconds: self.turn_seconds[id],
        })
    }
}

impl fmt::Display for FanOutPlan {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "{}", self.reason)?;
        for option in &self.options {
            let marker = if option.concurrency == self.chosen.concurrency {
                "*"
            } else {
                " "
            };
            writeln!(
                formatter,
                "{marker} {:<10} wall ~{:.1} s  load wait ~{:.1} s  groups {:?}  loads [{}]",
                option.concurrency.to_string(),
                option.wall_seconds,
                option.load_wait_seconds,
                option.groups,
                option.load_order.join(", ")
            )?;
        }
        Ok(())
    }
}
