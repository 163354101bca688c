//! [`OllamaBackend`]: the [`ModelBackend`] that talks HTTP to an Ollama server.

use agentrun_core::{
    BackendError, ChatRequest, ChatResponse, KeepAlive, LoadReport, ModelBackend, ModelDetails,
    ModelOptions, RunningModel, TokenSink,
};
use async_trait::async_trait;
use ollama_rs::Ollama;
use reqwest::Url;

use crate::config::{self, OllamaConfig, SetupError};
use crate::failure::Target;
use crate::{chat, listing, model_details, residency};

/// Sent with every request, so server logs show who asked.
const USER_AGENT: &str = concat!("agentrun/", env!("CARGO_PKG_VERSION"));

/// A [`ModelBackend`] for an Ollama server, or anything that speaks its API
/// (`ollama-sim`).
///
/// One HTTP client and its connection pool serve every call; cloning the
/// backend shares them.
///
/// Cancellation: every call can be cancelled by dropping its future. That
/// closes the HTTP connection, and Ollama stops what the request started: a
/// generation ends, and a load in progress is aborted (the next request for
/// that model starts the load over). Nothing keeps running in the background.
#[derive(Debug, Clone)]
pub struct OllamaBackend {
    base: Url,
    server: String,
    http: reqwest::Client,
    ollama: Ollama,
    config: OllamaConfig,
}

impl OllamaBackend {
    /// A backend for the server at `url`.
    ///
    /// `url` is read as Ollama's client reads `OLLAMA_HOST`: `http://host:port`,
    /// optionally with a path prefix; `host`, `host:port` or `:port` alone mean
    /// plain HTTP on port 11434 unless a port is given; empty means the local
    /// default server. No request is sent: an unreachable server is
    /// only noticed by the first call.
    pub fn new(url: &str, config: OllamaConfig) -> Result<OllamaBackend, SetupError> {
        let base = config::base_url(url)?;
        config::check_supported(&base, url)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .user_agent(USER_AGENT);
        if config::is_loopback(&base) {
            // As Ollama's own client does: a proxy from HTTP_PROXY cannot
            // reach this machine's loopback interface.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|error| SetupError::HttpClient {
            reason: error.to_string(),
        })?;
        let ollama = Ollama::builder()
            .url(base.clone())
            .reqwest_client(http.clone())
            .build();
        let server = base.as_str().trim_end_matches('/').to_owned();
        Ok(OllamaBackend {
            base,
            server,
            http,
            ollama,
            config,
        })
    }

    /// The server's version (`/api/version`), for example `0.12.3`.
    pub async fn version(&self) -> Result<String, BackendError> {
        let target = Target::server(&self.server, "GET /api/version");
        listing::version(&self.http, &self.base, &self.config, target).await
    }

    /// The timeouts this backend was built with.
    pub fn config(&self) -> &OllamaConfig {
        &self.config
    }
}

#[async_trait]
impl ModelBackend for OllamaBackend {
    fn endpoint(&self) -> String {
        self.server.clone()
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        let target = Target::model(&self.server, &request.model, "POST /api/chat");
        tracing::debug!(server = %self.server, model = %request.model, messages = request.messages.len(), "chat");
        chat::chat(
            &self.http,
            &self.base,
            &self.config,
            target,
            request,
            on_text,
        )
        .await
    }

    async fn preload(
        &self,
        model: &str,
        options: &ModelOptions,
        keep_alive: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError> {
        let target = Target::model(&self.server, model, "POST /api/generate");
        tracing::debug!(server = %self.server, model, ?keep_alive, "preload");
        residency::preload(
            &self.ollama,
            &self.config,
            target,
            model,
            options,
            keep_alive,
        )
        .await
    }

    async fn unload(&self, model: &str) -> Result<(), BackendError> {
        let target = Target::model(&self.server, model, "POST /api/generate");
        tracing::debug!(server = %self.server, model, "unload");
        residency::unload(&self.ollama, &self.config, target, model).await
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError> {
        let target = Target::server(&self.server, "GET /api/ps");
        listing::running_models(&self.http, &self.base, &self.config, target).await
    }

    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError> {
        model_details::model_details(&self.http, &self.base, &self.config, &self.server, model)
            .await
    }
}
