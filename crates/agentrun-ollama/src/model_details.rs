//! What the server knows of a model: `/api/tags` for the file, `/api/show` for its shape.

use agentrun_core::{BackendError, ModelDetails};
use ollama_rs::Ollama;
use ollama_rs::models::ModelInfo;
use reqwest::Url;
use tokio::time::timeout;

use crate::config::OllamaConfig;
use crate::failure::Target;
use crate::listing::{self, LocalModel};

/// Reads a model's file size, digest and the figures that predict its memory
/// footprint (layers, heads, embedding width, trained context).
pub(crate) async fn model_details(
    http: &reqwest::Client,
    base: &Url,
    ollama: &Ollama,
    config: &OllamaConfig,
    server: &str,
    model: &str,
) -> Result<ModelDetails, BackendError> {
    let tags_target = Target::model(server, model, "GET /api/tags");
    let show_target = Target::model(server, model, "POST /api/show");
    let show = async {
        timeout(
            config.request_timeout,
            ollama.show_model_info(model.to_owned()),
        )
        .await
        .map_err(|_| show_target.timeout(config.request_timeout))?
        .map_err(|error| show_target.ollama_rs(error))
    };
    let (local_models, info) =
        tokio::try_join!(listing::local_models(http, base, config, tags_target), show)?;
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

/// Joins the two answers. Figures the server does not give stay `None`.
fn details(model: &str, local: LocalModel, info: &ModelInfo) -> ModelDetails {
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
