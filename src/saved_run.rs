//! A run directory read back: what resuming a run and reporting on it need.
//!
//! A line of `transcript.jsonl` or `events.jsonl` counts once its newline is on
//! disk: the writer puts each line down in one write, newline included, so a
//! process killed mid-write leaves at most an unterminated tail, which readers
//! ignore and [`crate::RunDirectory::reopen`] cuts off.

use std::path::{Path, PathBuf};

use agentrun_core::{Event, Resume, RunSummary, TranscriptEntry};
use agentrun_spec::{SpecError, Workflow};

/// The resolved workflow of a run directory.
pub const WORKFLOW_FILE: &str = "workflow.yaml";
/// One line per completed turn.
pub const TRANSCRIPT_FILE: &str = "transcript.jsonl";
/// One line per event, streamed text left out.
pub const EVENTS_FILE: &str = "events.jsonl";
/// The summary of the run's last start, written when it ends.
pub const SUMMARY_FILE: &str = "summary.json";
/// The run's HTML report, written by `agentrun report` (and `--report`).
pub const REPORT_FILE: &str = "report.html";

/// Why a run directory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SavedRunError {
    /// A file is missing or unreadable.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The saved workflow no longer loads.
    #[error("the saved workflow {} does not load:\n{source}", path.display())]
    Workflow {
        /// The file.
        path: PathBuf,
        /// Its problems.
        source: SpecError,
    },
    /// A complete line of a JSON-lines file is not what it should be.
    #[error("{}:{line}: {source}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        source: serde_json::Error,
    },
}

/// A run as its directory keeps it.
#[derive(Debug, Clone)]
pub struct SavedRun {
    /// The run directory.
    pub path: PathBuf,
    /// The resolved workflow it ran.
    pub workflow: Workflow,
    /// Its completed turns, oldest first.
    pub transcript: Vec<TranscriptEntry>,
    /// Its events, every start of it in order.
    pub events: Vec<Event>,
    /// The summary of its last start, if that start ended.
    pub summary: Option<RunSummary>,
}

impl SavedRun {
    /// Reads a run directory.
    pub fn read(path: &Path) -> Result<SavedRun, SavedRunError> {
        let workflow_path = path.join(WORKFLOW_FILE);
        if !workflow_path.is_file() {
            return Err(SavedRunError::Read {
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not a run directory (no workflow.yaml)",
                ),
                path: workflow_path,
            });
        }
        let workflow =
            Workflow::from_yaml_file(&workflow_path).map_err(|source| SavedRunError::Workflow {
                path: workflow_path.clone(),
                source,
            })?;
        let transcript = read_lines(&path.join(TRANSCRIPT_FILE))?;
        let events = read_events(&path.join(EVENTS_FILE))?;
        let summary = std::fs::read_to_string(path.join(SUMMARY_FILE))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        Ok(SavedRun {
            path: path.to_owned(),
            workflow,
            transcript,
            events,
            summary,
        })
    }

    /// Whether the flow reached `end`: nothing is left to resume.
    pub fn has_ended(&self) -> bool {
        self.transcript
            .last()
            .is_some_and(|entry| entry.next == agentrun_spec::EdgeTarget::End)
    }

    /// The task the run was given, from its first start's event.
    pub fn task(&self) -> Option<&str> {
        self.events.iter().find_map(|event| match event {
            Event::RunStarted { task, .. } => Some(task.as_str()),
            _ => None,
        })
    }

    /// What the executor needs to go on after the last completed turn: the turns, the
    /// clock where the events stop (where the transcript's turns end, without events),
    /// and what was resident when the run first started.
    pub fn resume(&self) -> Resume {
        let mut resume = Resume::new(self.transcript.clone());
        if let Some(last_event_s) = self.events.iter().filter_map(event_time).reduce(f64::max) {
            resume.elapsed_s = last_event_s;
        }
        resume.resident_at_start = self.events.iter().find_map(|event| match event {
            Event::Resident { models, .. } => {
                Some(models.iter().map(|model| model.model.clone()).collect())
            }
            _ => None,
        });
        resume
    }
}

/// The events of an events file; an unterminated last line is left out.
pub fn read_events(path: &Path) -> Result<Vec<Event>, SavedRunError> {
    read_lines(path)
}

/// When an event happened, in seconds since the run started, if it says.
pub(crate) fn event_time(event: &Event) -> Option<f64> {
    match event {
        Event::RunStarted { at_s, .. }
        | Event::Resident { at_s, .. }
        | Event::TurnStarted { at_s, .. }
        | Event::TurnFinished { at_s, .. }
        | Event::LoadStarted { at_s, .. }
        | Event::LoadFinished { at_s, .. }
        | Event::PreloadWithdrawn { at_s, .. }
        | Event::PreloadAborted { at_s, .. }
        | Event::Unload { at_s, .. }
        | Event::BranchesStarted { at_s, .. }
        | Event::BranchArrived { at_s, .. }
        | Event::BranchFailed { at_s, .. }
        | Event::JoinOpened { at_s, .. } => Some(*at_s),
        Event::RunFinished { summary } => Some(summary.wall_s),
        _ => None,
    }
}

/// Parses the complete lines of a JSON-lines file; a missing file has none (a run
/// that died before its first turn completed).
fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, SavedRunError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SavedRunError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    complete_lines(&text)
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|source| SavedRunError::Line {
                path: path.to_owned(),
                line: index + 1,
                source,
            })
        })
        .collect()
}

/// The lines that end with a newline; an unterminated tail was cut off mid-write.
pub(crate) fn complete_lines(text: &str) -> std::str::Lines<'_> {
    text.rfind('\n').map_or("", |last| &text[..=last]).lines()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unterminated_tail_is_not_a_line() {
        let lines: Vec<&str> = complete_lines("{\"a\":1}\n{\"b\":2}\n{\"c\"").collect();
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(complete_lines("{\"c\"").count(), 0);
        assert_eq!(complete_lines("").count(), 0);
        assert_eq!(complete_lines("x\n").collect::<Vec<_>>(), ["x"]);
    }

    #[test]
    fn a_transcript_cut_mid_line_reads_up_to_its_last_complete_turn() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join(TRANSCRIPT_FILE);
        let entry = |turn: u32| TranscriptEntry {
            turn,
            agent: "coder".to_owned(),
            model: None,
            text: format!("turn {turn}"),
            choice: None,
            passed: None,
            next: agentrun_spec::EdgeTarget::Agent("coder".to_owned()),
            load_wait_s: 0.0,
            generation_s: 1.0,
            tokens: 3,
            resident: Vec::new(),
            started_s: f64::from(turn),
            tool_calls: Vec::new(),
            thinking: None,
            cut_off: false,
            context: None,
            branch: None,
        };
        let mut text = String::new();
        for turn in 1..=2 {
            text.push_str(&serde_json::to_string(&entry(turn)).expect("JSON"));
            text.push('\n');
        }
        let third = serde_json::to_string(&entry(3)).expect("JSON");
        text.push_str(&third[..third.len() / 2]);
        std::fs::write(&path, &text).expect("written");
        let read: Vec<TranscriptEntry> = read_lines(&path).expect("readable");
        assert_eq!(read, [entry(1), entry(2)]);

        // A broken line that is complete is an error, not silently dropped.
        std::fs::write(&path, "{\"turn\": 1}\n").expect("written");
        let error = read_lines::<TranscriptEntry>(&path).expect_err("a bad line");
        assert!(error.to_string().contains(":1:"), "{error}");
    }
}
