//! Rule 15 and the faults: Ollama's error bodies and status codes, injected failures, reset.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::support::{Sim, events};

/// Rule 15 (`ChatHandler`, `handleScheduleError`): `{"error": ..}` bodies with Ollama's statuses and wording.
#[tokio::test]
async fn errors_have_ollamas_status_and_wording() {
    let sim = Sim::start();
    let (status, body) = sim.chat_raw("nope", json!({})).await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "model 'nope' not found"}))
    );
    let (status, body) = sim.post("/api/show", json!({"model": "nope"})).await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "model 'nope' not found"}))
    );

    let tool = json!([{"type": "function", "function": {"name": "add", "description": "", "parameters": {"type": "object"}}}]);
    let (status, body) = sim.chat_raw("plain", json!({"tools": tool})).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "registry.ollama.ai/library/plain:latest does not support tools"})
        )
    );
    let (status, body) = sim.chat_raw("plain", json!({"think": true})).await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "\"plain\" does not support thinking"}))
    );
    let (status, _) = sim.chat_raw("alpha", json!({"format": "xml"})).await;
    assert_eq!(status, 400);
    let (status, _) = sim
        .post("/api/chat", json!({"messages": "not a list"}))
        .await;
    assert_eq!(status, 400);

    // A client that goes away mid-stream is logged as 499 and releases the model.
    let response = sim
        .http
        .post(format!("{}/api/chat", sim.url))
        .json(&json!({"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 200}}))
        .send()
        .await
        .expect("stream started");
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    body.next().await.expect("first chunk").expect("bytes");
    drop(body);
    // The first finished alpha request is the 400 for the bad format.
    let log = sim.wait_for("request_finished", "alpha", 2).await;
    assert_eq!(events(&log, "request_finished", "alpha")[1]["status"], 499);
    assert!(
        sim.ps().await[0]["expires_at"].is_string(),
        "alpha is idle again"
    );
}

/// Faults: a failing load (500, out-of-memory wording), then a normal one.
#[tokio::test]
async fn a_load_failure_fault_answers_500_once() {
    let sim = Sim::start();
    sim.faults(json!({"load_failures": [{"model": "alpha", "times": 1}]}))
        .await;
    let (status, body) = sim.chat_raw("alpha", json!({})).await;
    assert_eq!(status, 500);
    let message = body["error"].as_str().expect("error text");
    assert!(
        message.starts_with("model requires more system memory ("),
        "{message}"
    );
    let log = sim.log().await;
    assert_eq!(events(&log, "load_failed", "alpha").len(), 1);
    assert!(sim.ps().await.is_empty());
    sim.chat("alpha", json!({})).await;
    assert_eq!(sim.ps_names().await, ["alpha"]);
}

/// Rule 14 (`envconfig.LoadTimeout`): a load that stalls fails after `OLLAMA_LOAD_TIMEOUT`.
#[tokio::test]
async fn a_stalled_load_fails_after_the_load_timeout() {
    let sim = Sim::start_env(&[("OLLAMA_LOAD_TIMEOUT", "20s")]);
    sim.faults(json!({"stalled_loads": [{"model": "alpha", "times": 1}]}))
        .await;
    let (status, body) = sim.chat_raw("alpha", json!({})).await;
    assert_eq!(status, 500);
    assert_eq!(
        body["error"],
        "timed out waiting for llama runner to start - progress 0.00 - "
    );
    let log = sim.log().await;
    let stalled = crate::support::sim_time(&log, "load_failed", "alpha", 0)
        - crate::support::sim_time(&log, "load_started", "alpha", 0);
    assert!((19.0..25.0).contains(&stalled), "failed after {stalled} s");
    sim.chat("alpha", json!({})).await;
}

/// Faults: an error line mid-stream keeps status 200; a dropped connection ends the body
/// without a final chunk; slow loads; 503 for the next N requests; reset clears everything.
#[tokio::test]
async fn stream_faults_slow_loads_503s_and_reset() {
    let sim = Sim::start();
    sim.faults(json!({"stream_errors": [{"model": "alpha", "after_chunks": 1, "message": "boom", "times": 1}]}))
        .await;
    let (status, lines) = sim
        .post_lines(
            "/api/chat",
            json!({"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200);
    // alpha thinks first; `after_chunks` counts content chunks only.
    let (last, sent) = lines.split_last().expect("lines");
    assert_eq!(*last, json!({"error": "boom"}));
    assert!(sent.iter().all(|line| line["done"] == false), "{lines:#?}");
    let content = sent
        .iter()
        .filter(|line| {
            line["message"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .count();
    assert_eq!(content, 1, "{lines:#?}");

    sim.faults(json!({"disconnects": [{"after_chunks": 1}]}))
        .await;
    let response = sim
        .http
        .post(format!("{}/api/chat", sim.url))
        .json(&json!({"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("stream started");
    assert_eq!(response.status(), 200);
    assert!(response.text().await.is_err(), "the body is cut off");
    let unanswered = sim
        .http
        .post(format!("{}/api/chat", sim.url))
        .json(&json!({"model": "alpha", "messages": [{"role": "user", "content": "hi"}], "stream": false}))
        .send()
        .await;
    match unanswered {
        Err(_) => {}
        Ok(response) => assert!(response.text().await.is_err(), "non-streamed: no answer"),
    }

    sim.faults(json!({"slow_loads": [{"model": "beta", "factor": 2, "extra_seconds": 1}], "unavailable_requests": 2}))
        .await;
    for _ in 0..2 {
        let (status, body) = sim.chat_raw("beta", json!({})).await;
        assert_eq!(status, 503, "{body}");
    }
    sim.chat("beta", json!({})).await;
    let log = sim.log().await;
    assert_eq!(
        events(&log, "load_started", "beta")[0]["seconds"],
        5.0,
        "(1 s + 1 s) x 2 + 1 s"
    );

    let (status, _) = sim.post("/sim/reset", json!({})).await;
    assert_eq!(status, 200);
    assert!(sim.ps().await.is_empty());
    assert!(sim.log().await.is_empty());
    tokio::time::sleep(Duration::from_millis(5)).await;
    sim.chat("beta", json!({})).await;
    let log = sim.log().await;
    assert_eq!(
        events(&log, "load_started", "beta")[0]["seconds"],
        2.0,
        "faults cleared"
    );
}
