//! `agentrun schema`: the JSON Schema of the workflow format, or of the events, on stdout.

use std::process::ExitCode;

use crate::args::SchemaArgs;

pub(crate) fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let schema = if args.events {
        agentrun::event_schema()
    } else {
        agentrun::workflow_schema()
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
