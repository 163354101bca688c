//! `agentrun report`: a run's report as one self-contained HTML page.

use std::process::ExitCode;

use crate::args::ReportArgs;
use crate::commands::launch::write_report;

pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let output = args
        .output
        .unwrap_or_else(|| args.run_dir.join(agentrun::REPORT_FILE));
    write_report(&args.run_dir, &output)?;
    eprintln!("report written to {}", output.display());
    Ok(ExitCode::SUCCESS)
}
