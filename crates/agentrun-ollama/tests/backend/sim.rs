//! The backend against an in-process `ollama-sim` over HTTP: the calls a run
//! makes, and the faults a server can throw at them.

use std::time::Duration;

use agentrun_core::{BackendError, KeepAlive, ModelBackend, ModelOptions};
use ollama_sim::{Disconnect, Event, Faults, LoadFailure, StreamError};
use serde_json::json;

use crate::support::{SimServer, backend, chat_request, start_sim};

const SMALL: &str = "qwen3:1.7b";
const TESTER: &str = "qwen3-coder:14b";

fn options(num_ctx: u64) -> ModelOptions {
    let mut options = ModelOptions::new();
    options.insert("num_ctx".into(), json!(num_ctx));
    options
}

/// Models the simulator has started loading, in order.
fn loads(server: &SimServer) -> Vec<String> {
    server
        .sim
        .log()
        .into_iter()
        .filter_map(|entry| match entry.event {
            Event::LoadStarted { model, .. } => Some(model.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn chat_streams_text_in_pieces_and_ends_with_metrics_and_done_reason() {
    let server = start_sim().await;
    let mut request = chat_request(SMALL, "Write a haiku.");
    request.options = options(4096);
    // Without thinking every generated token is content, so eval_count is the reply's length.
    request.think = Some(agentrun_core::Think::Enabled(false));
    let mut pieces = Vec::new();
    let reply = backend(&server.url)
        .chat(&request, &mut |text| pieces.push(text.to_owned()))
        .await
        .expect("a reply");
    assert!(pieces.len() > 1, "the text came in one piece: {pieces:?}");
    assert_eq!(pieces.concat(), reply.message.content);
    assert!(!reply.message.content.is_empty());
    assert_eq!(
        reply
            .done_reason
            .as_ref()
            .map(agentrun_core::DoneReason::as_str),
        Some("stop")
    );
    let metrics = reply.metrics;
    assert!(
        metrics
            .eval_count
            .is_some_and(|count| (60..=180).contains(&count)),
        "a natural length around the simulator's typical 120 tokens: {metrics:?}"
    );
    assert!(
        metrics.prompt_eval_count.is_some_and(|count| count > 0),
        "{metrics:?}"
    );
    assert!(
        metrics.load.is_some() && metrics.total.is_some(),
        "{metrics:?}"
    );
}

#[tokio::test]
async fn a_reply_cut_at_num_predict_says_length() {
    let server = start_sim().await;
    let mut request = chat_request(SMALL, "Go on forever.");
    request.options = options(4096);
    request.options.insert("num_predict".into(), json!(7));
    let reply = backend(&server.url)
        .chat(&request, &mut |_| {})
        .await
        .expect("a reply");
    assert_eq!(
        reply
            .done_reason
            .as_ref()
            .map(agentrun_core::DoneReason::as_str),
        Some("length")
    );
    assert_eq!(reply.metrics.eval_count, Some(7));
}

#[tokio::test]
async fn preload_makes_the_model_resident_and_unload_removes_it() {
    let server = start_sim().await;
    let backend = backend(&server.url);
    assert_eq!(backend.running_models().await.expect("ps"), []);

    backend
        .preload(TESTER, &options(16384), Some(KeepAlive::Forever))
        .await
        .expect("a preload");
    let running = backend.running_models().await.expect("ps");
    assert_eq!(running.len(), 1, "{running:?}");
    let resident = &running[0];
    assert_eq!(resident.name, TESTER);
    assert_eq!(resident.context_length, Some(16384));
    assert!(
        resident.size_bytes > 9_001_753_472,
        "weights plus KV cache: {resident:?}"
    );
    assert!(resident.size_vram_bytes > 0);
    assert!(resident.expires_at.is_some());

    backend.unload(TESTER).await.expect("an unload");
    assert_eq!(backend.running_models().await.expect("ps"), []);
}

#[tokio::test]
async fn a_chat_after_a_preload_with_the_same_options_does_not_reload() {
    let server = start_sim().await;
    let backend = backend(&server.url);
    let mut options = options(8192);
    options.insert("num_batch".into(), json!(512));
    options.insert("temperature".into(), json!(0.2));
    backend
        .preload(
            SMALL,
            &options,
            Some(KeepAlive::For(Duration::from_secs(600))),
        )
        .await
        .expect("a preload");
    let mut request = chat_request(SMALL, "hi");
    request.options = options;
    backend.chat(&request, &mut |_| {}).await.expect("a reply");
    assert_eq!(loads(&server), [SMALL], "one load only");
}

#[tokio::test]
async fn model_details_give_the_figures_that_predict_memory() {
    let server = start_sim().await;
    let details = backend(&server.url)
        .model_details(TESTER)
        .await
        .expect("details");
    assert_eq!(details.name, TESTER);
    assert_eq!(details.file_bytes, 9_001_753_472);
    assert!(
        details
            .digest
            .as_deref()
            .is_some_and(|digest| !digest.is_empty())
    );
    assert_eq!(details.block_count, Some(40));
    assert_eq!(details.head_count, Some(40));
    assert_eq!(details.head_count_kv, Some(8));
    assert_eq!(details.embedding_length, Some(5120));
    assert_eq!(details.context_length, Some(262_144));
    assert!(
        details
            .capabilities
            .iter()
            .any(|capability| capability == "tools")
    );
}

#[tokio::test]
async fn a_model_without_tag_is_found_as_latest_or_not_at_all() {
    let server = start_sim().await;
    let error = backend(&server.url)
        .model_details("qwen3")
        .await
        .expect_err("qwen3:latest is not in the catalogue");
    assert!(
        matches!(error, BackendError::ModelNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_unknown_model_says_to_pull_it_from_every_call() {
    let server = start_sim().await;
    let backend = backend(&server.url);
    let model = "nope:1b";
    let errors = [
        backend
            .chat(&chat_request(model, "hi"), &mut |_| {})
            .await
            .expect_err("unknown"),
        backend
            .preload(model, &options(4096), None)
            .await
            .expect_err("unknown"),
        backend.unload(model).await.expect_err("unknown"),
        backend.model_details(model).await.expect_err("unknown"),
    ];
    for error in errors {
        assert!(
            matches!(&error, BackendError::ModelNotFound { model: named, url } if named == model && *url == server.url),
            "{error:?}"
        );
        assert!(error.to_string().contains("ollama pull nope:1b"), "{error}");
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn an_error_line_mid_stream_is_a_stream_error() {
    let server = start_sim().await;
    server.sim.set_faults(Faults {
        stream_errors: vec![StreamError {
            model: Some(SMALL.to_owned()),
            after_chunks: 2,
            message: Some(
                "an error was encountered while running the model: GGML_ASSERT".to_owned(),
            ),
            times: Some(1),
        }],
        ..Faults::default()
    });
    let backend = backend(&server.url);
    let mut pieces = 0;
    let error = backend
        .chat(&chat_request(SMALL, "hi"), &mut |_| pieces += 1)
        .await
        .expect_err("an error line");
    assert_eq!(pieces, 2);
    assert!(
        matches!(&error, BackendError::Stream { model, message } if model == SMALL && message.contains("GGML_ASSERT")),
        "{error:?}"
    );
    assert!(error.is_retryable());
    backend
        .chat(&chat_request(SMALL, "hi"), &mut |_| {})
        .await
        .expect("the retry succeeds");
}

#[tokio::test]
async fn a_dropped_connection_mid_stream_is_a_stream_error() {
    let server = start_sim().await;
    server.sim.set_faults(Faults {
        disconnects: vec![Disconnect {
            model: None,
            after_chunks: 1,
            times: Some(1),
        }],
        ..Faults::default()
    });
    let error = backend(&server.url)
        .chat(&chat_request(SMALL, "hi"), &mut |_| {})
        .await
        .expect_err("a dropped connection");
    assert!(matches!(error, BackendError::Stream { .. }), "{error:?}");
}

#[tokio::test]
async fn a_full_queue_is_busy_and_retryable() {
    let server = start_sim().await;
    server.sim.set_faults(Faults {
        unavailable_requests: 2,
        ..Faults::default()
    });
    let backend = backend(&server.url);
    let chat = backend
        .chat(&chat_request(SMALL, "hi"), &mut |_| {})
        .await
        .expect_err("503");
    let preload = backend
        .preload(SMALL, &options(4096), None)
        .await
        .expect_err("503");
    for error in [chat, preload] {
        assert!(
            matches!(&error, BackendError::Busy { message } if message.contains("server busy")),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }
    backend
        .preload(SMALL, &options(4096), None)
        .await
        .expect("the queue has room again");
}

#[tokio::test]
async fn a_load_that_does_not_fit_is_a_retryable_out_of_memory_error() {
    let server = start_sim().await;
    server.sim.set_faults(Faults {
        load_failures: vec![LoadFailure {
            model: Some(TESTER.to_owned()),
            message: None,
            times: Some(2),
        }],
        ..Faults::default()
    });
    let backend = backend(&server.url);
    let preload = backend
        .preload(TESTER, &options(4096), None)
        .await
        .expect_err("a failed load");
    let chat = backend
        .chat(&chat_request(TESTER, "hi"), &mut |_| {})
        .await
        .expect_err("a failed load");
    for error in [preload, chat] {
        assert!(
            // The injected failure speaks Ollama's words for a model that does not fit.
            matches!(&error, BackendError::OutOfMemory { model, status: 500, .. } if model == TESTER),
            "{error:?}"
        );
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn version_is_the_one_the_server_reports() {
    let server = start_sim().await;
    let version = backend(&server.url).version().await.expect("a version");
    assert_eq!(version, ollama_sim::OLLAMA_VERSION);
}

#[tokio::test]
async fn tool_calls_and_thinking_come_back_and_omitted_metrics_leave_the_rest() {
    let server = start_sim().await;
    server.sim.set_script(
        ollama_sim::Script::from_yaml_str(
            "rules:\n\
             - model: qwen3:1.7b\n\
             \x20 reply:\n\
             \x20   text: Reading it.\n\
             \x20   thinking: I need the file.\n\
             \x20   eval_count: 0\n\
             \x20   tool_calls:\n\
             \x20     - name: read_file\n\
             \x20       arguments: {path: src/lib.rs}\n",
        )
        .expect("a valid script"),
    );
    let mut request = chat_request(SMALL, "What is in src/lib.rs?");
    request.think = Some(agentrun_core::Think::Enabled(true));
    request.tools = vec![agentrun_core::ToolSpec {
        name: "read_file".into(),
        description: "Reads a file of the workspace.".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    }];
    let mut streamed = String::new();
    let reply = backend(&server.url)
        .chat(&request, &mut |text| streamed.push_str(text))
        .await
        .expect("a reply");
    assert_eq!(streamed, "Reading it.");
    assert_eq!(reply.message.content, "Reading it.");
    assert_eq!(reply.message.thinking.as_deref(), Some("I need the file."));
    let [call] = reply.message.tool_calls.as_slice() else {
        panic!("one tool call: {:?}", reply.message.tool_calls);
    };
    assert_eq!(
        (call.name.as_str(), &call.arguments),
        ("read_file", &json!({"path": "src/lib.rs"}))
    );
    assert!(
        call.id.as_deref().is_some_and(|id| id.starts_with("call_")),
        "the server's tool-call id is kept: {call:?}"
    );
    let metrics = reply.metrics;
    assert_eq!(
        (metrics.eval_count, metrics.eval),
        (None, None),
        "{metrics:?}"
    );
    assert!(
        metrics.load.is_some() && metrics.prompt_eval_count.is_some(),
        "{metrics:?}"
    );
}
