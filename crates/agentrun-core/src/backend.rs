//! The `ModelBackend` trait: everything the executor asks of a model server.
//!
//! Two implementations exist: `agentrun-ollama` talks HTTP to an Ollama server
//! (or `ollama-sim`), and the facade crate drives the simulator's scheduler
//! in-process for virtual-time runs.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use agentrun_memory::KeepAlive;

use crate::message::Message;

/// Options sent to Ollama with every call (`num_ctx`, `temperature`, ...).
///
/// Load-time options (`num_ctx`, `num_batch`, `use_mmap`, ...) must be identical
/// for every call of one model, or Ollama reloads it; the executor guarantees this.
pub type ModelOptions = serde_json::Map<String, serde_json::Value>;

/// A tool the model may call, in Ollama's `tools` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: serde_json::Value,
}

/// One chat call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model's name as Ollama knows it.
    pub model: String,
    /// The conversation, system prompt first.
    pub messages: Vec<Message>,
    /// Options; see [`ModelOptions`].
    pub options: ModelOptions,
    /// `keep_alive` to send; `None` sends none and leaves the server's value alone.
    pub keep_alive: Option<KeepAlive>,
    /// Structured output: `"json"` or a JSON Schema.
    pub format: Option<serde_json::Value>,
    /// Tools offered to the model.
    pub tools: Vec<ToolSpec>,
    /// Whether to ask a thinking model to think; `None` leaves the model's default.
    pub think: Option<agentrun_spec::Think>,
}

/// Timing and token figures from the final chunk of a reply.
///
/// Ollama omits a field when it is zero, so each one is independently optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMetrics {
    /// Whole request, as the server measured it.
    pub total: Option<Duration>,
    /// Time from the request's arrival to the model being ready (queueing included).
    pub load: Option<Duration>,
    /// Prompt tokens evaluated.
    pub prompt_eval_count: Option<u64>,
    /// Time spent evaluating the prompt.
    pub prompt_eval: Option<Duration>,
    /// Tokens generated.
    pub eval_count: Option<u64>,
    /// Time spent generating.
    pub eval: Option<Duration>,
}

/// A finished chat call.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The assistant's message.
    pub message: Message,
    /// Why generation stopped, when the server says.
    pub done_reason: Option<DoneReason>,
    /// The server's figures.
    pub metrics: CallMetrics,
}

/// Why a server stopped generating (Ollama's `done_reason`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DoneReason {
    /// The model finished its answer.
    Stop,
    /// The reply reached `num_predict` or filled the context: it was cut off.
    Length,
    /// An empty request loaded the model.
    Load,
    /// An empty request with `keep_alive: 0` unloaded the model.
    Unload,
    /// Anything else, as the server wrote it.
    Other(String),
}

impl DoneReason {
    /// The reason as Ollama writes it.
    pub fn as_str(&self) -> &str {
        match self {
            DoneReason::Stop => "stop",
            DoneReason::Length => "length",
            DoneReason::Load => "load",
            DoneReason::Unload => "unload",
            DoneReason::Other(other) => other,
        }
    }
}

impl From<String> for DoneReason {
    fn from(text: String) -> DoneReason {
        match text.as_str() {
            "stop" => DoneReason::Stop,
            "length" => DoneReason::Length,
            "load" => DoneReason::Load,
            "unload" => DoneReason::Unload,
            _ => DoneReason::Other(text),
        }
    }
}

impl From<DoneReason> for String {
    fn from(reason: DoneReason) -> String {
        reason.as_str().to_owned()
    }
}

impl std::fmt::Display for DoneReason {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The result of a preload.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadReport {
    /// How long the server says the load took, queueing included.
    pub load_duration: Option<Duration>,
}

/// A model the server has resident (`/api/ps`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningModel {
    /// The name requests use.
    pub name: String,
    /// Bytes the server accounts for it (weights and KV cache).
    pub size_bytes: u64,
    /// Of those, bytes in GPU memory.
    pub size_vram_bytes: u64,
    /// When it expires, RFC 3339, as the server reports it.
    pub expires_at: Option<String>,
    /// Context length it was loaded with, when the server says.
    pub context_length: Option<u64>,
}

/// What the server knows of a model (`/api/tags` and `/api/show`): enough to
/// predict its memory footprint as Ollama does. The default knows nothing but an empty name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDetails {
    /// The model's name.
    pub name: String,
    /// Size of the weights file on disk.
    pub file_bytes: u64,
    /// Digest of the weights; two names with one digest share a runner.
    pub digest: Option<String>,
    /// `<arch>.block_count`.
    pub block_count: Option<u64>,
    /// `<arch>.attention.head_count`.
    pub head_count: Option<u64>,
    /// `<arch>.attention.head_count_kv`.
    pub head_count_kv: Option<u64>,
    /// `<arch>.embedding_length`.
    pub embedding_length: Option<u64>,
    /// `<arch>.context_length`: the trained context.
    pub context_length: Option<u64>,
    /// Capabilities: `completion`, `tools`, `thinking`, ...
    pub capabilities: Vec<String>,
}

/// Why a backend call failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Nothing answered at the server's address.
    #[error("cannot reach the Ollama server at {url}: {reason}")]
    Unreachable {
        /// The address tried.
        url: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The server does not have the model.
    #[error("model '{model}' not found on {url}; pull it with `ollama pull {model}`")]
    ModelNotFound {
        /// The model asked for.
        model: String,
        /// The server asked.
        url: String,
    },
    /// The server's queue is full (HTTP 503).
    #[error("server busy: {message}")]
    Busy {
        /// The server's words.
        message: String,
    },
    /// The server refused the request as malformed (HTTP 400).
    #[error("the server rejected the request for '{model}': {message}")]
    BadRequest {
        /// The model asked for.
        model: String,
        /// The server's words.
        message: String,
    },
    /// The model did not fit in memory: retrying it as is only fails again; something must
    /// be unloaded or a smaller model used.
    #[error("the server could not fit '{model}' in memory (HTTP {status}): {message}")]
    OutOfMemory {
        /// The model asked for.
        model: String,
        /// The HTTP status.
        status: u16,
        /// The server's words.
        message: String,
    },
    /// The server failed (HTTP 5xx) for another reason.
    #[error("the server failed on '{model}' (HTTP {status}): {message}")]
    Server {
        /// The model asked for.
        model: String,
        /// The HTTP status.
        status: u16,
        /// The server's words.
        message: String,
    },
    /// A reply stream broke: an error line, a dropped connection, or no final chunk.
    #[error("the reply from '{model}' broke off: {message}")]
    Stream {
        /// The model asked for.
        model: String,
        /// What went wrong.
        message: String,
    },
    /// No answer within the allowed time.
    #[error("'{model}' did not answer within {}", humantime::format_duration(*.after))]
    Timeout {
        /// The model asked for.
        model: String,
        /// How long we waited.
        after: Duration,
    },
    /// The call was cancelled (Ctrl-C, run timeout).
    #[error("cancelled")]
    Cancelled,
    /// Of several hosts, none that answers can serve the model.
    #[error("no host can serve '{model}': {reason}")]
    NoHost {
        /// The model asked for.
        model: String,
        /// Why not.
        reason: String,
    },
}

/// Phrases of Ollama's answer when a model does not fit (`model requires more system memory
/// (X GiB) than is available (Y GiB)`, a runner that ran out of memory, a failed GPU
/// allocation).
const OUT_OF_MEMORY_WORDING: &[&str] = &[
    "more system memory",
    "out of memory",
    "insufficient memory",
    "not enough memory",
    "unable to allocate",
    "cudamalloc failed",
];

impl BackendError {
    /// The error for a failed server answer (HTTP 5xx): [`BackendError::OutOfMemory`] when
    /// the server's words say the model did not fit, [`BackendError::Server`] otherwise. For
    /// backends, which read Ollama's words once so that callers match on the variant.
    pub fn server_failure(model: String, status: u16, message: String) -> BackendError {
        let lower = message.to_lowercase();
        if OUT_OF_MEMORY_WORDING
            .iter()
            .any(|words| lower.contains(words))
        {
            BackendError::OutOfMemory {
                model,
                status,
                message,
            }
        } else {
            BackendError::Server {
                model,
                status,
                message,
            }
        }
    }
}

impl BackendError {
    /// Whether trying the same call again later can succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BackendError::Unreachable { .. }
                | BackendError::Busy { .. }
                | BackendError::OutOfMemory { .. }
                | BackendError::Server { .. }
                | BackendError::Stream { .. }
                | BackendError::Timeout { .. }
        )
    }
}

/// Receives a reply's text as it streams.
pub type TokenSink<'a> = &'a mut (dyn FnMut(&str) + Send);

/// A model server.
///
/// Every method is cancel-safe in the sense Ollama gives: dropping the future
/// closes the request, and the server aborts the generation or load.
#[async_trait]
pub trait ModelBackend: Send + Sync {
    /// Where the server is, for messages (`http://127.0.0.1:11434`, `simulator`).
    fn endpoint(&self) -> String;

    /// Sends a chat request, streaming the reply's text into `on_text`.
    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError>;

    /// Loads a model and returns once it is resident. The request is held open
    /// for the whole load: Ollama aborts a load whose client disconnects.
    async fn preload(
        &self,
        model: &str,
        options: &ModelOptions,
        keep_alive: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError>;

    /// Asks the server to unload a model once its in-flight requests end.
    async fn unload(&self, model: &str) -> Result<(), BackendError>;

    /// The models resident now (`/api/ps`).
    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError>;

    /// What the server knows of a model (`/api/tags` and `/api/show`).
    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError>;
}
