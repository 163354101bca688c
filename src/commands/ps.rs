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
    let backend = Server::from_args(&args.server, None)?.connect().await?;
    let models = backend.running_models().await?;
    if models.is_empty() {
        eprintln!("no models resident on {}", backend.endpoint());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:>9} {:>5} {:>12} {:>8}",
        "NAME", "SIZE", "GPU", "EXPIRES", "BUDGET"
    );
    let mut total = 0;
    for model in &models {
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
    Ok(ExitCode::SUCCESS)
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
