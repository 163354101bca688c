//! Ollama's wire types: requests, streamed chunks, model listings and the error body.
//!
//! Field names and shapes follow Ollama's `api/types.go`. Optional response fields that Ollama
//! tags `omitempty` are `Option`s skipped when `None`; the six timing metrics are `None` when
//! zero, exactly as Ollama omits them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A `POST /api/chat` request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model name, e.g. `qwen3:1.7b`.
    pub model: String,
    /// The conversation so far. Empty means preload (or unload with `keep_alive: 0`).
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Tool definitions (`{"type":"function","function":{..}}`), kept as raw JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    /// `"json"` or a JSON schema object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Model options (load-time and sampling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Options>,
    /// Stream NDJSON chunks; Ollama's default is `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// How long the model stays loaded after this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Ask a thinking model to think: a bool or a level (`"low"`, `"medium"`, `"high"`,
    /// `"max"`). Absent: a model with the `thinking` capability thinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
    /// Cut the oldest messages when the history exceeds the context (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Context shift (default `true`); `false` makes an oversized prompt a 400. A change
    /// reloads the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<bool>,
}

/// A `POST /api/generate` request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// The model name.
    pub model: String,
    /// The prompt. Empty means preload (or unload with `keep_alive: 0`).
    #[serde(default)]
    pub prompt: String,
    /// A system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Text after the insertion point (fill-in-the-middle); accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// A prompt template override; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The `context` of a previous reply; counted as prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    /// Skip templating; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<bool>,
    /// `"json"` or a JSON schema object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Model options (load-time and sampling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Options>,
    /// Stream NDJSON chunks; Ollama's default is `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// How long the model stays loaded after this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Ask a thinking model to think (absent: a thinking model thinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
    /// Context shift (default `true`); `false` makes an oversized prompt a 400. A change
    /// reloads the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<bool>,
    /// Base64 images; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
}

/// One chat message, in requests and in replies.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text. Always serialized, as clients require it.
    #[serde(default)]
    pub content: String,
    /// The model's reasoning, for thinking models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Base64 images; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// Tool calls made by the assistant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `role: tool`, the tool whose result this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// For `role: tool`, the `id` of the call this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// A tool call in an assistant message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id (`call_` and eight characters), sent by servers since v0.12.10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The called function.
    pub function: ToolCallFunction,
}

/// The function part of a [`ToolCall`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCallFunction {
    /// Position of the call within the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The tool name.
    pub name: String,
    /// The arguments, a JSON object.
    #[serde(default)]
    pub arguments: Value,
}

/// Model options. Load-time options (`num_ctx`, `num_batch`, `num_gpu`, `main_gpu`, `use_mmap`,
/// `num_thread`, `draft_num_predict`) decide whether a loaded model can serve a request; the
/// sampling options are accepted and only `num_predict` and `seed` affect replies. Options not
/// listed here are accepted and ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Options {
    /// Context window per parallel slot, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u64>,
    /// Prompt batch size; 1024 and 2048 add a memory surcharge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_batch: Option<u64>,
    /// Layers to offload; negative means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_gpu: Option<i64>,
    /// The main GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_gpu: Option<i64>,
    /// Memory-map the weights; `false` loads cold files much faster on the simulated Mac.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_mmap: Option<bool>,
    /// CPU threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_thread: Option<u64>,
    /// Draft tokens for speculative decoding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_num_predict: Option<i64>,
    /// Tokens to generate; zero or negative means the configured default length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_predict: Option<i64>,
    /// Seed for the deterministic reply text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Sampling temperature; never reloads a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling; never reloads a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling; never reloads a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

/// The wire form of `keep_alive`: a JSON number of seconds or a Go duration string.
/// Parsing happens when the request is handled, so a bad value gets Ollama's exact message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeepAlive {
    /// Seconds; negative means forever, zero means unload when idle.
    Seconds(f64),
    /// A Go duration such as `"5m"`, `"1h30m"`, `"0"` or `"-1m"`.
    Text(String),
}

/// The wire form of `think`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Think {
    /// Think or not.
    Enabled(bool),
    /// A thinking level: `"low"`, `"medium"`, `"high"` or `"max"` (checked by
    /// [`Think::validate`]).
    Level(String),
    /// Anything else (a number, an object): always invalid.
    Other(Value),
}

impl Think {
    /// Whether this asks the model to think.
    pub fn is_enabled(&self) -> bool {
        match self {
            Think::Enabled(enabled) => *enabled,
            Think::Level(_) => true,
            Think::Other(_) => false,
        }
    }

    /// Ollama's `ThinkValue.UnmarshalJSON`: a bool or one of the levels, else a 400.
    pub fn validate(&self) -> Result<(), ApiError> {
        match self {
            Think::Enabled(_) => Ok(()),
            Think::Level(level) if matches!(level.as_str(), "high" | "medium" | "low" | "max") => {
                Ok(())
            }
            Think::Level(level) => Err(ApiError::bad_request(format!(
                "invalid think value: {level:?} (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"
            ))),
            Think::Other(_) => Err(ApiError::bad_request(
                "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)",
            )),
        }
    }
}

/// The six timing fields of a final chunk, in nanoseconds and tokens; `None` when zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// From handler entry to the last chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_duration: Option<u64>,
    /// From handler entry until the model was ready, queueing included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_duration: Option<u64>,
    /// Prompt tokens evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_count: Option<u64>,
    /// Time spent on the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_eval_duration: Option<u64>,
    /// Tokens generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_count: Option<u64>,
    /// Time spent generating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_duration: Option<u64>,
}

/// One `/api/chat` response line (or the whole non-streamed response).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    /// The model name as requested.
    pub model: String,
    /// RFC 3339 time of the chunk, in simulated time.
    pub created_at: String,
    /// The assistant message (or a piece of it).
    pub message: Message,
    /// Whether this is the last chunk.
    pub done: bool,
    /// On the last chunk: `stop`, `length`, `load` or `unload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// On the last chunk: the timing fields.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// One `/api/generate` response line (or the whole non-streamed response).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenerateChunk {
    /// The model name as requested.
    pub model: String,
    /// RFC 3339 time of the chunk, in simulated time.
    pub created_at: String,
    /// The text (or a piece of it).
    pub response: String,
    /// The model's reasoning, for thinking models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Whether this is the last chunk.
    pub done: bool,
    /// On the last chunk: `stop`, `length`, `load` or `unload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_reason: Option<String>,
    /// On the last chunk: token ids of the conversation, to send back as `context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    /// On the last chunk: the timing fields.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// `GET /api/ps`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PsResponse {
    /// Loaded models, latest expiry first.
    pub models: Vec<PsModel>,
}

/// One loaded model in `/api/ps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PsModel {
    /// The name the model was loaded under.
    pub name: String,
    /// Same as `name`.
    pub model: String,
    /// The size the runner reported after its load: weights + KV cache (of the layers that
    /// have one) + batch surcharge, in bytes.
    pub size: u64,
    /// The weights digest.
    pub digest: String,
    /// Format, family, parameter size, quantization.
    pub details: ModelDetails,
    /// RFC 3339 time the model unloads if it stays idle (simulated time); ~292 years ahead for
    /// "forever"; in the past for a model that is stopping.
    pub expires_at: String,
    /// The part of `size` in GPU memory.
    pub size_vram: u64,
    /// Context window per slot, in tokens.
    pub context_length: u64,
}

/// `GET /api/tags`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TagsResponse {
    /// Every model in the catalogue.
    pub models: Vec<TagModel>,
}

/// One model in `/api/tags`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TagModel {
    /// The model name.
    pub name: String,
    /// Same as `name`.
    pub model: String,
    /// RFC 3339 modification time.
    pub modified_at: String,
    /// Bytes on disk.
    pub size: u64,
    /// The weights digest.
    pub digest: String,
    /// Format, family, parameter size, quantization.
    pub details: ModelDetails,
    /// `completion`, `tools`, `thinking`, ... (current servers list them here too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

/// The `details` object of tags, ps and show.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDetails {
    /// The parent model; empty here.
    #[serde(default)]
    pub parent_model: String,
    /// `gguf`.
    #[serde(default)]
    pub format: String,
    /// e.g. `qwen3`.
    #[serde(default)]
    pub family: String,
    /// e.g. `["qwen3"]`.
    #[serde(default)]
    pub families: Vec<String>,
    /// e.g. `14.8B`.
    #[serde(default)]
    pub parameter_size: String,
    /// e.g. `Q4_K_M`.
    #[serde(default)]
    pub quantization_level: String,
}

/// A `POST /api/show` request. `name` is the deprecated spelling that ollama-rs still sends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShowRequest {
    /// The model name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Deprecated alias of `model`, used when `model` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Send the long arrays of `model_info` (tokenizer vocabulary and per-layer values)
    /// instead of empty ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbose: Option<bool>,
}

impl ShowRequest {
    /// A request for `model`.
    pub fn new(model: impl Into<String>) -> ShowRequest {
        ShowRequest {
            model: model.into(),
            name: None,
            verbose: None,
        }
    }

    /// The requested name: `model`, or `name` when `model` is empty.
    pub fn model_name(&self) -> &str {
        match &self.name {
            Some(name) if self.model.is_empty() => name,
            _ => &self.model,
        }
    }
}

/// `POST /api/show`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShowResponse {
    /// The license text; omitted when the model has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub license: String,
    /// A generated Modelfile naming the weights file.
    pub modelfile: String,
    /// The Modelfile's `PARAMETER` lines; omitted when there are none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub parameters: String,
    /// A minimal template.
    pub template: String,
    /// Format, family, parameter size, quantization.
    pub details: ModelDetails,
    /// GGUF metadata: `general.architecture` and `<arch>.block_count`,
    /// `<arch>.attention.head_count`, `<arch>.attention.head_count_kv`,
    /// `<arch>.embedding_length`, `<arch>.context_length`.
    pub model_info: Map<String, Value>,
    /// e.g. `["completion","tools","thinking"]`.
    pub capabilities: Vec<String>,
    /// RFC 3339 modification time.
    pub modified_at: String,
}

/// `GET /api/version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionResponse {
    /// The Ollama version this server imitates.
    pub version: String,
}

/// Ollama's error body, `{"error": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The message.
    pub error: String,
}

/// An error answer: an HTTP status and Ollama's message.
///
/// Status 0 stands for a dropped connection (no HTTP answer at all); it only appears in
/// process, from [`ReplyStream::collect`](crate::ReplyStream::collect) under a disconnect fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status}: {message}")]
pub struct ApiError {
    /// The HTTP status code.
    pub status: u16,
    /// The `error` text.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    /// 404 `model '<name>' not found`.
    pub fn model_not_found(name: &str) -> ApiError {
        ApiError::new(404, format!("model '{name}' not found"))
    }

    /// 503 with Ollama's full-queue message.
    pub fn server_busy() -> ApiError {
        ApiError::new(
            503,
            "server busy, please try again.  maximum pending requests exceeded",
        )
    }

    /// 499, the client went away.
    pub fn cancelled() -> ApiError {
        ApiError::new(499, "request canceled")
    }

    /// Status 0: the connection was dropped mid-reply.
    pub fn dropped() -> ApiError {
        ApiError::new(0, "connection dropped before the reply was done")
    }

    /// Status 0 too, for a stream that ends cleanly without its `done` chunk: over HTTP
    /// the response completes normally, in process the reply is incomplete.
    pub fn ended() -> ApiError {
        ApiError::new(0, "the reply ended without a done chunk")
    }

    /// The wire body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.message.clone(),
        }
    }
}
