//! Loads slower than expected against the real simulator on a running clock: the load
//! timeout covers them, the much shorter stream timeout never cuts one off, and a load
//! that stalls fails when the server gives up on it.

use std::time::Duration;

use agentrun_core::{BackendError, ModelBackend, ModelOptions};
use agentrun_ollama::{OllamaBackend, OllamaConfig};
use ollama_sim::{Event, Faults, SlowLoad, StalledLoad};

use crate::support::{SimServer, chat_request, start_sim_scaled};

const SMALL: &str = "qwen3:1.7b";

/// Simulated seconds the fault adds to the load: at 10 ms per simulated second, the
/// load takes about 0.65 s of real time.
const EXTRA_LOAD_S: f64 = 60.0;

/// A stream timeout far below the load's duration, a load timeout far above it.
fn impatient_between_chunks() -> OllamaConfig {
    OllamaConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(30),
        load_timeout: Duration::from_secs(60),
        stream_timeout: Duration::from_millis(100),
    }
}

async fn slow_sim() -> SimServer {
    let server = start_sim_scaled(0.01).await;
    server.sim.set_faults(Faults {
        slow_loads: vec![SlowLoad {
            model: Some(SMALL.to_owned()),
            factor: 1.0,
            extra_seconds: EXTRA_LOAD_S,
        }],
        ..Faults::default()
    });
    server
}

/// The loads the simulator finished and aborted.
fn finished_and_aborted(server: &SimServer) -> (usize, usize) {
    let log = server.sim.log();
    let finished = log
        .iter()
        .filter(|entry| matches!(entry.event, Event::LoadFinished { .. }))
        .count();
    let aborted = log
        .iter()
        .filter(|entry| matches!(entry.event, Event::LoadAborted { .. }))
        .count();
    (finished, aborted)
}

#[tokio::test]
async fn a_chat_waiting_on_a_slow_load_outlasts_a_short_stream_timeout() {
    let server = slow_sim().await;
    let backend = OllamaBackend::new(&server.url, impatient_between_chunks()).expect("a URL");
    let response = backend
        .chat(&chat_request(SMALL, "hi"), &mut |_| {})
        .await
        .expect("the load is waited for");
    assert!(!response.message.content.is_empty());
    let load = response.metrics.load.expect("a load duration");
    assert!(
        load >= Duration::from_secs_f64(EXTRA_LOAD_S),
        "the reply did wait for the slow load: {load:?}"
    );
    assert_eq!(finished_and_aborted(&server), (1, 0));
}

#[tokio::test]
async fn a_preload_of_a_slow_load_outlasts_a_short_stream_timeout() {
    let server = slow_sim().await;
    let backend = OllamaBackend::new(&server.url, impatient_between_chunks()).expect("a URL");
    backend
        .preload(SMALL, &ModelOptions::new(), None)
        .await
        .expect("the load is waited for");
    assert_eq!(finished_and_aborted(&server), (1, 0));
    let resident = backend.running_models().await.expect("/api/ps answers");
    assert!(
        resident.iter().any(|model| model.name == SMALL),
        "{resident:?}"
    );
}

#[tokio::test]
async fn a_load_slower_than_the_load_timeout_is_a_timeout_that_can_be_retried() {
    let server = slow_sim().await;
    let config = OllamaConfig {
        load_timeout: Duration::from_millis(200),
        ..impatient_between_chunks()
    };
    let backend = OllamaBackend::new(&server.url, config).expect("a URL");
    let error = backend
        .chat(&chat_request(SMALL, "hi"), &mut |_| {})
        .await
        .expect_err("the load takes longer than allowed");
    assert!(
        matches!(&error, BackendError::Timeout { model, after } if model == SMALL && *after == Duration::from_millis(200)),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_load_that_stalls_fails_when_the_server_gives_up_and_can_be_retried() {
    // The server's own load timeout (five simulated minutes) is 0.3 s here; the
    // client's load timeout is far longer, so the server's answer is what comes back.
    let server = start_sim_scaled(0.001).await;
    server.sim.set_faults(Faults {
        stalled_loads: vec![StalledLoad {
            model: Some(SMALL.to_owned()),
            times: Some(1),
        }],
        ..Faults::default()
    });
    let backend = OllamaBackend::new(&server.url, impatient_between_chunks()).expect("a URL");
    let error = backend
        .chat(&chat_request(SMALL, "hi"), &mut |_| {})
        .await
        .expect_err("the load stalls");
    assert!(
        matches!(&error, BackendError::Server { model, status: 500, message }
            if model == SMALL && message.contains("timed out waiting for llama runner to start")),
        "{error:?}"
    );
    assert!(error.is_retryable());
    backend
        .chat(&chat_request(SMALL, "hi"), &mut |_| {})
        .await
        .expect("the next load goes through");
}
