//! The terminal: replies streamed under each agent's name, load progress, and the summary.
//!
//! With a terminal, loads show as a live progress line; without one (CI, pipes)
//! everything falls back to plain lines.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use agentrun::{Event, LoadCause, RunSummary};
use indicatif::{ProgressBar, ProgressStyle};

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
}

impl Output {
    pub(crate) fn new(quiet: bool, verbose: u8) -> Output {
        Output {
            quiet,
            verbose,
            tty: std::io::stderr().is_terminal(),
            open_line: false,
            loading: None,
        }
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
        match event {
            Event::RunStarted {
                workflow,
                policy,
                endpoint,
                ..
            } => eprintln!("agentrun: {workflow} on {endpoint}, residency policy {policy}"),
            Event::TurnStarted {
                turn, agent, model, ..
            } => {
                self.end_line();
                match model {
                    Some(model) => eprintln!("\n── {agent} ({model}) · turn {turn}"),
                    None => eprintln!("\n── {agent} · turn {turn}"),
                }
            }
            Event::TextDelta { text, .. } => {
                self.stop_loading();
                if !text.is_empty() {
                    self.open_line = !text.ends_with('\n');
                }
                eprint!("{text}");
                let _ = std::io::stderr().flush();
            }
            Event::TurnFinished { entry, .. } => {
                self.stop_loading();
                self.end_line();
                // A command streams nothing: its verdict is the first line of its text.
                if entry.model.is_none() && entry.passed.is_some() {
                    eprintln!("   {}", entry.text.lines().next().unwrap_or(""));
                }
                if self.verbose > 0 || entry.load_wait_s >= 1.0 {
                    eprintln!(
                        "   [{} tokens in {:.1} s, waited {:.1} s for the model]",
                        entry.tokens, entry.generation_s, entry.load_wait_s
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
                eprintln!("   · preloaded {model} in {load_s:.1} s");
            }
            Event::Unload { model, reason, .. } if self.verbose > 0 => {
                self.end_line();
                eprintln!("   · unloading {model}: {reason}");
            }
            Event::RouterDecision {
                agent,
                choice,
                repairs,
                fallback,
            } => {
                self.end_line();
                if *fallback {
                    eprintln!(
                        "   ! {agent} gave no valid choice after {repairs} repairs; taking '{choice}'"
                    );
                } else if *repairs > 0 {
                    eprintln!("   · {agent} chose '{choice}' after {repairs} repairs");
                }
            }
            Event::RouterRepair {
                agent,
                problem,
                attempt,
            } => {
                self.end_line();
                eprintln!("   ! {agent}: {problem}; asking again (repair {attempt})");
            }
            Event::ToolCall {
                tool, arguments, ..
            } => {
                self.stop_loading();
                self.end_line();
                eprintln!("   → {tool} {}", brief_arguments(arguments));
            }
            Event::ToolResult { ok, output, .. } => {
                let first = output.lines().next().unwrap_or("");
                let first: String = first.chars().take(100).collect();
                if *ok {
                    eprintln!("     ← {first}");
                } else {
                    eprintln!("     ✗ {first}");
                }
            }
            Event::ToolLimit { agent, rounds } => {
                self.end_line();
                eprintln!(
                    "   ! {agent} was still calling tools after {rounds} rounds; its turn was cut off"
                );
            }
            Event::InputRequested { agent, question } => {
                self.stop_loading();
                self.end_line();
                eprintln!("   ? {agent} asks you:");
                for line in question.lines() {
                    eprintln!("     {line}");
                }
                eprint!("   > ");
                let _ = std::io::stderr().flush();
            }
            Event::Retry {
                model,
                error,
                attempt,
            } => {
                self.end_line();
                eprintln!("   ! {model}: {error}; retrying (attempt {attempt})");
            }
            _ => {}
        }
    }

    fn load_started(&mut self, model: &str, cause: LoadCause, expected_s: Option<f64>) {
        if cause == LoadCause::Preload {
            if self.verbose > 0 {
                self.end_line();
                eprintln!("   · preloading {model} in the background");
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
            eprintln!("   · loading {model}{about}");
        }
    }

    fn stop_loading(&mut self) {
        if let Some(bar) = self.loading.take() {
            bar.finish_and_clear();
        }
    }

    fn end_line(&mut self) {
        if std::mem::take(&mut self.open_line) {
            eprintln!();
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
    }
}

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
