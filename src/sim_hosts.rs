//! Several simulated hosts for `simulate`: each an in-process simulator with its own
//! budget, count cap, catalogue, load speeds and decode speed, read from a hosts scenario
//! file:
//!
//! ```yaml
//! hosts:
//!   - name: mac
//!     labels: [big]
//!     machine:                 # ollama-sim settings; the built-in Mac for what is left out
//!       gpu_memory_bytes: 54GB
//!   - name: linux
//!     labels: [linux]
//!     machine:
//!       gpu_memory_bytes: 24GB
//!       load: { fixed_seconds: 3, cold_mmap_bytes_per_second: 2.0e9 }
//!       decode: { memory_bandwidth_bytes_per_second: 936e9 }
//! ```

use std::path::Path;

use ollama_sim::SimConfig;
use serde::Deserialize;

/// One simulated host of a fleet.
#[derive(Debug, Clone)]
pub struct SimHost {
    /// Its name in placements and reports.
    pub name: String,
    /// Its labels, which agents may require or prefer.
    pub labels: Vec<String>,
    /// The simulated machine: budget, count cap, catalogue, load and decode speeds.
    pub machine: SimConfig,
}

/// Why a hosts scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SimHostsError {
    /// The file cannot be read.
    #[error("cannot read the hosts scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a hosts scenario.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong, with its place.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    hosts: Vec<HostFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    name: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    machine: SimConfig,
}

impl SimHost {
    /// Reads a hosts scenario: names unique, labels well formed, each machine valid.
    pub fn read_scenario(path: &Path) -> Result<Vec<SimHost>, SimHostsError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SimHostsError::Read {
            path: shown.clone(),
            source,
        })?;
        let invalid = |message: String| SimHostsError::Invalid {
            path: shown.clone(),
            message,
        };
        let file: ScenarioFile =
            serde_saphyr::from_str(&text).map_err(|error| invalid(error.to_string()))?;
        if file.hosts.is_empty() {
            return Err(invalid("`hosts` names no host".to_owned()));
        }
        let mut hosts: Vec<SimHost> = Vec::new();
        for (index, host) in file.hosts.into_iter().enumerate() {
            if hosts.iter().any(|known| known.name == host.name) {
                return Err(invalid(format!(
                    "hosts[{index}].name: '{}' is given twice",
                    host.name
                )));
            }
            if let Some(label) = host
                .labels
                .iter()
                .find(|l| !agentrun_spec::is_host_label(l))
            {
                return Err(invalid(format!(
                    "hosts[{index}].labels: '{label}' is not a label (lowercase letters, digits, `-` and `_`)"
                )));
            }
            let machine = host
                .machine
                .validated()
                .map_err(|error| invalid(format!("hosts[{index}].machine: {error}")))?;
            hosts.push(SimHost {
                name: host.name,
                labels: host.labels,
                machine,
            });
        }
        Ok(hosts)
    }
}

#[cfg(test)]
mod tests;
