//! The simulation section: defaults per agent kind, overlaid with what the file gives.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{duration, placeholder_agent};
use crate::agent::{AgentSpec, KindName};
use crate::check::Findings;
use crate::document::{AgentSimulationFile, RangeFile, SimulationFile};
use crate::node::FieldPath;
use crate::simulation::{AgentSimulation, SimulationSpec};
use crate::source::resolve_relative;

pub(super) fn convert_simulation(
    file: Option<&SimulationFile>,
    workflow_file: &Path,
    agents: &[AgentSpec],
    broken_agents: &BTreeSet<String>,
    findings: &mut Findings,
) -> SimulationSpec {
    let mut simulation = SimulationSpec::defaults_for(agents);
    let Some(file) = file else {
        return simulation;
    };
    let path = FieldPath::root().key("simulation");
    simulation.seed = file.seed.unwrap_or(SimulationSpec::DEFAULT_SEED);
    simulation.max_turns = file
        .max_turns
        .map(|turns| u32::try_from(turns).unwrap_or(u32::MAX))
        .unwrap_or(SimulationSpec::DEFAULT_MAX_TURNS);
    simulation.workspace = file
        .workspace
        .as_deref()
        .and_then(|relative| workspace(workflow_file, relative, &path.key("workspace"), findings));
    let kinds: BTreeMap<&str, &AgentSpec> = agents
        .iter()
        .map(|agent| (agent.name.as_str(), agent))
        .collect();
    for (name, behaviour) in file.agents.iter().flat_map(|agents| agents.0.iter()) {
        let agent_path = path.key("agents").key(name);
        let default = kinds
            .get(name.as_str())
            .map(|agent| AgentSimulation::default_for(agent));
        let kind = kinds.get(name.as_str()).map(|agent| agent.kind_name());
        if let Some(kind) = kind.filter(|_| !broken_agents.contains(name)) {
            check_simulation_fields(kind, behaviour, &agent_path, findings);
        }
        let mut result =
            default.unwrap_or_else(|| AgentSimulation::default_for(&placeholder_agent(name)));
        if let Some(tokens) = &behaviour.reply_tokens {
            result.reply_tokens = match tokens {
                RangeFile::One(value) => *value..=*value,
                RangeFile::Between([low, high]) => *low..=*high,
            };
        }
        if let Some(range) = &behaviour.duration {
            let field = agent_path.key("duration");
            let parsed = match range {
                RangeFile::One(value) => duration(value, &field, findings).map(|d| d..=d),
                RangeFile::Between([low, high]) => {
                    match (
                        duration(low, &field.index(0), findings),
                        duration(high, &field.index(1), findings),
                    ) {
                        (Some(low), Some(high)) => Some(low..=high),
                        _ => None,
                    }
                }
            };
            if let Some(parsed) = parsed {
                result.duration = parsed;
            }
        }
        result.tokens_per_second = behaviour.tokens_per_second.or(result.tokens_per_second);
        result.pass_rate = behaviour.pass_rate.unwrap_or(result.pass_rate);
        result.match_rate = behaviour.match_rate.unwrap_or(result.match_rate);
        if let Some(weights) = &behaviour.choices {
            // Once any weight is given, the choices left out weigh nothing.
            for weight in result.choices.values_mut() {
                *weight = 0.0;
            }
            for (choice, weight) in &weights.0 {
                result.choices.insert(choice.clone(), *weight);
            }
        }
        simulation.agents.insert(name.clone(), result);
    }
    simulation
}

/// `simulation.workspace`: a directory, relative to the workflow file, made absolute so the
/// resolved workflow kept in a run's directory still names it.
fn workspace(
    workflow_file: &Path,
    relative: &str,
    path: &FieldPath,
    findings: &mut Findings,
) -> Option<PathBuf> {
    let resolved = resolve_relative(workflow_file, relative);
    let resolved = std::path::absolute(&resolved).unwrap_or(resolved);
    if resolved.is_dir() {
        return Some(resolved);
    }
    let problem = if resolved.exists() {
        "is not a directory"
    } else {
        "does not exist"
    };
    findings.error(
        path.clone(),
        format!("the workspace `{}` {problem}", resolved.display()),
        Some(format!(
            "name a directory; the path is relative to the workflow file, `{}`",
            workflow_file.display()
        )),
    );
    None
}

/// Simulation fields that mean nothing for the agent's kind.
fn check_simulation_fields(
    kind: KindName,
    behaviour: &AgentSimulationFile,
    path: &FieldPath,
    findings: &mut Findings,
) {
    let given: [(&str, bool, &[KindName]); 4] = [
        (
            "reply_tokens",
            behaviour.reply_tokens.is_some(),
            &[KindName::Llm, KindName::Human],
        ),
        (
            "tokens_per_second",
            behaviour.tokens_per_second.is_some(),
            &[KindName::Llm],
        ),
        (
            "duration",
            behaviour.duration.is_some(),
            &[KindName::Command, KindName::Human],
        ),
        (
            "pass_rate",
            behaviour.pass_rate.is_some(),
            &[KindName::Command],
        ),
    ];
    let used: BTreeSet<&str> = given
        .iter()
        .filter(|(_, given, _)| *given)
        .map(|(field, _, _)| *field)
        .collect();
    for (field, _, kinds) in given.iter().filter(|(field, _, _)| used.contains(field)) {
        if !kinds.contains(&kind) {
            let suits: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
            findings.error(
                path.key(field),
                format!("`{field}` does not apply to {}", kind.an_agent()),
                Some(format!(
                    "it applies to {} agents; remove it",
                    suits.join(" and ")
                )),
            );
        }
    }
}
