//! The timeline: what each model and each turn did when, rebuilt from a run's events.
//!
//! Loads, unloads and turns come with their times. Residency is observed, not
//! reported: a model counts as resident from the end of its load (or the first
//! `resident` snapshot that lists it) to its unload, or to the last sign of it
//! before a snapshot that no longer lists it (an expiry or an eviction Ollama did
//! on its own), or to the end of the run.

use std::collections::BTreeMap;

use agentrun_core::{Event, LoadCause, RunSummary};

/// What a model was doing during a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ModelState {
    /// Loaded and idle (or serving).
    Resident,
    /// Being loaded, and why.
    Loading(LoadCause),
    /// Answering a turn.
    Generating,
    /// Being unloaded at the executor's request.
    Unloading,
}

/// A stretch of time in one state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Span {
    pub(crate) start_s: f64,
    pub(crate) end_s: f64,
    pub(crate) state: ModelState,
    /// What a reader hovering over it learns.
    pub(crate) note: String,
}

/// One model's lane.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelLane {
    pub(crate) model: String,
    /// With several hosts: the hosts it lived on, in order (it moves when one is lost).
    pub(crate) hosts: Vec<String>,
    /// Bytes the server accounted for it, when a snapshot listed it.
    pub(crate) bytes: Option<u64>,
    /// Resident spans first, then the others, which are drawn over them.
    pub(crate) spans: Vec<Span>,
}

/// One turn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TurnSpan {
    pub(crate) turn: u32,
    pub(crate) agent: String,
    pub(crate) model: Option<String>,
    pub(crate) start_s: f64,
    pub(crate) end_s: f64,
    pub(crate) load_wait_s: f64,
    pub(crate) tokens: u64,
    /// False when the process stopped before the turn completed.
    pub(crate) completed: bool,
    /// The model's reasoning during the turn.
    pub(crate) thinking: Option<String>,
    /// Whether the reply stopped at its length limit.
    pub(crate) cut_off: bool,
    /// What a model turn's context held.
    pub(crate) context: Option<agentrun_core::ContextUse>,
    /// The row of the turn lane it is drawn in: its branch's index inside a parallel
    /// region, else 0.
    pub(crate) row: usize,
}

/// A branch that reached its join and waited there for the join to open.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinWaitSpan {
    /// The agent the branch started at.
    pub(crate) branch: String,
    /// Its row of the turn lane.
    pub(crate) row: usize,
    /// The join it waited at.
    pub(crate) join: String,
    pub(crate) start_s: f64,
    pub(crate) end_s: f64,
}

/// A run's timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timeline {
    pub(crate) workflow: String,
    pub(crate) policy: agentrun_memory::Policy,
    pub(crate) gpu_budget_bytes: Option<u64>,
    /// Seconds from the start to the last thing seen.
    pub(crate) end_s: f64,
    pub(crate) models: Vec<ModelLane>,
    pub(crate) turns: Vec<TurnSpan>,
    /// The waits of branches at their joins.
    pub(crate) join_waits: Vec<JoinWaitSpan>,
    /// When the run was resumed after an interruption.
    pub(crate) resumed_at_s: Vec<f64>,
    pub(crate) summary: Option<RunSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Present,
    Absent,
    Unloaded,
}

/// The builder's state while it reads events in order.
#[derive(Default)]
struct Reader {
    workflow: String,
    policy: agentrun_memory::Policy,
    gpu_budget_bytes: Option<u64>,
    order: Vec<String>,
    bytes: BTreeMap<String, u64>,
    marks: BTreeMap<String, Vec<(f64, Mark)>>,
    spans: BTreeMap<String, Vec<Span>>,
    pending_loads: BTreeMap<String, (f64, LoadCause, Option<f64>)>,
    pending_unloads: Vec<(String, f64, String)>,
    /// The turns under way, by agent (branches run several at once).
    open_turns: BTreeMap<String, TurnSpan>,
    turns: Vec<TurnSpan>,
    /// Branches waiting at their join: `(branch start, row, since)`.
    arrived: Vec<(String, usize, f64)>,
    join_waits: Vec<JoinWaitSpan>,
    resumed_at_s: Vec<f64>,
    /// With several hosts: the hosts in the placement's order, and each model's hosts.
    host_order: Vec<String>,
    hosts_of: BTreeMap<String, Vec<String>>,
    started: bool,
    last_s: f64,
    summary: Option<RunSummary>,
}

impl Timeline {
    /// The rows of the turn lane: one, or as many as the widest parallel region has branches.
    pub(crate) fn turn_rows(&self) -> usize {
        self.turns
            .iter()
            .map(|turn| turn.row)
            .chain(self.join_waits.iter().map(|wait| wait.row))
            .max()
            .unwrap_or(0)
            + 1
    }

    /// Rebuilds the timeline of the events of a run, every start of it in order.
    pub(crate) fn from_events(events: &[Event]) -> Timeline {
        let mut reader = Reader::default();
        for event in events {
            reader.read(event);
        }
        reader.finish()
    }

    /// The bytes in use over time: `(seconds, bytes)` from each change on, counting
    /// every model that is loading, resident, generating or unloading.
    pub(crate) fn memory(&self) -> Vec<(f64, u64)> {
        let mut cuts: Vec<f64> = vec![0.0, self.end_s];
        for lane in &self.models {
            for span in &lane.spans {
                cuts.push(span.start_s);
                cuts.push(span.end_s);
            }
        }
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let mut steps: Vec<(f64, u64)> = Vec::new();
        for pair in cuts.windows(2) {
            let middle = (pair[0] + pair[1]) / 2.0;
            let bytes = self
                .models
                .iter()
                .filter(|lane| {
                    lane.spans
                        .iter()
                        .any(|span| span.start_s <= middle && middle < span.end_s)
                })
                .filter_map(|lane| lane.bytes)
                .sum();
            if steps.last().is_none_or(|&(_, last)| last != bytes) {
                steps.push((pair[0], bytes));
            }
        }
        steps
    }

    /// The most bytes in use at once.
    pub(crate) fn peak_bytes(&self) -> u64 {
        self.memory()
            .iter()
            .map(|&(_, bytes)| bytes)
            .max()
            .unwrap_or(0)
    }
}

impl Reader {
    fn read(&mut self, event: &Event) {
        if let Some(at_s) = crate::saved_run::event_time(event) {
            self.close_unloads(at_s);
        }
        match event {
            Event::RunStarted {
                workflow,
                policy,
                gpu_budget_bytes,
                at_s,
                ..
            } => {
                if self.started {
                    self.interrupted();
                    self.resumed_at_s.push(*at_s);
                }
                self.started = true;
                self.workflow.clone_from(workflow);
                self.policy = *policy;
                self.gpu_budget_bytes = gpu_budget_bytes.or(self.gpu_budget_bytes);
                self.seen(*at_s);
            }
            Event::Placement { hosts, at_s, .. } => {
                for host in hosts {
                    if !self.host_order.contains(&host.host) {
                        self.host_order.push(host.host.clone());
                    }
                    for model in &host.models {
                        self.know(model);
                        let lived = self.hosts_of.entry(model.clone()).or_default();
                        if lived.last() != Some(&host.host) {
                            lived.push(host.host.clone());
                        }
                    }
                }
                self.seen(*at_s);
            }
            Event::Resident { models, at_s, .. } => {
                for model in models {
                    self.know(&model.model);
                    let bytes = self.bytes.entry(model.model.clone()).or_default();
                    *bytes = (*bytes).max(model.bytes);
                    self.mark(&model.model, *at_s, Mark::Present);
                }
                let absent: Vec<String> = self
                    .order
                    .iter()
                    .filter(|known| !models.iter().any(|m| &&m.model == known))
                    .cloned()
                    .collect();
                for model in absent {
                    self.mark(&model, *at_s, Mark::Absent);
                }
                self.seen(*at_s);
            }
            Event::TurnStarted {
                turn,
                agent,
                model,
                branch,
                at_s,
            } => {
                if let Some(model) = model {
                    self.know(model);
                }
                let row = branch.as_ref().map_or(0, |branch| branch.index as usize);
                self.open_turns.insert(
                    agent.clone(),
                    TurnSpan {
                        row,
                        turn: *turn,
                        agent: agent.clone(),
                        model: model.clone(),
                        start_s: *at_s,
                        end_s: *at_s,
                        load_wait_s: 0.0,
                        tokens: 0,
                        completed: false,
                        thinking: None,
                        cut_off: false,
                        context: None,
                    },
                );
                self.seen(*at_s);
            }
            Event::BranchArrived { branch, at_s } => {
                self.arrived
                    .push((branch.start.clone(), branch.index as usize, *at_s));
                self.seen(*at_s);
            }
            Event::JoinOpened { join, at_s, .. } => {
                for (branch, row, since) in std::mem::take(&mut self.arrived) {
                    self.join_waits.push(JoinWaitSpan {
                        branch,
                        row,
                        join: join.clone(),
                        start_s: since,
                        end_s: *at_s,
                    });
                }
                self.seen(*at_s);
            }
            Event::TurnFinished { entry, at_s } => {
                self.open_turns.remove(&entry.agent);
                let answered_s = (entry.started_s + entry.load_wait_s).min(*at_s);
                if let Some(model) = &entry.model {
                    self.know(model);
                    if let Some((start_s, LoadCause::OnDemand, _)) =
                        self.pending_loads.get(model).copied()
                    {
                        self.pending_loads.remove(model);
                        self.load_span(model, start_s, answered_s, LoadCause::OnDemand);
                    }
                    self.span(
                        model,
                        answered_s,
                        *at_s,
                        ModelState::Generating,
                        format!(
                            "turn {}: {} generating, {} tokens in {:.1} s",
                            entry.turn, entry.agent, entry.tokens, entry.generation_s
                        ),
                    );
                    self.mark(model, answered_s, Mark::Present);
                    self.mark(model, *at_s, Mark::Present);
                }
                self.turns.push(TurnSpan {
                    turn: entry.turn,
                    agent: entry.agent.clone(),
                    model: entry.model.clone(),
                    start_s: entry.started_s,
                    end_s: *at_s,
                    load_wait_s: entry.load_wait_s,
                    tokens: entry.tokens,
                    completed: true,
                    thinking: entry.thinking.clone(),
                    cut_off: entry.cut_off,
                    context: entry.context.clone(),
                    row: entry
                        .branch
                        .as_ref()
                        .map_or(0, |branch| branch.index as usize),
                });
                self.seen(*at_s);
            }
            Event::LoadStarted {
                model,
                cause,
                expected_s,
                at_s,
            } => {
                self.know(model);
                self.pending_loads
                    .insert(model.clone(), (*at_s, *cause, *expected_s));
                self.seen(*at_s);
            }
            Event::LoadFinished {
                model,
                cause,
                load_s,
                at_s,
            } => {
                self.know(model);
                let end_s = match self.pending_loads.remove(model) {
                    // An on-demand load is reported when its turn ends; it ended `load_s`
                    // after it began, and surely by then.
                    Some((start_s, LoadCause::OnDemand, _)) => {
                        let end_s = (start_s + load_s).min(*at_s);
                        self.load_span(model, start_s, end_s, LoadCause::OnDemand);
                        Some(end_s)
                    }
                    Some((start_s, LoadCause::Preload, _)) => {
                        self.load_span(model, start_s, *at_s, LoadCause::Preload);
                        Some(*at_s)
                    }
                    // A turn that found its model being preloaded waited for that preload,
                    // which its own event already shows.
                    None if *cause == LoadCause::OnDemand => None,
                    None => {
                        self.load_span(model, at_s - load_s, *at_s, LoadCause::Preload);
                        Some(*at_s)
                    }
                };
                if let Some(end_s) = end_s {
                    self.mark(model, end_s, Mark::Present);
                }
                self.seen(*at_s);
            }
            // An aborted preload loaded until the abort and then was gone.
            Event::PreloadAborted { model, at_s, .. } => {
                self.know(model);
                if let Some((start_s, cause, _)) = self.pending_loads.remove(model) {
                    self.load_span(model, start_s, *at_s, cause);
                }
                self.mark(model, *at_s, Mark::Absent);
                self.seen(*at_s);
            }
            Event::Unload {
                model,
                reason,
                at_s,
            } => {
                self.know(model);
                self.mark(model, *at_s, Mark::Unloaded);
                self.pending_unloads
                    .push((model.clone(), *at_s, reason.clone()));
                self.seen(*at_s);
            }
            Event::RunFinished { summary } => {
                self.seen(summary.wall_s);
                self.summary = Some((**summary).clone());
            }
            _ => {}
        }
    }

    fn seen(&mut self, at_s: f64) {
        if at_s.is_finite() {
            self.last_s = self.last_s.max(at_s);
        }
    }

    fn know(&mut self, model: &str) {
        if !self.order.iter().any(|known| known == model) {
            self.order.push(model.to_owned());
        }
    }

    fn mark(&mut self, model: &str, at_s: f64, mark: Mark) {
        self.marks
            .entry(model.to_owned())
            .or_default()
            .push((at_s, mark));
    }

    fn span(&mut self, model: &str, start_s: f64, end_s: f64, state: ModelState, note: String) {
        self.spans.entry(model.to_owned()).or_default().push(Span {
            start_s,
            end_s: end_s.max(start_s),
            state,
            note,
        });
    }

    fn load_span(&mut self, model: &str, start_s: f64, end_s: f64, cause: LoadCause) {
        let why = match cause {
            LoadCause::Preload => "preload",
            LoadCause::OnDemand => "on-demand load",
        };
        let note = format!("{model}: {why}, {:.1} s", (end_s - start_s).max(0.0));
        self.span(model, start_s, end_s, ModelState::Loading(cause), note);
    }

    /// An unload lasts until the executor goes on: it waits for the server's answer.
    fn close_unloads(&mut self, now_s: f64) {
        for (model, start_s, reason) in std::mem::take(&mut self.pending_unloads) {
            let note = format!("{model}: unloading ({reason})");
            self.span(&model, start_s, now_s, ModelState::Unloading, note);
        }
    }

    /// The process stopped: whatever was under way ends where its events stop.
    fn interrupted(&mut self) {
        let last_s = self.last_s;
        self.close_unloads(last_s);
        for (_, mut turn) in std::mem::take(&mut self.open_turns) {
            turn.end_s = last_s.max(turn.start_s);
            self.turns.push(turn);
        }
        self.arrived.clear();
        for (model, (start_s, cause, _)) in std::mem::take(&mut self.pending_loads) {
            self.load_span(&model, start_s, last_s, cause);
        }
    }

    fn finish(mut self) -> Timeline {
        self.interrupted();
        let end_s = self.last_s;
        // With several hosts, lanes are grouped by the host each model first lived on.
        let host_rank = |model: &String| {
            self.hosts_of
                .get(model)
                .and_then(|hosts| hosts.first())
                .and_then(|host| self.host_order.iter().position(|known| known == host))
                .unwrap_or(usize::MAX)
        };
        let mut order = self.order.clone();
        order.sort_by_key(host_rank);
        let models = order
            .iter()
            .map(|model| {
                let mut spans = resident_spans(
                    model,
                    self.marks.get(model).map_or(&[][..], Vec::as_slice),
                    end_s,
                );
                spans.extend(self.spans.remove(model).unwrap_or_default());
                ModelLane {
                    model: model.clone(),
                    hosts: self.hosts_of.get(model).cloned().unwrap_or_default(),
                    bytes: self.bytes.get(model).copied(),
                    spans,
                }
            })
            .collect();
        Timeline {
            workflow: self.workflow,
            policy: self.policy,
            gpu_budget_bytes: self.gpu_budget_bytes,
            end_s,
            models,
            turns: self.turns,
            join_waits: self.join_waits,
            resumed_at_s: self.resumed_at_s,
            summary: self.summary,
        }
    }
}

/// Resident spans from what was seen of a model, in time order.
fn resident_spans(model: &str, marks: &[(f64, Mark)], end_s: f64) -> Vec<Span> {
    let mut marks = marks.to_vec();
    marks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut spans = Vec::new();
    let mut open: Option<(f64, f64)> = None;
    let mut close = |start_s: f64, end_s: f64| {
        if end_s > start_s {
            spans.push(Span {
                start_s,
                end_s,
                state: ModelState::Resident,
                note: format!("{model}: resident"),
            });
        }
    };
    for (at_s, mark) in marks {
        match (mark, open) {
            (Mark::Present, None) => open = Some((at_s, at_s)),
            (Mark::Present, Some((start_s, _))) => open = Some((start_s, at_s)),
            // Gone by the time of the snapshot; the last sign of it is where it surely was.
            (Mark::Absent, Some((start_s, last_s))) => {
                close(start_s, last_s);
                open = None;
            }
            (Mark::Unloaded, Some((start_s, _))) => {
                close(start_s, at_s);
                open = None;
            }
            (Mark::Absent | Mark::Unloaded, None) => {}
        }
    }
    if let Some((start_s, _)) = open {
        close(start_s, end_s);
    }
    spans
}

#[cfg(test)]
mod tests;
