//! Preload and unload: empty `/api/generate` requests sent through ollama-rs.
//!
//! Ollama treats a generate request with an empty prompt as "load this model
//! and return", and the same with `keep_alive: 0` as "unload it once idle".

use std::time::Duration;

use agentrun_core::{BackendError, KeepAlive, LoadReport, ModelOptions};
use ollama_rs::Ollama;
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::generation::parameters::{KeepAlive as WireKeepAlive, TimeUnit};
use tokio::time::timeout;

use crate::config::OllamaConfig;
use crate::failure::Target;

/// Loads `model` with `options` and waits until it is resident.
///
/// The load-time options must be those the chat calls will send, or the
/// first chat reloads the model. They are passed through unchanged (as
/// ollama-rs "extra" options rather than its typed fields, whose narrower
/// types would refuse values Ollama accepts, such as `num_gpu: -1`).
pub(crate) async fn preload(
    ollama: &Ollama,
    config: &OllamaConfig,
    target: Target<'_>,
    model: &str,
    options: &ModelOptions,
    keep_alive: Option<KeepAlive>,
) -> Result<LoadReport, BackendError> {
    let mut request = GenerationRequest::new(model.to_owned(), "");
    if !options.is_empty() {
        request =
            request.options(ollama_rs::models::ModelOptions::default().extras(options.clone()));
    }
    if let Some(keep_alive) = keep_alive {
        request = request.keep_alive(wire_keep_alive(keep_alive));
    }
    // Ollama aborts a load whose client disconnects, so only the long load
    // timeout may end this wait.
    let reply = timeout(config.load_timeout, ollama.generate(request))
        .await
        .map_err(|_| target.timeout(config.load_timeout))?
        .map_err(|error| target.ollama_rs(error))?;
    Ok(LoadReport {
        load_duration: reply.load_duration.map(Duration::from_nanos),
    })
}

/// Asks the server to unload `model` once its in-flight requests end.
///
/// Ollama answers at once; a model that is not loaded is a no-op.
pub(crate) async fn unload(
    ollama: &Ollama,
    config: &OllamaConfig,
    target: Target<'_>,
    model: &str,
) -> Result<(), BackendError> {
    let request =
        GenerationRequest::new(model.to_owned(), "").keep_alive(WireKeepAlive::UnloadOnCompletion);
    timeout(config.request_timeout, ollama.generate(request))
        .await
        .map_err(|_| target.timeout(config.request_timeout))?
        .map_err(|error| target.ollama_rs(error))?;
    Ok(())
}

/// `keep_alive` as ollama-rs sends it.
///
/// ollama-rs only knows whole seconds, minutes and hours, so a duration is
/// sent in seconds, rounded up: rounding down could turn a short keep_alive
/// into `0s`, which unloads.
fn wire_keep_alive(keep_alive: KeepAlive) -> WireKeepAlive {
    match keep_alive {
        KeepAlive::Forever => WireKeepAlive::Indefinitely,
        KeepAlive::UnloadWhenIdle => WireKeepAlive::UnloadOnCompletion,
        KeepAlive::For(duration) if duration.is_zero() => WireKeepAlive::UnloadOnCompletion,
        KeepAlive::For(duration) => {
            let whole_seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
            WireKeepAlive::Until {
                time: whole_seconds,
                unit: TimeUnit::Seconds,
            }
        }
    }
}

#[cfg(test)]
mod tests;
