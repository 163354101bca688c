//! `agentrun ps`: the models the server has resident, with their share of the budget.

use std::process::ExitCode;

use agentrun::gigabytes;
use anyhow::Context;

use crate::args::PsArgs;
use crate::commands::server::Server;

pub(crate) async fn run(args: PsArgs) -> anyhow::Result<ExitCode> {
    let budget = args
        .budget
        .as_deref()
        .map(agentrun::parse_size)
        .transpose()
        .context("invalid --budget")?;
    let server = Server::from_args(&args.server, None)?;
    // Several hosts: each with its own models, against its own budget.
    // A host whose budget is `auto` and unknown here shows no shares (0: unknown).
    let auto_budget = budget.or_else(agentrun::detect_gpu_budget).unwrap_or(0);
    if let Some(fleet) = server.connect_fleet(Some(auto_budget)).await? {
        agentrun::ModelBackend::running_models(&*fleet).await?;
        for (index, host) in fleet.hosts().iter().enumerate() {
            if index > 0 {
                println!();
            }
            let state = if host.up { "" } else { ", not answering" };
            let host_budget = (host.spec.budget_bytes > 0).then_some(host.spec.budget_bytes);
            println!(
                "host {} ({}, GPU budget {}{state})",
                host.spec.name,
                host.spec.url,
                host_budget.map_or_else(|| "unknown".to_owned(), gigabytes)
            );
            if host.resident.is_empty() {
                println!("no models resident");
            } else {
                print_models(&host.resident, host_budget);
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let backend = server.connect().await?;
    let models = backend.running_models().await?;
    if models.is_empty() {
        eprintln!("no models resident on {}", backend.endpoint());
        return Ok(ExitCode::SUCCESS);
    }
    print_models(&models, budget);
    Ok(ExitCode::SUCCESS)
}

/// The resident models, with their share of `budget` when there is one.
fn print_models(models: &[agentrun::RunningModel], budget: Option<u64>) {
    println!(
        "{:<28} {:>9} {:>5} {:>12} {:>8}",
        "NAME", "SIZE", "GPU", "EXPIRES", "BUDGET"
    );
    let mut total = 0;
    for model in models {
        total += model.size_bytes;
        let gpu = percent(model.size_vram_bytes, model.size_bytes);
        let share = budget
            .map(|budget| format!("{:.0}%", percent(model.size_bytes, budget)))
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<28} {:>9} {:>4.0}% {:>12} {:>8}",
            model.name,
            gigabytes(model.size_bytes),
            gpu,
            expires_in(model.expires_at.as_deref()),
            share
        );
    }
    if let Some(budget) = budget {
        println!(
            "{} of {} in use ({:.0}%)",
            gigabytes(total),
            gigabytes(budget),
            percent(total, budget)
        );
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// "4m 30s", "forever" (Ollama reports a date ~292 years ahead for keep_alive -1), or "-".
fn expires_in(expires_at: Option<&str>) -> String {
    let Some(expires_at) = expires_at else {
        return "-".to_owned();
    };
    let Ok(when) = expires_at.parse::<jiff::Timestamp>() else {
        return expires_at.to_owned();
    };
    let left = when.as_second() - jiff::Timestamp::now().as_second();
    match left {
        left if left > 100 * 365 * 24 * 3600 => "forever".to_owned(),
        left if left > 0 => {
            humantime::format_duration(std::time::Duration::from_secs(left as u64)).to_string()
        }
        _ => "now".to_owned(),
    }
}
