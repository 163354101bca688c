//! Learning across runs: what runs of a workflow on a server measured, kept on disk and
//! handed to the next run as the planner's prior.
//!
//! One file per workflow and server, `$AGENTRUN_HOME/knowledge/<workflow>-<server hash>.json`
//! (by default under `~/.agentrun`). Each fact is stored with a key made of what it depends
//! on, and a fact whose key no longer matches the workflow or the server's models is
//! forgotten rather than used:
//!
//! - an agent's turn length: the agent's definition (kind, model, prompt, options, tools,
//!   command, ...) and its model's digest;
//! - the edges taken from an agent: that agent's outgoing edges and their conditions;
//! - a model's load time per load mode: its digest and its load-time options (`num_ctx`, ...);
//! - a model's decode speed: its digest.
//!
//! The file is replaced atomically (written beside it, then renamed), so a run that dies
//! while saving leaves the previous file. A file that cannot be read or is of another
//! format is reported and ignored: the run starts from the workflow's priors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentrun_core::{DecodeSamples, ModelDetails, Observations, Samples, model_load_time_options};
use agentrun_memory::LoadMode;
use agentrun_spec::{EdgeTarget, Workflow};
use serde::{Deserialize, Serialize};

mod hosts;
#[cfg(test)]
mod tests;

pub use hosts::HostsKnowledge;

/// The format of knowledge files this version reads and writes.
const FORMAT_VERSION: u32 = 1;

/// What earlier runs of one workflow on one server measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Knowledge {
    /// The file format ([`FORMAT_VERSION`]).
    pub version: u32,
    /// The workflow's name.
    pub workflow: String,
    /// The server's address.
    pub server: String,
    /// How many runs contributed.
    pub runs: u64,
    /// Turn lengths by agent.
    pub agents: BTreeMap<String, TurnFacts>,
    /// Edges taken, by the agent they leave.
    pub edges: BTreeMap<String, EdgeFacts>,
    /// Load times by model.
    pub loads: BTreeMap<String, LoadFacts>,
    /// Decode speeds by model.
    pub decode: BTreeMap<String, DecodeFacts>,
}

/// An agent's measured turns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnFacts {
    /// What the figures depend on (see the module's documentation).
    pub key: String,
    /// How many runs measured them.
    pub runs: u64,
    /// The measured turns.
    pub turns: Samples,
}

/// The edges taken from one agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeFacts {
    /// What the counts depend on.
    pub key: String,
    /// How many runs counted them.
    pub runs: u64,
    /// How often each target followed, by agent name or `end`.
    pub taken: BTreeMap<String, u64>,
}

/// A model's measured loads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadFacts {
    /// What the figures depend on.
    pub key: String,
    /// How many runs measured a load.
    pub runs: u64,
    /// The measured loads by load mode.
    pub modes: BTreeMap<LoadMode, Samples>,
}

/// A model's measured generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecodeFacts {
    /// What the figures depend on.
    pub key: String,
    /// How many runs measured it.
    pub runs: u64,
    /// Tokens and seconds.
    pub generation: DecodeSamples,
}

/// Why a knowledge file was not used.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not a knowledge file (damaged, or cut short).
    #[error("{path} is not a knowledge file ({source}); it is ignored and replaced after the run")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// The file was written by another version of agentrun.
    #[error(
        "{path} has format {found}, this agentrun reads {FORMAT_VERSION}; it is ignored and replaced after the run"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version found.
        found: u32,
    },
}

/// A fact as `agentrun plan` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownFact {
    /// What it is about: `turns of coder`, `edges from router`, `load of qwen3:8b`, ...
    pub subject: String,
    /// The figure.
    pub figure: String,
    /// How many runs measured it.
    pub runs: u64,
    /// Whether it still applies to the workflow and the server's models.
    pub applies: bool,
}

impl Knowledge {
    /// The file that keeps what runs of `workflow` on `server` learnt, under `home`.
    pub fn path(home: &Path, workflow: &str, server: &str) -> PathBuf {
        let name = crate::run_dir::file_name_part(workflow);
        home.join("knowledge")
            .join(format!("{name}-{:016x}.json", fnv1a(server.as_bytes())))
    }

    /// The default file for a workflow and server: under `$AGENTRUN_HOME`, else `~/.agentrun`.
    pub fn default_path(workflow: &str, server: &str) -> PathBuf {
        Knowledge::path(&crate::calibration::agentrun_home(), workflow, server)
    }

    /// Reads a knowledge file; a missing file is empty knowledge.
    pub fn load(path: &Path) -> Result<Option<Knowledge>, KnowledgeError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(KnowledgeError::File {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let format_error = |source| KnowledgeError::Format {
            path: path.to_owned(),
            source,
        };
        let found = serde_json::from_str::<Versioned>(&text)
            .map_err(format_error)?
            .version;
        if found != FORMAT_VERSION {
            return Err(KnowledgeError::Version {
                path: path.to_owned(),
                found,
            });
        }
        serde_json::from_str(&text).map(Some).map_err(format_error)
    }

    /// Writes the file atomically: a reader sees the old file or the new one, never a part.
    pub fn save(&self, path: &Path) -> Result<(), KnowledgeError> {
        let file_error = |source| KnowledgeError::File {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(file_error)?;
        }
        let text = serde_json::to_string_pretty(self).expect("knowledge serializes") + "\n";
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, text).map_err(file_error)?;
        std::fs::rename(&temporary, path).map_err(|source| {
            let _ = std::fs::remove_file(&temporary);
            file_error(source)
        })
    }

    /// What still applies to `workflow` on a server whose models are `details`, as the next
    /// run's prior.
    pub fn experience(
        &self,
        workflow: &Workflow,
        details: &BTreeMap<String, ModelDetails>,
    ) -> Observations {
        let keys = Keys::of(workflow, details);
        let mut experience = Observations::default();
        for (agent, facts) in &self.agents {
            if keys.agents.get(agent) == Some(&facts.key) {
                experience.turns.insert(agent.clone(), facts.turns);
            }
        }
        for (from, facts) in &self.edges {
            if keys.edges.get(from) != Some(&facts.key) {
                continue;
            }
            for (to, count) in &facts.taken {
                experience.edge_taken(from, &target(to), *count);
            }
        }
        for (model, facts) in &self.loads {
            if keys.loads.get(model) == Some(&facts.key) {
                experience.loads.insert(model.clone(), facts.modes.clone());
            }
        }
        for (model, facts) in &self.decode {
            if keys.decode.get(model) == Some(&facts.key) {
                experience.decode.insert(model.clone(), facts.generation);
            }
        }
        experience
    }

    /// Adds what a run observed. A fact whose key changed starts again from the run's figures.
    pub fn absorb(
        &mut self,
        workflow: &Workflow,
        server: &str,
        details: &BTreeMap<String, ModelDetails>,
        observed: &Observations,
    ) {
        let keys = Keys::of(workflow, details);
        self.version = FORMAT_VERSION;
        self.workflow = workflow.name.clone();
        self.server = server.to_owned();
        self.runs += 1;
        for (agent, turns) in &observed.turns {
            let Some(key) = keys.agents.get(agent) else {
                continue;
            };
            let facts = fresh(self.agents.entry(agent.clone()).or_default(), key, |f| {
                &mut f.key
            });
            facts.runs += 1;
            facts.turns.merge(*turns);
        }
        let mut counted: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
        for (from, to, count) in &observed.edges {
            *counted
                .entry(from)
                .or_default()
                .entry(to.to_string())
                .or_default() += count;
        }
        for (from, taken) in counted {
            let Some(key) = keys.edges.get(from) else {
                continue;
            };
            let facts = fresh(self.edges.entry(from.to_owned()).or_default(), key, |f| {
                &mut f.key
            });
            facts.runs += 1;
            for (to, count) in taken {
                *facts.taken.entry(to).or_default() += count;
            }
        }
        for (model, modes) in &observed.loads {
            let Some(key) = keys.loads.get(model) else {
                continue;
            };
            let facts = fresh(self.loads.entry(model.clone()).or_default(), key, |f| {
                &mut f.key
            });
            facts.runs += 1;
            for (mode, samples) in modes {
                facts.modes.entry(*mode).or_default().merge(*samples);
            }
        }
        for (model, generation) in &observed.decode {
            let Some(key) = keys.decode.get(model) else {
                continue;
            };
            let facts = fresh(self.decode.entry(model.clone()).or_default(), key, |f| {
                &mut f.key
            });
            facts.runs += 1;
            facts.generation.tokens += generation.tokens;
            facts.generation.seconds += generation.seconds;
        }
    }

    /// Every fact kept, and whether it still applies to `workflow` on these models.
    pub fn facts(
        &self,
        workflow: &Workflow,
        details: &BTreeMap<String, ModelDetails>,
    ) -> Vec<KnownFact> {
        let keys = Keys::of(workflow, details);
        let mut facts = Vec::new();
        for (agent, known) in &self.agents {
            facts.push(KnownFact {
                subject: format!("turns of {agent}"),
                figure: format!(
                    "{:.1} s on average over {} turns",
                    known.turns.mean().unwrap_or(0.0),
                    known.turns.count
                ),
                runs: known.runs,
                applies: keys.agents.get(agent) == Some(&known.key),
            });
        }
        for (from, known) in &self.edges {
            let total: u64 = known.taken.values().sum();
            let shares: Vec<String> = known
                .taken
                .iter()
                .map(|(to, count)| format!("{to} {:.0}%", 100.0 * *count as f64 / total as f64))
                .collect();
            facts.push(KnownFact {
                subject: format!("edges from {from}"),
                figure: format!("{} ({total} turns)", shares.join(", ")),
                runs: known.runs,
                applies: keys.edges.get(from) == Some(&known.key),
            });
        }
        for (model, known) in &self.loads {
            let modes: Vec<String> = known
                .modes
                .iter()
                .map(|(mode, samples)| {
                    format!(
                        "{:.1} s {mode} ({} loads)",
                        samples.mean().unwrap_or(0.0),
                        samples.count
                    )
                })
                .collect();
            facts.push(KnownFact {
                subject: format!("load of {model}"),
                figure: modes.join(", "),
                runs: known.runs,
                applies: keys.loads.get(model) == Some(&known.key),
            });
        }
        for (model, known) in &self.decode {
            facts.push(KnownFact {
                subject: format!("generation of {model}"),
                figure: format!(
                    "{:.1} tokens/s",
                    known.generation.tokens_per_second().unwrap_or(0.0)
                ),
                runs: known.runs,
                applies: keys.decode.get(model) == Some(&known.key),
            });
        }
        facts
    }
}

/// Resets a fact whose key changed; returns it ready to add to.
fn fresh<'a, T: Default>(
    facts: &'a mut T,
    key: &str,
    key_of: impl Fn(&mut T) -> &mut String,
) -> &'a mut T {
    if key_of(facts) != key {
        *facts = T::default();
        *key_of(facts) = key.to_owned();
    }
    facts
}

fn target(name: &str) -> EdgeTarget {
    if name == "end" {
        EdgeTarget::End
    } else {
        EdgeTarget::Agent(name.to_owned())
    }
}

/// The key of every fact the workflow can have on these models.
struct Keys {
    agents: BTreeMap<String, String>,
    edges: BTreeMap<String, String>,
    loads: BTreeMap<String, String>,
    decode: BTreeMap<String, String>,
}

impl Keys {
    fn of(workflow: &Workflow, details: &BTreeMap<String, ModelDetails>) -> Keys {
        let digest = |model: &str| {
            details
                .get(model)
                .and_then(|d| d.digest.clone())
                .unwrap_or_else(|| format!("unknown digest of {model}"))
        };
        let agents = workflow
            .agents
            .iter()
            .map(|agent| {
                let model = agent.model().map(digest).unwrap_or_default();
                // The definition as a whole: any change to it may change how long turns take.
                let key = key_of(&format!("{agent:?}|{model}"));
                (agent.name.clone(), key)
            })
            .collect();
        let edges = workflow
            .agents
            .iter()
            .map(|agent| {
                let outgoing: Vec<_> = workflow
                    .flow
                    .edges
                    .iter()
                    .filter(|edge| edge.from == agent.name)
                    .map(|edge| format!("{}|{:?}", edge.to, edge.when))
                    .collect();
                (agent.name.clone(), key_of(&outgoing.join("\n")))
            })
            .collect();
        let loads = model_load_time_options(workflow, details)
            .into_iter()
            .map(|(model, options)| {
                let key = key_of(&format!("{}|{options:?}", digest(&model)));
                (model, key)
            })
            .collect();
        let decode = workflow
            .agents
            .iter()
            .filter_map(|agent| agent.model())
            .map(|model| (model.to_owned(), key_of(&digest(model))))
            .collect();
        Keys {
            agents,
            edges,
            loads,
            decode,
        }
    }
}

fn key_of(text: &str) -> String {
    format!("{:016x}", fnv1a(text.as_bytes()))
}

/// FNV-1a, 64 bits: a hash that stays the same across builds and platforms, unlike std's.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}
