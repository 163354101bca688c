//! Requests per second for non-streamed `/api/chat` to a resident model at zero simulated
//! latency (time scale 0), over HTTP with keep-alive connections, server and clients in one
//! process.
//!
//! Run: `cargo bench -p ollama-sim --bench chat_throughput`
//! Knobs: `BENCH_SECONDS` (default 3), `BENCH_CONNECTIONS` (default 32).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ollama_sim::{SimConfig, Simulator};
use serde_json::json;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let seconds = env_number("BENCH_SECONDS", 3);
    let connections = env_number("BENCH_CONNECTIONS", 32);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let mut config = SimConfig::target_mac();
        config.time_scale = 0.0;
        let sim = Simulator::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/api/chat", listener.local_addr().expect("address"));
        let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(ollama_sim::serve(listener, sim, async {
            let _ = stopped.await;
        }));

        let body = json!({
            "model": "qwen3:1.7b",
            "messages": [{"role": "user", "content": "Say hello", "tool_calls": [], "thinking": null}],
            "options": {"num_ctx": 8192, "num_predict": 32},
            "stream": false
        })
        .to_string();
        let clients: Vec<reqwest::Client> = (0..4).map(|_| reqwest::Client::new()).collect();
        // Load the model once; every measured request then takes the fast path.
        let warm = clients[0]
            .post(&url)
            .body(body.clone())
            .send()
            .await
            .expect("preload");
        assert!(warm.status().is_success());

        let done = Arc::new(AtomicU64::new(0));
        let measuring = Arc::new(AtomicBool::new(false));
        let running = Arc::new(AtomicBool::new(true));
        let mut tasks = Vec::new();
        for index in 0..connections {
            let client = clients[index as usize % clients.len()].clone();
            let (url, body) = (url.clone(), body.clone());
            let (done, measuring, running) = (done.clone(), measuring.clone(), running.clone());
            tasks.push(tokio::spawn(async move {
                while running.load(Ordering::Relaxed) {
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("request");
                    assert!(response.status().is_success());
                    response.bytes().await.expect("body");
                    if measuring.load(Ordering::Relaxed) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        measuring.store(true, Ordering::Relaxed);
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let count = done.load(Ordering::Relaxed);
        let elapsed = start.elapsed().as_secs_f64();
        running.store(false, Ordering::Relaxed);
        for task in tasks {
            task.await.expect("client task");
        }
        let _ = stop_server.send(());
        server.await.expect("server task").expect("server");
        println!(
            "chat_throughput: {:.0} requests/s ({count} non-streamed chats in {elapsed:.2} s, {connections} keep-alive connections, {} cores)",
            count as f64 / elapsed,
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
    });
}
