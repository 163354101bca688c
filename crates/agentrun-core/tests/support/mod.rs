//! The model server the whole-run tests share: each test gives the reply to a request, and
//! the server keeps what Ollama would report, the resident models and the ones unloaded.

use std::sync::Mutex;

use agentrun_core::{
    BackendError, CallMetrics, ChatRequest, ChatResponse, KeepAlive, LoadReport, Message,
    ModelBackend, ModelDetails, ModelOptions, RunningModel, TokenSink,
};
use async_trait::async_trait;

/// Builds the reply to one chat request.
type Reply = Box<dyn Fn(&ChatRequest) -> Message + Send + Sync>;

/// A server whose every model is a 1 GB file, that answers with `reply` and streams the
/// answer as one piece.
pub(crate) struct FakeServer {
    reply: Reply,
    /// Models loaded by a chat and not unloaded since, in the order they loaded.
    pub(crate) resident: Mutex<Vec<String>>,
    /// Every unload asked for, in order.
    pub(crate) unloaded: Mutex<Vec<String>>,
}

impl FakeServer {
    /// A server answering each request with `reply(request)`.
    pub(crate) fn new(
        reply: impl Fn(&ChatRequest) -> Message + Send + Sync + 'static,
    ) -> FakeServer {
        FakeServer {
            reply: Box::new(reply),
            resident: Mutex::new(Vec::new()),
            unloaded: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl ModelBackend for FakeServer {
    fn endpoint(&self) -> String {
        "fake".to_owned()
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        {
            let mut resident = self.resident.lock().expect("lock");
            if !resident.contains(&request.model) {
                resident.push(request.model.clone());
            }
        }
        let message = (self.reply)(request);
        on_text(&message.content);
        Ok(ChatResponse {
            message,
            done_reason: Some(agentrun_core::DoneReason::Stop),
            // The server's figures, so that turn times do not depend on how fast this
            // machine runs the test.
            metrics: CallMetrics {
                eval: Some(std::time::Duration::from_millis(40)),
                ..CallMetrics::default()
            },
        })
    }

    async fn preload(
        &self,
        _: &str,
        _: &ModelOptions,
        _: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError> {
        Ok(LoadReport::default())
    }

    async fn unload(&self, model: &str) -> Result<(), BackendError> {
        self.resident.lock().expect("lock").retain(|m| m != model);
        self.unloaded.lock().expect("lock").push(model.to_owned());
        Ok(())
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError> {
        Ok(self
            .resident
            .lock()
            .expect("lock")
            .iter()
            .map(|name| RunningModel {
                name: name.clone(),
                size_bytes: 1_000_000_000,
                size_vram_bytes: 1_000_000_000,
                expires_at: None,
                context_length: None,
            })
            .collect())
    }

    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError> {
        Ok(ModelDetails {
            name: model.to_owned(),
            file_bytes: 1_000_000_000,
            digest: None,
            block_count: Some(16),
            head_count: Some(16),
            head_count_kv: Some(4),
            embedding_length: Some(1024),
            context_length: Some(8192),
            capabilities: vec!["completion".to_owned(), "tools".to_owned()],
        })
    }
}
