//! `POST /api/chat`.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use futures::StreamExt;

use crate::api::{self, ApiError, ChatChunk, Message};
use crate::clock::Clock;
use crate::http::{self, Chunk};
use crate::prompt::Prompt;
use crate::request::{Inference, Prepared, prepare};
use crate::simulator::Simulator;
use crate::stream::{Piece, ReplyStream};

impl Simulator {
    /// `POST /api/chat`. Waits until the model is ready (loading it, queueing behind other
    /// loads and evictions as Ollama does), then returns the reply as a stream of chunks.
    /// Errors before the stream starts are HTTP errors (404, 400, 500, 503); dropping the
    /// future or the stream is a client disconnect.
    pub async fn chat(
        &self,
        request: api::ChatRequest,
    ) -> Result<ReplyStream<ChatChunk>, ApiError> {
        let system = system_prompt(&request.messages);
        let prompt = Prompt::chat(
            &request.messages,
            &request.tools,
            request.truncate != Some(false),
        );
        let inference = Inference {
            endpoint: "chat",
            model: &request.model,
            keep_alive: request.keep_alive.as_ref(),
            options: request.options.as_ref(),
            format: request.format.as_ref(),
            think: request.think.as_ref(),
            uses_tools: !request.tools.is_empty(),
            empty: request.messages.is_empty(),
            system: system.as_deref(),
            last_message: request.messages.last().map_or("", |m| m.content.as_str()),
            messages: request
                .messages
                .iter()
                .map(|m| m.content.as_str())
                .collect(),
            prompt,
            shift: request.shift,
        };
        let prepared = prepare(&self.inner, inference).await?;
        let clock = self.inner.scheduler.clock().clone();
        let model = request.model;
        Ok(match prepared {
            Prepared::Immediate(done_reason) => ReplyStream::single(ChatChunk {
                created_at: clock.timestamp_now(),
                message: assistant(String::new()),
                done: true,
                done_reason: Some(done_reason.to_owned()),
                metrics: api::Metrics::default(),
                model,
            }),
            Prepared::Reply(generation) => ReplyStream::new(
                generation
                    .into_pieces()
                    .map(move |piece| piece.map(|piece| chunk(&model, &clock, piece)))
                    .boxed(),
            ),
        })
    }
}

impl ReplyStream<ChatChunk> {
    /// Waits for the whole reply and merges it into one response, as `stream: false` does.
    /// A dropped connection (an injected fault) is an error with status 0.
    pub async fn collect(self) -> Result<ChatChunk, ApiError> {
        http::merge_chunks(self).await
    }
}

fn system_prompt(messages: &[Message]) -> Option<String> {
    let mut parts = messages.iter().filter(|m| m.role == "system");
    let first = parts.next()?;
    let mut text = first.content.clone();
    for part in parts {
        text.push('\n');
        text.push_str(&part.content);
    }
    Some(text)
}

fn assistant(content: String) -> Message {
    Message {
        role: "assistant".to_owned(),
        content,
        ..Message::default()
    }
}

fn chunk(model: &str, clock: &Clock, piece: Piece) -> ChatChunk {
    let mut chunk = ChatChunk {
        model: model.to_owned(),
        created_at: clock.timestamp_now(),
        message: assistant(String::new()),
        done: false,
        done_reason: None,
        metrics: api::Metrics::default(),
    };
    match piece {
        Piece::Thinking(text) => chunk.message.thinking = Some(text),
        Piece::Content(text) => chunk.message.content = text,
        Piece::ToolCalls(calls) => chunk.message.tool_calls = calls,
        Piece::Done {
            done_reason,
            metrics,
            ..
        } => {
            chunk.done = true;
            chunk.done_reason = Some(done_reason.to_owned());
            chunk.metrics = metrics;
        }
    }
    chunk
}

impl Chunk for ChatChunk {
    fn is_done(&self) -> bool {
        self.done
    }

    fn absorb(&mut self, next: ChatChunk) {
        self.message.content.push_str(&next.message.content);
        if let Some(thinking) = next.message.thinking {
            self.message
                .thinking
                .get_or_insert_with(String::new)
                .push_str(&thinking);
        }
        self.message.tool_calls.extend(next.message.tool_calls);
        self.created_at = next.created_at;
        self.done = next.done;
        self.done_reason = next.done_reason;
        self.metrics = next.metrics;
    }
}

pub(crate) async fn handle(State(sim): State<Simulator>, body: Bytes) -> Response {
    let request: api::ChatRequest = match http::parse_inference_body(&body) {
        Ok(request) => request,
        Err(error) => return http::error_response(&error),
    };
    let stream = request.stream.unwrap_or(true);
    match sim.chat(request).await {
        Ok(reply) => http::reply_response(reply, stream).await,
        Err(error) => http::error_response(&error),
    }
}
