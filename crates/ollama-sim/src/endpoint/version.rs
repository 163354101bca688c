//! `GET /` and `GET /api/version`.

use axum::response::Response;

use crate::api::VersionResponse;
use crate::http;

/// The Ollama release whose behaviour the simulator follows.
pub const OLLAMA_VERSION: &str = "0.33.0";

pub(crate) async fn root() -> &'static str {
    "Ollama is running"
}

pub(crate) async fn handle() -> Response {
    http::json_response(
        200,
        &VersionResponse {
            version: OLLAMA_VERSION.to_owned(),
        },
    )
}
