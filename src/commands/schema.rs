//! `agentrun schema`: the JSON Schema of the workflow format, of an agent file, or of the
//! events, on stdout. The repository keeps each in `docs/`.

use std::process::ExitCode;

use crate::args::SchemaArgs;

pub(crate) fn run(args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let schema = if args.events {
        agentrun::event_schema()
    } else if args.agent {
        agentrun::agent_file_schema()
    } else {
        agentrun::workflow_schema()
    };
    println!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
