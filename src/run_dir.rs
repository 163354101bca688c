//! The run directory: everything a run leaves behind, written as it happens.
//!
//! `.agentrun/runs/<time>-<workflow>/` holds `workflow.yaml` (the resolved
//! workflow, prompts inlined), `transcript.jsonl` (one line per completed turn,
//! flushed after each), `events.jsonl` (every event but streamed text) and
//! `summary.json` (written when the run ends). Nothing is lost if the process
//! dies: every line is on disk before the next turn starts.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use agentrun_core::{Event, RunSummary};
use agentrun_spec::Workflow;

/// An open run directory.
#[derive(Debug)]
pub struct RunDirectory {
    path: PathBuf,
    transcript: BufWriter<File>,
    events: BufWriter<File>,
}

impl RunDirectory {
    /// Creates `BASE/runs/<UTC time>-<workflow>/` and writes the resolved workflow.
    pub fn create(base: &Path, workflow: &Workflow) -> std::io::Result<RunDirectory> {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let name: String = workflow
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let runs = base.join("runs");
        let mut path = runs.join(format!("{stamp}-{name}"));
        let mut suffix = 1;
        while path.exists() {
            suffix += 1;
            path = runs.join(format!("{stamp}-{name}-{suffix}"));
        }
        std::fs::create_dir_all(&path)?;
        std::fs::write(path.join("workflow.yaml"), workflow.to_yaml())?;
        let open = |file: &str| -> std::io::Result<BufWriter<File>> {
            Ok(BufWriter::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path.join(file))?,
            ))
        };
        Ok(RunDirectory {
            transcript: open("transcript.jsonl")?,
            events: open("events.jsonl")?,
            path,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records an event; a finished turn also goes to the transcript, and both
    /// files are flushed so the turn survives a crash.
    pub fn record(&mut self, event: &Event) -> std::io::Result<()> {
        if matches!(event, Event::TextDelta { .. }) {
            return Ok(());
        }
        serde_json::to_writer(&mut self.events, event)?;
        self.events.write_all(b"\n")?;
        if let Event::TurnFinished { entry, .. } = event {
            serde_json::to_writer(&mut self.transcript, entry)?;
            self.transcript.write_all(b"\n")?;
            self.transcript.flush()?;
            self.events.flush()?;
        }
        if let Event::RunFinished { summary } = event {
            self.write_summary(summary)?;
        }
        Ok(())
    }

    fn write_summary(&mut self, summary: &RunSummary) -> std::io::Result<()> {
        self.events.flush()?;
        self.transcript.flush()?;
        let text = serde_json::to_string_pretty(summary)?;
        std::fs::write(self.path.join("summary.json"), text + "\n")
    }
}

/// Runs under `BASE/runs/`, oldest first.
pub fn list_runs(base: &Path) -> std::io::Result<Vec<PathBuf>> {
    let runs = base.join("runs");
    if !runs.is_dir() {
        return Ok(Vec::new());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(runs)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.is_dir())
        .collect();
    found.sort();
    Ok(found)
}
