//! The server's listings, read with reqwest: `/api/version`, `/api/tags`, `/api/ps`.
//!
//! ollama-rs has no call for `/api/ps` or `/api/version`, and its `/api/tags`
//! entries lack the digest, which tells two names of one weights file apart.

use agentrun_core::{BackendError, RunningModel};
use reqwest::Url;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, timeout_at};

use crate::config::OllamaConfig;
use crate::failure::Target;

/// `GET /api/version`: the server's version string.
pub(crate) async fn version(
    http: &reqwest::Client,
    base: &Url,
    config: &OllamaConfig,
    target: Target<'_>,
) -> Result<String, BackendError> {
    let reply: WireVersion = get_json(http, base, "api/version", config, target).await?;
    Ok(reply.version)
}

/// `GET /api/tags`: the models the server has on disk.
pub(crate) async fn local_models(
    http: &reqwest::Client,
    base: &Url,
    config: &OllamaConfig,
    target: Target<'_>,
) -> Result<Vec<LocalModel>, BackendError> {
    let reply: WireTags = get_json(http, base, "api/tags", config, target).await?;
    Ok(reply
        .models
        .unwrap_or_default()
        .into_iter()
        .map(|tag| LocalModel {
            name: if tag.name.is_empty() {
                tag.model
            } else {
                tag.name
            },
            file_bytes: tag.size,
            digest: (!tag.digest.is_empty()).then_some(tag.digest),
        })
        .collect())
}

/// `GET /api/ps`: the models resident now.
pub(crate) async fn running_models(
    http: &reqwest::Client,
    base: &Url,
    config: &OllamaConfig,
    target: Target<'_>,
) -> Result<Vec<RunningModel>, BackendError> {
    let reply: WirePs = get_json(http, base, "api/ps", config, target).await?;
    Ok(reply
        .models
        .unwrap_or_default()
        .into_iter()
        .map(|model| RunningModel {
            name: if model.name.is_empty() {
                model.model
            } else {
                model.name
            },
            size_bytes: model.size,
            size_vram_bytes: model.size_vram,
            expires_at: model.expires_at.filter(|at| !at.is_empty()),
            context_length: model.context_length,
        })
        .collect())
}

/// A model on the server's disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalModel {
    pub(crate) name: String,
    pub(crate) file_bytes: u64,
    pub(crate) digest: Option<String>,
}

/// Whether two model names mean the same model: Ollama adds `:latest` to a
/// name without a tag and ignores case.
pub(crate) fn same_model(a: &str, b: &str) -> bool {
    fn with_tag(name: &str) -> std::borrow::Cow<'_, str> {
        let last_segment = name.rsplit('/').next().unwrap_or(name);
        if last_segment.contains(':') {
            name.into()
        } else {
            format!("{name}:latest").into()
        }
    }
    with_tag(a).eq_ignore_ascii_case(&with_tag(b))
}

/// Sends a GET and decodes its JSON reply, all within `request_timeout`.
async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    base: &Url,
    path: &str,
    config: &OllamaConfig,
    target: Target<'_>,
) -> Result<T, BackendError> {
    let url = base
        .join(path)
        .expect("a relative path joins any http base URL");
    let deadline = Instant::now() + config.request_timeout;
    let response = timeout_at(deadline, http.get(url).send())
        .await
        .map_err(|_| target.timeout(config.request_timeout))?
        .map_err(|error| target.transport(&error))?;
    let status = response.status();
    let body = timeout_at(deadline, response.bytes())
        .await
        .map_err(|_| target.timeout(config.request_timeout))?
        .map_err(|error| target.transport(&error))?;
    if !status.is_success() {
        return Err(target.response(status, &String::from_utf8_lossy(&body)));
    }
    serde_json::from_slice(&body).map_err(|error| target.unreadable(status, &error))
}

#[derive(Deserialize)]
struct WireVersion {
    version: String,
}

#[derive(Deserialize)]
struct WireTags {
    #[serde(default)]
    models: Option<Vec<WireTag>>,
}

#[derive(Deserialize)]
struct WireTag {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    digest: String,
}

/// `/api/ps`, field names from Ollama's `ProcessModelResponse`.
#[derive(Deserialize)]
struct WirePs {
    #[serde(default)]
    models: Option<Vec<WirePsModel>>,
}

#[derive(Deserialize)]
struct WirePsModel {
    #[serde(default)]
    name: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    size_vram: u64,
    #[serde(default)]
    expires_at: Option<String>,
    /// Only newer servers report it.
    #[serde(default)]
    context_length: Option<u64>,
}

#[cfg(test)]
mod tests;
