//! A model server for unit tests, where each test writes only the chat it needs.

use async_trait::async_trait;

use crate::backend::{
    BackendError, ChatRequest, ChatResponse, KeepAlive, LoadReport, ModelBackend, ModelDetails,
    ModelOptions, RunningModel, TokenSink,
};

/// The one part of a server a test scripts.
#[async_trait]
pub(crate) trait Chat: Send + Sync {
    /// The server's name, for errors.
    fn name(&self) -> &'static str;

    /// Answers a chat request.
    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError>;
}

/// A server with a scripted chat that loads instantly, holds nothing resident and knows no
/// model's details. Derefs to the script, so tests reach its state directly.
pub(crate) struct ChatOnly<C>(pub(crate) C);

impl<C> std::ops::Deref for ChatOnly<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

#[async_trait]
impl<C: Chat> ModelBackend for ChatOnly<C> {
    fn endpoint(&self) -> String {
        self.0.name().to_owned()
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        self.0.chat(request, on_text).await
    }

    async fn preload(
        &self,
        _: &str,
        _: &ModelOptions,
        _: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError> {
        Ok(LoadReport::default())
    }

    async fn unload(&self, _: &str) -> Result<(), BackendError> {
        Ok(())
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError> {
        Ok(Vec::new())
    }

    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError> {
        Err(BackendError::ModelNotFound {
            model: model.to_owned(),
            url: self.endpoint(),
        })
    }
}
