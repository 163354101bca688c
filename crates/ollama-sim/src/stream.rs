//! Streaming a reply over simulated time: a parallel slot, prompt evaluation, chunks spread
//! over the decode (which shares the memory bandwidth with every other request decoding at
//! once, see `bandwidth.rs`), then the final chunk with the timing fields.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::time::Instant;

use crate::api::{self, ApiError, Metrics};
use crate::bandwidth::{DecodeCost, Decoding};
use crate::faults::{OUT_OF_MEMORY_MESSAGE, StreamFault};
use crate::prompt::{KeptPrompt, message_segment};
use crate::reply::ReplyPlan;
use crate::scheduler::{Outcome, PromptTokens, Scheduler, Ticket};
use crate::slots::SlotGuard;

/// A piece of a reply, before it is shaped into a chat or generate chunk.
#[derive(Debug)]
pub(crate) enum Piece {
    Thinking(String),
    Content(String),
    ToolCalls(Vec<api::ToolCall>),
    /// The last chunk; `context` is the token count for generate's `context` array.
    Done {
        done_reason: &'static str,
        metrics: Metrics,
        context_tokens: u64,
    },
}

/// Everything needed to stream one reply.
pub(crate) struct Generation {
    pub(crate) scheduler: Arc<Scheduler>,
    pub(crate) ticket: Ticket,
    pub(crate) plan: ReplyPlan,
    /// The prompt after the cut to the context.
    pub(crate) prompt: KeptPrompt,
    /// A script's `prompt_eval_count`, reported instead of the tokens evaluated.
    pub(crate) scripted_prompt_tokens: Option<u64>,
    pub(crate) handler_start: Instant,
    pub(crate) load_seconds: f64,
    pub(crate) prompt_tokens_per_second: f64,
    /// What a token costs, the slot's KV read left to fill in.
    pub(crate) decode: DecodeCost,
    /// The runner's KV cache bytes per token of a slot's context.
    pub(crate) kv_bytes_per_token: f64,
    pub(crate) stream_chunks: usize,
    pub(crate) fault: Option<StreamFault>,
}

enum Phase {
    Start,
    Streaming {
        /// Held for the rest of the reply: the model's parallel slot and its cache.
        slot: SlotGuard,
        /// The decode's share of the bandwidth, given back when the reply ends.
        decoding: Decoding,
    },
    Finished,
}

struct Streamer {
    scheduler: Arc<Scheduler>,
    /// `None` once the request has ended.
    ticket: Option<Ticket>,
    plan: ReplyPlan,
    prompt: KeptPrompt,
    scripted_prompt_tokens: Option<u64>,
    /// Filled when the slot is taken.
    prompt_tokens: PromptTokens,
    prompt_tokens_per_second: f64,
    decode: DecodeCost,
    kv_bytes_per_token: f64,
    handler_start: Instant,
    load_seconds: f64,
    fault: Option<StreamFault>,
    pieces: std::vec::IntoIter<Piece>,
    piece_count: usize,
    emitted: usize,
    /// Content and tool-call chunks sent (what a fault's `after_chunks` counts).
    content_emitted: usize,
    prompt_seconds: f64,
    eval_seconds: f64,
    phase: Phase,
}

/// Splits `text` into at most about `parts` pieces at spaces.
fn split_text(text: &str, parts: usize) -> Vec<String> {
    if text.is_empty() {
        return Vec::new();
    }
    let target = text.len().div_ceil(parts.max(1)).max(1);
    let mut pieces = Vec::with_capacity(parts);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + target).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        if end < text.len()
            && let Some(space) = text[end..].find(' ')
        {
            end += space;
        }
        pieces.push(text[start..end].to_owned());
        start = end;
    }
    pieces
}

impl Generation {
    /// The reply as a stream of pieces; ends without `Done` when a disconnect fault fires.
    pub(crate) fn into_pieces(self) -> BoxStream<'static, Result<Piece, ApiError>> {
        let plan = self.plan;
        let mut pieces: Vec<Piece> = split_text(&plan.thinking, self.stream_chunks)
            .into_iter()
            .map(Piece::Thinking)
            .collect();
        pieces.extend(
            split_text(&plan.content, self.stream_chunks)
                .into_iter()
                .map(Piece::Content),
        );
        if !plan.tool_calls.is_empty() {
            pieces.push(Piece::ToolCalls(plan.tool_calls.clone()));
        }
        let streamer = Streamer {
            scheduler: self.scheduler,
            ticket: Some(self.ticket),
            prompt_seconds: 0.0,
            eval_seconds: 0.0,
            plan,
            prompt: self.prompt,
            scripted_prompt_tokens: self.scripted_prompt_tokens,
            prompt_tokens: PromptTokens::default(),
            prompt_tokens_per_second: self.prompt_tokens_per_second,
            decode: self.decode,
            kv_bytes_per_token: self.kv_bytes_per_token,
            handler_start: self.handler_start,
            load_seconds: self.load_seconds,
            fault: self.fault,
            piece_count: pieces.len(),
            pieces: pieces.into_iter(),
            emitted: 0,
            content_emitted: 0,
            phase: Phase::Start,
        };
        stream::unfold(streamer, |mut streamer| async move {
            let item = streamer.next().await?;
            Some((item, streamer))
        })
        .boxed()
    }
}

impl Streamer {
    async fn next(&mut self) -> Option<Result<Piece, ApiError>> {
        let clock = self.scheduler.clock().clone();
        if let Phase::Start = self.phase {
            let slots = self.ticket.as_ref()?.lease()?.slots();
            let slot = slots.acquire(&self.prompt.segments).await?;
            let kept = self.prompt.tokens;
            let cached = slot.cached_tokens.min(kept.saturating_sub(1));
            self.prompt_tokens = PromptTokens {
                kept,
                cached,
                evaluated: kept - cached,
                dropped_messages: self.prompt.dropped,
            };
            let reported = self.scripted_prompt_tokens.unwrap_or(kept - cached);
            self.prompt_seconds = reported as f64 / self.prompt_tokens_per_second;
            let prompt_start = clock.now();
            clock.sleep(self.prompt_seconds).await;
            // The slot reads its KV cache every step: the prompt, and on average half the
            // reply.
            let context = kept as f64 + self.plan.eval_tokens as f64 / 2.0;
            let decode = DecodeCost {
                slot_bytes: self.kv_bytes_per_token * context,
                ..self.decode
            };
            let decoding = self
                .scheduler
                .bandwidth()
                .start(decode, prompt_start + self.prompt_seconds);
            self.phase = Phase::Streaming { slot, decoding };
        }
        let Phase::Streaming { decoding, .. } = &self.phase else {
            return None;
        };
        if let Some(fault) = &self.fault
            && fault.after_chunks() as usize <= self.content_emitted
            && !matches!(self.pieces.as_slice().first(), Some(Piece::Thinking(_)))
        {
            return self.fail();
        }
        if let Some(piece) = self.pieces.next() {
            self.emitted += 1;
            if !matches!(piece, Piece::Thinking(_)) {
                self.content_emitted += 1;
            }
            let fraction = self.emitted as f64 / (self.piece_count + 1) as f64;
            decoding
                .until(self.plan.eval_tokens as f64 * fraction)
                .await;
            return Some(Ok(piece));
        }
        let reached = decoding.until(self.plan.eval_tokens as f64).await;
        self.eval_seconds = reached - decoding.started();
        Some(Ok(self.finish()))
    }

    fn finish(&mut self) -> Piece {
        let clock = self.scheduler.clock();
        let plan = &self.plan;
        let prompt_tokens = self
            .scripted_prompt_tokens
            .unwrap_or(self.prompt_tokens.evaluated);
        if let Phase::Streaming { slot, .. } = &self.phase {
            slot.append(message_segment(
                "assistant",
                &plan.content,
                &plan.tool_calls,
            ));
        }
        let nanos = |seconds: f64| (seconds * 1e9).round() as u64;
        let load = nanos(self.load_seconds);
        let prompt_eval = if prompt_tokens > 0 {
            nanos(self.prompt_seconds).max(1)
        } else {
            0
        };
        let eval = if plan.eval_tokens > 0 {
            nanos(self.eval_seconds).max(1)
        } else {
            0
        };
        let measured = nanos(clock.since(self.handler_start));
        let total = measured.max(load + prompt_eval + eval);
        let non_zero = |value: u64| (value > 0).then_some(value);
        let metrics = Metrics {
            total_duration: non_zero(total),
            load_duration: non_zero(load),
            prompt_eval_count: non_zero(prompt_tokens),
            prompt_eval_duration: non_zero(prompt_eval),
            eval_count: non_zero(plan.eval_tokens),
            eval_duration: non_zero(eval),
        };
        let mut outcome = Outcome::done(plan.done_reason);
        outcome.load_duration_ns = metrics.load_duration;
        outcome.eval_count = metrics.eval_count;
        outcome.prompt = Some(self.prompt_tokens);
        let piece = Piece::Done {
            done_reason: plan.done_reason,
            metrics,
            context_tokens: self.prompt.tokens + plan.eval_tokens,
        };
        self.end(outcome);
        piece
    }

    fn fail(&mut self) -> Option<Result<Piece, ApiError>> {
        match self.fault.take()? {
            StreamFault::Error { message, .. } => {
                self.end(Outcome::failed(200, &message));
                Some(Err(ApiError::new(500, message)))
            }
            StreamFault::Disconnect { .. } => {
                self.end(Outcome::failed(200, "connection dropped (injected fault)"));
                None
            }
            StreamFault::EarlyEnd { .. } => {
                self.end(Outcome::failed(
                    200,
                    "stream ended without done (injected fault)",
                ));
                Some(Err(ApiError::ended()))
            }
            StreamFault::OutOfMemory { .. } => {
                self.end(Outcome::failed(200, OUT_OF_MEMORY_MESSAGE));
                self.scheduler.expire_all();
                Some(Err(ApiError::new(500, OUT_OF_MEMORY_MESSAGE)))
            }
        }
    }

    /// Frees the slot and the runner before the last item reaches the client, so `/api/ps`
    /// already shows the idle countdown when the client sees `done`.
    fn end(&mut self, outcome: Outcome) {
        self.phase = Phase::Finished;
        if let Some(mut ticket) = self.ticket.take() {
            ticket.set_outcome(outcome);
        }
    }
}

/// A reply: `Ok` chunks, possibly a final `Err` (an error line after streaming began).
/// Dropping it before the end is a client disconnect: the request is cancelled and its
/// runner released. A stream that ends without a `done` chunk had its connection dropped.
pub struct ReplyStream<C> {
    inner: BoxStream<'static, Result<C, ApiError>>,
    immediate: bool,
}

impl<C> ReplyStream<C> {
    pub(crate) fn new(inner: BoxStream<'static, Result<C, ApiError>>) -> ReplyStream<C> {
        ReplyStream {
            inner,
            immediate: false,
        }
    }

    /// A reply of one chunk that needs no generation (preload and unload answers).
    pub(crate) fn single(chunk: C) -> ReplyStream<C>
    where
        C: Send + 'static,
    {
        ReplyStream {
            inner: stream::once(async move { Ok(chunk) }).boxed(),
            immediate: true,
        }
    }

    /// Whether this is a one-chunk answer (Ollama sends these as plain JSON, not NDJSON).
    pub fn is_immediate(&self) -> bool {
        self.immediate
    }
}

impl<C> Stream for ReplyStream<C> {
    type Item = Result<C, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

impl<C> std::fmt::Debug for ReplyStream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyStream")
            .field("immediate", &self.immediate)
            .finish_non_exhaustive()
    }
}
