//! What the server knows of a model: `/api/tags` for the file, `/api/show` for its shape.
//!
//! `/api/show` is asked with `model` (ollama-rs sends the deprecated `name`) and
//! first without `verbose`: the short answer leaves out the tokenizer's
//! vocabulary, which makes a verbose answer some sixty times larger and three
//! hundred times slower to read (see [`MAX_SHOW_BYTES`]). The short answer also empties every array longer than a
//! few items, so a model that gives a figure per layer (`head_count_kv` on
//! hybrid and sliding-window architectures) is asked again with `verbose`,
//! reading at most [`MAX_SHOW_BYTES`].

use agentrun_core::{BackendError, ModelDetails};
use futures::StreamExt;
use reqwest::Url;
use serde::Deserialize;
use tokio::time::{Instant, timeout_at};

use crate::config::OllamaConfig;
use crate::failure::Target;
use crate::listing::{self, LocalModel};

/// The most of an `/api/show` answer read. Measured (`cargo bench -p
/// agentrun-ollama --bench show_verbose`): qwen3:8b's short answer is 77 KB and
/// read in 0.6 ms; with its 151,936-token vocabulary the verbose one is 4.5 MB
/// and takes 180 ms. A 256,000-token vocabulary makes about 8 MB; this leaves
/// room and keeps a misbehaving server from filling memory.
pub(crate) const MAX_SHOW_BYTES: usize = 32 << 20;

/// The figures the footprint needs, under the architecture's prefix.
const NEEDED_FIGURES: [&str; 5] = [
    "block_count",
    "attention.head_count",
    "attention.head_count_kv",
    "embedding_length",
    "context_length",
];

/// Reads a model's file size, digest and the figures that predict its memory
/// footprint (layers, heads, embedding width, trained context).
pub(crate) async fn model_details(
    http: &reqwest::Client,
    base: &Url,
    config: &OllamaConfig,
    server: &str,
    model: &str,
) -> Result<ModelDetails, BackendError> {
    let tags_target = Target::model(server, model, "GET /api/tags");
    let show_target = Target::model(server, model, "POST /api/show");
    let (local_models, mut info) = tokio::try_join!(
        listing::local_models(http, base, config, tags_target),
        show(http, base, config, show_target, model, false)
    )?;
    if needs_verbose(&info) {
        info = show(http, base, config, show_target, model, true).await?;
    }
    let Some(local) = local_models
        .into_iter()
        .find(|local| listing::same_model(&local.name, model))
    else {
        return Err(BackendError::ModelNotFound {
            model: model.to_owned(),
            url: server.to_owned(),
        });
    };
    Ok(details(model, local, &info))
}

/// `POST /api/show`, its answer read up to [`MAX_SHOW_BYTES`].
async fn show(
    http: &reqwest::Client,
    base: &Url,
    config: &OllamaConfig,
    target: Target<'_>,
    model: &str,
    verbose: bool,
) -> Result<ShowInfo, BackendError> {
    let url = base
        .join("api/show")
        .expect("a relative path joins any http base URL");
    let body = if verbose {
        serde_json::json!({ "model": model, "verbose": true })
    } else {
        serde_json::json!({ "model": model })
    };
    let deadline = Instant::now() + config.request_timeout;
    let response = timeout_at(deadline, http.post(url).json(&body).send())
        .await
        .map_err(|_| target.timeout(config.request_timeout))?
        .map_err(|error| target.transport(&error))?;
    let status = response.status();
    let mut chunks = response.bytes_stream();
    let mut text = Vec::new();
    while let Some(chunk) = timeout_at(deadline, chunks.next())
        .await
        .map_err(|_| target.timeout(config.request_timeout))?
    {
        let chunk = chunk.map_err(|error| target.transport(&error))?;
        if text.len() + chunk.len() > MAX_SHOW_BYTES {
            return Err(target.unreadable(
                status,
                &format!("the answer is larger than {MAX_SHOW_BYTES} bytes"),
            ));
        }
        text.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(target.response(status, &String::from_utf8_lossy(&text)));
    }
    serde_json::from_slice(&text).map_err(|error| target.unreadable(status, &error))
}

/// The parts of `/api/show` read here.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ShowInfo {
    #[serde(default)]
    pub(crate) model_info: serde_json::Map<String, serde_json::Value>,
    /// Absent before Ollama 0.6.4.
    #[serde(default)]
    pub(crate) capabilities: Vec<String>,
}

/// Whether a needed figure came back emptied (an array the short answer left
/// out, or null): only a verbose answer has it.
pub(crate) fn needs_verbose(info: &ShowInfo) -> bool {
    let Some(architecture) = info
        .model_info
        .get("general.architecture")
        .and_then(serde_json::Value::as_str)
    else {
        return false;
    };
    NEEDED_FIGURES.iter().any(|suffix| {
        match info.model_info.get(&format!("{architecture}.{suffix}")) {
            Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Array(values)) => values.is_empty(),
            _ => false,
        }
    })
}

/// Joins the two answers. Figures the server does not give stay `None`.
fn details(model: &str, local: LocalModel, info: &ShowInfo) -> ModelDetails {
    let architecture = info
        .model_info
        .get("general.architecture")
        .and_then(serde_json::Value::as_str);
    let figure = |suffix: &str| {
        let architecture = architecture?;
        count(info.model_info.get(&format!("{architecture}.{suffix}"))?)
    };
    ModelDetails {
        name: model.to_owned(),
        file_bytes: local.file_bytes,
        digest: local.digest,
        block_count: figure("block_count"),
        head_count: figure("attention.head_count"),
        head_count_kv: figure("attention.head_count_kv"),
        embedding_length: figure("embedding_length"),
        context_length: figure("context_length"),
        capabilities: info.capabilities.clone(),
    }
}

/// A figure from `model_info`. Some architectures give a head count per
/// layer (an array); the largest is taken, which over-predicts the KV cache
/// rather than under-predicting it.
fn count(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Array(values) => {
            values.iter().filter_map(serde_json::Value::as_u64).max()
        }
        value => value.as_u64(),
    }
}

#[cfg(test)]
mod tests;
