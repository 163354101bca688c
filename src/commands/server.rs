//! The model server a command talks to: an Ollama server, or the built-in simulator.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::args::ServerArgs;
use crate::commands::hosts::{
    HostEntry, connect_host, connect_hosts, hosts_from_urls, read_hosts_file, split_hosts_variable,
};

/// Where Ollama listens unless told otherwise.
pub(crate) const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";

/// How long a simulated second takes unless told otherwise: a run finishes in seconds.
pub(crate) const DEFAULT_TIME_SCALE: f64 = 0.01;

/// The model server of a run: what the flags chose, and what `run.json` keeps for `resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", from = "ServerFile")]
pub(crate) enum Server {
    /// An Ollama server at this address (as `OLLAMA_HOST` writes it).
    Ollama {
        /// The address.
        url: String,
    },
    /// Several Ollama servers, each serving the models placed on it.
    Hosts {
        /// The hosts, in order of preference.
        hosts: Vec<HostEntry>,
    },
    /// The built-in simulator of the target Mac, in-process.
    Simulator {
        /// How long a simulated second takes, in seconds.
        time_scale: f64,
        /// Scripted replies (absolute path); without one, replies are drawn from the
        /// workflow's `simulation` section.
        script: Option<PathBuf>,
    },
}

impl Server {
    /// The server the flags choose. `workflow` locates the simulator's default script,
    /// `sim/NAME.yaml` beside the workflow `NAME.yaml`.
    pub(crate) fn from_args(args: &ServerArgs, workflow: Option<&Path>) -> anyhow::Result<Server> {
        if !args.sim {
            return match (args.urls.as_slice(), &args.hosts) {
                ([url], _) => Ok(Server::Ollama { url: url.clone() }),
                ([], Some(file)) => Ok(Server::Hosts {
                    hosts: read_hosts_file(file)?,
                }),
                ([], None) => Server::from_environment(),
                (urls, _) => Ok(Server::Hosts {
                    hosts: hosts_from_urls(urls)?,
                }),
            };
        }
        let script = args
            .sim_script
            .clone()
            .or_else(|| default_script(workflow?))
            .map(|path| std::path::absolute(&path).unwrap_or(path));
        Ok(Server::Simulator {
            time_scale: args.time_scale,
            script,
        })
    }

    /// The server the environment names: the hosts file of `AGENTRUN_HOSTS`, else the
    /// addresses of `OLLAMA_HOSTS` (separated by commas), else `OLLAMA_HOST` as Ollama's own
    /// clients read it, else the default address.
    pub(crate) fn from_environment() -> anyhow::Result<Server> {
        if let Some(file) = std::env::var_os("AGENTRUN_HOSTS").filter(|file| !file.is_empty()) {
            return Ok(Server::Hosts {
                hosts: read_hosts_file(Path::new(&file))?,
            });
        }
        if let Ok(value) = std::env::var("OLLAMA_HOSTS") {
            let urls = split_hosts_variable(&value);
            match urls.as_slice() {
                [] => {}
                [url] => return Ok(Server::Ollama { url: url.clone() }),
                urls => {
                    return Ok(Server::Hosts {
                        hosts: hosts_from_urls(urls).context("in OLLAMA_HOSTS")?,
                    });
                }
            }
        }
        Ok(Server::Ollama {
            url: std::env::var("OLLAMA_HOST").unwrap_or_else(|_| DEFAULT_OLLAMA_URL.to_owned()),
        })
    }

    /// Whether this is the built-in simulator.
    pub(crate) fn is_simulator(&self) -> bool {
        matches!(self, Server::Simulator { .. })
    }

    /// Connects to every host of a run on several, checking that each answers; `None` for
    /// one server. `auto_budget` is the run's budget, for a host whose own is not known.
    pub(crate) async fn connect_fleet(
        &self,
        auto_budget: Option<u64>,
    ) -> anyhow::Result<Option<Arc<agentrun::Fleet>>> {
        match self {
            Server::Hosts { hosts } => Ok(Some(
                connect_hosts(hosts, auto_budget, true, ollama_config).await?,
            )),
            _ => Ok(None),
        }
    }

    /// Every server of the run on its own, each checked to answer, with its name: each host
    /// of several (what is measured on one is kept under its own address), else the one
    /// server.
    pub(crate) async fn connect_each(
        &self,
    ) -> anyhow::Result<Vec<(String, Arc<dyn agentrun::ModelBackend>)>> {
        match self {
            Server::Hosts { hosts } => {
                let mut each = Vec::new();
                for host in hosts {
                    each.push((host.name.clone(), connect_host(host, ollama_config).await?));
                }
                Ok(each)
            }
            _ => {
                let backend = self.connect().await?;
                Ok(vec![(backend.endpoint(), backend)])
            }
        }
    }

    /// Connects (or starts the simulator) and checks that the server answers.
    pub(crate) async fn connect(&self) -> anyhow::Result<Arc<dyn agentrun::ModelBackend>> {
        let backend: Arc<dyn agentrun::ModelBackend> = match self {
            // Budgets matter only to placement, which connects with `connect_fleet`: a host
            // whose budget is `auto` and unknown here says 0.
            Server::Hosts { hosts } => {
                let auto = agentrun::detect_gpu_budget().unwrap_or(0);
                connect_hosts(hosts, Some(auto), false, ollama_config).await?
            }
            Server::Simulator { time_scale, script } => {
                let backend = agentrun::SimBackend::target_mac(*time_scale);
                if let Some(script) = script {
                    let loaded = agentrun::SimScript::from_file(script).with_context(|| {
                        format!("cannot read the simulator script {}", script.display())
                    })?;
                    tracing::info!(script = %script.display(), "simulated replies");
                    backend.simulator().set_script(loaded);
                }
                Arc::new(backend)
            }
            Server::Ollama { url } => Arc::new(
                agentrun::OllamaBackend::new(url, ollama_config())
                    .with_context(|| format!("invalid Ollama address {url}"))?,
            ),
        };
        backend.running_models().await.with_context(|| {
            format!("the model server at {} does not answer", backend.endpoint())
        })?;
        Ok(backend)
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Server::Ollama { url } => write!(formatter, "the Ollama server at {url}"),
            Server::Hosts { hosts } => write!(
                formatter,
                "the Ollama hosts {}",
                hosts
                    .iter()
                    .map(|host| format!("{} ({})", host.name, host.url))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Server::Simulator { .. } => formatter.write_str("the built-in simulator"),
        }
    }
}

/// `sim/NAME.yaml` beside the workflow `NAME.yaml`, when it exists.
fn default_script(workflow: &Path) -> Option<PathBuf> {
    let script = workflow.parent()?.join("sim").join(workflow.file_name()?);
    script.is_file().then_some(script)
}

/// Timeouts for a local Ollama server. Loads get half an hour: Ollama aborts a
/// load whose client gives up, so a short limit would only make it start over.
fn ollama_config() -> agentrun::OllamaConfig {
    use std::time::Duration;
    agentrun::OllamaConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
        load_timeout: Duration::from_secs(30 * 60),
        stream_timeout: Duration::from_secs(120),
    }
}

/// `run.json`'s server as written now, or as runs of earlier versions wrote it
/// (`url`, `sim`, `time_scale`, `sim_script`), so those runs can still be resumed.
#[derive(Deserialize)]
#[serde(untagged)]
enum ServerFile {
    Tagged(TaggedServer),
    Flat {
        url: String,
        sim: bool,
        time_scale: f64,
        sim_script: Option<PathBuf>,
    },
}

/// [`Server`]'s own shape, without the conversion that reads older files.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum TaggedServer {
    Ollama {
        url: String,
    },
    Hosts {
        hosts: Vec<HostEntry>,
    },
    Simulator {
        time_scale: f64,
        script: Option<PathBuf>,
    },
}

impl From<ServerFile> for Server {
    fn from(file: ServerFile) -> Server {
        match file {
            ServerFile::Tagged(TaggedServer::Ollama { url }) => Server::Ollama { url },
            ServerFile::Tagged(TaggedServer::Hosts { hosts }) => Server::Hosts { hosts },
            ServerFile::Tagged(TaggedServer::Simulator { time_scale, script }) => {
                Server::Simulator { time_scale, script }
            }
            ServerFile::Flat {
                url, sim: false, ..
            } => Server::Ollama { url },
            ServerFile::Flat {
                time_scale,
                sim_script,
                ..
            } => Server::Simulator {
                time_scale,
                script: sim_script,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_survives_run_json() {
        for server in [
            Server::Ollama {
                url: "http://gpu-box:11434".into(),
            },
            Server::Simulator {
                time_scale: 0.5,
                script: Some("/tmp/replies.yaml".into()),
            },
        ] {
            let text = serde_json::to_string(&server).expect("serializes");
            assert_eq!(serde_json::from_str::<Server>(&text).expect(&text), server);
        }
    }

    #[test]
    fn run_json_of_earlier_versions_is_still_read() {
        let ollama = r#"{"url":"http://a:1","sim":false,"time_scale":0.01,"sim_script":null}"#;
        assert_eq!(
            serde_json::from_str::<Server>(ollama).expect("reads"),
            Server::Ollama {
                url: "http://a:1".into()
            }
        );
        let sim = r#"{"url":"http://a:1","sim":true,"time_scale":0.2,"sim_script":"/s.yaml"}"#;
        assert_eq!(
            serde_json::from_str::<Server>(sim).expect("reads"),
            Server::Simulator {
                time_scale: 0.2,
                script: Some("/s.yaml".into())
            }
        );
    }
}
