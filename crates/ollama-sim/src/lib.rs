//! An Ollama-compatible server that simulates model memory, loading and the scheduler, so
//! Ollama clients can be tested without GPUs or model weights.
//!
//! It reproduces Ollama's scheduler (serialized FIFO loads with a fast path for resident
//! models, keep_alive, the model-count cap, eviction by session duration, the 80% fit test,
//! memory prediction from the weights, the KV cache and the automatic batch size, measured
//! sizes once loaded, reloads on changed load-time options, parallel slots with a prompt
//! cache each and the pending-queue limit) with load and decode times from a physical model
//! of the machine, in real time scaled down or in virtual time. `FIDELITY.md` lists each
//! rule with the Ollama function it follows.
//!
//! Types to learn first:
//! - [`SimConfig`]: the machine, Ollama's limits, the physics and the model catalogue;
//!   [`SimConfig::target_mac`] is a 64 GB M4 Pro.
//! - [`Simulator`]: the scheduler and the replies; call [`Simulator::chat`] in process, or
//!   put it behind HTTP with [`serve`].
//! - [`api`]: Ollama's wire types. [`LogEvent`]: what `/sim/log` reports.
//!
//! ```no_run
//! use ollama_sim::{SimConfig, Simulator, api};
//!
//! # async fn demo() -> Result<(), ollama_sim::api::ApiError> {
//! let mut config = SimConfig::target_mac();
//! config.time_scale = 0.01; // one simulated second takes 10 ms
//! let sim = Simulator::new(config);
//! let request = api::ChatRequest {
//!     model: "qwen3:1.7b".into(),
//!     messages: vec![api::Message { role: "user".into(), content: "hi".into(), ..Default::default() }],
//!     ..Default::default()
//! };
//! let reply = sim.chat(request).await?.collect().await?;
//! println!("{} (load {:?} ns)", reply.message.content, reply.metrics.load_duration);
//! // Over HTTP instead:
//! // ollama_sim::serve(listener, sim, shutdown_future).await
//! # Ok(()) }
//! ```

pub mod api;
mod bandwidth;
mod catalogue;
mod clock;
mod config;
mod endpoint;
mod error;
mod faults;
mod footprint;
mod host;
mod http;
mod keep_alive;
mod log;
mod page_cache;
mod prompt;
mod ready;
mod reply;
mod request;
mod scheduler;
mod script;
mod simulator;
mod slots;
mod stream;

pub use agentrun_size::{SizeError, parse_size};
pub use config::{DecodePhysics, LoadPhysics, ModelSpec, ReplySettings, SimConfig};
pub use endpoint::version::OLLAMA_VERSION;
pub use error::Error;
pub use faults::{Disconnect, Faults, LoadFailure, SlowLoad, StalledLoad, StreamError};
pub use footprint::KvCacheType;
pub use host::OllamaHost;
pub use http::serve;
pub use keep_alive::{DurationError, SessionDuration};
pub use log::{Event, EvictionReason, LogEvent, UnloadReason};
pub use ready::{ReadyError, wait_until_ready};
pub use script::{Pattern, Rule, Script, ScriptedReply, ScriptedToolCall};
pub use simulator::Simulator;
pub use stream::ReplyStream;
