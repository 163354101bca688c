//! One module per subcommand; each turns its arguments into library calls.

pub(crate) mod calibrate;
pub(crate) mod hosts;
pub(crate) mod launch;
pub(crate) mod mcp;
pub(crate) mod plan;
pub(crate) mod ps;
pub(crate) mod report;
pub(crate) mod resume;
pub(crate) mod run;
pub(crate) mod runs;
mod sandbox;
pub(crate) mod schema;
pub(crate) mod server;
pub(crate) mod simulate;
pub(crate) mod tools;
pub(crate) mod validate;

use std::path::Path;
use std::process::ExitCode;

use agentrun::{BackendError, Workflow};

use crate::commands::server::Server;

/// Exit code for bad input.
pub(crate) const EXIT_BAD_INPUT: u8 = 2;

/// Loads a workflow, printing its diagnostics on failure.
///
/// `Err` carries the exit code to return: the diagnostics are already printed.
pub(crate) fn load_workflow(path: &Path) -> Result<Workflow, ExitCode> {
    match Workflow::from_yaml_file(path) {
        Ok(workflow) => {
            for warning in &workflow.warnings {
                let text = warning.to_string();
                eprint!("{text}");
                if !text.ends_with('\n') {
                    eprintln!();
                }
            }
            Ok(workflow)
        }
        Err(error) => {
            eprint!("{}", load_failure(path, &error));
            Err(ExitCode::from(EXIT_BAD_INPUT))
        }
    }
}

/// What `load_workflow` prints when `path` cannot be loaded: every problem with its
/// position, then how many there are.
pub(crate) fn load_failure(path: &Path, error: &agentrun::SpecError) -> String {
    let mut text = error.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let count = error.diagnostics.len();
    text.push_str(&format!(
        "error: {} has {count} problem{}\n",
        path.display(),
        if count == 1 { "" } else { "s" }
    ));
    text
}

/// A hint for errors whose fix is known.
pub(crate) fn hint_for(error: &anyhow::Error) -> Option<String> {
    let backend = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<BackendError>())?;
    match backend {
        BackendError::Unreachable { url, .. } => Some(format!(
            "start Ollama (`ollama serve`) or point --ollama / OLLAMA_HOST at it (tried {url}); \
             or add --sim to run on the built-in simulator"
        )),
        BackendError::ModelNotFound { model, .. } => Some(format!("run `ollama pull {model}`")),
        BackendError::Busy { .. } => {
            Some("the server's queue is full; try again, or raise OLLAMA_MAX_QUEUE".to_owned())
        }
        _ => None,
    }
}

/// The server machine's memory for the planner's page-cache estimate: the simulated Mac's,
/// or this machine's when the Ollama server runs here; `None` for a remote server, whose
/// RAM is unknown (the planner then plans loads from their load times alone).
pub(crate) fn host_memory(server: &Server) -> Option<agentrun::HostMemory> {
    match server {
        Server::Simulator { .. } => Some(agentrun::SimBackend::target_mac(1.0).host_memory()),
        Server::Ollama { url } if is_local(url) => agentrun::detect_host_memory(),
        // A remote server, or several hosts with one page cache each.
        Server::Ollama { .. } | Server::Hosts { .. } => None,
    }
}

/// Whether an `OLLAMA_HOST`-style address names this machine.
pub(crate) fn is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    matches!(host, "" | "localhost" | "127.0.0.1" | "0.0.0.0" | "::1")
}

/// The GPU budget when the workflow says `auto`: the simulated machine's with
/// `--sim`, else this machine's. `None` when the workflow gives a size.
pub(crate) fn resolve_budget(
    workflow: &agentrun::Workflow,
    server: &Server,
) -> anyhow::Result<Option<u64>> {
    if workflow.memory.gpu_budget != agentrun::GpuBudget::Auto {
        return Ok(None);
    }
    if server.is_simulator() {
        return Ok(Some(agentrun::SimBackend::target_mac(1.0).gpu_budget()));
    }
    // Several hosts plan with their own budgets; the largest stands for the run's.
    let largest_host = match server {
        Server::Hosts { hosts } => hosts.iter().filter_map(|host| host.gpu_budget).max(),
        _ => None,
    };
    match agentrun::detect_gpu_budget().or(largest_host) {
        Some(bytes) => Ok(Some(bytes)),
        None => anyhow::bail!(
            "`memory.gpu_budget: auto` but this machine's GPU memory could not be read; \
             set `memory.gpu_budget` in the workflow (for example `54GB`)"
        ),
    }
}

#[cfg(test)]
mod host_tests {
    use super::is_local;

    #[test]
    fn local_addresses_are_recognised() {
        assert!(is_local("http://127.0.0.1:11434"));
        assert!(is_local("localhost:11434"));
        assert!(is_local("http://[::1]:11434/"));
        assert!(!is_local("http://gpu-box.lan:11434"));
        assert!(!is_local("10.0.0.7:11434"));
    }
}
