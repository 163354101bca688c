//! Streaming chat over `POST /api/chat`, with Ollama's wire format spelled out.
//!
//! ollama-rs's chat stream is not used: it drops `done_reason`, loses every
//! metric when one is omitted, skips error lines, and loses the HTTP status.
//! Here each line of the NDJSON reply is parsed whole, an error line ends the
//! call with an error, and a reply is only complete with its `done: true` line.

use std::time::Duration;

use agentrun_core::Think;
use agentrun_core::{
    BackendError, CallMetrics, ChatRequest, ChatResponse, DoneReason, Message, ModelOptions, Role,
    TokenSink, ToolCall,
};
use futures::StreamExt;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, timeout_at};

use crate::config::OllamaConfig;
use crate::failure::{self, Target};
use crate::ndjson::{LineDecoder, MAX_LINE_BYTES};

/// Sends `request` and streams the reply's text into `on_text`.
///
/// Until the first line of the reply the call may wait `load_timeout` (the
/// model may be loading); after it, at most `stream_timeout` between chunks.
/// Dropping the returned future closes the connection, and Ollama then stops
/// generating.
pub(crate) async fn chat(
    http: &reqwest::Client,
    base: &Url,
    config: &OllamaConfig,
    target: Target<'_>,
    request: &ChatRequest,
    on_text: TokenSink<'_>,
) -> Result<ChatResponse, BackendError> {
    let url = base
        .join("api/chat")
        .expect("a relative path joins any http base URL");
    let body = WireRequest::new(request);
    let mut deadline = Instant::now() + config.load_timeout;
    let mut waited = config.load_timeout;

    let response = timeout_at(deadline, http.post(url).json(&body).send())
        .await
        .map_err(|_| target.timeout(waited))?
        .map_err(|error| target.transport(&error))?;
    let status = response.status();
    if !status.is_success() {
        let error_body = timeout_at(Instant::now() + config.request_timeout, response.text())
            .await
            .map_err(|_| target.timeout(config.request_timeout))?
            .unwrap_or_else(|error| error.to_string());
        return Err(target.response(status, &error_body));
    }

    let mut chunks = response.bytes_stream();
    let mut decoder = LineDecoder::new(MAX_LINE_BYTES);
    let mut reply = ReplyBuilder::default();
    loop {
        let chunk = timeout_at(deadline, chunks.next())
            .await
            .map_err(|_| target.timeout(waited))?;
        let outcome = match chunk {
            Some(Ok(bytes)) => {
                decoder.push(&bytes);
                reply.read_lines(&mut decoder, target, on_text)?
            }
            Some(Err(error)) => {
                return Err(target.stream(format!(
                    "the connection broke after {} characters of reply: {}",
                    reply.content.chars().count(),
                    failure::root_cause(&error)
                )));
            }
            None => {
                let last = match decoder.finish() {
                    Some(line) => reply.read_line(line, target, on_text)?,
                    None => None,
                };
                return last.ok_or_else(|| {
                    target.stream(format!(
                        "the server ended the reply without its final chunk (done: true) \
                         after {} characters",
                        reply.content.chars().count()
                    ))
                });
            }
        };
        if let Some(response) = outcome {
            return Ok(response);
        }
        if reply.lines_read > 0 {
            // Generation has started: from now on only the gap between chunks
            // is bounded, however long the whole reply takes.
            deadline = Instant::now() + config.stream_timeout;
            waited = config.stream_timeout;
        }
    }
}

/// The reply as it accumulates, chunk by chunk.
#[derive(Debug, Default)]
struct ReplyBuilder {
    content: String,
    thinking: String,
    tool_calls: Vec<ToolCall>,
    lines_read: usize,
}

impl ReplyBuilder {
    /// Reads every complete line the decoder holds; returns the response
    /// once the final line has been read.
    fn read_lines(
        &mut self,
        decoder: &mut LineDecoder,
        target: Target<'_>,
        on_text: TokenSink<'_>,
    ) -> Result<Option<ChatResponse>, BackendError> {
        loop {
            let line = decoder.next_line().map_err(|too_long| {
                target.stream(format!(
                    "a reply line exceeded {} bytes without ending; is this an Ollama server?",
                    too_long.bytes
                ))
            })?;
            let Some(line) = line else {
                return Ok(None);
            };
            if let Some(response) = self.read_line(line, target, on_text)? {
                return Ok(Some(response));
            }
        }
    }

    /// Reads one line of the reply; returns the response if it was the last.
    fn read_line(
        &mut self,
        line: &[u8],
        target: Target<'_>,
        on_text: TokenSink<'_>,
    ) -> Result<Option<ChatResponse>, BackendError> {
        self.lines_read += 1;
        let chunk: WireChunk = serde_json::from_slice(line).map_err(|error| {
            target.stream(format!(
                "unreadable reply line {}: {error}: {}",
                self.lines_read,
                String::from_utf8_lossy(&line[..line.len().min(200)])
            ))
        })?;
        if let Some(error) = chunk.error {
            // Ollama keeps status 200 once streaming has begun and reports a
            // failure as a last `{"error": ..}` line; what came before is not
            // a complete reply.
            return Err(target.stream(format!(
                "the server reported an error after {} characters of reply: {error}",
                self.content.chars().count()
            )));
        }
        if let Some(message) = chunk.message {
            if !message.content.is_empty() {
                on_text(&message.content);
                self.content.push_str(&message.content);
            }
            if let Some(thinking) = message.thinking {
                self.thinking.push_str(&thinking);
            }
            self.tool_calls
                .extend(message.tool_calls.into_iter().map(|call| ToolCall {
                    id: call.id.filter(|id| !id.is_empty()),
                    name: call.function.name,
                    arguments: call.function.arguments,
                }));
        }
        if !chunk.done {
            return Ok(None);
        }
        let metrics = CallMetrics {
            total: chunk.total_duration.map(Duration::from_nanos),
            load: chunk.load_duration.map(Duration::from_nanos),
            prompt_eval_count: chunk.prompt_eval_count,
            prompt_eval: chunk.prompt_eval_duration.map(Duration::from_nanos),
            eval_count: chunk.eval_count,
            eval: chunk.eval_duration.map(Duration::from_nanos),
        };
        let thinking = std::mem::take(&mut self.thinking);
        Ok(Some(ChatResponse {
            message: Message {
                role: Role::Assistant,
                content: std::mem::take(&mut self.content),
                tool_calls: std::mem::take(&mut self.tool_calls),
                thinking: (!thinking.is_empty()).then_some(thinking),
                tool_name: None,
                tool_call_id: None,
            },
            done_reason: chunk.done_reason.map(DoneReason::from),
            metrics,
        }))
    }
}

/// The body of `POST /api/chat`.
#[derive(Debug, Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    options: &'a ModelOptions,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<Think>,
}

impl<'a> WireRequest<'a> {
    fn new(request: &'a ChatRequest) -> WireRequest<'a> {
        WireRequest {
            model: &request.model,
            messages: request.messages.iter().map(WireMessage::new).collect(),
            tools: request
                .tools
                .iter()
                .map(|tool| WireTool {
                    kind: "function",
                    function: WireFunction {
                        name: &tool.name,
                        description: &tool.description,
                        parameters: &tool.parameters,
                    },
                })
                .collect(),
            format: request.format.as_ref(),
            options: &request.options,
            stream: true,
            keep_alive: request.keep_alive.map(|keep_alive| keep_alive.to_json()),
            think: request.think,
        }
    }
}

/// A message as Ollama reads it.
#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: Role,
    content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    /// For a tool result, the tool it came from: with several calls in one turn
    /// the model tells the results apart by it (servers before 0.12.10 ignore it).
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
    /// For a tool result, the id of the call it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

impl<'a> WireMessage<'a> {
    fn new(message: &'a Message) -> WireMessage<'a> {
        WireMessage {
            role: message.role,
            content: &message.content,
            tool_calls: message
                .tool_calls
                .iter()
                .map(|call| WireToolCall {
                    id: call.id.as_deref(),
                    function: WireCalledFunction {
                        name: &call.name,
                        arguments: &call.arguments,
                    },
                })
                .collect(),
            thinking: message.thinking.as_deref(),
            tool_name: message.tool_name.as_deref(),
            tool_call_id: message.tool_call_id.as_deref(),
        }
    }
}

/// A tool call in an earlier assistant message.
#[derive(Debug, Serialize)]
struct WireToolCall<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    function: WireCalledFunction<'a>,
}

#[derive(Debug, Serialize)]
struct WireCalledFunction<'a> {
    name: &'a str,
    arguments: &'a serde_json::Value,
}

/// A tool offered to the model.
#[derive(Debug, Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

/// One line of the reply. Ollama omits each metric when it is zero, so each
/// is optional on its own.
#[derive(Debug, Deserialize)]
struct WireChunk {
    #[serde(default)]
    message: Option<WireReplyMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    total_duration: Option<u64>,
    #[serde(default)]
    load_duration: Option<u64>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    prompt_eval_duration: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    eval_duration: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireReplyMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireReplyToolCall>,
}

#[derive(Debug, Deserialize)]
struct WireReplyToolCall {
    /// Given since Ollama 0.12.10; absent (or empty) before.
    #[serde(default)]
    id: Option<String>,
    function: WireReplyFunction,
}

#[derive(Debug, Deserialize)]
struct WireReplyFunction {
    name: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
