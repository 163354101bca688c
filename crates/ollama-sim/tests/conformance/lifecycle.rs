//! Rules 11 to 14: explicit unload, preload, load_duration and omitted metrics, parallel
//! slots and the pending-queue limit.

use std::time::Duration;

use ollama_rs::generation::chat::ChatMessage;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::completion::request::GenerationRequest;
use ollama_rs::generation::parameters::KeepAlive;
use serde_json::json;

use crate::support::{CONFIG, Sim, events, seq, sim_time, unix_seconds};

/// Rule 11 (`expireRunner`): keep_alive 0 with nothing to generate answers at once; in-flight requests finish
/// first, then the model unloads; ps shows it stopping meanwhile.
#[tokio::test]
async fn an_unload_answers_at_once_and_takes_effect_after_in_flight_requests() {
    let sim = Sim::start();
    sim.preload("alpha", json!({})).await;
    let api = sim.api.clone();
    let long = tokio::spawn(async move {
        api.chat("alpha", json!({"options": {"num_predict": 100}}))
            .await
    });
    sim.wait_for("request_arrived", "alpha", 2).await;
    // Let the request claim the runner (2 simulated seconds of its 10).
    tokio::time::sleep(Duration::from_millis(20)).await;

    let answer = sim.unload("alpha").await;
    assert_eq!(answer["done"], true);
    assert_eq!(answer["done_reason"], "unload");
    let ps = sim.ps().await;
    assert_eq!(ps.len(), 1, "still loaded while busy");
    assert!(unix_seconds(&ps[0]["expires_at"]) <= unix_seconds(&answer["created_at"]));
    assert!(events(&sim.log().await, "unload_started", "alpha").is_empty());

    let reply = long.await.expect("long request");
    assert_eq!(reply["eval_count"], 100, "the in-flight request finished");
    let log = sim.wait_for("unload_started", "alpha", 1).await;
    assert_eq!(
        events(&log, "unload_started", "alpha")[0]["reason"],
        "unload_request"
    );
    let unload_answered = events(&log, "request_finished", "alpha")
        .iter()
        .find(|e| e["done_reason"] == "unload")
        .expect("unload request")["seq"]
        .as_u64()
        .expect("seq");
    let long_finished = events(&log, "request_finished", "alpha")
        .iter()
        .find(|e| e["done_reason"] == "length")
        .expect("long request")["seq"]
        .as_u64()
        .expect("seq");
    assert!(unload_answered < long_finished);
    assert!(long_finished < seq(&log, "unload_started", "alpha", 0));

    // Through ollama-rs; a model that is not loaded is a 200 no-op, an unknown one a 404.
    let ollama = sim.ollama();
    let reply = ollama
        .generate(
            GenerationRequest::new("beta".into(), "").keep_alive(KeepAlive::UnloadOnCompletion),
        )
        .await
        .expect("unload of a model that is not loaded");
    assert!(reply.done);
    let (status, body) = sim
        .post(
            "/api/generate",
            json!({"model": "nope", "prompt": "", "keep_alive": 0}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"error": "model 'nope' not found"}));
    let log = sim.log().await;
    assert!(events(&log, "unload_started", "beta").is_empty());
}

/// Rule 12 (`GenerateHandler`, `processPending`): a preload blocks until the model is resident and answers without timing fields;
/// a client that disconnects during the load aborts it, and the next request starts over.
#[tokio::test]
async fn a_preload_blocks_until_loaded_and_a_disconnect_aborts_it() {
    let sim = Sim::start();
    let (status, body) = sim
        .post("/api/chat", json!({"model": "alpha", "messages": []}))
        .await;
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        ["created_at", "done", "done_reason", "message", "model"]
    );
    assert_eq!(body["done_reason"], "load");
    assert_eq!(
        sim.ps_names().await,
        ["alpha"],
        "resident when the answer arrives"
    );

    let reply = sim
        .ollama()
        .generate(GenerationRequest::new("beta".into(), "").keep_alive(KeepAlive::Indefinitely))
        .await
        .expect("preload through ollama-rs");
    assert!(reply.done);
    assert_eq!(reply.load_duration, None);

    // A slow load (70 simulated seconds = 700 ms) abandoned by the client after 60 ms.
    sim.faults(json!({"slow_loads": [{"model": "big", "factor": 10}]}))
        .await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(60))
        .build()
        .expect("client");
    let result = impatient
        .post(format!("{}/api/generate", sim.url))
        .json(&json!({"model": "big", "prompt": ""}))
        .send()
        .await;
    assert!(result.is_err(), "the client gave up");
    let log = sim.wait_for("unloaded", "big", 1).await;
    assert_eq!(events(&log, "load_aborted", "big").len(), 1);
    assert_eq!(events(&log, "load_finished", "big").len(), 0);
    let cancelled = events(&log, "request_finished", "big");
    assert_eq!(cancelled[0]["status"], 499);
    assert_eq!(sim.ps_names().await, ["alpha", "beta"]);

    sim.faults(json!({})).await;
    sim.preload("big", json!({})).await;
    let log = sim.log().await;
    assert_eq!(events(&log, "load_started", "big").len(), 2, "started over");
    assert_eq!(events(&log, "load_finished", "big").len(), 1);
}

/// Rule 13 (`ChatHandler`'s checkpoints): load_duration covers queueing behind other loads; a resident model's is small;
/// zero metrics are omitted (and ollama-rs then drops all of them).
#[tokio::test]
async fn load_duration_includes_queueing_and_zero_metrics_are_omitted() {
    let script = "rules:\n  - message: \"^silent$\"\n    reply: {text: \"\", eval_count: 0}\n";
    let dir = tempfile::tempdir().expect("temp dir");
    let script_path = dir.path().join("script.yaml");
    std::fs::write(&script_path, script).expect("write script");
    let sim = Sim::start_with(
        CONFIG,
        &[],
        &["--script", script_path.to_str().expect("utf-8")],
    );

    let api = sim.api.clone();
    let big = tokio::spawn(async move {
        api.chat("big", json!({"options": {"num_predict": 1}}))
            .await
    });
    sim.wait_for("load_started", "big", 1).await;
    let alpha = sim
        .chat("alpha", json!({"options": {"num_predict": 1}}))
        .await;
    big.await.expect("big");
    let queued_ns = alpha["load_duration"].as_u64().expect("load_duration");
    // alpha's own load is 2 s; waiting behind big's 7 s load adds most of 7 s.
    assert!(queued_ns > 5_000_000_000, "load_duration {queued_ns}");
    let log = sim.log().await;
    let own_load =
        sim_time(&log, "load_finished", "alpha", 0) - sim_time(&log, "load_started", "alpha", 0);
    assert!(queued_ns as f64 > own_load * 1e9 + 2e9);

    let resident = sim
        .chat("alpha", json!({"options": {"num_predict": 1}}))
        .await;
    let resident_ns = resident["load_duration"].as_u64().expect("load_duration");
    assert!(
        resident_ns < 2_000_000_000,
        "resident load_duration {resident_ns}"
    );

    // A normal reply carries all six metrics; ollama-rs sees them.
    let ollama = sim.ollama();
    let request =
        |text: &str| ChatMessageRequest::new("alpha".into(), vec![ChatMessage::user(text.into())]);
    let normal = ollama
        .send_chat_messages(request("hello"))
        .await
        .expect("chat");
    let metrics = normal.final_data.expect("all six metrics");
    assert!(metrics.eval_count > 0 && metrics.load_duration > 0);

    let (status, silent) = sim
        .chat_raw(
            "alpha",
            json!({"messages": [{"role": "user", "content": "silent"}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(silent.get("eval_count").is_none(), "{silent}");
    assert!(silent.get("eval_duration").is_none(), "{silent}");
    for present in [
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
    ] {
        assert!(
            silent.get(present).is_some(),
            "{present} missing in {silent}"
        );
    }
    let silent = ollama
        .send_chat_messages(request("silent"))
        .await
        .expect("chat");
    assert!(silent.done);
    assert!(
        silent.final_data.is_none(),
        "ollama-rs drops all metrics when one is missing"
    );
}

/// Rule 14 (`Scheduler.load`, `envconfig.NumParallel`): one parallel slot per model by default, so requests to one model take turns;
/// `OLLAMA_NUM_PARALLEL` adds slots.
#[tokio::test]
async fn requests_to_one_model_wait_for_its_parallel_slots() {
    async fn finish_gap(sim: &Sim) -> f64 {
        sim.preload("alpha", json!({})).await;
        let body = json!({"options": {"num_predict": 50}});
        let (a, b) = tokio::join!(sim.chat("alpha", body.clone()), sim.chat("alpha", body));
        assert_eq!(
            (a["eval_count"].clone(), b["eval_count"].clone()),
            (json!(50), json!(50))
        );
        let log = sim.log().await;
        (sim_time(&log, "request_finished", "alpha", 2)
            - sim_time(&log, "request_finished", "alpha", 1))
        .abs()
    }
    // 50 tokens at 10 tokens/s: 5 simulated seconds each.
    let serial = Sim::start();
    let gap = finish_gap(&serial).await;
    assert!(gap > 4.0, "one slot: the second reply waits ({gap} s)");
    let parallel = Sim::start_env(&[("OLLAMA_NUM_PARALLEL", "2")]);
    let gap = finish_gap(&parallel).await;
    assert!(gap < 2.0, "two slots: replies overlap ({gap} s)");
}

/// Rule 14 (`GetRunner`): more than `OLLAMA_MAX_QUEUE` pending requests get a 503.
#[tokio::test]
async fn a_full_pending_queue_answers_503() {
    let sim = Sim::start_env(&[("OLLAMA_MAX_QUEUE", "2")]);
    sim.faults(json!({"slow_loads": [{"model": "big", "factor": 5}]}))
        .await;
    let mut waiting = Vec::new();
    let api = sim.api.clone();
    waiting.push(tokio::spawn(
        async move { api.chat("big", json!({})).await },
    ));
    sim.wait_for("load_started", "big", 1).await;
    for model in ["alpha", "beta"] {
        let api = sim.api.clone();
        waiting.push(tokio::spawn(
            async move { api.chat(model, json!({})).await },
        ));
        sim.wait_for("request_queued", model, 1).await;
    }
    let (status, body) = sim.chat_raw("gamma", json!({})).await;
    assert_eq!(status, 503);
    assert_eq!(
        body,
        json!({"error": "server busy, please try again.  maximum pending requests exceeded"})
    );
    // A resident model's fast path never queues.
    for task in waiting {
        task.await.expect("queued request");
    }
    sim.chat("alpha", json!({})).await;
}

/// Rules 1 and 12 (`processPending` skips a request whose context is done; `WaitUntilRunning`
/// ends a load when its request's context is cancelled): a client that leaves frees the
/// loader at once. Its load is abandoned, a request still queued behind it is skipped
/// without loading, and the next one starts right away.
#[tokio::test]
async fn a_client_that_leaves_frees_the_loader_for_the_next_request_at_once() {
    let sim = Sim::start();
    // big: 70 simulated seconds (700 ms) to load.
    sim.faults(json!({"slow_loads": [{"model": "big", "factor": 10}]}))
        .await;
    let preload = |model: &'static str| {
        let api = sim.api.clone();
        tokio::spawn(async move { api.preload(model, json!({})).await })
    };
    let big = preload("big");
    sim.wait_for("load_started", "big", 1).await;
    let gamma = preload("gamma");
    sim.wait_for("request_queued", "gamma", 1).await;
    let beta = preload("beta");
    sim.wait_for("request_queued", "beta", 1).await;

    // Gamma's client leaves while queued, big's while loading.
    gamma.abort();
    big.abort();
    beta.await.expect("beta's preload answers");

    let log = sim.log().await;
    assert_eq!(events(&log, "load_aborted", "big").len(), 1, "{log:#?}");
    assert!(events(&log, "load_finished", "big").is_empty());
    assert!(
        events(&log, "load_started", "gamma").is_empty(),
        "a request whose client left is not loaded: {log:#?}"
    );
    let aborted_at = sim_time(&log, "load_aborted", "big", 0);
    let beta_at = sim_time(&log, "load_started", "beta", 0);
    let big_at = sim_time(&log, "load_started", "big", 0);
    assert!(
        beta_at - aborted_at < 5.0 && beta_at - big_at < 60.0,
        "beta starts when big is abandoned ({aborted_at} s), not after its 70 s load: {beta_at} s"
    );
    assert_eq!(sim.ps_names().await, ["beta"]);
}
