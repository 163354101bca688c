//! Tests of the chat wire format and of assembling a streamed reply.

use std::time::Duration;

use agentrun_core::{KeepAlive, ToolSpec};
use serde_json::json;

use super::*;

fn target() -> Target<'static> {
    Target::model("http://127.0.0.1:11434", "coder", "POST /api/chat")
}

/// Feeds the lines to a fresh reply; returns the text passed to the sink and
/// the outcome of the last line.
fn read(lines: &[serde_json::Value]) -> (String, Result<Option<ChatResponse>, BackendError>) {
    let mut streamed = String::new();
    let mut sink = |text: &str| streamed.push_str(text);
    let mut reply = ReplyBuilder::default();
    let mut outcome = Ok(None);
    for line in lines {
        let bytes = serde_json::to_vec(line).expect("serializable");
        outcome = reply.read_line(&bytes, target(), &mut sink);
        if !matches!(outcome, Ok(None)) {
            break;
        }
    }
    (streamed, outcome)
}

fn piece(content: &str) -> serde_json::Value {
    json!({"model": "coder", "created_at": "2026-01-01T00:00:00Z",
           "message": {"role": "assistant", "content": content}, "done": false})
}

#[test]
fn the_request_carries_every_field_in_ollamas_shape() {
    let mut options = ModelOptions::new();
    options.insert("num_ctx".into(), json!(8192));
    let mut assistant = Message::assistant("");
    assistant.tool_calls.push(ToolCall {
        id: None,
        name: "read_file".into(),
        arguments: json!({"path": "src/lib.rs"}),
    });
    let request = ChatRequest {
        model: "coder".into(),
        messages: vec![
            Message::system("Be terse."),
            Message::user("Read it."),
            assistant,
            Message::new(Role::Tool, "fn main() {}"),
        ],
        options,
        keep_alive: Some(KeepAlive::For(Duration::from_secs(600))),
        format: Some(json!("json")),
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file.".into(),
            parameters: json!({"type": "object"}),
        }],
        think: Some(agentrun_core::Think::Enabled(false)),
    };
    let wire = serde_json::to_value(WireRequest::new(&request)).expect("serializable");
    assert_eq!(
        wire,
        json!({
            "model": "coder",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Read it."},
                {"role": "assistant", "content": "",
                 "tool_calls": [{"function": {"name": "read_file", "arguments": {"path": "src/lib.rs"}}}]},
                {"role": "tool", "content": "fn main() {}"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "read_file", "description": "Reads a file.", "parameters": {"type": "object"}}}],
            "format": "json",
            "options": {"num_ctx": 8192},
            "stream": true,
            "keep_alive": 600,
            "think": false,
        })
    );
}

#[test]
fn a_minimal_request_sends_no_empty_fields() {
    let request = ChatRequest {
        model: "coder".into(),
        messages: vec![Message::user("hi")],
        options: ModelOptions::new(),
        keep_alive: None,
        format: None,
        tools: Vec::new(),
        think: None,
    };
    let wire = serde_json::to_value(WireRequest::new(&request)).expect("serializable");
    assert_eq!(
        wire,
        json!({"model": "coder", "messages": [{"role": "user", "content": "hi"}], "stream": true})
    );
}

#[test]
fn pieces_stream_out_and_the_final_chunk_completes_the_reply() {
    let (streamed, outcome) = read(&[
        piece("Hel"),
        piece("lo"),
        json!({"model": "coder", "message": {"role": "assistant", "content": ""},
               "done": true, "done_reason": "length",
               "total_duration": 3_000_000_000u64, "load_duration": 1_500_000_000u64,
               "prompt_eval_count": 12, "prompt_eval_duration": 200_000_000u64,
               "eval_count": 2, "eval_duration": 1_000_000_000u64}),
    ]);
    assert_eq!(streamed, "Hello");
    let response = outcome.expect("a reply").expect("complete");
    assert_eq!(response.message, Message::assistant("Hello"));
    assert_eq!(
        response
            .done_reason
            .as_ref()
            .map(agentrun_core::DoneReason::as_str),
        Some("length")
    );
    assert_eq!(
        response.metrics,
        CallMetrics {
            total: Some(Duration::from_secs(3)),
            load: Some(Duration::from_millis(1500)),
            prompt_eval_count: Some(12),
            prompt_eval: Some(Duration::from_millis(200)),
            eval_count: Some(2),
            eval: Some(Duration::from_secs(1)),
        }
    );
}

#[test]
fn an_omitted_metric_leaves_the_others_known() {
    let (_, outcome) = read(&[json!({"message": {"role": "assistant", "content": "ok"},
        "done": true, "done_reason": "stop", "load_duration": 5_000_000u64, "eval_count": 1})]);
    let metrics = outcome.expect("a reply").expect("complete").metrics;
    assert_eq!(metrics.load, Some(Duration::from_millis(5)));
    assert_eq!(metrics.eval_count, Some(1));
    assert_eq!(metrics.prompt_eval_count, None);
    assert_eq!(metrics.total, None);
}

#[test]
fn thinking_and_tool_calls_are_gathered_across_chunks() {
    let (streamed, outcome) = read(&[
        json!({"message": {"role": "assistant", "content": "", "thinking": "Need the "}, "done": false}),
        json!({"message": {"role": "assistant", "content": "", "thinking": "file."}, "done": false}),
        json!({"message": {"role": "assistant", "content": "",
               "tool_calls": [{"function": {"name": "read_file", "arguments": {"path": "a.rs"}}}]},
               "done": false}),
        json!({"message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop"}),
    ]);
    assert_eq!(streamed, "", "thinking is not reply text");
    let message = outcome.expect("a reply").expect("complete").message;
    assert_eq!(message.thinking.as_deref(), Some("Need the file."));
    assert_eq!(
        message.tool_calls,
        [ToolCall {
            id: None,
            name: "read_file".into(),
            arguments: json!({"path": "a.rs"})
        }]
    );
}

#[test]
fn an_error_line_mid_stream_is_a_stream_error() {
    let (streamed, outcome) = read(&[piece("partial"), json!({"error": "runner crashed"})]);
    assert_eq!(streamed, "partial");
    let error = outcome.expect_err("an error line");
    assert!(
        matches!(&error, BackendError::Stream { model, message }
            if model == "coder" && message.contains("runner crashed") && message.contains("after 7 characters")),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[test]
fn a_line_that_is_not_json_is_a_stream_error() {
    let mut reply = ReplyBuilder::default();
    let mut sink = |_: &str| {};
    let error = reply
        .read_line(b"<html>", target(), &mut sink)
        .expect_err("not JSON");
    assert!(
        matches!(&error, BackendError::Stream { message, .. } if message.contains("<html>")),
        "{error:?}"
    );
}
