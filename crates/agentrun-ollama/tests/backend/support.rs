//! Shared test setup: backend configurations, requests and an in-process simulator.

use std::time::Duration;

use agentrun_core::{ChatRequest, Message, ModelOptions};
use agentrun_ollama::{OllamaBackend, OllamaConfig};
use ollama_sim::{SimConfig, Simulator};
use tokio::sync::oneshot;

/// Long enough for a client to read what a server sent before a pause on
/// its own, on a loaded machine.
pub(crate) const PAUSE: Duration = Duration::from_millis(150);

/// Timeouts far above anything a passing test waits for.
pub(crate) fn patient_config() -> OllamaConfig {
    OllamaConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(30),
        load_timeout: Duration::from_secs(60),
        stream_timeout: Duration::from_secs(30),
    }
}

pub(crate) fn backend(url: &str) -> OllamaBackend {
    OllamaBackend::new(url, patient_config()).expect("a valid test URL")
}

pub(crate) fn chat_request(model: &str, text: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages: vec![Message::system("You are terse."), Message::user(text)],
        options: ModelOptions::new(),
        keep_alive: None,
        format: None,
        tools: Vec::new(),
        think: None,
    }
}

/// A port on 127.0.0.1 that nothing listens on: bound, then released.
pub(crate) async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}")
}

/// An `ollama-sim` serving HTTP on 127.0.0.1; shuts down when dropped.
pub(crate) struct SimServer {
    pub(crate) url: String,
    /// The simulator behind the server, for faults and its event log.
    pub(crate) sim: Simulator,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Starts the target-machine simulator with frozen time: loads, generation
/// and unloads are instant, so tests wait for nothing.
pub(crate) async fn start_sim() -> SimServer {
    start_sim_scaled(0.0).await
}

/// Starts the target-machine simulator on a running clock: `time_scale` real
/// seconds per simulated second.
pub(crate) async fn start_sim_scaled(time_scale: f64) -> SimServer {
    let mut config = SimConfig::target_mac();
    config.time_scale = time_scale;
    config.epoch_unix_seconds = Some(1_767_225_600.0);
    let sim = Simulator::new(config.validated().expect("a valid simulator config"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    let (shutdown, stopped) = oneshot::channel::<()>();
    tokio::spawn(ollama_sim::serve(listener, sim.clone(), async {
        let _ = stopped.await;
    }));
    SimServer {
        url,
        sim,
        shutdown: Some(shutdown),
    }
}
