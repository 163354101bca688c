//! The HTTP server: routes, JSON and NDJSON responses, and Ollama's error bodies.

use std::future::Future;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures::StreamExt;
use futures::stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

use crate::api::ApiError;
use crate::endpoint::{chat, generate, ps, show, sim, tags, version};
use crate::simulator::Simulator;
use crate::stream::ReplyStream;

/// Serves `sim` over HTTP on `listener` until `shutdown` completes, then finishes the
/// requests in flight and returns.
pub async fn serve(
    listener: TcpListener,
    sim: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|stream| {
        // Small NDJSON lines must not wait for Nagle's algorithm.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {error}");
        }
    });
    axum::serve(listener, router(sim))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The routes of Ollama's API and of the simulator's own endpoints.
pub(crate) fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/", get(version::root).head(version::root))
        .route("/api/version", get(version::handle))
        .route("/api/tags", get(tags::handle))
        .route("/api/ps", get(ps::handle))
        .route("/api/show", post(show::handle))
        .route("/api/chat", post(chat::handle))
        .route("/api/generate", post(generate::handle))
        .route("/sim/log", get(sim::log))
        .route("/sim/reset", post(sim::reset))
        .route("/sim/faults", post(sim::faults))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
        .with_state(sim)
}

/// A response chunk type (chat or generate).
pub(crate) trait Chunk: Serialize + Send + 'static {
    fn is_done(&self) -> bool;
    /// Appends a later chunk, as a non-streamed response merges them.
    fn absorb(&mut self, next: Self);
}

pub(crate) fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("missing request body"));
    }
    serde_json::from_slice(body).map_err(|error| ApiError::bad_request(error.to_string()))
}

/// Parses a chat or generate body, checking `options` first as Ollama's `Options.FromMap`
/// does, so a mistyped option gets Ollama's message (`option "num_ctx" must be of type
/// integer`) rather than a JSON decoding error.
pub(crate) fn parse_inference_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("missing request body"));
    }
    // The typed parse is the fast path; only a body it rejects is read again for the options.
    serde_json::from_slice(body).map_err(|error| {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
            && let Some(serde_json::Value::Object(options)) = value.get("options")
            && let Err(option_error) = check_option_types(options)
        {
            return option_error;
        }
        ApiError::bad_request(error.to_string())
    })
}

/// The kind of each option Ollama knows (`api.Options` and `api.Runner`); unknown options
/// are ignored, as in Ollama.
fn option_kind(key: &str) -> Option<&'static str> {
    Some(match key {
        "num_ctx" | "num_batch" | "num_gpu" | "main_gpu" | "num_thread" | "num_keep" | "seed"
        | "num_predict" | "top_k" | "repeat_last_n" | "draft_num_predict" => "integer",
        "use_mmap" | "numa" | "penalize_newline" => "boolean",
        "temperature" | "top_p" | "min_p" | "typical_p" | "repeat_penalty" | "presence_penalty"
        | "frequency_penalty" => "float32",
        "stop" => "array",
        _ => return None,
    })
}

fn check_option_types(
    options: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), ApiError> {
    use serde_json::Value;
    for (key, value) in options {
        let Some(kind) = option_kind(key) else {
            continue;
        };
        let ok = match (kind, value) {
            (_, Value::Null) => true,
            ("integer" | "float32", Value::Number(_)) => true,
            ("boolean", Value::Bool(_)) => true,
            ("array", Value::Array(items)) => items.iter().all(Value::is_string),
            _ => false,
        };
        if !ok {
            return Err(ApiError::bad_request(format!(
                "option {key:?} must be of type {kind}"
            )));
        }
    }
    Ok(())
}

pub(crate) fn json_response<T: Serialize>(status: u16, value: &T) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match serde_json::to_vec(value) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

pub(crate) fn error_response(error: &ApiError) -> Response {
    json_response(error.status, &error.body())
}

/// A response whose connection is cut before it completes.
fn dropped_connection() -> Response {
    let body = stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped (injected fault)"))
    });
    Response::new(Body::from_stream(body))
}

fn ndjson_line<T: Serialize>(value: &T) -> Bytes {
    // Serializing these plain structs cannot fail.
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Merges a reply into one chunk; status 0 if the stream ended without `done`.
pub(crate) async fn merge_chunks<C: Chunk>(mut reply: ReplyStream<C>) -> Result<C, ApiError> {
    let mut merged: Option<C> = None;
    while let Some(item) = reply.next().await {
        let chunk = item?;
        let done = chunk.is_done();
        match merged.as_mut() {
            Some(merged) => merged.absorb(chunk),
            None => merged = Some(chunk),
        }
        if done {
            return merged.ok_or_else(ApiError::dropped);
        }
    }
    Err(ApiError::dropped())
}

/// The HTTP form of a reply: NDJSON when streaming, else one JSON object. An error after
/// streaming began is a last `{"error": ..}` line with status 200; a stream that ends without
/// `done` cuts the connection.
pub(crate) async fn reply_response<C: Chunk>(reply: ReplyStream<C>, stream: bool) -> Response {
    if !stream || reply.is_immediate() {
        return match merge_chunks(reply).await {
            Ok(chunk) => json_response(200, &chunk),
            Err(error) if error.status == 0 => dropped_connection(),
            Err(error) => error_response(&error),
        };
    }
    let body = stream::unfold(Some(reply), |reply| async move {
        let mut reply = reply?;
        match reply.next().await {
            Some(Ok(chunk)) => {
                let line = ndjson_line(&chunk);
                let rest = (!chunk.is_done()).then_some(reply);
                Some((Ok(line), rest))
            }
            // A clean end without `done`: the body simply stops.
            Some(Err(error)) if error.status == 0 => None,
            Some(Err(error)) => Some((Ok(ndjson_line(&error.body())), None)),
            None => Some((
                Err(std::io::Error::other("connection dropped (injected fault)")),
                None,
            )),
        }
    });
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        Body::from_stream(body),
    )
        .into_response()
}
