//! Learning across runs on several hosts. Each host keeps its own file, as when it serves a
//! run alone (`<workflow>-<hash of its address>.json`): the loads measured on it go there
//! and nowhere else, so a host's speed is never mixed with another's, and adding a host
//! forgets nothing. The workflow's own facts (turn lengths, edges taken, decode speeds)
//! are written to every host's file of the run and read from the one that has seen the
//! most runs, so they carry over whatever the fleet, and a one-host run and a fleet run
//! including that host share what applies.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agentrun_core::{ModelDetails, Observations};
use agentrun_spec::Workflow;

use super::{Knowledge, KnowledgeError};

/// What earlier runs learnt, for a run on several hosts: each host's file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostsKnowledge {
    /// Per host, in the fleet's order: its address, its file and what the file holds.
    pub hosts: Vec<(String, PathBuf, Knowledge)>,
}

impl HostsKnowledge {
    /// Reads the file of each host at `urls` for `workflow`; a file that cannot be used
    /// is handed back as a warning beside empty knowledge for that host.
    pub fn load(workflow: &str, urls: &[String]) -> (HostsKnowledge, Vec<KnowledgeError>) {
        let mut warnings = Vec::new();
        let hosts = urls
            .iter()
            .map(|url| {
                let path = Knowledge::default_path(workflow, url);
                let knowledge = match Knowledge::load(&path) {
                    Ok(found) => found.unwrap_or_default(),
                    Err(error) => {
                        warnings.push(error);
                        Knowledge::default()
                    }
                };
                (url.clone(), path, knowledge)
            })
            .collect();
        (HostsKnowledge { hosts }, warnings)
    }

    /// The host file the workflow's own facts are read from: the one that has seen the
    /// most runs (the first of equals); `None` when no host has any.
    pub fn richest(&self) -> Option<&(String, PathBuf, Knowledge)> {
        self.hosts
            .iter()
            .filter(|(_, _, knowledge)| knowledge.runs > 0)
            .fold(
                None,
                |best: Option<&(String, PathBuf, Knowledge)>, host| match best {
                    Some(best) if best.2.runs >= host.2.runs => Some(best),
                    _ => Some(host),
                },
            )
    }

    /// The next run's prior: the workflow's facts from the richest file, and each host's
    /// loads (in [`Observations::hosts`]) from its own file.
    pub fn experience(
        &self,
        workflow: &Workflow,
        details: &BTreeMap<String, ModelDetails>,
    ) -> Observations {
        let mut experience = self
            .richest()
            .map(|(_, _, knowledge)| knowledge.experience(workflow, details))
            .unwrap_or_default();
        // Loads are a host's own: never taken from another's file for the whole run.
        experience.loads.clear();
        for (url, _, knowledge) in &self.hosts {
            let loads = knowledge.experience(workflow, details).loads;
            if !loads.is_empty() {
                experience.hosts.insert(url.clone(), loads);
            }
        }
        experience
    }

    /// Adds what a run observed to every host's file: the workflow's facts to each, and
    /// to each only the loads measured on that host. Returns the files and what saving
    /// each did.
    pub fn absorb_and_save(
        mut self,
        workflow: &Workflow,
        details: &BTreeMap<String, ModelDetails>,
        observed: &Observations,
    ) -> Vec<(PathBuf, Result<(), KnowledgeError>)> {
        let shared = Observations {
            loads: BTreeMap::new(),
            hosts: BTreeMap::new(),
            ..observed.clone()
        };
        self.hosts
            .iter_mut()
            .map(|(url, path, knowledge)| {
                let mine = Observations {
                    loads: observed
                        .hosts
                        .get(url.as_str())
                        .cloned()
                        .unwrap_or_default(),
                    ..shared.clone()
                };
                knowledge.absorb(workflow, url, details, &mine);
                (path.clone(), knowledge.save(path))
            })
            .collect()
    }
}
