//! `agentrun runs`: the runs kept on disk, with how each ended.

use std::process::ExitCode;

use crate::args::RunsArgs;

pub(crate) fn run(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let runs = agentrun::list_runs(&args.runs_dir)?;
    if runs.is_empty() {
        eprintln!(
            "no runs under {}",
            args.runs_dir.join(agentrun::RUNS_DIR).display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<48} {:<12} {:>6} {:>10}",
        "RUN", "STATUS", "TURNS", "LOAD WAIT"
    );
    for path in runs {
        let summary = std::fs::read_to_string(path.join(agentrun::SUMMARY_FILE))
            .ok()
            .and_then(|text| serde_json::from_str::<agentrun::RunSummary>(&text).ok());
        let turns = std::fs::read_to_string(path.join(agentrun::TRANSCRIPT_FILE))
            .map(|text| text.lines().count())
            .unwrap_or(0);
        let (status, wait) = match &summary {
            Some(summary) => (
                summary.status.as_str(),
                format!("{:.1} s", summary.load_wait_s),
            ),
            // No summary: the process died mid-run; its transcript is intact.
            None => ("interrupted", "-".to_owned()),
        };
        println!(
            "{:<48} {:<12} {:>6} {:>10}",
            path.display(),
            status,
            turns,
            wait
        );
    }
    Ok(ExitCode::SUCCESS)
}
