//! Test support: starts the real `ollama-sim` binary on a free port with a small catalogue
//! and a fast clock, and talks to it over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

/// The test machine: 10 GB of GPU memory, 16 GB of RAM, one simulated second = 10 ms.
/// Every 1 GB model loads cold in 2 s (1 s fixed + 1 GB at 1 GB/s) and decodes 10 tokens/s;
/// its KV cache costs 2048 bytes per token (8 MiB at the default num_ctx of 4096).
pub(crate) const CONFIG: &str = r#"
time_scale: 0.01
gpu_memory_bytes: 10GB
ram_bytes: 16GB
epoch_unix_seconds: 1767225600
load:
  fixed_seconds: 1
  cold_mmap_bytes_per_second: 1000000000
  cold_no_mmap_bytes_per_second: 4000000000
  warm_bytes_per_second: 10000000000
  unload_seconds: 0.5
decode:
  prompt_eval_speedup: 100
replies:
  default_tokens: 5
  exact_length: true
models:
  - &tiny {name: alpha, size_bytes: 1GB, family: llama, block_count: 4, head_count: 4, head_count_kv: 4, embedding_length: 256, context_length: 4096, capabilities: [completion, tools, thinking], decode_tokens_per_second: 10}
  - {<<: *tiny, name: beta, digest: 0000000000000000000000000000000000000000000000000000000000000000}
  - {<<: *tiny, name: gamma, digest: 1111111111111111111111111111111111111111111111111111111111111111}
  - {<<: *tiny, name: delta}
  - {<<: *tiny, name: epsilon}
  - {<<: *tiny, name: alias, weights: alpha}
  - {<<: *tiny, name: plain, capabilities: [completion]}
  - {<<: *tiny, name: big, size_bytes: 6GB}
  - {<<: *tiny, name: big2, size_bytes: 6GB}
  - {<<: *tiny, name: mid4, size_bytes: 4GB}
  - {<<: *tiny, name: mid45, size_bytes: 4.5GB}
  - {<<: *tiny, name: mid5, size_bytes: 5GB}
  - {<<: *tiny, name: huge, size_bytes: 15GB}
"#;

/// beta and gamma have the lowest digests (eviction ties go by digest, not by name).
/// KV cache bytes per token of the test models.
pub(crate) const KV_PER_TOKEN: u64 = 2 * 4 * 4 * (256 / 4) * 2;
pub(crate) const GB: u64 = 1_000_000_000;

/// A running simulator process; killed on drop.
pub(crate) struct Sim {
    child: Child,
    _dir: tempfile::TempDir,
    pub(crate) api: Api,
}

/// A cloneable HTTP handle for spawned requests.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) url: String,
    pub(crate) http: reqwest::Client,
}

impl std::ops::Deref for Sim {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    pub(crate) fn start() -> Sim {
        Sim::start_with(CONFIG, &[], &[])
    }

    pub(crate) fn start_env(env: &[(&str, &str)]) -> Sim {
        Sim::start_with(CONFIG, env, &[])
    }

    pub(crate) fn start_with(config: &str, env: &[(&str, &str)], args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("sim.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ollama-sim"));
        command.arg("--config").arg(&config_path).args(args);
        for name in [
            "OLLAMA_HOST",
            "OLLAMA_KEEP_ALIVE",
            "OLLAMA_MAX_LOADED_MODELS",
            "OLLAMA_NUM_PARALLEL",
            "OLLAMA_MAX_QUEUE",
            "OLLAMA_LOAD_TIMEOUT",
            "OLLAMA_CONTEXT_LENGTH",
            "OLLAMA_KV_CACHE_TYPE",
        ] {
            command.env_remove(name);
        }
        if !env.iter().any(|(name, _)| *name == "OLLAMA_HOST") {
            command.env("OLLAMA_HOST", "127.0.0.1:0");
        }
        command.envs(env.iter().copied());
        // The address comes from the ready file (the caller's, if it passes one).
        let ready = match args.iter().position(|arg| *arg == "--ready-file") {
            Some(at) => std::path::PathBuf::from(args[at + 1]),
            None => {
                let ready = dir.path().join("ready");
                command.arg("--ready-file").arg(&ready);
                ready
            }
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ollama-sim");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut reader = BufReader::new(stderr);
        let url = ollama_sim::wait_until_ready(&mut child, &ready, Duration::from_secs(30))
            .unwrap_or_else(|error| panic!("{error}"));
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                eprint!("[sim] {sink}");
                sink.clear();
            }
        });
        Sim {
            child,
            _dir: dir,
            api: Api {
                url,
                http: reqwest::Client::new(),
            },
        }
    }

    pub(crate) fn ollama(&self) -> ollama_rs::Ollama {
        ollama_rs::Ollama::try_new(self.url.as_str()).expect("valid url")
    }
}

/// `base` with the fields of `extra` added or replaced.
pub(crate) fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

impl Api {
    /// A POST with a JSON answer: `(status, body)`.
    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// A streamed POST: `(status, lines)`.
    pub(crate) async fn post_lines(&self, path: &str, body: Value) -> (u16, Vec<Value>) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let lines = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("NDJSON line"))
            .collect();
        (status, lines)
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request sent");
        response.json().await.expect("JSON body")
    }

    /// A non-streamed chat with one user message; `extra` adds or replaces fields.
    pub(crate) async fn chat_raw(&self, model: &str, extra: Value) -> (u16, Value) {
        let body = merged(
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": false}),
            extra,
        );
        self.post("/api/chat", body).await
    }

    /// A successful non-streamed chat.
    pub(crate) async fn chat(&self, model: &str, extra: Value) -> Value {
        let (status, body) = self.chat_raw(model, extra).await;
        assert_eq!(status, 200, "chat {model}: {body}");
        body
    }

    /// A preload (`/api/generate` with an empty prompt); `extra` adds fields.
    pub(crate) async fn preload(&self, model: &str, extra: Value) -> Value {
        let (status, body) = self
            .post(
                "/api/generate",
                merged(json!({"model": model, "prompt": ""}), extra),
            )
            .await;
        assert_eq!(status, 200, "preload {model}: {body}");
        assert_eq!(body["done_reason"], "load", "{body}");
        body
    }

    /// An explicit unload.
    pub(crate) async fn unload(&self, model: &str) -> Value {
        let (status, body) = self
            .post(
                "/api/generate",
                json!({"model": model, "prompt": "", "keep_alive": 0}),
            )
            .await;
        assert_eq!(status, 200, "unload {model}: {body}");
        body
    }

    pub(crate) async fn ps(&self) -> Vec<Value> {
        self.get("/api/ps").await["models"]
            .as_array()
            .expect("models")
            .clone()
    }

    pub(crate) async fn ps_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ps()
            .await
            .iter()
            .map(|m| m["name"].as_str().expect("name").to_owned())
            .collect();
        names.sort();
        names
    }

    pub(crate) async fn log(&self) -> Vec<Value> {
        self.get("/sim/log").await.as_array().expect("log").clone()
    }

    pub(crate) async fn faults(&self, faults: Value) {
        let (status, body) = self.post("/sim/faults", faults).await;
        assert_eq!(status, 200, "{body}");
    }

    /// Polls the log until `count` events of `kind` for `model` exist; returns the log.
    pub(crate) async fn wait_for(&self, kind: &str, model: &str, count: usize) -> Vec<Value> {
        for _ in 0..2000 {
            let log = self.log().await;
            if events(&log, kind, model).len() >= count {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        panic!("no {count} x {kind} for {model} in {:#?}", self.log().await);
    }
}

/// Events of `kind` for `model` (`"*"` for any model).
pub(crate) fn events<'a>(log: &'a [Value], kind: &str, model: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| e["event"] == kind && (model == "*" || e["model"] == model))
        .collect()
}

/// The sequence number of the `nth` (from 0) event of `kind` for `model`.
#[track_caller]
pub(crate) fn seq(log: &[Value], kind: &str, model: &str, nth: usize) -> u64 {
    let found = events(log, kind, model);
    found
        .get(nth)
        .unwrap_or_else(|| panic!("no {kind} #{nth} for {model} in {log:#?}"))["seq"]
        .as_u64()
        .expect("seq")
}

/// The simulated time of the `nth` event of `kind` for `model`.
#[track_caller]
pub(crate) fn sim_time(log: &[Value], kind: &str, model: &str, nth: usize) -> f64 {
    let found = events(log, kind, model);
    found
        .get(nth)
        .unwrap_or_else(|| panic!("no {kind} #{nth} for {model} in {log:#?}"))["sim_seconds"]
        .as_f64()
        .expect("sim_seconds")
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp.
#[track_caller]
pub(crate) fn unix_seconds(timestamp: &Value) -> f64 {
    let text = timestamp.as_str().expect("timestamp string");
    humantime::parse_rfc3339(text)
        .unwrap_or_else(|e| panic!("bad timestamp {text}: {e}"))
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `expires_at - created_at` of the loaded `model`, against a response's `created_at`.
pub(crate) async fn keep_alive_left(api: &Api, model: &str, response: &Value) -> f64 {
    let ps = api.ps().await;
    let entry = ps
        .iter()
        .find(|m| m["name"] == model)
        .unwrap_or_else(|| panic!("{model} not loaded: {ps:#?}"));
    unix_seconds(&entry["expires_at"]) - unix_seconds(&response["created_at"])
}
