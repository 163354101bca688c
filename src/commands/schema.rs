//! `agentrun schema`: the JSON Schema of the workflow format on stdout.

use std::process::ExitCode;

pub(crate) fn run() -> anyhow::Result<ExitCode> {
    let schema = serde_json::to_string_pretty(&agentrun::workflow_schema())?;
    println!("{schema}");
    Ok(ExitCode::SUCCESS)
}
