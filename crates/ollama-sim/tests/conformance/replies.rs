//! Replies as real servers give them, the context cut, the prompt cache and the remaining
//! shapes and faults; each test names the Ollama source function it follows
//! (`server/routes.go` unless said otherwise).

use futures::StreamExt;
use serde_json::{Value, json};

use crate::fidelity::CONFIG as MACHINE;
use crate::support::{Sim, events};

/// The fidelity machine plus a thinking model, an older one that thinks inline, and a
/// model without tools.
fn config() -> String {
    format!(
        "{MACHINE}  - {{<<: *dense, name: thinker, capabilities: [completion, tools, thinking]}}\n  - {{<<: *dense, name: oldthinker, capabilities: [completion, thinking], inline_thinking: true}}\n  - {{<<: *dense, name: notools, capabilities: [completion]}}\n  - {{<<: *dense, name: deepseek, family: deepseek2}}\n"
    )
}

fn sim() -> Sim {
    Sim::start_with(&config(), &[], &[])
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

/// `ChatHandler`: a model with the `thinking` capability thinks when `think` is absent
/// (since v0.12.4); the streamed chunks carry `thinking` before `content`.
#[tokio::test]
async fn thinking_models_think_by_default_and_stream_thinking_first() {
    let sim = sim();
    let (status, lines) = sim
        .post_lines(
            "/api/chat",
            json!({"model": "thinker", "messages": [user("plan it")]}),
        )
        .await;
    assert_eq!(status, 200);
    let first_content = lines
        .iter()
        .position(|l| {
            l["message"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .expect("content");
    let last_thinking = lines
        .iter()
        .rposition(|l| l["message"]["thinking"].is_string())
        .expect("thinking");
    assert!(last_thinking < first_content, "{lines:#?}");
    let done = lines.last().expect("done");
    assert_eq!(done["done_reason"], "stop");
    // Asked not to, it does not.
    let reply = sim.chat("thinker", json!({"think": false})).await;
    assert!(reply["message"].get("thinking").is_none(), "{reply}");
}

/// The runner counts every generated token against `num_predict`, thinking included: a
/// small limit gives all thinking, empty content and `done_reason: "length"`. Without a
/// cap hit, the reply stops at a natural length (`"stop"`), the same for the same request.
#[tokio::test]
async fn num_predict_counts_thinking_and_content() {
    let sim = sim();
    let capped = sim
        .chat("thinker", json!({"options": {"num_predict": 3}}))
        .await;
    assert_eq!(capped["message"]["content"], "");
    assert!(
        capped["message"]["thinking"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(
        (capped["eval_count"].clone(), capped["done_reason"].clone()),
        (json!(3), json!("length"))
    );
    let a = sim
        .chat(
            "dense",
            json!({"options": {"num_predict": 1000, "seed": 7}}),
        )
        .await;
    let b = sim
        .chat(
            "dense",
            json!({"options": {"num_predict": 1000, "seed": 7}}),
        )
        .await;
    assert_eq!(a["done_reason"], "stop");
    assert!(a["eval_count"].as_u64().expect("eval") <= 1000);
    assert_eq!(a["message"], b["message"], "deterministic given the seed");
}

/// `ThinkValue.UnmarshalJSON` in `api/types.go`: only booleans and "high", "medium",
/// "low", "max"; anything else is a 400 with Ollama's wording.
#[tokio::test]
async fn an_invalid_think_value_is_a_400() {
    let sim = sim();
    let (status, body) = sim.chat_raw("thinker", json!({"think": "loud"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "invalid think value: \"loud\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"
    );
    let reply = sim.chat("thinker", json!({"think": "high"})).await;
    assert!(reply["message"]["thinking"].is_string());
}

/// Older servers put the reasoning inline as `<think>...</think>` in `content`; a model
/// with `inline_thinking` does so for clients that must handle it.
#[tokio::test]
async fn inline_thinking_puts_think_tags_in_the_content() {
    let sim = sim();
    let reply = sim.chat("oldthinker", json!({})).await;
    let content = reply["message"]["content"].as_str().expect("content");
    assert!(content.starts_with("<think>\n"), "{content}");
    assert!(content.contains("\n</think>\n\n"), "{content}");
    assert!(reply["message"].get("thinking").is_none());
}

/// `toolCallId` in `ChatHandler`: every tool call carries an id `call_` + 8 characters.
#[tokio::test]
async fn tool_calls_carry_an_id() {
    let sim = sim();
    let script = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(
        script.path(),
        "rules:\n  - reply: {tool_calls: [{name: run_tests, arguments: {path: tests/}}]}\n",
    )
    .expect("script");
    drop(sim);
    let sim = Sim::start_with(
        &config(),
        &[],
        &["--script", script.path().to_str().expect("path")],
    );
    let tool = json!([{"type": "function", "function": {"name": "run_tests", "parameters": {"type": "object"}}}]);
    let reply = sim.chat("dense", json!({"tools": tool})).await;
    let call = &reply["message"]["tool_calls"][0];
    let id = call["id"].as_str().expect("id");
    assert!(id.starts_with("call_") && id.len() == 13, "{id}");
    assert_eq!(call["function"]["index"], 0);
}

/// `chatPrompt` in `server/prompt.go`: history longer than `num_ctx` is cut, oldest
/// non-system messages first, and `prompt_eval_count` reports what was kept; with
/// `shift: false` a prompt that still does not fit is a 400 (`llm/llama_server.go`).
#[tokio::test]
async fn chat_history_is_cut_to_the_context() {
    let sim = sim();
    // 40 characters: 10 tokens + 4 for the template = 14 per message.
    let text = "x".repeat(40);
    let messages = json!([
        {"role": "system", "content": text},
        user(&text),
        {"role": "assistant", "content": text},
        user(&text),
    ]);
    let reply = sim
        .chat(
            "dense",
            json!({"messages": messages, "options": {"num_ctx": 30, "num_predict": 1}}),
        )
        .await;
    assert_eq!(reply["prompt_eval_count"], 28, "system + last message");
    let log = sim.log().await;
    let finished = events(&log, "request_finished", "dense");
    assert_eq!(finished[0]["prompt_tokens_kept"], 28);
    let long = json!([user(&"y".repeat(400))]);
    let (status, body) = sim
        .chat_raw(
            "dense",
            json!({"messages": long, "shift": false, "options": {"num_ctx": 30}}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "the input length exceeds the context length"})
        )
    );
}

/// `resolveContextShift` and `supportsContextShift` in `server/sched.go`: context shift is
/// off by default for `deepseek2`, so an oversized prompt is a 400 unless `shift: true`.
#[tokio::test]
async fn deepseek2_has_no_context_shift_by_default() {
    let sim = sim();
    let long = json!([user(&"y".repeat(400))]);
    let (status, body) = sim
        .chat_raw(
            "deepseek",
            json!({"messages": long, "options": {"num_ctx": 30}}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "the input length exceeds the context length"})
        )
    );
    let (status, _) = sim
        .chat_raw(
            "deepseek",
            json!({"messages": long, "shift": true, "options": {"num_ctx": 30, "num_predict": 1}}),
        )
        .await;
    assert_eq!(status, 200);
}

/// The runner's prompt cache (`LoadCacheSlot` in `runner/llamarunner/cache.go`): a
/// follow-up that extends the previous prompt and reply evaluates only the new tokens;
/// a reload empties the cache, so the next prompt is evaluated in full.
#[tokio::test]
async fn the_prompt_cache_covers_the_shared_prefix_until_a_reload() {
    let sim = sim();
    let first_messages =
        json!([{"role": "system", "content": "s".repeat(400)}, user(&"a".repeat(40))]);
    let first = sim
        .chat(
            "dense",
            json!({"messages": first_messages, "options": {"num_predict": 4}}),
        )
        .await;
    assert_eq!(first["prompt_eval_count"], 104 + 14);
    let answer = first["message"]["content"]
        .as_str()
        .expect("content")
        .to_owned();
    let follow_up = json!([
        {"role": "system", "content": "s".repeat(400)},
        user(&"a".repeat(40)),
        {"role": "assistant", "content": answer},
        user(&"b".repeat(40)),
    ]);
    let second = sim
        .chat(
            "dense",
            json!({"messages": follow_up, "options": {"num_predict": 4}}),
        )
        .await;
    assert_eq!(second["prompt_eval_count"], 14, "only the new message");
    let log = sim.log().await;
    let finished = events(&log, "request_finished", "dense");
    let kept = finished[1]["prompt_tokens_kept"].as_u64().expect("kept");
    assert_eq!(finished[1]["prompt_tokens_cached"], kept - 14);
    assert_eq!(finished[1]["prompt_tokens_evaluated"], 14);
    // A reload (another num_ctx) loses the cache.
    let third = sim
        .chat(
            "dense",
            json!({"messages": follow_up, "options": {"num_predict": 4, "num_ctx": 8192}}),
        )
        .await;
    assert_eq!(third["prompt_eval_count"], kept);
}

/// `ListHandler` (capabilities in `/api/tags`), `ShowHandler` (`model` or the deprecated
/// `name`, `verbose` for the long arrays that `getModelData` otherwise empties, no empty
/// `license` or `parameters`, the hybrid architecture's keys) and the errors of
/// `ChatHandler`/`scheduleRunner` (model required, the full name in the tools error) and
/// `Options.FromMap` in `api/types.go` (option type errors).
#[tokio::test]
async fn shapes_and_errors_match_ollamas() {
    let sim = sim();
    let tags = sim.get("/api/tags").await;
    let thinker = tags["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["name"] == "thinker")
        .expect("thinker");
    assert_eq!(
        thinker["capabilities"],
        json!(["completion", "tools", "thinking"])
    );

    let (status, show) = sim.post("/api/show", json!({"name": "hybrid"})).await;
    assert_eq!(status, 200);
    assert!(show.get("license").is_none() && show.get("parameters").is_none());
    let info = &show["model_info"];
    assert_eq!(info["general.architecture"], "qwen3next");
    assert_eq!(info["qwen3next.full_attention_interval"], 4);
    assert!(info["qwen3next.ssm.state_size"].is_number());
    assert_eq!(info["tokenizer.ggml.tokens"], json!([]));
    let (_, verbose) = sim
        .post("/api/show", json!({"model": "hybrid", "verbose": true}))
        .await;
    assert!(
        verbose["model_info"]["tokenizer.ggml.tokens"]
            .as_array()
            .is_some_and(|t| t.len() > 5)
    );

    for path in ["/api/chat", "/api/show"] {
        let (status, body) = sim.post(path, json!({"model": ""})).await;
        assert_eq!(
            (status, body),
            (400, json!({"error": "model is required"})),
            "{path}"
        );
    }
    let tool =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let (status, body) = sim.chat_raw("notools", json!({"tools": tool})).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "registry.ollama.ai/library/notools:latest does not support tools"})
        )
    );
    let (status, body) = sim
        .chat_raw("dense", json!({"options": {"num_ctx": "big"}}))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "option \"num_ctx\" must be of type integer"})
        )
    );
}

/// A runtime out-of-memory error: the reply ends with an error line and, as Ollama's
/// scheduler does after such a crash, every runner is expired.
#[tokio::test]
async fn an_out_of_memory_fault_expires_every_runner() {
    let sim = sim();
    let exact = json!({"options": {"num_ctx": 4, "num_batch": 512}});
    sim.preload("dense", exact.clone()).await;
    sim.preload("dense2", exact).await;
    sim.faults(json!({"out_of_memory": [{"model": "dense", "after_chunks": 1, "times": 1}]}))
        .await;
    let (status, lines) = sim
        .post_lines(
            "/api/chat",
            json!({"model": "dense", "messages": [user("hi")], "options": {"num_ctx": 4, "num_batch": 512}}),
        )
        .await;
    assert_eq!(status, 200);
    let last = lines.last().expect("lines");
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("Insufficient Memory")),
        "{last}"
    );
    sim.wait_for("unloaded", "dense", 1).await;
    sim.wait_for("unloaded", "dense2", 1).await;
    assert!(sim.ps().await.is_empty());
}

/// A stream that ends cleanly, without its `done` chunk (a runner that died quietly): the
/// HTTP response completes normally and the client must notice the missing `done`.
#[tokio::test]
async fn a_fault_can_end_a_stream_cleanly_without_done() {
    let sim = sim();
    sim.faults(json!({"early_ends": [{"after_chunks": 2, "times": 1}]}))
        .await;
    let response = sim
        .http
        .post(format!("{}/api/chat", sim.url))
        .json(&json!({"model": "dense", "messages": [user("hi")]}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = Vec::new();
    while let Some(chunk) = body.next().await {
        text.extend_from_slice(&chunk.expect("a clean end, not a cut connection"));
    }
    let lines: Vec<Value> = String::from_utf8(text)
        .expect("utf-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["done"] == false));
}
