//! Gaps in ollama-rs that this crate works around, one test each.
//!
//! Each test asserts that the gap is still there. When one fails after an
//! ollama-rs upgrade, upstream has fixed it: check the fix, consider moving
//! the matching call back to ollama-rs and dropping our workaround (named in
//! the test's doc), then delete the test.

use futures::StreamExt;
use ollama_rs::Ollama;
use ollama_rs::error::OllamaError;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::chat::{ChatMessage, ChatMessageResponse};
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::models::LocalModel;
use serde_json::json;

use crate::canned::{self, End, Piece, Script};
use crate::support::PAUSE;

fn final_chat_line() -> serde_json::Value {
    json!({
        "model": "coder", "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": ""},
        "done": true, "done_reason": "length",
        "total_duration": 3_000_000_000u64, "load_duration": 1_000_000_000u64,
        "prompt_eval_count": 12, "prompt_eval_duration": 200_000_000u64,
        "eval_count": 64, "eval_duration": 1_500_000_000u64,
    })
}

fn chat_line(content: &str) -> String {
    let line = json!({
        "model": "coder", "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content}, "done": false,
    });
    format!("{line}\n")
}

fn client(url: &str) -> Ollama {
    Ollama::try_new(url).expect("a valid URL")
}

fn chat_request() -> ChatMessageRequest {
    ChatMessageRequest::new("coder".to_owned(), vec![ChatMessage::user("hi".to_owned())])
}

/// ollama-rs's `ChatMessageResponse` has no `done_reason`, so a reply cut at
/// `num_predict` ("length") cannot be told from a finished one ("stop").
/// Workaround: `chat.rs` parses chat lines with its own `WireChunk`.
#[test]
fn ollama_rs_gap_chat_response_has_no_done_reason() {
    let response: ChatMessageResponse =
        serde_json::from_value(final_chat_line()).expect("a valid final chunk");
    let back = serde_json::to_value(&response).expect("serializable");
    assert_eq!(
        back.get("done_reason"),
        None,
        "ollama-rs now keeps done_reason: {back}"
    );
}

/// ollama-rs's `final_data` is all or nothing: Ollama omits a metric that is
/// zero, and then every metric, `load_duration` included, is lost.
/// Workaround: `chat.rs` reads each metric as its own `Option`.
#[test]
fn ollama_rs_gap_one_omitted_metric_drops_all_metrics() {
    let mut line = final_chat_line();
    line.as_object_mut()
        .expect("an object")
        .remove("prompt_eval_count");
    let response: ChatMessageResponse = serde_json::from_value(line).expect("a valid final chunk");
    assert!(response.done);
    assert!(
        response.final_data.is_none(),
        "ollama-rs now keeps the metrics when one is omitted: {:?}",
        response.final_data
    );
}

/// ollama-rs's `/api/tags` entries (`LocalModel`) have no digest, which tells
/// whether two names share one weights file (and one runner).
/// Workaround: `listing.rs` reads `/api/tags` itself.
#[test]
fn ollama_rs_gap_local_model_has_no_digest() {
    let model: LocalModel = serde_json::from_value(json!({
        "name": "qwen3:1.7b", "model": "qwen3:1.7b", "modified_at": "2026-01-01T00:00:00Z",
        "size": 1_359_293_440u64, "digest": "8f68893c685c",
    }))
    .expect("a valid tag entry");
    let back = serde_json::to_value(&model).expect("serializable");
    assert_eq!(
        back.get("digest"),
        None,
        "ollama-rs now keeps the digest: {back}"
    );
}

/// ollama-rs's chat stream skips a mid-stream `{"error": ..}` line (it only
/// prints it to stderr): the stream just ends, without an error and without
/// a `done` chunk. Workaround: `chat.rs` turns an error line, and a stream
/// that ends without `done: true`, into `BackendError::Stream`.
#[tokio::test]
async fn ollama_rs_gap_chat_stream_swallows_an_error_line() {
    let server = canned::serve(Script::stream(
        vec![
            Piece::text(&chat_line("partial")),
            Piece::text("{\"error\":\"an error was encountered while running the model\"}\n"),
        ],
        End::Complete,
    ))
    .await;
    let mut stream = client(&server.url)
        .send_chat_messages_stream(chat_request())
        .await
        .expect("the stream starts");
    let mut items = Vec::new();
    while let Some(item) = stream.next().await {
        items.push(item);
    }
    assert!(
        items.iter().all(Result::is_ok),
        "ollama-rs now reports the error line as an error"
    );
    assert_eq!(items.len(), 1, "only the text chunk comes through");
    assert!(items.iter().flatten().all(|chunk| !chunk.done));
}

/// ollama-rs's chat stream decodes each HTTP chunk as UTF-8 on its own and
/// drops a chunk that ends inside a multi-byte character, losing its text
/// and corrupting the lines around it. Workaround: `ndjson.rs` buffers
/// bytes, not strings, and only decodes whole lines.
#[tokio::test]
async fn ollama_rs_gap_chat_stream_drops_a_chunk_that_splits_a_character() {
    let body = format!(
        "{}{}",
        chat_line("déjà"),
        serde_json::to_string(&final_chat_line()).expect("json") + "\n"
    );
    let split = body.find('é').expect("an é") + 1; // inside the two bytes of 'é'
    let bytes = body.into_bytes();
    let server = canned::serve(Script::stream(
        vec![
            Piece::Bytes(bytes[..split].to_vec()),
            Piece::Pause(PAUSE),
            Piece::Bytes(bytes[split..].to_vec()),
        ],
        End::Complete,
    ))
    .await;
    let mut stream = client(&server.url)
        .send_chat_messages_stream(chat_request())
        .await
        .expect("the stream starts");
    let mut text = String::new();
    let mut done = false;
    while let Some(item) = stream.next().await {
        let chunk = item.expect("no transport error");
        text.push_str(&chunk.message.content);
        done |= chunk.done;
    }
    assert!(
        text != "déjà" || !done,
        "ollama-rs now decodes a character split across chunks"
    );
}

/// ollama-rs turns every non-2xx answer into `OllamaError::Other(body)`:
/// the status is lost, so a full queue (503, retry) cannot be told from a
/// failed load (500) without reading the message. Workaround: chat, tags,
/// ps and version use reqwest and keep the status; for the ollama-rs calls
/// (show, preload, unload) `failure.rs` classifies the server's wording.
#[tokio::test]
async fn ollama_rs_gap_error_status_is_lost() {
    let message = "something went wrong";
    let mut errors = Vec::new();
    for status in [500, 503] {
        let server = canned::serve(Script::error(status, message)).await;
        let error = client(&server.url)
            .generate(GenerationRequest::new("coder".to_owned(), ""))
            .await
            .expect_err("an error status");
        let OllamaError::Other(body) = error else {
            panic!("ollama-rs now reports HTTP {status} differently: {error:?}");
        };
        errors.push(body);
    }
    assert_eq!(
        errors[0], errors[1],
        "ollama-rs now keeps the status: {errors:?}"
    );
    assert!(!errors[0].contains("500") && !errors[0].contains("503"));
}

/// ollama-rs's `generate_stream` parses each HTTP chunk on its own and drops
/// what does not parse, so a line cut across two chunks is lost (and with it
/// the `done` line, whose `context` array makes it long). Workaround: this
/// crate never streams `/api/generate`; chat streaming goes through
/// `ndjson.rs`, and preload/unload use non-streaming `generate`.
#[tokio::test]
async fn ollama_rs_gap_generate_stream_loses_a_line_split_across_chunks() {
    let lines = [
        json!({"model": "coder", "created_at": "2026-01-01T00:00:00Z", "response": "Hello", "done": false}),
        json!({"model": "coder", "created_at": "2026-01-01T00:00:00Z", "response": "", "done": true,
               "done_reason": "stop", "context": (0..500).collect::<Vec<i32>>()}),
    ];
    let body: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let split = body.find("\"done\":true").expect("the final line");
    let bytes = body.into_bytes();
    let server = canned::serve(Script::stream(
        vec![
            Piece::Bytes(bytes[..split].to_vec()),
            Piece::Pause(PAUSE),
            Piece::Bytes(bytes[split..].to_vec()),
        ],
        End::Complete,
    ))
    .await;
    let mut stream = client(&server.url)
        .generate_stream(GenerationRequest::new("coder".to_owned(), "hi"))
        .await
        .expect("the stream starts");
    let mut http_chunks = 0;
    let mut done = false;
    while let Some(item) = stream.next().await {
        http_chunks += 1;
        done |= item
            .expect("no transport error")
            .iter()
            .any(|response| response.done);
    }
    assert!(
        http_chunks >= 2,
        "the body was not split; the gap was not exercised"
    );
    assert!(
        !done,
        "ollama-rs generate_stream now reassembles split lines"
    );
}

/// ollama-rs's `ToolCall` has no `id`, so a call's id (given since Ollama
/// 0.12.10) is lost and a result cannot name the call it answers.
/// Workaround: `chat.rs` reads tool calls with its own `WireReplyToolCall`.
#[test]
fn ollama_rs_gap_tool_call_has_no_id() {
    let body = crate::replay_server::fixture("chat-0.13.5-tool-call-with-id.json").body();
    let reply: serde_json::Value = serde_json::from_slice(&body).expect("a real reply");
    let message: ChatMessage =
        serde_json::from_value(reply["message"].clone()).expect("its message");
    let back = serde_json::to_value(&message.tool_calls).expect("serializable");
    assert_eq!(
        back[0]["function"]["name"], "get_weather",
        "the call was read"
    );
    assert_eq!(
        back[0].get("id"),
        None,
        "ollama-rs now keeps the tool call's id: {back}"
    );
}

/// ollama-rs's `ChatMessage` has no `tool_name` (nor a call id), so a tool
/// result cannot say which call it answers; with several calls in one turn the
/// model can only go by position. Workaround: `chat.rs` sends its own
/// `WireMessage` with `tool_name` and `tool_call_id`.
#[test]
fn ollama_rs_gap_tool_result_has_no_tool_name() {
    let message = ChatMessage::tool("18 C".to_owned());
    let wire = serde_json::to_value(&message).expect("serializable");
    assert_eq!(wire["role"], "tool");
    assert_eq!(
        wire.get("tool_name"),
        None,
        "ollama-rs now sends tool_name: {wire}"
    );
}

/// ollama-rs asks `/api/show` with the deprecated `name` field and never with
/// `verbose`, so the per-layer figures of some architectures never arrive.
/// Workaround: `model_details.rs` asks `/api/show` itself, with `model`.
#[tokio::test]
async fn ollama_rs_gap_show_is_asked_with_the_deprecated_name() {
    use crate::replay_server::{ReplayServer, Reply};
    let server = ReplayServer::start(vec![(
        "POST /api/show",
        Reply::recorded("show-0.11.6-gemma3n.json"),
    )]);
    client(&server.url)
        .show_model_info("gemma3n:e2b".to_owned())
        .await
        .expect("a real show answer parses");
    let asked = server.received_for("POST /api/show");
    assert_eq!(
        asked[0].get("model"),
        None,
        "ollama-rs now asks with `model`: {}",
        asked[0]
    );
    assert_eq!(asked[0]["name"], "gemma3n:e2b");
}
