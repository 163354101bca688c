//! `agentrun calibrate`: measure each model's load time per load mode on this server.

use std::process::ExitCode;

use agentrun::Calibration;
use anyhow::Context;

use crate::args::CalibrateArgs;
use crate::commands::load_workflow;
use crate::commands::server::Server;

pub(crate) async fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let workflow = match load_workflow(&args.workflow) {
        Ok(workflow) => workflow,
        Err(code) => return Ok(code),
    };
    let backend = Server::from_args(&args.server, Some(&args.workflow))?
        .connect()
        .await?;
    let details = agentrun::model_details_of(&*backend, &workflow)
        .await
        .context("cannot read the details of the workflow's models")?;
    let path = args.file.clone().unwrap_or_else(Calibration::default_path);
    let mut calibration = Calibration::load(&path)?;
    let server = backend.endpoint();
    let options = agentrun::model_load_time_options(&workflow, &details);
    eprintln!(
        "calibrating {} models on {server}; each is loaded twice (mmap, then use_mmap: false)",
        options.len()
    );
    println!(
        "{:<28} {:>9} {:>10} {:>10} {:>12}",
        "MODEL", "SIZE", "MMAP", "NO-MMAP", "DECODE"
    );
    for (model, load_options) in &options {
        let file_bytes = details.get(model).map_or(0, |d| d.file_bytes);
        eprintln!(
            "  loading {model} ({}) ...",
            agentrun::gigabytes(file_bytes)
        );
        let measured = agentrun::calibrate_model(&*backend, model, file_bytes, load_options)
            .await
            .with_context(|| format!("cannot calibrate '{model}'"))?;
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
        calibration
            .servers
            .entry(server.clone())
            .or_default()
            .insert(model.clone(), measured);
    }
    calibration.save(&path)?;
    eprintln!("saved to {}", path.display());
    Ok(ExitCode::SUCCESS)
}
