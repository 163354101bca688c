//! The run directory: everything a run leaves behind, written as it happens.
//!
//! `.agentrun/runs/<time>-<workflow>/` holds `workflow.yaml` (the resolved
//! workflow, prompts inlined), `transcript.jsonl` (one line per completed turn,
//! flushed after each), `events.jsonl` (every event but streamed text) and
//! `summary.json` (written when the run ends). Nothing is lost if the process
//! dies: every line is on disk before the next turn starts, each written in one
//! piece with its newline, and `agentrun resume` appends to the same files.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use agentrun_core::{Event, RunSummary};
use agentrun_spec::Workflow;

use crate::saved_run::{EVENTS_FILE, SUMMARY_FILE, TRANSCRIPT_FILE, WORKFLOW_FILE};

/// The directory under the base (`.agentrun/`) that holds one directory per run.
pub const RUNS_DIR: &str = "runs";

/// An open run directory.
#[derive(Debug)]
pub struct RunDirectory {
    path: PathBuf,
    /// Unbuffered: each turn goes down in a single write.
    transcript: File,
    events: BufWriter<File>,
}

impl RunDirectory {
    /// Creates `BASE/runs/<UTC time>-<workflow>/` and writes the resolved workflow.
    pub fn create(base: &Path, workflow: &Workflow) -> std::io::Result<RunDirectory> {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let name = file_name_part(&workflow.name);
        let runs = base.join(RUNS_DIR);
        let mut path = runs.join(format!("{stamp}-{name}"));
        let mut suffix = 1;
        while path.exists() {
            suffix += 1;
            path = runs.join(format!("{stamp}-{name}-{suffix}"));
        }
        std::fs::create_dir_all(&path)?;
        std::fs::write(path.join(WORKFLOW_FILE), workflow.to_yaml())?;
        RunDirectory::open(path)
    }

    /// Opens an existing run directory to append to it (a resumed run). A line left
    /// unterminated by a process that died mid-write is cut off first.
    pub fn reopen(path: &Path) -> std::io::Result<RunDirectory> {
        if !path.join(WORKFLOW_FILE).is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} is not a run directory (no workflow.yaml)",
                    path.display()
                ),
            ));
        }
        for file in [TRANSCRIPT_FILE, EVENTS_FILE] {
            cut_unterminated_tail(&path.join(file))?;
        }
        RunDirectory::open(path.to_owned())
    }

    fn open(path: PathBuf) -> std::io::Result<RunDirectory> {
        let open = |file: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path.join(file))
        };
        Ok(RunDirectory {
            transcript: open(TRANSCRIPT_FILE)?,
            events: BufWriter::new(open(EVENTS_FILE)?),
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
        self.events.write_all(&json_line(event)?)?;
        if let Event::TurnFinished { entry, .. } = event {
            self.transcript.write_all(&json_line(entry)?)?;
            self.events.flush()?;
        }
        if let Event::RunFinished { summary } = event {
            self.write_summary(summary)?;
        }
        Ok(())
    }

    fn write_summary(&mut self, summary: &RunSummary) -> std::io::Result<()> {
        self.events.flush()?;
        let text = serde_json::to_string_pretty(summary)?;
        std::fs::write(self.path.join(SUMMARY_FILE), text + "\n")
    }
}

/// A value as one line of JSON, newline included, to be written at once.
fn json_line(value: &impl serde::Serialize) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    Ok(line)
}

/// Truncates a file after its last newline, if anything follows it.
fn cut_unterminated_tail(path: &Path) -> std::io::Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    let keep = bytes
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |last| last + 1);
    if keep < bytes.len() {
        OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(keep as u64)?;
    }
    Ok(())
}

/// Runs under `BASE/runs/`, oldest first.
pub fn list_runs(base: &Path) -> std::io::Result<Vec<PathBuf>> {
    let runs = base.join(RUNS_DIR);
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

/// `name` as a safe part of a file name: letters, digits, `-` and `_` kept, anything else `-`.
pub(crate) fn file_name_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
