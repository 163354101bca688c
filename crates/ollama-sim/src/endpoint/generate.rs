//! `POST /api/generate`.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use futures::StreamExt;

use crate::api::{self, ApiError, GenerateChunk};
use crate::clock::Clock;
use crate::http::{self, Chunk};
use crate::prompt::Prompt;
use crate::request::{Inference, Prepared, prepare};
use crate::simulator::Simulator;
use crate::stream::{Piece, ReplyStream};

/// Ollama's Qwen vocabulary size, the range of the simulated `context` token ids.
const VOCABULARY: u64 = 151_936;

impl Simulator {
    /// `POST /api/generate`. Same scheduling as [`Simulator::chat`]; the final chunk also
    /// carries a `context` of token ids. Scripted tool calls are not sent on this endpoint.
    pub async fn generate(
        &self,
        request: api::GenerateRequest,
    ) -> Result<ReplyStream<GenerateChunk>, ApiError> {
        let prompt = Prompt::generate(
            request.system.as_deref(),
            request.context.as_deref(),
            &request.prompt,
        );
        let inference = Inference {
            endpoint: "generate",
            model: &request.model,
            keep_alive: request.keep_alive.as_ref(),
            options: request.options.as_ref(),
            format: request.format.as_ref(),
            think: request.think.as_ref(),
            uses_tools: false,
            empty: request.prompt.is_empty(),
            system: request.system.as_deref(),
            last_message: &request.prompt,
            messages: Vec::new(),
            prompt,
            shift: request.shift,
        };
        let prepared = prepare(&self.inner, inference).await?;
        let clock = self.inner.scheduler.clock().clone();
        let model = request.model;
        Ok(match prepared {
            Prepared::Immediate(done_reason) => ReplyStream::single(GenerateChunk {
                created_at: clock.timestamp_now(),
                response: String::new(),
                thinking: None,
                done: true,
                done_reason: Some(done_reason.to_owned()),
                context: None,
                metrics: api::Metrics::default(),
                model,
            }),
            Prepared::Reply(generation) => ReplyStream::new(
                generation
                    .into_pieces()
                    .filter(|piece| std::future::ready(!matches!(piece, Ok(Piece::ToolCalls(_)))))
                    .map(move |piece| piece.map(|piece| chunk(&model, &clock, piece)))
                    .boxed(),
            ),
        })
    }
}

impl ReplyStream<GenerateChunk> {
    /// Waits for the whole reply and merges it into one response, as `stream: false` does.
    /// A dropped connection (an injected fault) is an error with status 0.
    pub async fn collect(self) -> Result<GenerateChunk, ApiError> {
        http::merge_chunks(self).await
    }
}

fn chunk(model: &str, clock: &Clock, piece: Piece) -> GenerateChunk {
    let mut chunk = GenerateChunk {
        model: model.to_owned(),
        created_at: clock.timestamp_now(),
        response: String::new(),
        thinking: None,
        done: false,
        done_reason: None,
        context: None,
        metrics: api::Metrics::default(),
    };
    match piece {
        Piece::Thinking(text) => chunk.thinking = Some(text),
        Piece::Content(text) => chunk.response = text,
        Piece::ToolCalls(_) => {}
        Piece::Done {
            done_reason,
            metrics,
            context_tokens,
        } => {
            chunk.done = true;
            chunk.done_reason = Some(done_reason.to_owned());
            chunk.metrics = metrics;
            chunk.context = Some(
                (0..context_tokens)
                    .map(|index| ((index * 7919 + 13) % VOCABULARY) as i64)
                    .collect(),
            );
        }
    }
    chunk
}

impl Chunk for GenerateChunk {
    fn is_done(&self) -> bool {
        self.done
    }

    fn absorb(&mut self, next: GenerateChunk) {
        self.response.push_str(&next.response);
        if let Some(thinking) = next.thinking {
            self.thinking
                .get_or_insert_with(String::new)
                .push_str(&thinking);
        }
        self.created_at = next.created_at;
        self.done = next.done;
        self.done_reason = next.done_reason;
        self.context = next.context;
        self.metrics = next.metrics;
    }
}

pub(crate) async fn handle(State(sim): State<Simulator>, body: Bytes) -> Response {
    let request: api::GenerateRequest = match http::parse_inference_body(&body) {
        Ok(request) => request,
        Err(error) => return http::error_response(&error),
    };
    let stream = request.stream.unwrap_or(true);
    match sim.generate(request).await {
        Ok(reply) => http::reply_response(reply, stream).await,
        Err(error) => http::error_response(&error),
    }
}
