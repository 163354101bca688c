//! `agentrun calibrate`: measure each model's load time per load mode on every server of
//! the run (each host of several measured on its own), kept per server address.

use std::collections::BTreeMap;
use std::process::ExitCode;

use agentrun::{BackendError, Calibration, ModelBackend, ModelDetails, Workflow};
use anyhow::Context;

use crate::args::CalibrateArgs;
use crate::commands::load_workflow;
use crate::commands::server::Server;

pub(crate) async fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let workflow = match load_workflow(&args.workflow) {
        Ok(workflow) => workflow,
        Err(code) => return Ok(code),
    };
    let server = Server::from_args(&args.server, Some(&args.workflow))?;
    let servers = server.connect_each().await?;
    let several = servers.len() > 1;
    let path = args.file.clone().unwrap_or_else(Calibration::default_path);
    let mut calibration = Calibration::load(&path)?;
    let mut measured_somewhere: BTreeMap<String, bool> = workflow
        .agents
        .iter()
        .filter_map(|agent| agent.model())
        .map(|model| (model.to_owned(), false))
        .collect();
    println!(
        "{:<28} {:>9} {:>10} {:>10} {:>12}",
        "MODEL", "SIZE", "MMAP", "NO-MMAP", "DECODE"
    );
    for (name, backend) in &servers {
        let details = if several {
            details_on_host(&**backend, &workflow, name).await?
        } else {
            agentrun::model_details_of(&**backend, &workflow)
                .await
                .context("cannot read the details of the workflow's models")?
        };
        let endpoint = backend.endpoint();
        let options = agentrun::model_load_time_options(&workflow, &details);
        let host = if several {
            format!("host '{name}' ({endpoint})")
        } else {
            endpoint.clone()
        };
        eprintln!(
            "calibrating {} models on {host}; each is loaded twice (mmap, then use_mmap: false)",
            options.len()
        );
        if several {
            println!("host {name} ({endpoint})");
        }
        for (model, load_options) in &options {
            let file_bytes = details.get(model).map_or(0, |d| d.file_bytes);
            eprintln!(
                "  {}loading {model} ({}) ...",
                if several {
                    format!("{name}: ")
                } else {
                    String::new()
                },
                agentrun::gigabytes(file_bytes)
            );
            let measured = agentrun::calibrate_model(&**backend, model, file_bytes, load_options)
                .await
                .with_context(|| format!("cannot calibrate '{model}' on {host}"))?;
            let decode = measured
                .decode
                .and_then(|decode| decode.tokens_per_second())
                .map_or_else(|| "-".to_owned(), |speed| format!("{speed:.1} tok/s"));
            println!(
                "{:<28} {:>6.1} GB {:>8.1} s {:>8.1} s {decode:>12}",
                model,
                file_bytes as f64 / 1e9,
                measured.mmap_s,
                measured.no_mmap_s
            );
            if let Some(vram) = measured.spilled_vram_bytes {
                eprintln!(
                    "  {model} did not fit the GPU of {host} alone: {} of it went there, kept as \
                     the host's GPU budget",
                    agentrun::gigabytes(vram)
                );
            }
            measured_somewhere.insert(model.clone(), true);
            calibration
                .servers
                .entry(endpoint.clone())
                .or_default()
                .insert(model.clone(), measured);
        }
        // Saved after each host, so a host failing later keeps what the others measured.
        calibration.save(&path)?;
    }
    let missing: Vec<&str> = measured_somewhere
        .iter()
        .filter(|(_, measured)| !**measured)
        .map(|(model, _)| model.as_str())
        .collect();
    eprintln!("saved to {}", path.display());
    if !missing.is_empty() {
        anyhow::bail!(
            "no host has {}: nothing measured for {}; pull {} on a host with `ollama pull`",
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            if missing.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The details of the workflow's models that one host of several has; a model it lacks is
/// measured on the hosts that have it.
async fn details_on_host(
    backend: &dyn ModelBackend,
    workflow: &Workflow,
    name: &str,
) -> anyhow::Result<BTreeMap<String, ModelDetails>> {
    let mut details = BTreeMap::new();
    for model in workflow.agents.iter().filter_map(|agent| agent.model()) {
        if details.contains_key(model) {
            continue;
        }
        match backend.model_details(model).await {
            Ok(found) => {
                details.insert(model.to_owned(), found);
            }
            Err(BackendError::ModelNotFound { .. }) => {
                eprintln!("  host '{name}' does not have {model}: not measured there");
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("cannot read the details of '{model}' on host '{name}'")
                });
            }
        }
    }
    Ok(details)
}
