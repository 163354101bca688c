//! `agentrun simulate`: compare residency policies on the simulated machine, in virtual time.

use std::process::ExitCode;

use agentrun::{
    BranchMode, LoadModeChoice, Policy, SimConfig, SimulationOptions, SimulationReport,
};
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
    // Every policy loads the same way, so that the comparison measures planning alone.
    let own_mode = args.load_mode.unwrap_or(workflow.memory.load_mode);
    let simulate_as = |load_mode: LoadModeChoice, keep_events: bool, branches: BranchMode| {
        let options = SimulationOptions {
            seed: args.seed,
            policies: policies.clone(),
            load_mode: Some(load_mode),
            machine: SimConfig::target_mac(),
            keep_events,
            branches,
            hosts: Vec::new(),
        };
        agentrun::simulate(&workflow, &options)
            .with_context(|| format!("cannot simulate {}", args.workflow.display()))
    };
    let simulate = |load_mode: LoadModeChoice, keep_events: bool| {
        let branches = if args.sequential {
            BranchMode::Sequential
        } else {
            BranchMode::Planned
        };
        simulate_as(load_mode, keep_events, branches)
    };
    if let Some(path) = &args.hosts {
        return compare_hosts(&args, &workflow, &policies, own_mode, path);
    }
    let report = simulate(own_mode, args.report.is_some())?;
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
    // Without a load mode named, Ollama's default loading too: the gain of the load mode.
    let mmap = if args.load_mode.is_none() && own_mode != LoadModeChoice::Mmap {
        Some(simulate(LoadModeChoice::Mmap, false)?)
    } else {
        None
    };
    for report in mmap.iter().chain(std::iter::once(&report)) {
        print_table(report, &policies);
    }
    print_decomposition(&report, mmap.as_ref());
    let fans_out = workflow
        .flow
        .edges
        .iter()
        .any(|edge| matches!(edge.to, agentrun::EdgeTarget::Branches(_)));
    if fans_out {
        if args.sequential {
            print_fan_outs(&report, None, &policies);
        } else {
            let forced = Forced {
                sequential: simulate_as(own_mode, false, BranchMode::Sequential)?,
                all_at_once: simulate_as(own_mode, false, BranchMode::AllAtOnce)?,
            };
            print_fan_outs(&report, Some(&forced), &policies);
        }
    }
    println!(
        "\nbound: no policy can wait less on this future (computed in {:.0} us); oracle: this \
         planner given the future, not an optimum.\nvs bound = foresight (the wait above the \
         oracle's) + planner (the oracle's own excess over the bound).",
        report.bound_compute_s * 1e6
    );
    Ok(ExitCode::SUCCESS)
}

fn mode_name(report: &SimulationReport) -> &'static str {
    report
        .load_mode
        .map_or("each policy's own", |mode| mode.name())
}

fn print_table(report: &SimulationReport, policies: &[Policy]) {
    println!(
        "\nload mode {} for every policy; lower bound {:.1} s",
        mode_name(report),
        report.bound_s
    );
    println!(
        "{:<16} {:>11} {:>11} {:>11} {:>11} {:>11} {:>6} {:>8} {:>9} {:>9}",
        "policy",
        "load wait",
        "vs bound",
        "foresight",
        "planner",
        "vs oracle",
        "loads",
        "unloads",
        "GB read",
        "wall"
    );
    for policy in policies {
        let Some(figures) = report.policies.get(policy) else {
            continue;
        };
        let oracle = figures
            .excess_over_oracle_s
            .map_or_else(|| "-".to_owned(), |s| format!("{s:+.1} s"));
        println!(
            "{:<16} {:>9.1} s {:>+9.1} s {:>9.1} s {:>9.1} s {:>11} {:>6} {:>8} {:>9.1} {:>7.0} s",
            policy.name(),
            figures.load_wait_s,
            figures.excess_over_bound_s,
            figures.foresight_s,
            figures.planner_error_s,
            oracle,
            figures.loads,
            figures.unloads,
            figures.gb_read,
            figures.wall_s
        );
    }
}

/// The gain from planning at equal load mode, and from the load mode at equal policy.
fn print_decomposition(report: &SimulationReport, mmap: Option<&SimulationReport>) {
    let ratio = |a: f64, b: f64| {
        if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "-".to_owned()
        }
    };
    let wait = |report: &SimulationReport, policy: Policy| {
        report.policies.get(&policy).map(|f| f.load_wait_s)
    };
    println!("\ngain from planning (a baseline's wait over smart's, same load mode):");
    for report in mmap.into_iter().chain(std::iter::once(report)) {
        let Some(smart) = wait(report, Policy::Smart) else {
            continue;
        };
        let parts: Vec<String> = [Policy::Static, Policy::OllamaDefault]
            .iter()
            .filter_map(|&policy| {
                wait(report, policy).map(|w| format!("{} {}", policy.name(), ratio(w, smart)))
            })
            .collect();
        println!("  {:<10} {}", mode_name(report), parts.join(", "));
    }
    if let Some(mmap) = mmap {
        println!(
            "gain from the load mode ({} over mmap, same policy):",
            mode_name(report)
        );
        let parts: Vec<String> = report
            .policies
            .iter()
            .filter_map(|(&policy, figures)| {
                wait(mmap, policy)
                    .map(|w| format!("{} {}", policy.name(), ratio(w, figures.load_wait_s)))
            })
            .collect();
        println!("  {}", parts.join(", "));
    }
}

/// The same simulation with the branches forced one after the other, and forced all at once.
struct Forced {
    sequential: SimulationReport,
    all_at_once: SimulationReport,
}

/// How the fan-outs ran under each policy, and what the planner's choice gained over running
/// every fan-out's branches one after the other, and over running them all at once, on the
/// same drawn future.
fn print_fan_outs(report: &SimulationReport, forced: Option<&Forced>, policies: &[Policy]) {
    match forced {
        Some(_) => println!(
            "\nparallel branches as the planner decides vs forced sequential vs forced all at once, load mode {}:",
            mode_name(report)
        ),
        None => println!("\nparallel branches forced sequential (--sequential):"),
    }
    println!(
        "{:<16} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}  fan-outs",
        "policy",
        "wall",
        "load wait",
        "join wait",
        "seq. wall",
        "seq. wait",
        "all wall",
        "all wait"
    );
    let figures_of =
        |report: &SimulationReport, policy: &Policy| report.policies.get(policy).cloned();
    for policy in policies {
        let Some(figures) = report.policies.get(policy) else {
            continue;
        };
        let seq = forced.and_then(|f| figures_of(&f.sequential, policy));
        let all = forced.and_then(|f| figures_of(&f.all_at_once, policy));
        let wall = |f: &Option<agentrun::PolicyFigures>| {
            f.as_ref()
                .map_or_else(|| "-".to_owned(), |f| format!("{:.0} s", f.wall_s))
        };
        let wait = |f: &Option<agentrun::PolicyFigures>| {
            f.as_ref()
                .map_or_else(|| "-".to_owned(), |f| format!("{:.1} s", f.load_wait_s))
        };
        let ran: Vec<String> = figures
            .fan_outs
            .iter()
            .map(|(how, count)| format!("{count} {how}"))
            .collect();
        println!(
            "{:<16} {:>7.0} s {:>8.1} s {:>8.1} s {:>10} {:>10} {:>10} {:>10}  {}",
            policy.name(),
            figures.wall_s,
            figures.load_wait_s,
            figures.join_wait_s,
            wall(&seq),
            wait(&seq),
            wall(&all),
            wait(&all),
            ran.join(", ")
        );
    }
    let Some(forced) = forced else {
        return;
    };
    let (Some(smart), Some(seq), Some(all)) = (
        report.policies.get(&Policy::Smart),
        forced.sequential.policies.get(&Policy::Smart),
        forced.all_at_once.policies.get(&Policy::Smart),
    ) else {
        return;
    };
    println!(
        "smart: {:.0} s of wall time as the planner runs the branches, {:.0} s one after the other, {:.0} s all at once; load wait {:.1} s, {:.1} s, {:.1} s",
        smart.wall_s, seq.wall_s, all.wall_s, smart.load_wait_s, seq.load_wait_s, all.load_wait_s
    );
    println!(
        "  parallelism pays {:+.0} s against one after the other; the planner's choice {} all at once by {:.0} s",
        seq.wall_s - smart.wall_s,
        if smart.wall_s <= all.wall_s {
            "beats"
        } else {
            "trails"
        },
        (all.wall_s - smart.wall_s).abs()
    );
    const SHOWN: usize = 2;
    for reason in smart.serialized_because.iter().take(SHOWN) {
        println!("  not all at once: {reason}");
    }
    if smart.serialized_because.len() > SHOWN {
        println!(
            "  ... and {} more fan-outs with their own figures (--json lists them)",
            smart.serialized_because.len() - SHOWN
        );
    }
}

/// The workflow on several simulated hosts beside the one simulated Mac, on the same drawn
/// future: each policy's load wait on both, and the one machine's bound.
fn compare_hosts(
    args: &SimulateArgs,
    workflow: &agentrun::Workflow,
    policies: &[Policy],
    load_mode: LoadModeChoice,
    path: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let hosts = agentrun::SimHost::read_scenario(path)?;
    let simulate = |hosts: Vec<agentrun::SimHost>, keep_events: bool| {
        let options = SimulationOptions {
            seed: args.seed,
            policies: policies.to_vec(),
            load_mode: Some(load_mode),
            machine: SimConfig::target_mac(),
            keep_events,
            branches: if args.sequential {
                BranchMode::Sequential
            } else {
                BranchMode::Planned
            },
            hosts,
        };
        agentrun::simulate(workflow, &options)
            .with_context(|| format!("cannot simulate {}", args.workflow.display()))
    };
    let one = simulate(Vec::new(), false)?;
    let several = simulate(hosts.clone(), args.report.is_some())?;
    // The page draws the several hosts' runs, their model lanes grouped by host.
    if let Some(path) = &args.report {
        std::fs::write(path, agentrun::simulation_report_html(&several))
            .with_context(|| format!("cannot write the report {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "one_host": one,
                "hosts": several,
                "host_names": hosts.iter().map(|host| host.name.clone()).collect::<Vec<_>>(),
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} simulated turns (seed {}), load mode {}",
        one.workflow,
        one.turns,
        one.seed,
        load_mode.name()
    );
    println!(
        "one host: the simulated Mac, GPU budget {}; several: {}",
        workflow.memory.gpu_budget,
        hosts
            .iter()
            .map(|host| format!(
                "{} ({})",
                host.name,
                agentrun::gigabytes(host.machine.gpu_memory_bytes)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "\n{:<20} {:>12} {:>14} {:>12} {:>8} {:>8} {:>10} {:>10}",
        "policy",
        "one host",
        "several hosts",
        "saved",
        "loads 1",
        "loads n",
        "expired 1",
        "expired n"
    );
    let mut slower = Vec::new();
    for policy in policies {
        let (Some(alone), Some(fleet)) = (one.policies.get(policy), several.policies.get(policy))
        else {
            continue;
        };
        println!(
            "{:<20} {:>10.1} s {:>12.1} s {:>10.1} s {:>8} {:>8} {:>10} {:>10}",
            policy.name(),
            alone.load_wait_s,
            fleet.load_wait_s,
            alone.load_wait_s - fleet.load_wait_s,
            alone.loads,
            fleet.loads,
            alone.expiries,
            fleet.expiries
        );
        if fleet.load_wait_s > alone.load_wait_s {
            slower.push((policy, alone, fleet));
        }
    }
    println!(
        "{:<20} {:>10.1} s {:>14}",
        "bound (one machine)", one.bound_s, "-"
    );
    println!(
        "\nThe bound models one machine: no policy on the simulated Mac alone can wait less on \
         this future. It does not bound several hosts, which hold more and load in parallel."
    );
    // A policy that waits longer with more memory: say what the replays measured.
    for (policy, alone, fleet) in slower {
        println!(
            "{} waits {:.1} s longer on several hosts: its server expired idle models {} times \
             there ({} on one host), each reloaded when next used. More memory saves no load \
             that an expiry causes, and each such load runs at its own host's load speed.",
            policy.name(),
            fleet.load_wait_s - alone.load_wait_s,
            fleet.expiries,
            alone.expiries
        );
    }
    Ok(ExitCode::SUCCESS)
}
