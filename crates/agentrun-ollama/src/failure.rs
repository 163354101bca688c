//! Turning what went wrong on the wire into a [`BackendError`] that says what to do.
//!
//! Three sources feed it: transport errors from reqwest, HTTP error responses
//! (status and `{"error": ..}` body), and errors from ollama-rs, which keeps the
//! body of an error response but not its status, so those are classified by
//! the server's message.

use std::time::Duration;

use agentrun_core::BackendError;
use ollama_rs::error::OllamaError;
use reqwest::StatusCode;
use serde::Deserialize;

/// Longest piece of an error body quoted in a message (a proxy may answer
/// with a whole HTML page).
const MAX_QUOTED_BODY_CHARS: usize = 300;

/// What a call was about, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The server, as shown to users (`http://127.0.0.1:11434`).
    pub(crate) server: &'a str,
    /// The model the call is about, if any.
    pub(crate) model: Option<&'a str>,
    /// The endpoint (`POST /api/chat`), named when no model is.
    pub(crate) endpoint: &'static str,
}

impl<'a> Target<'a> {
    /// A call about one model.
    pub(crate) fn model(server: &'a str, model: &'a str, endpoint: &'static str) -> Target<'a> {
        Target {
            server,
            model: Some(model),
            endpoint,
        }
    }

    /// A call about the server as a whole (`/api/ps`, `/api/version`).
    pub(crate) fn server(server: &'a str, endpoint: &'static str) -> Target<'a> {
        Target {
            server,
            model: None,
            endpoint,
        }
    }

    /// What goes in the `model` field of a [`BackendError`]: the model, or
    /// the endpoint when the call is about none.
    fn subject(&self) -> String {
        self.model.unwrap_or(self.endpoint).to_owned()
    }

    /// The call waited `after` without an answer.
    pub(crate) fn timeout(&self, after: Duration) -> BackendError {
        BackendError::Timeout {
            model: self.subject(),
            after,
        }
    }

    /// The reply stream broke off.
    pub(crate) fn stream(&self, message: String) -> BackendError {
        BackendError::Stream {
            model: self.subject(),
            message,
        }
    }

    /// A reply that arrived in full but could not be understood.
    pub(crate) fn unreadable(
        &self,
        status: StatusCode,
        error: &dyn std::fmt::Display,
    ) -> BackendError {
        BackendError::Server {
            model: self.subject(),
            status: status.as_u16(),
            message: format!(
                "unreadable reply to {} from {}: {error}",
                self.endpoint, self.server
            ),
        }
    }

    /// A request that failed below HTTP: no connection, or one that dropped.
    pub(crate) fn transport(&self, error: &reqwest::Error) -> BackendError {
        if error.is_connect() {
            // Refused or timed out: nothing is listening there now.
            return BackendError::Unreachable {
                url: self.server.to_owned(),
                reason: root_cause(error),
            };
        }
        // The server took the request, then the connection closed before
        // the reply was complete: it crashed, restarted or was cut off.
        self.stream(format!(
            "the connection broke before the reply was complete: {}",
            root_cause(error)
        ))
    }

    /// An HTTP error response, from its status and body.
    pub(crate) fn response(&self, status: StatusCode, body: &str) -> BackendError {
        let server_message = error_message(body);
        let message = server_message
            .clone()
            .unwrap_or_else(|| quoted_body(status, body));
        match status.as_u16() {
            // Ollama answers 404 with a JSON error only for an unknown model;
            // a bare 404 means the address is not an Ollama API at all.
            404 => match (self.model, server_message) {
                (Some(model), Some(_)) => BackendError::ModelNotFound {
                    model: model.to_owned(),
                    url: self.server.to_owned(),
                },
                _ => BackendError::BadRequest {
                    model: self.subject(),
                    message: format!(
                        "{} {} answered HTTP 404 ({message}); is this the address of an Ollama server?",
                        self.server, self.endpoint
                    ),
                },
            },
            503 => BackendError::Busy {
                message: format!("{message} ({})", self.server),
            },
            400 => BackendError::BadRequest {
                model: self.subject(),
                message,
            },
            code @ 401..=499 => BackendError::BadRequest {
                model: self.subject(),
                message: format!("HTTP {code}: {message}"),
            },
            code => BackendError::server_failure(self.subject(), code, message),
        }
    }

    /// An error from an ollama-rs call.
    pub(crate) fn ollama_rs(&self, error: OllamaError) -> BackendError {
        match error {
            OllamaError::ReqwestError(error) => self.transport(&error),
            OllamaError::JsonError(error) => self.unreadable(StatusCode::OK, &error),
            OllamaError::Other(body) => self.classify_message(&body),
            OllamaError::InternalError(error) => self.classify_message(&error.message),
            error @ OllamaError::ToolCallError(_) => BackendError::Server {
                model: self.subject(),
                status: StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
                message: error.to_string(),
            },
        }
    }

    /// Classifies an error response whose status ollama-rs did not keep.
    ///
    /// The status is recovered from Ollama's wording where it is unambiguous;
    /// anything else is reported as a server failure (HTTP 500), the status
    /// Ollama uses for failed loads, so that it stays retryable.
    fn classify_message(&self, body: &str) -> BackendError {
        let message = error_message(body).unwrap_or_else(|| body.trim().to_owned());
        let lower = message.to_lowercase();
        let status = if lower.contains("not found") {
            StatusCode::NOT_FOUND
        } else if lower.contains("server busy") || lower.contains("maximum pending requests") {
            StatusCode::SERVICE_UNAVAILABLE
        } else if BAD_REQUEST_WORDING
            .iter()
            .any(|words| lower.contains(words))
        {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let body = serde_json::json!({ "error": message }).to_string();
        self.response(status, &body)
    }
}

/// Phrases of Ollama's HTTP 400 answers (bad input, a missing capability).
const BAD_REQUEST_WORDING: &[&str] = &[
    "does not support",
    "is required",
    "invalid",
    "missing unit",
    "unknown",
    "cannot unmarshal",
];

/// Ollama's error body: `{"error": "..."}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// The server's message, when the body is Ollama's error JSON.
pub(crate) fn error_message(body: &str) -> Option<String> {
    serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|body| body.error)
}

/// A non-JSON error body, shortened, or the status when the body is empty.
fn quoted_body(status: StatusCode, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return format!("HTTP {status} with an empty body");
    }
    match body.char_indices().nth(MAX_QUOTED_BODY_CHARS) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None => body.to_owned(),
    }
}

/// The innermost cause of an error: for a refused connection, the OS's words.
pub(crate) fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests;
