//! One module per subcommand; each turns its arguments into library calls.

pub(crate) mod calibrate;
mod launch;
pub(crate) mod plan;
pub(crate) mod ps;
pub(crate) mod report;
pub(crate) mod resume;
pub(crate) mod run;
pub(crate) mod runs;
mod sandbox;
pub(crate) mod schema;
pub(crate) mod simulate;
pub(crate) mod validate;

use std::path::Path;
use std::process::ExitCode;

use agentrun::{BackendError, Workflow};

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
            let text = error.to_string();
            eprint!("{text}");
            if !text.ends_with('\n') {
                eprintln!();
            }
            let count = error.diagnostics.len();
            eprintln!(
                "error: {} has {count} problem{}",
                path.display(),
                if count == 1 { "" } else { "s" }
            );
            Err(ExitCode::from(EXIT_BAD_INPUT))
        }
    }
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

/// Connects to the server the arguments name, or starts the built-in simulator,
/// and checks that it answers. `workflow` locates the simulator's default script.
pub(crate) async fn connect(
    server: &crate::args::ServerArgs,
    workflow: Option<&Path>,
) -> anyhow::Result<std::sync::Arc<dyn agentrun::ModelBackend>> {
    use anyhow::Context;
    let backend: std::sync::Arc<dyn agentrun::ModelBackend> = if server.sim {
        let backend = agentrun::SimBackend::target_mac(server.time_scale);
        if let Some(script) = sim_script(server, workflow) {
            let loaded = agentrun::SimScript::from_file(&script).with_context(|| {
                format!("cannot read the simulator script {}", script.display())
            })?;
            tracing::info!(script = %script.display(), "simulated replies");
            backend.simulator().set_script(loaded);
        }
        std::sync::Arc::new(backend)
    } else {
        std::sync::Arc::new(
            agentrun::OllamaBackend::new(&server.url, ollama_config())
                .with_context(|| format!("invalid Ollama address {}", server.url))?,
        )
    };
    backend
        .running_models()
        .await
        .with_context(|| format!("the model server at {} does not answer", backend.endpoint()))?;
    Ok(backend)
}

/// `--sim-script`, else `sim/NAME.yaml` beside the workflow `NAME.yaml` when it exists.
pub(crate) fn sim_script(
    server: &crate::args::ServerArgs,
    workflow: Option<&Path>,
) -> Option<std::path::PathBuf> {
    if let Some(script) = &server.sim_script {
        return Some(script.clone());
    }
    let workflow = workflow?;
    let script = workflow.parent()?.join("sim").join(workflow.file_name()?);
    script.is_file().then_some(script)
}

/// Timeouts for a local Ollama server. Loads get half an hour: Ollama aborts a
/// load whose client gives up, so a short limit would only make it start over.
fn ollama_config() -> agentrun::OllamaConfig {
    use std::time::Duration;
    agentrun::OllamaConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
        load_timeout: Duration::from_secs(30 * 60),
        stream_timeout: Duration::from_secs(120),
    }
}

/// The GPU budget when the workflow says `auto`: the simulated machine's with
/// `--sim`, else this machine's. `None` when the workflow gives a size.
pub(crate) fn resolve_budget(
    workflow: &agentrun::Workflow,
    sim: bool,
) -> anyhow::Result<Option<u64>> {
    if workflow.memory.gpu_budget != agentrun::GpuBudget::Auto {
        return Ok(None);
    }
    if sim {
        return Ok(Some(agentrun::SimBackend::target_mac(1.0).gpu_budget()));
    }
    match agentrun::detect_gpu_budget() {
        Some(bytes) => Ok(Some(bytes)),
        None => anyhow::bail!(
            "`memory.gpu_budget: auto` but this machine's GPU memory could not be read; \
             set `memory.gpu_budget` in the workflow (for example `54GB`)"
        ),
    }
}
