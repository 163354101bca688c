//! The REST surface through ollama-rs and raw JSON: listings, show, chat (streamed or not),
//! structured output, tools, thinking, and scripted replies.

use futures::StreamExt;
use ollama_rs::generation::chat::ChatMessage;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::parameters::{FormatType, JsonStructure};
use ollama_rs::generation::tools::{ToolFunctionInfo, ToolInfo, ToolType};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support::{CONFIG, Sim};

/// `ListHandler`, `PsHandler`, `ShowHandler` and `VersionHandler`: the listing shapes.
#[tokio::test]
async fn listings_show_and_version_match_ollamas_shapes() {
    let sim = Sim::start();
    let root = sim
        .http
        .get(sim.url.clone())
        .send()
        .await
        .expect("GET /")
        .text()
        .await
        .expect("text");
    assert_eq!(root, "Ollama is running");
    assert_eq!(sim.get("/api/version").await["version"], "0.33.0");

    let ollama = sim.ollama();
    let models = ollama.list_local_models().await.expect("tags");
    assert!(
        models
            .iter()
            .any(|m| m.name == "alpha" && m.size == 1_000_000_000)
    );
    let tags = sim.get("/api/tags").await;
    let alpha = &tags["models"][0];
    assert_eq!(alpha["details"]["family"], "llama");
    assert_eq!(alpha["digest"].as_str().expect("digest").len(), 64);
    let alias = tags["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == "alias")
        .expect("alias");
    assert_eq!(
        alias["digest"], alpha["digest"],
        "same weights, same digest"
    );

    let info = ollama.show_model_info("alpha".into()).await.expect("show");
    assert_eq!(info.model_info["llama.context_length"], 4096);
    assert_eq!(info.model_info["llama.block_count"], 4);
    assert_eq!(info.model_info["llama.attention.head_count"], 4);
    assert_eq!(info.model_info["llama.attention.head_count_kv"], 4);
    assert_eq!(info.model_info["llama.embedding_length"], 256);
    assert_eq!(info.capabilities, ["completion", "tools", "thinking"]);
}

/// `ChatHandler` through ollama-rs: streamed chunks and the merged non-streamed reply.
#[tokio::test]
async fn chat_through_ollama_rs_streamed_and_not() {
    let sim = Sim::start();
    let ollama = sim.ollama();
    let messages = vec![
        ChatMessage::system("You are terse.".into()),
        ChatMessage::user("Say something".into()),
    ];
    let whole = ollama
        .send_chat_messages(ChatMessageRequest::new("alpha".into(), messages.clone()))
        .await
        .expect("chat");
    assert!(whole.done);
    assert_eq!(
        whole.message.content.split(' ').count(),
        5,
        "default_tokens is 5"
    );
    let metrics = whole.final_data.expect("metrics");
    // alpha has the thinking capability, so it thinks without being asked (32 tokens).
    assert_eq!(metrics.eval_count, 37);
    assert_eq!(
        metrics.eval_duration, 3_700_000_000,
        "37 tokens at 10 tokens/s"
    );

    let mut stream = ollama
        .send_chat_messages_stream(ChatMessageRequest::new("alpha".into(), messages))
        .await
        .expect("stream");
    let mut text = String::new();
    let mut chunks = 0;
    let mut done = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        text.push_str(&chunk.message.content);
        chunks += 1;
        done |= chunk.done;
    }
    assert!(done);
    assert!(chunks > 2, "streamed in several chunks");
    assert_eq!(text, whole.message.content, "replies are deterministic");
}

#[derive(Debug, Deserialize, ollama_rs::generation::parameters::JsonSchema)]
#[schemars(crate = "ollama_rs::re_exports::schemars")]
#[allow(dead_code)] // Only deserialized, to prove the JSON fits the schema.
struct Verdict {
    approved: bool,
    reason: String,
    score: u8,
    level: Level,
}

#[derive(Debug, Deserialize, ollama_rs::generation::parameters::JsonSchema)]
#[schemars(crate = "ollama_rs::re_exports::schemars")]
enum Level {
    Low,
    High,
}

/// `ChatHandler`: `format` (JSON and schemas), tools and `think` as ollama-rs sends them.
#[tokio::test]
async fn structured_output_tools_and_thinking() {
    let sim = Sim::start();
    let ollama = sim.ollama();
    let user = vec![ChatMessage::user("judge".into())];

    let format = FormatType::StructuredJson(Box::new(JsonStructure::new::<Verdict>()));
    let reply = ollama
        .send_chat_messages(ChatMessageRequest::new("alpha".into(), user.clone()).format(format))
        .await
        .expect("structured chat");
    let verdict: Verdict = serde_json::from_str(&reply.message.content).expect("schema-valid JSON");
    assert!(matches!(verdict.level, Level::Low | Level::High));

    let reply = ollama
        .send_chat_messages(
            ChatMessageRequest::new("alpha".into(), user.clone()).format(FormatType::Json),
        )
        .await
        .expect("json chat");
    let value: Value = serde_json::from_str(&reply.message.content).expect("JSON");
    assert!(value.is_object());

    let reply = ollama
        .send_chat_messages(ChatMessageRequest::new("alpha".into(), user.clone()).think(true))
        .await
        .expect("thinking chat");
    assert!(reply.message.thinking.is_some_and(|t| !t.is_empty()));

    // Unscripted replies to requests with tools are plain text.
    let schema: ollama_rs::re_exports::schemars::Schema = serde_json::from_value(
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}),
    )
    .expect("schema");
    let tool = ToolInfo {
        tool_type: ToolType::Function,
        function: ToolFunctionInfo {
            name: "add".into(),
            description: "Add.".into(),
            parameters: schema,
        },
    };
    let reply = ollama
        .send_chat_messages(ChatMessageRequest::new("alpha".into(), user).tools(vec![tool]))
        .await
        .expect("chat with tools");
    assert!(reply.message.tool_calls.is_empty());
    assert!(!reply.message.content.is_empty());
}

const SCRIPT: &str = r#"
rules:
  - model: alpha
    system: "(?i)tester"
    replies:
      - text: "{not json"
      - json: {approved: true}
  - model: beta
    message: "add"
    reply:
      tool_calls:
        - name: add
          arguments: {a: 1, b: 2}
  - model: gamma
    turn: 2
    reply: {text: "second turn", eval_count: 3}
"#;

/// The simulator's scripts (no Ollama function): rules by system prompt, message and turn.
#[tokio::test]
async fn scripts_answer_by_system_prompt_message_and_turn() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("script.yaml");
    std::fs::write(&path, SCRIPT).expect("write script");
    let sim = Sim::start_with(CONFIG, &[], &["--script", path.to_str().expect("utf-8")]);
    let ollama = sim.ollama();

    let tester = vec![
        ChatMessage::system("You are the Tester.".into()),
        ChatMessage::user("review".into()),
    ];
    let request = || ChatMessageRequest::new("alpha".into(), tester.clone());
    let first = ollama.send_chat_messages(request()).await.expect("first");
    assert_eq!(first.message.content, "{not json");
    for _ in 0..2 {
        let next = ollama.send_chat_messages(request()).await.expect("next");
        assert_eq!(
            next.message.content, r#"{"approved":true}"#,
            "the last reply repeats"
        );
    }

    let call = ollama
        .send_chat_messages(ChatMessageRequest::new(
            "beta".into(),
            vec![ChatMessage::user("please add".into())],
        ))
        .await
        .expect("tool call");
    assert_eq!(call.message.tool_calls.len(), 1);
    assert_eq!(call.message.tool_calls[0].function.name, "add");
    assert_eq!(
        call.message.tool_calls[0].function.arguments,
        json!({"a": 1, "b": 2})
    );

    let turn_one = sim.chat("gamma", json!({})).await;
    assert_ne!(turn_one["message"]["content"], "second turn");
    let turn_two = sim.chat("gamma", json!({})).await;
    assert_eq!(turn_two["message"]["content"], "second turn");
    assert_eq!(turn_two["eval_count"], 3);
}
