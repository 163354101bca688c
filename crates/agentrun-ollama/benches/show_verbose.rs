//! What asking `/api/show` with `verbose` costs: the size of the answer and the
//! time to read a model's details from it, next to the short answer.
//!
//! The short answer is a real one (`show-0.11.0-qwen3.json`, Ollama 0.11.0). A
//! verbose answer adds the tokenizer's arrays that the short one leaves out
//! (`tokenizer.ggml.tokens`, `.token_type`, `.merges`): they are filled here to
//! the size of qwen3's 151,936-token vocabulary, since no real verbose answer
//! was found to record. Run with `cargo bench -p agentrun-ollama --bench show_verbose`.

use std::time::{Duration, Instant};

use agentrun_core::ModelBackend;
use agentrun_ollama::{OllamaBackend, OllamaConfig};

#[path = "../tests/backend/replay_server.rs"]
mod replay_server;

use replay_server::{ReplayServer, Reply, fixture};

/// qwen3's vocabulary.
const VOCABULARY: usize = 151_936;
/// Rounds of each measurement; the median is printed.
const ROUNDS: usize = 15;

fn main() {
    let short = fixture("show-0.11.0-qwen3.json").body();
    let verbose = verbose_body(&short);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("/api/show of qwen3:8b (Ollama 0.11.0), read by model_details over HTTP on loopback");
    for (label, body) in [("short", short), ("verbose", verbose)] {
        let size = body.len();
        let server = ReplayServer::start(vec![
            ("POST /api/show", Reply::bytes(200, body)),
            ("GET /api/tags", Reply::recorded("tags-0.11.0.json")),
        ]);
        let backend = OllamaBackend::new(&server.url, config()).expect("a backend");
        let mut times: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let started = Instant::now();
                runtime
                    .block_on(backend.model_details("qwen3:8b"))
                    .expect("details");
                started.elapsed()
            })
            .collect();
        times.sort();
        println!(
            "  {label:<8} {:>10} bytes   median {:>8.2} ms   (limit {} bytes)",
            size,
            times[ROUNDS / 2].as_secs_f64() * 1000.0,
            agentrun_ollama_limit()
        );
    }
}

/// The short answer with the tokenizer's arrays filled to a full vocabulary.
fn verbose_body(short: &[u8]) -> Vec<u8> {
    let mut show: serde_json::Value = serde_json::from_slice(short).expect("JSON");
    let info = show["model_info"].as_object_mut().expect("model_info");
    let tokens: Vec<String> = (0..VOCABULARY).map(|i| format!("Ġtok{i}")).collect();
    let merges: Vec<String> = (0..VOCABULARY - 512).map(|i| format!("Ġt ok{i}")).collect();
    info.insert("tokenizer.ggml.tokens".to_owned(), tokens.into());
    info.insert(
        "tokenizer.ggml.token_type".to_owned(),
        vec![1; VOCABULARY].into(),
    );
    info.insert("tokenizer.ggml.merges".to_owned(), merges.into());
    serde_json::to_vec(&show).expect("JSON")
}

/// The most of an answer the backend reads (kept in step with `model_details.rs`).
fn agentrun_ollama_limit() -> usize {
    32 << 20
}

fn config() -> OllamaConfig {
    OllamaConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(30),
        load_timeout: Duration::from_secs(60),
        stream_timeout: Duration::from_secs(30),
    }
}
