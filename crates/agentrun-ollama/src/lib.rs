//! The agentrun model backend for an Ollama server: chat, preload, unload and
//! the server's model listings over Ollama's HTTP API.
//!
//! Learn these first:
//!
//! - [`OllamaBackend`]: implements [`agentrun_core::ModelBackend`] for one
//!   server (a real Ollama, or `ollama-sim`), plus [`OllamaBackend::version`].
//! - [`OllamaConfig`]: the timeouts. Loads get their own, long one: Ollama
//!   aborts a load whose client gives up.
//! - [`SetupError`]: why a backend could not be built (a bad address).
//!
//! Calls fail with [`agentrun_core::BackendError`], which tells an
//! unreachable server from an unknown model, a full queue (503), a bad
//! request (400), a server failure (5xx) and a reply that broke off.
//!
//! The well-behaved parts of ollama-rs do the work where they can (preload and
//! unload); chat streaming, `/api/show`, `/api/tags`, `/api/ps` and
//! `/api/version` use reqwest directly, because ollama-rs drops `done_reason`,
//! tool-call ids and error lines, cannot send `tool_name`, loses metrics and
//! HTTP statuses, asks `/api/show` with the deprecated `name`, and has no
//! `/api/ps`.
//!
//! The server address is read as Ollama's own client reads `OLLAMA_HOST`
//! (empty, `host`, `host:port`, `:port`, a scheme, a path, IPv6 with or without
//! brackets). The tests replay responses recorded from real servers (0.10 to
//! 0.17, `tests/fixtures/ollama-real/` at the repository root).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use agentrun_core::{ChatRequest, KeepAlive, Message, ModelBackend};
//! use agentrun_ollama::{OllamaBackend, OllamaConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = OllamaConfig {
//!     connect_timeout: Duration::from_secs(2),
//!     request_timeout: Duration::from_secs(30),
//!     load_timeout: Duration::from_secs(30 * 60),
//!     stream_timeout: Duration::from_secs(120),
//! };
//! let backend = OllamaBackend::new("http://127.0.0.1:11434", config)?;
//! let mut options = agentrun_core::ModelOptions::new();
//! options.insert("num_ctx".into(), 8192.into());
//! backend.preload("qwen3:1.7b", &options, Some(KeepAlive::Forever)).await?;
//! let request = ChatRequest {
//!     model: "qwen3:1.7b".into(),
//!     messages: vec![Message::user("Say hi.")],
//!     options,
//!     keep_alive: None,
//!     format: None,
//!     tools: Vec::new(),
//!     think: None,
//! };
//! let reply = backend.chat(&request, &mut |text| print!("{text}")).await?;
//! println!("\n{:?} after {:?} tokens", reply.done_reason, reply.metrics.eval_count);
//! # Ok(())
//! # }
//! ```

mod backend;
mod chat;
mod config;
mod failure;
mod listing;
mod model_details;
mod ndjson;
mod residency;

pub use backend::OllamaBackend;
pub use config::{OllamaConfig, SetupError};
