//! `agentrun validate`: check workflows and report every problem at once.

use std::process::ExitCode;

use crate::args::ValidateArgs;
use crate::commands::{EXIT_BAD_INPUT, load_workflow};

pub(crate) fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for path in &args.workflows {
        match load_workflow(path) {
            Ok(workflow) => eprintln!(
                "{}: ok ({} agents, {} edges)",
                path.display(),
                workflow.agents.len(),
                workflow.flow.edges.len()
            ),
            Err(_) => failed = true,
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_BAD_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}
