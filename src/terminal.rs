//! The terminal: replies streamed under each agent's name, load progress, and the summary.
//!
//! With a terminal, loads show as a live progress line; without one (CI, pipes)
//! everything falls back to plain lines.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use agentrun::{Event, LoadCause, RunSummary};
use indicatif::{ProgressBar, ProgressStyle};

/// Appends to the output of the event being shown; [`Output::event`] writes it
/// in one piece, since stderr is unbuffered and every `eprint!` argument would be
/// a separate write.
macro_rules! out {
    ($output:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($output.pending, $($arg)*);
    }};
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($output:expr) => {{
        $output.pending.push('\n');
    }};
    ($output:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($output.pending, $($arg)*);
    }};
}

/// How much to show, and where.
#[derive(Clone)]
pub(crate) struct Output {
    quiet: bool,
    verbose: u8,
    tty: bool,
    /// Whether a reply is streaming and its last character was not a newline,
    /// so the line must be ended before anything else is printed.
    open_line: bool,
    loading: Option<ProgressBar>,
    /// What the event being shown prints, written at once when it is done.
    pending: String,
    /// The replies of turns running in parallel branches, by agent: held and printed whole,
    /// each line prefixed with the branch, when the turn finishes, so concurrent replies
    /// never interleave mid-line.
    branch_replies: std::collections::BTreeMap<String, (String, String)>,
}

impl Output {
    pub(crate) fn new(quiet: bool, verbose: u8) -> Output {
        Output {
            quiet,
            verbose,
            tty: std::io::stderr().is_terminal(),
            open_line: false,
            loading: None,
            pending: String::new(),
            branch_replies: std::collections::BTreeMap::new(),
        }
    }

    /// A turn's reasoning, dimmed on a terminal and folded to its first lines
    /// unless verbose: it is the model's working, not its answer.
    fn thinking(&mut self, thinking: &str) {
        const FOLDED_LINES: usize = 3;
        let lines: Vec<&str> = thinking
            .lines()
            .filter(|line| !line.trim().is_empty())
            .collect();
        let shown = if self.verbose > 0 {
            lines.len()
        } else {
            lines.len().min(FOLDED_LINES)
        };
        let (dim, plain) = if self.tty {
            ("\x1b[2m", "\x1b[0m")
        } else {
            ("", "")
        };
        out!(self, "{dim}");
        outln!(self, "   thinking ({} lines):", lines.len());
        for line in &lines[..shown] {
            outln!(self, "   │ {line}");
        }
        if shown < lines.len() {
            outln!(
                self,
                "   │ … {} more lines (-v shows them)",
                lines.len() - shown
            );
        }
        out!(self, "{plain}");
    }

    /// Prints a line of information, unless quiet.
    pub(crate) fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Shows one event.
    pub(crate) fn event(&mut self, event: &Event) {
        if self.quiet {
            return;
        }
        self.show(event);
        if !self.pending.is_empty() {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(self.pending.as_bytes());
            let _ = stderr.flush();
            self.pending.clear();
        }
    }

    fn show(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                workflow,
                policy,
                endpoint,
                ..
            } => outln!(
                self,
                "agentrun: {workflow} on {endpoint}, residency policy {policy}"
            ),
            Event::Placement { hosts, reason, .. } => {
                self.end_line();
                outln!(self, "agentrun: placement: {reason}");
                for host in hosts {
                    let models = if host.models.is_empty() {
                        "nothing".to_owned()
                    } else {
                        host.models.join(", ")
                    };
                    let state = if host.up { "" } else { " (not answering)" };
                    outln!(
                        self,
                        "  {} ({}, {}){state}: {models}",
                        host.host,
                        host.url,
                        agentrun::gigabytes(host.gpu_budget_bytes)
                    );
                }
            }
            Event::TurnStarted {
                turn,
                agent,
                model,
                branch: Some(branch),
                ..
            } => {
                self.end_line();
                let label = format!("[{}]", branch.start);
                match model {
                    Some(model) => outln!(self, "{label} ── {agent} ({model}) started"),
                    None => outln!(self, "{label} ── {agent} started"),
                }
                let _ = turn;
                self.branch_replies
                    .insert(agent.clone(), (label, String::new()));
            }
            Event::TurnStarted {
                turn, agent, model, ..
            } => {
                self.end_line();
                match model {
                    Some(model) => outln!(self, "\n── {agent} ({model}) · turn {turn}"),
                    None => outln!(self, "\n── {agent} · turn {turn}"),
                }
            }
            Event::TextDelta { agent, text } if self.branch_replies.contains_key(agent) => {
                if let Some((_, reply)) = self.branch_replies.get_mut(agent) {
                    reply.push_str(text);
                }
            }
            Event::BranchesStarted {
                from,
                branches,
                join,
                concurrency,
                groups,
                reason,
                ..
            } => {
                self.end_line();
                let how = match concurrency.as_str() {
                    "concurrent" => "at once".to_owned(),
                    "" => "at once".to_owned(),
                    _ => {
                        let listed: Vec<String> = groups
                            .iter()
                            .map(|group| {
                                group
                                    .iter()
                                    .filter_map(|&index| branches.get(index))
                                    .cloned()
                                    .collect::<Vec<_>>()
                                    .join(" + ")
                            })
                            .collect();
                        format!("{concurrency}: {}", listed.join(", then "))
                    }
                };
                outln!(
                    self,
                    "\n⇉ {from} fans out to {} ({how}); they meet at {join}",
                    branches.join(", ")
                );
                if !reason.is_empty() {
                    outln!(self, "   {reason}");
                }
            }
            Event::BranchFailed {
                branch,
                agent,
                error,
                ..
            } => {
                self.end_line();
                outln!(
                    self,
                    "[{}] ✗ {agent} failed: {error}; the branch stops, the others go on",
                    branch.start
                );
            }
            Event::JoinOpened {
                join,
                stopped,
                region_s,
                ..
            } => {
                self.end_line();
                let stopped = if stopped.is_empty() {
                    String::new()
                } else {
                    format!(", {} branches stopped", stopped.len())
                };
                outln!(
                    self,
                    "⇶ {join} joins the branches after {region_s:.1} s{stopped}"
                );
            }
            Event::TurnFinished { entry, .. } if entry.branch.is_some() => {
                self.stop_loading();
                self.end_line();
                let (label, reply) = self
                    .branch_replies
                    .remove(&entry.agent)
                    .unwrap_or_else(|| (String::new(), entry.text.clone()));
                let reply = if reply.is_empty() {
                    &entry.text
                } else {
                    &reply
                };
                outln!(
                    self,
                    "{label} ── {} · turn {} ({:.1} s, waited {:.1} s for the model) → {}",
                    entry.agent,
                    entry.turn,
                    entry.generation_s,
                    entry.load_wait_s,
                    entry.next
                );
                for line in reply.lines() {
                    outln!(self, "{label} │ {line}");
                }
            }
            Event::TextDelta { text, .. } => {
                self.stop_loading();
                if !text.is_empty() {
                    self.open_line = !text.ends_with('\n');
                }
                out!(self, "{text}");
            }
            Event::TurnFinished { entry, .. } => {
                self.stop_loading();
                self.end_line();
                // A command streams nothing: its verdict is the first line of its text.
                if entry.model.is_none() && entry.passed.is_some() {
                    outln!(self, "   {}", entry.text.lines().next().unwrap_or(""));
                }
                if let Some(thinking) = &entry.thinking {
                    self.thinking(thinking);
                }
                if entry.cut_off {
                    outln!(
                        self,
                        "   [cut off: the reply reached its length limit (num_predict, or a full context)]"
                    );
                }
                if self.verbose > 0 || entry.load_wait_s >= 1.0 {
                    outln!(
                        self,
                        "   [{} tokens in {:.1} s, waited {:.1} s for the model]",
                        entry.tokens,
                        entry.generation_s,
                        entry.load_wait_s
                    );
                }
            }
            Event::LoadStarted {
                model,
                cause,
                expected_s,
                ..
            } => self.load_started(model, *cause, *expected_s),
            Event::LoadFinished {
                model,
                cause: LoadCause::Preload,
                load_s,
                ..
            } if self.verbose > 0 => {
                self.end_line();
                outln!(self, "   · preloaded {model} in {load_s:.1} s");
            }
            Event::PreloadWithdrawn { model, reason, .. } if self.verbose > 0 => {
                self.end_line();
                outln!(self, "   · withdrew the preload of {model}: {reason}");
            }
            Event::PreloadAborted {
                model,
                reason,
                loading_s,
                ..
            } if self.verbose > 0 => {
                self.end_line();
                outln!(
                    self,
                    "   · aborted the preload of {model} after {loading_s:.1} s: {reason}"
                );
            }
            Event::Unload { model, reason, .. } if self.verbose > 0 => {
                self.end_line();
                outln!(self, "   · unloading {model}: {reason}");
            }
            Event::ContextTruncated {
                agent,
                model,
                sent_tokens,
                num_ctx,
                fix,
                ..
            } => {
                self.end_line();
                outln!(
                    self,
                    "   ! {agent}'s prompt (~{sent_tokens} tokens) did not fit num_ctx {num_ctx} of {model}: the server dropped its oldest messages, the task first; {fix}"
                );
            }
            Event::ContextSummarized {
                agent,
                model,
                turns,
                summarized,
            } if self.verbose > 0 => {
                self.end_line();
                outln!(
                    self,
                    "   · {model} folded {turns} turns into {agent}'s running summary ({summarized} in all)"
                );
            }
            Event::RouterDecision {
                agent,
                choice,
                repairs,
                fallback,
            } => {
                self.end_line();
                if *fallback {
                    outln!(
                        self,
                        "   ! {agent} gave no valid choice after {repairs} repairs; taking '{choice}'"
                    );
                } else if *repairs > 0 {
                    outln!(
                        self,
                        "   · {agent} chose '{choice}' after {repairs} repairs"
                    );
                }
            }
            Event::RouterRepair {
                agent,
                problem,
                attempt,
            } => {
                self.end_line();
                outln!(
                    self,
                    "   ! {agent}: {problem}; asking again (repair {attempt})"
                );
            }
            Event::ToolCall {
                tool, arguments, ..
            } => {
                self.stop_loading();
                self.end_line();
                outln!(self, "   → {tool} {}", brief_arguments(arguments));
            }
            Event::ToolResult { ok, output, .. } => {
                let first = output.lines().next().unwrap_or("");
                let first: String = first.chars().take(100).collect();
                if *ok {
                    outln!(self, "     ← {first}");
                } else {
                    outln!(self, "     ✗ {first}");
                }
            }
            Event::ToolLimit { agent, rounds } => {
                self.end_line();
                outln!(
                    self,
                    "   ! {agent} was still calling tools after {rounds} rounds; its turn was cut off"
                );
            }
            Event::InputRequested { agent, question } => {
                self.stop_loading();
                self.end_line();
                outln!(self, "   ? {agent} asks you:");
                for line in question.lines() {
                    outln!(self, "     {line}");
                }
                out!(self, "   > ");
            }
            Event::Retry {
                model,
                error,
                attempt,
            } => {
                self.end_line();
                outln!(self, "   ! {model}: {error}; retrying (attempt {attempt})");
            }
            _ => {}
        }
    }

    fn load_started(&mut self, model: &str, cause: LoadCause, expected_s: Option<f64>) {
        if cause == LoadCause::Preload {
            if self.verbose > 0 {
                self.end_line();
                outln!(self, "   · preloading {model} in the background");
            }
            return;
        }
        let about = expected_s
            .map(|s| format!(" (about {s:.0} s)"))
            .unwrap_or_default();
        if self.tty {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("   {spinner} loading {msg}: {elapsed} so far")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("{model}{about}"));
            bar.enable_steady_tick(Duration::from_millis(120));
            self.loading = Some(bar);
        } else {
            self.end_line();
            outln!(self, "   · loading {model}{about}");
        }
    }

    fn stop_loading(&mut self) {
        if let Some(bar) = self.loading.take() {
            bar.finish_and_clear();
        }
    }

    fn end_line(&mut self) {
        if std::mem::take(&mut self.open_line) {
            outln!(self);
        }
    }

    /// Called when the event stream ends.
    pub(crate) fn finish(&mut self) {
        self.stop_loading();
        self.end_line();
    }

    /// Prints the run's summary table.
    pub(crate) fn summary(&self, summary: &RunSummary) {
        eprintln!(
            "\n{}: {} ({}) after {} turns, {:.1} s; waited {:.1} s for model loads ({:.1} s avoidable)",
            summary.workflow,
            summary.status.as_str(),
            summary.reason,
            summary.turns,
            summary.wall_s,
            summary.load_wait_s,
            summary.avoidable_wait_s,
        );
        eprintln!(
            "  {:<14} {:>6} {:>12} {:>12} {:>9}",
            "agent", "turns", "generation", "load wait", "tokens"
        );
        for (name, agent) in &summary.agents {
            eprintln!(
                "  {:<14} {:>6} {:>10.1} s {:>10.1} s {:>9}",
                name, agent.turns, agent.generation_s, agent.load_wait_s, agent.tokens
            );
        }
        eprintln!(
            "  {:<26} {:>6} {:>8} {:>10} {:>10} {:>12}",
            "model", "loads", "unloads", "load", "avoidable", "unavoidable"
        );
        for (name, model) in &summary.models {
            eprintln!(
                "  {:<26} {:>6} {:>8} {:>8.1} s {:>8.1} s {:>10.1} s",
                name,
                model.loads,
                model.unloads,
                model.load_s,
                model.avoidable_wait_s,
                model.unavoidable_wait_s
            );
        }
        if !summary.hosts.is_empty() {
            eprintln!(
                "  {:<26} {:>6} {:>8} {:>10}  models",
                "host", "loads", "unloads", "load wait"
            );
            for (name, host) in &summary.hosts {
                let state = if host.up { "" } else { " (not answering)" };
                eprintln!(
                    "  {:<26} {:>6} {:>8} {:>8.1} s  {}{state}",
                    name,
                    host.loads,
                    host.unloads,
                    host.load_wait_s,
                    host.models.join(", ")
                );
            }
        }
        self.context_summary(summary);
    }

    /// Per model turn, the prompt's tokens against num_ctx and what was left out; a long run
    /// gets the largest prompt of each agent instead.
    fn context_summary(&self, summary: &RunSummary) {
        if summary.context.is_empty() {
            return;
        }
        if summary.context_cuts > 0 {
            eprintln!(
                "  ! the server cut {} prompts to num_ctx (see the warnings above)",
                summary.context_cuts
            );
        }
        eprintln!(
            "  {:<6} {:<14} {:<9} {:>17} {:>7} {:>7} {:>10}",
            "turn", "context", "strategy", "tokens / num_ctx", "elided", "dropped", "summarized"
        );
        let line = |turn: &str, agent: &str, context: &agentrun::ContextUse| {
            eprintln!(
                "  {:<6} {:<14} {:<9} {:>17} {:>7} {:>7} {:>10}{}",
                turn,
                agent,
                context.strategy,
                format!("{} / {}", context.prompt_tokens, context.num_ctx),
                context.elided,
                context.dropped,
                context.summarized,
                if context.cut_by_server {
                    "  cut by the server"
                } else {
                    ""
                }
            );
        };
        if summary.context.len() <= MAX_CONTEXT_LINES {
            for turn in &summary.context {
                line(&turn.turn.to_string(), &turn.agent, &turn.context);
            }
            return;
        }
        let mut largest: std::collections::BTreeMap<&str, &agentrun::ContextTurn> =
            std::collections::BTreeMap::new();
        for turn in &summary.context {
            let kept = largest.entry(&turn.agent).or_insert(turn);
            if turn.context.prompt_tokens > kept.context.prompt_tokens {
                *kept = turn;
            }
        }
        for (agent, turn) in largest {
            line(&format!("max@{}", turn.turn), agent, &turn.context);
        }
    }
}

/// Model turns listed one by one in the summary; beyond, the largest prompt per agent.
const MAX_CONTEXT_LINES: usize = 40;

/// A tool call's arguments on one line: each value shortened, long texts by their size.
fn brief_arguments(arguments: &serde_json::Value) -> String {
    let Some(object) = arguments.as_object() else {
        return arguments.to_string().chars().take(80).collect();
    };
    let parts: Vec<String> = object
        .iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(text) if text.len() > 60 || text.contains('\n') => {
                format!("{key}: ({} bytes)", text.len())
            }
            other => {
                let shown: String = other.to_string().chars().take(80).collect();
                format!("{key}: {shown}")
            }
        })
        .collect();
    parts.join(", ")
}
