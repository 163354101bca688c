//! `agentrun plan`: the residency plan of a workflow, phase by phase, without running it.

use std::process::ExitCode;
use std::sync::Arc;

use agentrun::{BackendError, ModelBackend, SimBackend, WarningKind, Workflow};
use anyhow::Context;

use crate::args::PlanArgs;
use crate::commands::server::Server;
use crate::commands::{load_workflow, resolve_budget};

pub(crate) async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let workflow = match load_workflow(&args.workflow) {
        Ok(workflow) => workflow,
        Err(code) => return Ok(code),
    };
    let Planned {
        details,
        knowledge,
        experience,
        workload,
        analysis,
    } = plan(&args, &workflow).await?;
    for found in details.values() {
        if let Some(note) = file_size_only_note(found) {
            eprintln!("note: {note}");
        }
    }
    // Several hosts: where each model lives, and what that saves over one host.
    let server = Server::from_args(&args.server, Some(&args.workflow))?;
    let auto_budget = resolve_budget(&workflow, &server)?.or(match workflow.memory.gpu_budget {
        agentrun::GpuBudget::Bytes(bytes) => Some(bytes),
        agentrun::GpuBudget::Auto => None,
    });
    let placement = match server.connect_fleet(auto_budget).await? {
        Some(fleet) => Some(
            agentrun::place_workflow(&fleet, &workflow, &workload)
                .await
                .context("cannot place the workflow's models on the hosts")?,
        ),
        None => None,
    };
    if args.json {
        match &placement {
            Some(placement) => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "analysis": analysis,
                    "placement": placement,
                }))?
            ),
            None => println!("{}", serde_json::to_string_pretty(&analysis)?),
        }
    } else {
        if let Some(placement) = &placement {
            println!("Placement on {} hosts\n{placement}", placement.hosts.len());
        }
        print_plan(&workflow, &workload, &analysis);
        print_fan_outs(&agentrun::preview_fan_outs(&workflow, &details, &workload)?);
        print_inputs(&workflow, &details, &experience);
        print_knowledge(&workflow, &details, knowledge.as_ref());
    }
    Ok(ExitCode::SUCCESS)
}

/// A workflow's plan and what it was made from.
pub(crate) struct Planned {
    /// The details of the workflow's models, by name.
    pub(crate) details: std::collections::BTreeMap<String, agentrun::ModelDetails>,
    /// What earlier runs learnt, per server with its file: one, or each host of several
    /// (none with `--no-learning`).
    pub(crate) knowledge: Option<agentrun::HostsKnowledge>,
    /// The measurements the plan starts from.
    pub(crate) experience: agentrun::Observations,
    /// The workload planned.
    pub(crate) workload: agentrun::Workload,
    /// The plan.
    pub(crate) analysis: agentrun::Analysis,
}

/// Plans `workflow` as `args` ask, with the model sizes of the server (or of the simulated
/// Mac's catalogue when no server answers).
pub(crate) async fn plan(args: &PlanArgs, workflow: &Workflow) -> anyhow::Result<Planned> {
    let server = Server::from_args(&args.server, Some(&args.workflow))?;
    let backend = model_source(&server).await?;
    let details = agentrun::model_details_of(&*backend, workflow)
        .await
        .context("cannot read the details of the workflow's models")?;
    let budget = resolve_budget(workflow, &server)?;
    let calibration = agentrun::Calibration::load(&agentrun::Calibration::default_path())?;
    let servers = match &server {
        Server::Hosts { hosts } => hosts.iter().map(|host| host.url.clone()).collect(),
        _ => vec![backend.endpoint()],
    };
    let knowledge = known(args, workflow, &servers)?;
    let mut experience = match &knowledge {
        // One server: its loads are the whole run's.
        Some(known) if servers.len() == 1 => known.hosts[0].2.experience(workflow, &details),
        // Several: each host's loads are its own.
        Some(known) => known.experience(workflow, &details),
        None => agentrun::Observations::default(),
    };
    // A decode speed measured in whole turns of earlier runs says more than calibration's.
    for (model, decode) in calibration.decode(&backend.endpoint(), &details) {
        experience.decode.entry(model).or_insert(decode);
    }
    let settings = agentrun::WorkloadSettings {
        gpu_budget: budget,
        measured_load_times: calibration.load_times(&backend.endpoint(), &details),
        experience: experience.clone(),
        ..agentrun::WorkloadSettings::default()
    };
    let workload = agentrun::build_workload(workflow, &details, &settings)?;
    let analysis = agentrun::analyze(&workload);
    Ok(Planned {
        details,
        knowledge,
        experience,
        workload,
        analysis,
    })
}

/// What earlier runs of the workflow on each server (one, or each host of several)
/// learnt, with its file; `None` with `--no-learning`. `--forget` deletes the files first.
/// A file that cannot be used is a warning.
fn known(
    args: &PlanArgs,
    workflow: &Workflow,
    servers: &[String],
) -> anyhow::Result<Option<agentrun::HostsKnowledge>> {
    if args.forget {
        for server in servers {
            let path = agentrun::Knowledge::default_path(&workflow.name, server);
            match std::fs::remove_file(&path) {
                Ok(()) => eprintln!("forgot what runs of {} on {server} learnt", workflow.name),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(error).with_context(|| format!("cannot delete {}", path.display()));
                }
            }
        }
    }
    if args.no_learning {
        return Ok(None);
    }
    let (known, warnings) = agentrun::HostsKnowledge::load(&workflow.name, servers);
    for error in warnings {
        eprintln!("warning: {error}");
    }
    Ok(Some(known))
}

/// Each agent's expected turn length and where it comes from, and the `num_ctx` that agents
/// sharing a model send.
fn print_inputs(
    workflow: &Workflow,
    details: &std::collections::BTreeMap<String, agentrun::ModelDetails>,
    experience: &agentrun::Observations,
) {
    println!("\nExpected turn lengths:");
    for agent in &workflow.agents {
        match experience.turns.get(&agent.name) {
            Some(samples) if samples.count > 0 => println!(
                "  {:<14} {:>7.1} s   measured: {} turns in earlier runs",
                agent.name,
                samples.mean().unwrap_or(0.0),
                samples.count
            ),
            _ => {
                let prior = agentrun::expected_turn(workflow, agent, details, experience);
                println!(
                    "  {:<14} {:>7.1} s   prior: {}",
                    agent.name, prior.seconds, prior.basis
                );
            }
        }
    }
    let shared = agentrun::shared_contexts(workflow, details);
    if shared.is_empty() {
        return;
    }
    println!(
        "\nShared models (every agent of a model sends the largest num_ctx, so all fit and the \
         model never reloads between them):"
    );
    for group in shared {
        let agents: Vec<String> = group
            .agents
            .iter()
            .map(|(name, num_ctx)| format!("{name} {num_ctx}"))
            .collect();
        println!(
            "  {}: num_ctx {} (asked: {})",
            group.models.join(" / "),
            group.num_ctx,
            agents.join(", ")
        );
    }
}

/// How the planner would run each fan-out's branches, and why: every option considered with
/// its wall time, load wait, groups and load order, the chosen one marked.
fn print_fan_outs(previews: &[agentrun::FanOutPreview]) {
    if previews.is_empty() {
        return;
    }
    println!(
        "\nFan-outs (decided again at each one from what the server holds; here with the model \
         of the agent that fans out resident):"
    );
    for preview in previews {
        let join = preview
            .join
            .as_deref()
            .map(|join| format!(", joined by {join}"))
            .unwrap_or_default();
        println!(
            "  {} -> [{}]{join}",
            preview.from,
            preview.branches.join(", ")
        );
        println!("    {}", preview.plan.reason);
        for option in &preview.plan.options {
            let marker = if option.concurrency == preview.plan.chosen.concurrency {
                "*"
            } else {
                " "
            };
            let groups: Vec<String> = option
                .groups
                .iter()
                .map(|group| {
                    let names: Vec<&str> = group
                        .iter()
                        .map(|&branch| preview.branches[branch].as_str())
                        .collect();
                    format!("[{}]", names.join(", "))
                })
                .collect();
            let loads = if option.load_order.is_empty() {
                "none".to_owned()
            } else {
                option.load_order.join(", ")
            };
            println!(
                "    {marker} {:<10} ~{:.0} s, {:.0} s load wait; {}; loads {loads}",
                option.concurrency.to_string(),
                option.wall_seconds,
                option.load_wait_seconds,
                groups.join(" then ")
            );
        }
    }
}

/// What earlier runs learnt, per server: each fact, from how many runs, and whether it
/// still applies.
fn print_knowledge(
    workflow: &Workflow,
    details: &std::collections::BTreeMap<String, agentrun::ModelDetails>,
    knowledge: Option<&agentrun::HostsKnowledge>,
) {
    let Some(known) = knowledge else {
        println!("\nLearnt from earlier runs: not used (--no-learning).");
        return;
    };
    let several = known.hosts.len() > 1;
    for (server, path, knowledge) in &known.hosts {
        let on = if several {
            format!("on host {server}")
        } else {
            "on this server".to_owned()
        };
        if knowledge.runs == 0 {
            let whose = if several {
                format!(" {on}")
            } else {
                String::new()
            };
            println!(
                "\nLearnt from earlier runs{whose}: nothing yet (kept in {}).",
                path.display()
            );
            continue;
        }
        println!(
            "\nLearnt from {} earlier run{} {on} ({}):",
            knowledge.runs,
            if knowledge.runs == 1 { "" } else { "s" },
            path.display()
        );
        for fact in knowledge.facts(workflow, details) {
            let stale = if fact.applies {
                ""
            } else {
                "   (no longer applies: the workflow or the model changed)"
            };
            println!(
                "  {:<34} {} [{} run{}]{stale}",
                fact.subject,
                fact.figure,
                fact.runs,
                if fact.runs == 1 { "" } else { "s" }
            );
        }
    }
}

/// What to say when a model's footprint is only its file size: without the layer
/// figures the KV cache cannot be predicted, so the footprint is the weights alone,
/// an underestimate that may not fit when the model loads.
fn file_size_only_note(details: &agentrun::ModelDetails) -> Option<String> {
    let known = details.block_count.is_some()
        && details.head_count_kv.is_some()
        && details.embedding_length.is_some();
    (!known).then(|| {
        format!(
            "the server gave no layer figures for {} (/api/show model_info), so its footprint \
             is only its file size, without the KV cache",
            details.name
        )
    })
}

/// The server to read model sizes from; without one, the simulator's catalogue
/// of the target Mac stands in, so a plan can be made before pulling anything.
async fn model_source(server: &Server) -> anyhow::Result<Arc<dyn ModelBackend>> {
    match server.connect().await {
        Ok(backend) => Ok(backend),
        Err(error)
            if let Server::Ollama { url } = server
                && error.chain().any(|cause| {
                    matches!(cause.downcast_ref(), Some(BackendError::Unreachable { .. }))
                }) =>
        {
            eprintln!(
                "note: no Ollama server at {url}; using the built-in catalogue of the simulated Mac"
            );
            Ok(Arc::new(SimBackend::target_mac(1.0)))
        }
        Err(error) => Err(error),
    }
}

fn print_plan(workflow: &Workflow, workload: &agentrun::Workload, analysis: &agentrun::Analysis) {
    let gb = agentrun::gigabytes;
    println!(
        "Residency plan for {} (GPU budget {}, at most {} models loaded)",
        workflow.name,
        gb(analysis.budget.gpu_bytes),
        analysis.budget.max_loaded_models
    );
    println!("\nModels:");
    for model in workload.models() {
        let times = model.load_times;
        println!(
            "  {:<28} {:>9}   load ~{:.0} s (mmap), ~{:.0} s (no-mmap)",
            model.name,
            gb(model.footprint_bytes),
            times.mmap_seconds,
            times.no_mmap_seconds
        );
    }
    println!("\nPhases:");
    for phase in &analysis.phases {
        let verdict = if phase.fits {
            format!("fits; load order {}", phase.load_order.join(", "))
        } else {
            format!("DOES NOT FIT (needs {})", gb(phase.min_gpu_bytes))
        };
        println!("  {}", phase.name);
        println!(
            "    models: {} ({}), {verdict}",
            if phase.models.is_empty() {
                "none".to_owned()
            } else {
                phase.models.join(", ")
            },
            gb(phase.footprint_bytes)
        );
        if !phase.also_resident.is_empty() {
            println!(
                "    stays resident beside it: {}",
                phase.also_resident.join(", ")
            );
        }
    }
    let sandboxes = crate::commands::sandbox::describe(workflow);
    if !sandboxes.is_empty() {
        println!("\nSandboxes of the agents' commands:");
        for line in sandboxes {
            println!("  {line}");
        }
        for warning in crate::commands::sandbox::warnings(workflow) {
            println!("  ! {warning}");
        }
    }
    if !analysis.transitions.is_empty() {
        println!("\nPhase changes and the loads they force:");
        for transition in &analysis.transitions {
            println!(
                "  {} -> {} (via {})",
                transition.from,
                transition.to,
                transition.via.join(", ")
            );
            if !transition.unloads.is_empty() {
                println!("    unload {}", transition.unloads.join(", "));
            }
            for load in &transition.loads {
                println!(
                    "    load {} ({}): ~{:.0} s, of which ~{:.0} s waited for",
                    load.model, load.load_mode, load.seconds, load.exposed_seconds
                );
            }
        }
    }
    if analysis.warnings.is_empty() {
        println!("\nNo warnings.");
        return;
    }
    println!("\nWarnings:");
    for warning in &analysis.warnings {
        println!("  ! {}", warning.message);
        println!("    fix: {}", warning.fix);
        if let WarningKind::BudgetUnderLargestModel {
            footprint_bytes, ..
        } = &warning.kind
        {
            // Leave the OS a safe margin beside the largest model.
            let wanted = footprint_bytes + 8_000_000_000;
            println!(
                "    on macOS, raise the GPU limit with `{}` (leave the OS at least 8 GB)",
                agentrun::macos_raise_command(wanted)
            );
        }
    }
}

#[cfg(test)]
mod tests;
