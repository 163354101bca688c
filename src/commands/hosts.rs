//! Several Ollama hosts: the hosts file, hosts named by address (`--ollama` given more than
//! once, `OLLAMA_HOSTS`), and connecting to them as one fleet.
//!
//! A hosts file:
//!
//! ```yaml
//! hosts:
//!   - name: mac
//!     url: http://127.0.0.1:11434
//!     gpu_budget: 54GB        # or `auto`: measured by `agentrun calibrate`, else the run's
//!     max_loaded_models: 3
//!     labels: [big]
//!   - name: gpu-box
//!     url: http://192.168.1.20:11434
//!     gpu_budget: 24GB
//!     labels: [linux]
//! ```

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// The count cap of a host whose entry does not give one (Ollama's default).
const DEFAULT_MAX_LOADED_MODELS: usize = 3;

/// One host of a run: what the hosts file or the addresses said, kept in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HostEntry {
    /// Its name in messages and reports.
    pub(crate) name: String,
    /// Its address.
    pub(crate) url: String,
    /// Its GPU budget in bytes; `None` is `auto`: what calibration measured on the host,
    /// else this machine's when the host runs here, else the run's own budget.
    #[serde(default)]
    pub(crate) gpu_budget: Option<u64>,
    /// How many models it keeps loaded at once.
    #[serde(default)]
    pub(crate) max_loaded_models: Option<usize>,
    /// Its labels.
    #[serde(default)]
    pub(crate) labels: Vec<String>,
}

/// The file as written, each value with its place for messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostsDocument {
    hosts: Vec<HostDocument>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostDocument {
    name: Spanned<String>,
    url: Spanned<String>,
    #[serde(default)]
    gpu_budget: Option<Spanned<String>>,
    #[serde(default)]
    max_loaded_models: Option<Spanned<u64>>,
    #[serde(default)]
    labels: Vec<Spanned<String>>,
}

/// Reads and checks a hosts file: every problem is named with its line and field.
pub(crate) fn read_hosts_file(path: &Path) -> anyhow::Result<Vec<HostEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the hosts file {}", path.display()))?;
    let document: HostsDocument = serde_saphyr::from_str(&text)
        .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    let mut problems = Vec::new();
    let mut hosts = Vec::new();
    for (index, host) in document.hosts.iter().enumerate() {
        let at =
            |line: u64, field: &str| format!("{}:{line}: hosts[{index}].{field}", path.display());
        let name = host.name.value.trim().to_owned();
        if name.is_empty() {
            problems.push(format!(
                "{}: a host needs a name",
                at(host.name.referenced.line(), "name")
            ));
        }
        let gpu_budget = match &host.gpu_budget {
            None => None,
            Some(budget) if budget.value.trim() == "auto" => None,
            Some(budget) => match agentrun::parse_size(&budget.value) {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    problems.push(format!(
                        "{}: host '{name}': {error} (a size such as `24GB`, or `auto`)",
                        at(budget.referenced.line(), "gpu_budget")
                    ));
                    None
                }
            },
        };
        let max_loaded_models = match &host.max_loaded_models {
            Some(cap) if cap.value == 0 => {
                problems.push(format!(
                    "{}: host '{name}' must keep at least one model loaded",
                    at(cap.referenced.line(), "max_loaded_models")
                ));
                None
            }
            Some(cap) => Some(usize::try_from(cap.value).unwrap_or(usize::MAX)),
            None => None,
        };
        let mut labels: Vec<String> = Vec::new();
        for (position, label) in host.labels.iter().enumerate() {
            if !agentrun::is_host_label(&label.value) {
                problems.push(format!(
                    "{}: host '{name}': '{}' is not a label (lowercase letters, digits, `-` and `_`)",
                    at(label.referenced.line(), &format!("labels[{position}]")),
                    label.value
                ));
            } else if !labels.contains(&label.value) {
                labels.push(label.value.clone());
            }
        }
        hosts.push((
            host.name.referenced.line(),
            host.url.referenced.line(),
            HostEntry {
                name,
                url: host.url.value.trim().to_owned(),
                gpu_budget,
                max_loaded_models,
                labels,
            },
        ));
    }
    if hosts.is_empty() {
        problems.push(format!("{}: `hosts` names no host", path.display()));
    }
    for (index, (name_line, url_line, host)) in hosts.iter().enumerate() {
        for (earlier_index, (_, _, earlier)) in hosts[..index].iter().enumerate() {
            if earlier.name == host.name {
                problems.push(format!(
                    "{}:{name_line}: hosts[{index}].name: the name '{}' is also hosts[{earlier_index}]'s",
                    path.display(),
                    host.name
                ));
            }
            if same_address(&earlier.url, &host.url) {
                problems.push(format!(
                    "{}:{url_line}: hosts[{index}].url: host '{}' has the address of host '{}' ({}); \
                     each host is one Ollama server",
                    path.display(),
                    host.name,
                    earlier.name,
                    host.url
                ));
            }
        }
    }
    if !problems.is_empty() {
        anyhow::bail!("{}", problems.join("\n"));
    }
    Ok(hosts.into_iter().map(|(_, _, host)| host).collect())
}

/// Hosts named only by their addresses: each named by its address, with the run's budget.
pub(crate) fn hosts_from_urls(urls: &[String]) -> anyhow::Result<Vec<HostEntry>> {
    let mut hosts: Vec<HostEntry> = Vec::new();
    for url in urls {
        let url = url.trim();
        if let Some(earlier) = hosts.iter().find(|host| same_address(&host.url, url)) {
            anyhow::bail!(
                "the Ollama server {url} is given twice (as {}); give each host once",
                earlier.url
            );
        }
        hosts.push(HostEntry {
            name: address_name(url),
            url: url.to_owned(),
            gpu_budget: None,
            max_loaded_models: None,
            labels: Vec::new(),
        });
    }
    Ok(hosts)
}

/// `OLLAMA_HOSTS`: addresses separated by commas.
pub(crate) fn split_hosts_variable(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether two addresses reach the same server: scheme, case, a trailing `/` and a default
/// port do not make them different.
fn same_address(a: &str, b: &str) -> bool {
    normalized(a) == normalized(b)
}

fn normalized(url: &str) -> String {
    let lower = url.trim().trim_end_matches('/').to_lowercase();
    let without_scheme = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .unwrap_or(&lower);
    let host = without_scheme.replace("localhost", "127.0.0.1");
    if host.contains(':') {
        host
    } else {
        format!("{host}:11434")
    }
}

/// A host's name from its address: `127.0.0.1:11434` for `http://127.0.0.1:11434/`.
fn address_name(url: &str) -> String {
    let trimmed = url.trim().trim_end_matches('/');
    trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .unwrap_or(trimmed)
        .to_owned()
}

/// Connects to one host and checks that it answers: a host that does not is named.
pub(crate) async fn connect_host(
    host: &HostEntry,
    config: impl Fn() -> agentrun::OllamaConfig,
) -> anyhow::Result<Arc<dyn agentrun::ModelBackend>> {
    let backend = agentrun::OllamaBackend::new(&host.url, config())
        .with_context(|| format!("host '{}': invalid Ollama address {}", host.name, host.url))?;
    agentrun::ModelBackend::running_models(&backend)
        .await
        .with_context(|| {
            format!(
                "host '{}': the Ollama server at {} does not answer",
                host.name, host.url
            )
        })?;
    Ok(Arc::new(backend))
}

/// Where a host's GPU budget came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum BudgetSource {
    /// The hosts file gives it.
    Given,
    /// `agentrun calibrate` saw a model spill past the host's GPU.
    Calibrated,
    /// The host is this machine, whose GPU memory was read.
    ThisMachine,
    /// Nothing is known of the host: the run's own budget stands for it.
    RunBudget,
}

/// A host's GPU budget: the hosts file's, else what calibration measured on it, else this
/// machine's when the host runs here, else the run's (`fallback`); `None` when none is
/// known at all.
pub(crate) fn host_budget(
    host: &HostEntry,
    calibration: &agentrun::Calibration,
    this_machine: impl FnOnce() -> Option<u64>,
    fallback: Option<u64>,
) -> Option<(u64, BudgetSource)> {
    if let Some(bytes) = host.gpu_budget {
        return Some((bytes, BudgetSource::Given));
    }
    if let Some(bytes) = calibration.gpu_budget(&host.url) {
        return Some((bytes, BudgetSource::Calibrated));
    }
    if crate::commands::is_local(&host.url)
        && let Some(bytes) = this_machine()
    {
        return Some((bytes, BudgetSource::ThisMachine));
    }
    fallback.map(|bytes| (bytes, BudgetSource::RunBudget))
}

/// Connects to every host and checks that each answers: a host that does not is named.
/// Each host plans with its own GPU budget ([`host_budget`]; `run_budget` is the run's, for a
/// host nothing else is known of, which is said when `placing`) and is priced with the load
/// times `agentrun calibrate` measured on it.
pub(crate) async fn connect_hosts(
    hosts: &[HostEntry],
    run_budget: Option<u64>,
    placing: bool,
    config: impl Fn() -> agentrun::OllamaConfig,
) -> anyhow::Result<Arc<agentrun::Fleet>> {
    let calibration = match agentrun::Calibration::load(&agentrun::Calibration::default_path()) {
        Ok(calibration) => calibration,
        Err(error) => {
            eprintln!("warning: calibration not used: {error}");
            agentrun::Calibration::default()
        }
    };
    let mut members: Vec<(agentrun::HostSpec, Arc<dyn agentrun::ModelBackend>)> = Vec::new();
    for host in hosts {
        let backend = connect_host(host, &config).await?;
        let budget_bytes = match host_budget(
            host,
            &calibration,
            agentrun::detect_gpu_budget,
            run_budget,
        ) {
            Some((bytes, BudgetSource::RunBudget)) if placing => {
                eprintln!(
                    "note: host '{}' ({}): its GPU budget is not known (no `gpu_budget` in a \
                         hosts file, and `agentrun calibrate` saw none); it plans with the run's {}",
                    host.name,
                    host.url,
                    agentrun::gigabytes(bytes)
                );
                bytes
            }
            Some((bytes, _)) => bytes,
            None => anyhow::bail!(
                "host '{}' ({}) has no known GPU budget and the run's is not known; give the \
                     host a `gpu_budget` in a hosts file (for example `24GB`), or the workflow a \
                     `memory.gpu_budget`",
                host.name,
                host.url
            ),
        };
        let load_times = calibration.current_load_times(&*backend).await;
        members.push((
            agentrun::HostSpec {
                name: host.name.clone(),
                url: host.url.clone(),
                budget_bytes,
                max_loaded_models: host.max_loaded_models.unwrap_or(DEFAULT_MAX_LOADED_MODELS),
                labels: host.labels.clone(),
                // Without a calibration of the host, the workload's load times stand for it.
                load_speed: None,
                load_times,
            },
            backend,
        ));
    }
    Ok(Arc::new(agentrun::Fleet::new(members)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hosts.yaml");
        std::fs::write(&path, text).expect("written");
        (dir, path)
    }

    #[test]
    fn a_hosts_file_gives_names_budgets_caps_and_labels() {
        let (_dir, path) = file(
            "hosts:\n  - name: mac\n    url: http://127.0.0.1:11434\n    gpu_budget: 54GB\n    \
             labels: [big]\n  - name: gpu-box\n    url: http://10.0.0.2:11434\n    gpu_budget: auto\n    \
             max_loaded_models: 2\n",
        );
        let hosts = read_hosts_file(&path).expect("valid");
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].gpu_budget, Some(54_000_000_000));
        assert_eq!(hosts[0].labels, vec!["big".to_owned()]);
        assert_eq!(hosts[1].gpu_budget, None);
        assert_eq!(hosts[1].max_loaded_models, Some(2));
    }

    #[test]
    fn every_problem_of_a_hosts_file_is_named_with_its_line() {
        let (_dir, path) = file(
            "hosts:\n  - name: mac\n    url: http://127.0.0.1:11434\n    gpu_budget: lots\n  \
             - name: mac\n    url: http://localhost:11434/\n    labels: [Big]\n",
        );
        let error = read_hosts_file(&path).expect_err("invalid").to_string();
        let shown = path.display();
        assert!(
            error.contains(&format!("{shown}:4: hosts[0].gpu_budget: host 'mac'")),
            "{error}"
        );
        assert!(
            error.contains(&format!(
                "{shown}:7: hosts[1].labels[0]: host 'mac': 'Big' is not a label"
            )),
            "{error}"
        );
        assert!(
            error.contains(&format!(
                "{shown}:5: hosts[1].name: the name 'mac' is also hosts[0]'s"
            )),
            "{error}"
        );
        assert!(
            error.contains(&format!(
                "{shown}:6: hosts[1].url: host 'mac' has the address of host 'mac'"
            )),
            "{error}"
        );
    }

    #[test]
    fn a_hosts_budget_is_the_files_else_calibrations_else_this_machines_else_the_runs() {
        let host = |url: &str, budget: Option<u64>| HostEntry {
            name: "box".into(),
            url: url.into(),
            gpu_budget: budget,
            max_loaded_models: None,
            labels: Vec::new(),
        };
        let spilled = agentrun::ModelCalibration {
            mmap_s: 10.0,
            no_mmap_s: 5.0,
            file_bytes: 1,
            decode: None,
            spilled_vram_bytes: Some(16_000_000_000),
            measured_at: String::new(),
        };
        let mut calibration = agentrun::Calibration::default();
        calibration
            .servers
            .entry("http://10.0.0.2:11434".into())
            .or_default()
            .insert("big".into(), spilled);
        let machine = || Some(48_000_000_000);
        let budget =
            |entry: &HostEntry, run: Option<u64>| host_budget(entry, &calibration, machine, run);
        assert_eq!(
            budget(&host("http://10.0.0.2:11434", Some(24_000_000_000)), None),
            Some((24_000_000_000, BudgetSource::Given))
        );
        assert_eq!(
            budget(&host("http://10.0.0.2:11434", None), None),
            Some((16_000_000_000, BudgetSource::Calibrated))
        );
        assert_eq!(
            budget(&host("http://localhost:11434", None), None),
            Some((48_000_000_000, BudgetSource::ThisMachine))
        );
        assert_eq!(
            budget(&host("http://10.0.0.3:11434", None), Some(54_000_000_000)),
            Some((54_000_000_000, BudgetSource::RunBudget))
        );
        assert_eq!(budget(&host("http://10.0.0.3:11434", None), None), None);
    }

    #[test]
    fn the_same_address_twice_is_refused() {
        let error = hosts_from_urls(&["http://127.0.0.1:9000".into(), "127.0.0.1:9000/".into()])
            .expect_err("twice")
            .to_string();
        assert!(error.contains("127.0.0.1:9000/ is given twice"), "{error}");
        let hosts = hosts_from_urls(&split_hosts_variable("http://a:1, http://b:2,")).expect("two");
        assert_eq!(hosts[1].name, "b:2");
    }
}
