//! The binary's interface: help text, Ollama's environment variables, the printed address.

use std::process::Command;

use serde_json::Value;

use crate::support::{CONFIG, Sim};

#[test]
fn help_documents_flags_and_ollama_environment_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_ollama-sim"))
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).expect("utf-8");
    for needle in [
        "--time-scale",
        "--config",
        "--script",
        "OLLAMA_HOST",
        "OLLAMA_KEEP_ALIVE",
        "OLLAMA_MAX_LOADED_MODELS",
        "OLLAMA_NUM_PARALLEL",
        "OLLAMA_MAX_QUEUE",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

#[test]
fn environment_variables_and_flags_override_the_config() {
    let output = Command::new(env!("CARGO_BIN_EXE_ollama-sim"))
        .args(["--print-config", "--max-queue", "9", "--gpu-memory", "20GB"])
        .env("OLLAMA_MAX_LOADED_MODELS", "2")
        .env("OLLAMA_NUM_PARALLEL", "4")
        .env("OLLAMA_MAX_QUEUE", "7")
        .env("OLLAMA_KEEP_ALIVE", "10m")
        .output()
        .expect("run --print-config");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: Value = serde_json::from_slice(&output.stdout).expect("JSON config");
    assert_eq!(config["max_loaded_models"], 2);
    assert_eq!(config["num_parallel"], 4);
    assert_eq!(config["max_queue"], 9, "a flag beats the environment");
    assert_eq!(config["keep_alive"], "600s");
    assert_eq!(config["gpu_memory_bytes"], 20_000_000_000u64);
    assert_eq!(
        config["models"].as_array().expect("models").len(),
        7,
        "built-in catalogue"
    );
}

#[tokio::test]
async fn port_zero_prints_the_real_address() {
    let sim = Sim::start_with(
        CONFIG,
        &[("OLLAMA_HOST", "http://127.0.0.1:11434")],
        &["--port", "0"],
    );
    assert!(!sim.url.ends_with(":11434"), "{}", sim.url);
    assert!(sim.url.starts_with("http://127.0.0.1:"));
    assert_eq!(sim.get("/api/version").await["version"], "0.33.0");
}

/// `--ready-file`: the URL is written once the server listens; the stderr line stays.
#[tokio::test]
async fn the_ready_file_holds_the_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ready = dir.path().join("ready");
    let ready_arg = ready.to_str().expect("path").to_owned();
    let sim = Sim::start_with(CONFIG, &[], &["--ready-file", &ready_arg]);
    let url = std::fs::read_to_string(&ready).expect("ready file");
    assert_eq!(url, sim.url);
    assert_eq!(sim.get("/api/version").await["version"], "0.33.0");
}

/// `OLLAMA_HOST=:PORT` (`envconfig.Host`) listens on every interface.
#[tokio::test]
async fn ollama_host_with_only_a_port_listens_everywhere() {
    let sim = Sim::start_with(CONFIG, &[("OLLAMA_HOST", ":0")], &[]);
    assert!(sim.url.starts_with("http://0.0.0.0:"), "{}", sim.url);
    let port = sim.url.rsplit(':').next().expect("port");
    let local = format!("http://127.0.0.1:{port}/api/version");
    let version: Value = sim
        .http
        .get(local)
        .send()
        .await
        .expect("reachable on loopback")
        .json()
        .await
        .expect("json");
    assert_eq!(version["version"], "0.33.0");
}
