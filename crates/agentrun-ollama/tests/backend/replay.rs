//! Every recorded response of a real Ollama server, replayed through the backend:
//! what each one becomes, and what the backend sends in return.

use std::collections::BTreeSet;
use std::time::Duration;

use agentrun_core::{
    BackendError, ChatRequest, DoneReason, Message, ModelBackend, Role, Think, ToolCall,
};
use serde_json::json;

use crate::replay_server::{ReplayServer, Reply, fixtures_dir, index};
use crate::support::{backend, chat_request};

/// The model each `/api/show` fixture describes, and the `/api/tags` fixture of the
/// same server that lists it.
const SHOWS: [(&str, &str, &str); 5] = [
    (
        "show-0.11.6-gemma3n.json",
        "gemma3n:e2b",
        "tags-0.11.6.json",
    ),
    ("show-0.11.6-llama.json", "dolphin3:8b", "tags-0.11.6.json"),
    (
        "show-0.11.3-qwen2.json",
        "deepseek-r1:1.5b",
        "tags-0.11.3.json",
    ),
    ("show-0.11.0-qwen3.json", "qwen3:8b", "tags-0.11.0.json"),
    (
        "show-0.10.0-rc0-llama.json",
        "codellama:7b",
        "tags-0.10.0-rc0.json",
    ),
];

async fn chat_once(
    file: &str,
    request: &ChatRequest,
) -> Result<agentrun_core::ChatResponse, BackendError> {
    let server = ReplayServer::start(vec![("POST /api/chat", Reply::streamed(file))]);
    backend(&server.url).chat(request, &mut |_| {}).await
}

#[test]
fn the_index_lists_every_file_with_a_source_and_at_least_twenty_from_four_versions() {
    let listed: BTreeSet<String> = index().into_iter().map(|f| f.file).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(fixtures_dir())
        .expect("the fixtures")
        .map(|entry| {
            entry
                .expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name != "README.md")
        .collect();
    assert_eq!(listed, on_disk, "the index and the directory differ");
    assert!(listed.len() >= 20, "only {} fixtures", listed.len());
    let versions: BTreeSet<String> = index()
        .into_iter()
        .filter(|f| f.version.starts_with("0."))
        .map(|f| f.version.split_whitespace().next().unwrap_or("").to_owned())
        .collect();
    assert!(versions.len() >= 4, "versions: {versions:?}");
    for fixture in index() {
        assert!(
            fixture.source.starts_with("github:") || fixture.source.starts_with("https://"),
            "{} has no source",
            fixture.file
        );
    }
}

#[tokio::test]
async fn every_fixture_replays_through_the_backend() {
    let mut replayed = BTreeSet::new();
    for fixture in index() {
        let file = fixture.file.as_str();
        let request = fixture.request.as_str();
        match (request, fixture.status) {
            ("POST /api/chat", 200) => {
                let response = chat_once(file, &chat_request("m", "hi"))
                    .await
                    .unwrap_or_else(|error| panic!("{file}: {error}"));
                assert!(
                    !response.message.content.is_empty()
                        || response.message.thinking.is_some()
                        || !response.message.tool_calls.is_empty(),
                    "{file}: nothing read"
                );
            }
            (_, status) if status >= 400 => {
                // Error bodies are replayed as answers to a chat call, whatever
                // endpoint they came from: the status and the words are what count.
                let error = chat_once(file, &chat_request("m", "hi"))
                    .await
                    .expect_err(file);
                let message = error.to_string();
                let words: serde_json::Value =
                    serde_json::from_slice(&fixture.body()).expect("an error body");
                let said = words["error"].as_str().expect("an error field");
                match status {
                    404 => assert!(
                        matches!(error, BackendError::ModelNotFound { .. }),
                        "{file}: {error:?}"
                    ),
                    400 => {
                        assert!(
                            matches!(error, BackendError::BadRequest { .. }),
                            "{file}: {error:?}"
                        );
                        assert!(message.contains(said), "{file}: {message}");
                    }
                    _ => {
                        assert!(
                            matches!(error, BackendError::Server { status: s, .. } if s == status),
                            "{file}: {error:?}"
                        );
                        assert!(message.contains(said), "{file}: {message}");
                    }
                }
            }
            ("GET /api/ps", 200) => {
                let server = ReplayServer::start(vec![("GET /api/ps", Reply::recorded(file))]);
                let running = backend(&server.url).running_models().await.expect(file);
                let recorded: serde_json::Value =
                    serde_json::from_slice(&fixture.body()).expect("JSON");
                let sizes: Vec<(u64, u64)> = recorded["models"]
                    .as_array()
                    .expect("models")
                    .iter()
                    .map(|m| {
                        (
                            m["size"].as_u64().unwrap_or(0),
                            m["size_vram"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect();
                let read: Vec<(u64, u64)> = running
                    .iter()
                    .map(|m| (m.size_bytes, m.size_vram_bytes))
                    .collect();
                assert_eq!(read, sizes, "{file}");
            }
            ("GET /api/version", 200) => {
                let server = ReplayServer::start(vec![("GET /api/version", Reply::recorded(file))]);
                let version = backend(&server.url).version().await.expect(file);
                assert_eq!(version, fixture.version, "{file}");
            }
            ("POST /api/show", 200) | ("GET /api/tags", 200) => {
                let (show, model, tags) = SHOWS
                    .iter()
                    .find(|(show, _, tags)| *show == file || *tags == file)
                    .unwrap_or_else(|| panic!("{file}: no show/tags pair"));
                let server = ReplayServer::start(vec![
                    ("POST /api/show", Reply::recorded(show)),
                    ("GET /api/tags", Reply::recorded(tags)),
                ]);
                let details = backend(&server.url).model_details(model).await.expect(file);
                let info: serde_json::Value =
                    serde_json::from_slice(&crate::replay_server::fixture(show).body())
                        .expect("JSON");
                let architecture = info["model_info"]["general.architecture"]
                    .as_str()
                    .expect("an architecture");
                let figure =
                    |suffix: &str| info["model_info"][format!("{architecture}.{suffix}")].as_u64();
                assert_eq!(details.block_count, figure("block_count"), "{file}");
                assert_eq!(
                    details.head_count_kv,
                    figure("attention.head_count_kv"),
                    "{file}"
                );
                assert_eq!(
                    details.embedding_length,
                    figure("embedding_length"),
                    "{file}"
                );
                assert_eq!(details.context_length, figure("context_length"), "{file}");
                assert!(
                    details.file_bytes > 0,
                    "{file}: the file size comes from tags"
                );
                assert_eq!(
                    details.capabilities,
                    serde_json::from_value::<Vec<String>>(info["capabilities"].clone())
                        .expect("capabilities"),
                    "{file}"
                );
            }
            ("POST /api/generate", 200) if file.ends_with(".json") => {
                let server =
                    ReplayServer::start(vec![("POST /api/generate", Reply::recorded(file))]);
                let report = backend(&server.url)
                    .preload("m", &agentrun_core::ModelOptions::new(), None)
                    .await
                    .expect(file);
                let recorded: serde_json::Value =
                    serde_json::from_slice(&fixture.body()).expect("JSON");
                assert_eq!(
                    report.load_duration,
                    recorded["load_duration"].as_u64().map(Duration::from_nanos),
                    "{file}"
                );
            }
            ("POST /api/generate", 200) => {
                // A generate stream is never read by the backend; its reasoning, written
                // inline, is what the agent takes out of a reply.
                let body = fixture.body();
                let text: String = serde_json::Deserializer::from_slice(&body)
                    .into_iter::<serde_json::Value>()
                    .map(|line| {
                        line.expect("a JSON line")["response"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned()
                    })
                    .collect();
                let mut message = Message::assistant(text);
                message.separate_inline_thinking();
                assert!(
                    !message.content.contains("<think>"),
                    "{file}: {}",
                    message.content
                );
                assert!(!message.content.trim().is_empty(), "{file}: no answer left");
                assert!(
                    message.thinking.is_some_and(|t| t.contains("rabbit")),
                    "{file}"
                );
            }
            other => panic!("{file}: no replay for {other:?}"),
        }
        replayed.insert(fixture.file);
    }
    assert_eq!(replayed.len(), index().len());
}

#[tokio::test]
async fn an_all_thinking_reply_cut_at_length_is_read_as_such() {
    for file in [
        "chat-0.13.5-all-thinking-length.json",
        "chat-0.13.5-stream-all-thinking-length.ndjson",
        "chat-0.13.5-stream-first-and-last-chunk.ndjson",
    ] {
        let response = chat_once(file, &chat_request("qwen3:32b", "hi"))
            .await
            .expect(file);
        assert_eq!(response.done_reason, Some(DoneReason::Length), "{file}");
        assert_eq!(response.message.content, "", "{file}");
        assert!(
            response
                .message
                .thinking
                .as_deref()
                .is_some_and(|t| t.starts_with("Okay")),
            "{file}: {:?}",
            response.message.thinking
        );
        assert_eq!(response.metrics.eval_count, Some(20), "{file}");
    }
}

#[tokio::test]
async fn tool_calls_keep_their_id_when_the_server_gives_one() {
    let with_id = chat_once(
        "chat-0.13.5-tool-call-with-id.json",
        &chat_request("m", "hi"),
    )
    .await
    .expect("a reply");
    assert_eq!(
        with_id.message.tool_calls,
        [ToolCall {
            id: Some("call_d1imwj4g".to_owned()),
            name: "get_weather".to_owned(),
            arguments: json!({"location": "Paris"}),
        }]
    );
    let without = chat_once(
        "chat-ollama.com-tool-call-without-id.json",
        &chat_request("m", "hi"),
    )
    .await
    .expect("a reply");
    assert_eq!(without.message.tool_calls.len(), 1);
    assert_eq!(without.message.tool_calls[0].id, None);
    assert!(
        without.message.thinking.is_some(),
        "thinking beside the call"
    );
    assert_eq!(without.done_reason, None, "this server sent no done_reason");
    assert_eq!(without.metrics.eval, None);
    assert_eq!(
        without.metrics.total,
        Some(Duration::from_nanos(611_858_816))
    );
}

#[tokio::test]
async fn a_tool_loop_sends_thinking_tool_name_and_call_id_back() {
    let server = ReplayServer::start(vec![(
        "POST /api/chat",
        Reply::streamed("chat-0.13.5-stream-first-and-last-chunk.ndjson"),
    )]);
    let call = ToolCall {
        id: Some("call_d1imwj4g".to_owned()),
        name: "get_weather".to_owned(),
        arguments: json!({"location": "Paris"}),
    };
    let mut request = chat_request("qwen3:32b", "Weather in Paris?");
    request.think = Some(Think::Enabled(true));
    request.messages.push(Message {
        thinking: Some("I should call get_weather.".to_owned()),
        tool_calls: vec![call.clone()],
        ..Message::new(Role::Assistant, "")
    });
    request
        .messages
        .push(Message::tool_result(&call, "18 C, clear"));
    backend(&server.url)
        .chat(&request, &mut |_| {})
        .await
        .expect("a reply");
    let sent = server.received_for("POST /api/chat");
    let messages = sent[0]["messages"].as_array().expect("messages");
    let assistant = &messages[messages.len() - 2];
    assert_eq!(assistant["thinking"], "I should call get_weather.");
    assert_eq!(assistant["tool_calls"][0]["id"], "call_d1imwj4g");
    let result = &messages[messages.len() - 1];
    assert_eq!(result["role"], "tool");
    assert_eq!(result["tool_name"], "get_weather");
    assert_eq!(result["tool_call_id"], "call_d1imwj4g");
    assert_eq!(sent[0]["think"], true);
}

#[tokio::test]
async fn a_think_level_goes_out_as_its_name() {
    let server = ReplayServer::start(vec![(
        "POST /api/chat",
        Reply::recorded("error-0.13.5-think-level.json"),
    )]);
    let mut request = chat_request("qwen3:32b", "hi");
    request.think = Some(Think::Level(agentrun_core::ThinkLevel::Low));
    let error = backend(&server.url)
        .chat(&request, &mut |_| {})
        .await
        .expect_err("the server refused the level");
    assert!(
        error
            .to_string()
            .contains("think value \"low\" is not supported"),
        "{error}"
    );
    assert_eq!(server.received_for("POST /api/chat")[0]["think"], "low");
}

#[tokio::test]
async fn partial_offload_and_forever_residency_are_read() {
    let server = ReplayServer::start(vec![(
        "GET /api/ps",
        Reply::recorded("ps-0.11.6-partial-offload.json"),
    )]);
    let running = backend(&server.url).running_models().await.expect("ps");
    assert_eq!(running[0].name, "mistral:7b");
    assert!(
        running[0].size_vram_bytes < running[0].size_bytes,
        "part of it on the CPU"
    );
    let server = ReplayServer::start(vec![(
        "GET /api/ps",
        Reply::recorded("ps-0.13.5-forever.json"),
    )]);
    let running = backend(&server.url).running_models().await.expect("ps");
    assert!(
        running[0]
            .expires_at
            .as_deref()
            .is_some_and(|at| at.starts_with("2318-"))
    );
    assert_eq!(running[0].context_length, Some(4096));
}

#[tokio::test]
async fn show_is_asked_with_model_and_without_verbose_when_the_figures_are_there() {
    let server = ReplayServer::start(vec![
        (
            "POST /api/show",
            Reply::recorded("show-0.11.6-gemma3n.json"),
        ),
        ("GET /api/tags", Reply::recorded("tags-0.11.6.json")),
    ]);
    let details = backend(&server.url)
        .model_details("gemma3n:e2b")
        .await
        .expect("details");
    assert_eq!(details.head_count_kv, Some(2));
    let asked = server.received_for("POST /api/show");
    assert_eq!(
        asked,
        [json!({"model": "gemma3n:e2b"})],
        "one short question, by `model`"
    );
}
