//! The backend a turn's agent calls through: the first sign that the server answered a chat
//! (a streamed piece of text, or the whole reply) opens the preload gate, since a model that
//! answers is resident. Any agent, built-in or custom, opens it just by calling its model.
//! It also keeps the load times the server reported, so a turn that fails after its model
//! loaded still has its load counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::backend::{
    BackendError, ChatRequest, ChatResponse, KeepAlive, LoadReport, ModelBackend, ModelDetails,
    ModelOptions, RunningModel, TokenSink,
};

/// A [`ModelBackend`] that opens the turn's preload gate when a chat answers.
pub(crate) struct GatedBackend<'a> {
    inner: &'a dyn ModelBackend,
    open_gate: Arc<dyn Fn() + Send + Sync>,
    /// Each answered chat's model and the load time the server reported for it.
    loads: Mutex<Vec<(String, Duration)>>,
}

impl<'a> GatedBackend<'a> {
    pub(crate) fn new(
        inner: &'a dyn ModelBackend,
        open_gate: Arc<dyn Fn() + Send + Sync>,
    ) -> GatedBackend<'a> {
        GatedBackend {
            inner,
            open_gate,
            loads: Mutex::new(Vec::new()),
        }
    }

    /// The load times the server reported for the chats of this turn, by model.
    pub(crate) fn reported_loads(&self) -> Vec<(String, Duration)> {
        self.loads
            .lock()
            .map(|loads| loads.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl ModelBackend for GatedBackend<'_> {
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        let mut opened = false;
        let mut gated = |text: &str| {
            if !opened {
                opened = true;
                (self.open_gate)();
            }
            on_text(text);
        };
        let answered = self.inner.chat(request, &mut gated).await;
        // A reply made only of tool calls streams no text to say the model is resident.
        if let Ok(response) = &answered {
            (self.open_gate)();
            if let (Some(load), Ok(mut loads)) = (response.metrics.load, self.loads.lock()) {
                loads.push((request.model.clone(), load));
            }
        }
        answered
    }

    async fn preload(
        &self,
        model: &str,
        options: &ModelOptions,
        keep_alive: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError> {
        self.inner.preload(model, options, keep_alive).await
    }

    async fn unload(&self, model: &str) -> Result<(), BackendError> {
        self.inner.unload(model).await
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError> {
        self.inner.running_models().await
    }

    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError> {
        self.inner.model_details(model).await
    }
}
