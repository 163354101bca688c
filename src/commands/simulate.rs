//! `agentrun simulate`: compare residency policies on the simulated machine, in virtual time.

use std::process::ExitCode;

use agentrun::{Policy, SimConfig, SimulationOptions};
use anyhow::Context;

use crate::args::{PolicySelection, SimulateArgs};
use crate::commands::load_workflow;

pub(crate) fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let workflow = match load_workflow(&args.workflow) {
        Ok(workflow) => workflow,
        Err(code) => return Ok(code),
    };
    let policies = match args.policy {
        PolicySelection::All => Policy::ALL.to_vec(),
        PolicySelection::One(policy) => vec![policy],
    };
    let options = SimulationOptions {
        seed: args.seed,
        policies,
        load_mode: args.load_mode,
        machine: SimConfig::target_mac(),
        keep_events: args.report.is_some(),
    };
    let report = agentrun::simulate(&workflow, &options)
        .with_context(|| format!("cannot simulate {}", args.workflow.display()))?;
    if let Some(path) = &args.report {
        std::fs::write(path, agentrun::simulation_report_html(&report))
            .with_context(|| format!("cannot write the report {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} simulated turns (seed {}) on the simulated Mac, GPU budget {}",
        report.workflow, report.turns, report.seed, workflow.memory.gpu_budget
    );
    println!(
        "{:<16} {:>11} {:>11} {:>11} {:>6} {:>8} {:>9} {:>11}",
        "policy", "load wait", "avoidable", "vs oracle", "loads", "unloads", "GB read", "wall"
    );
    for policy in &options.policies {
        let Some(figures) = report.policies.get(policy) else {
            continue;
        };
        println!(
            "{:<16} {:>9.1} s {:>9.1} s {:>9.1} s {:>6} {:>8} {:>9.1} {:>9.0} s",
            policy.name(),
            figures.load_wait_s,
            figures.avoidable_wait_s,
            figures.excess_over_oracle_s,
            figures.loads,
            figures.unloads,
            figures.gb_read,
            figures.wall_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
