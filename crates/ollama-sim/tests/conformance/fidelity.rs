//! The scheduler and memory rules of the second reading of Ollama's source: each test names
//! the Ollama function it follows (`server/sched.go` unless said otherwise).

use serde_json::{Value, json};

use crate::support::{Sim, events};

const GB: u64 = 1_000_000_000;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A machine of 10 GB GPU memory and 16 GB RAM (6 GB kept by the OS). The `dense` models
/// have 8 layers with a KV cache of 32768 bytes per token (f16); `hybrid` is a `qwen3next`
/// whose KV cache lives in 2 of its 8 layers.
pub(crate) const CONFIG: &str = r#"
time_scale: 0.01
gpu_memory_bytes: 10GB
ram_bytes: 16GB
os_reserve_bytes: 6GB
epoch_unix_seconds: 1767225600
load: {fixed_seconds: 1, cold_mmap_bytes_per_second: 1000000000, cold_no_mmap_bytes_per_second: 4000000000, warm_bytes_per_second: 10000000000, unload_seconds: 0.5}
decode: {prompt_eval_speedup: 100, memory_bandwidth_bytes_per_second: 200000000000, cpu_memory_bandwidth_bytes_per_second: 50000000000}
replies: {default_tokens: 20, thinking_tokens: 8}
models:
  - &dense {name: dense, size_bytes: 1GB, family: llama, block_count: 8, head_count: 8, head_count_kv: 8, embedding_length: 1024, context_length: 65536, capabilities: [completion, tools], decode_tokens_per_second: 10}
  - {<<: *dense, name: dense2}
  - {<<: *dense, name: hybrid, family: qwen3next, attention_layers: 2}
  - {<<: *dense, name: embedder, capabilities: [embedding]}
  - {<<: *dense, name: mid, size_bytes: 4.5GB}
  - {<<: *dense, name: big, size_bytes: 6GB}
  - {<<: *dense, name: big2, size_bytes: 6GB}
"#;

const KV_PER_TOKEN: u64 = 2 * 8 * 8 * (1024 / 8) * 2;

fn sim() -> Sim {
    Sim::start_with(CONFIG, &[], &[])
}

fn options(value: Value) -> Value {
    json!({ "options": value })
}

async fn ps_entry(sim: &Sim, name: &str) -> Value {
    let ps = sim.ps().await;
    ps.into_iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not loaded"))
}

/// `PredictServerVRAM` (prediction, every layer) against the size the runner reports after
/// the load (`updateFreeSpace` subtracts it): `/api/ps` shows the measured size, which for
/// the hybrid `qwen3next` counts the KV cache of its attention layers only, and a later fit
/// test subtracts the measured size, so a model fits that would not beside the prediction.
#[tokio::test]
async fn ps_and_later_fit_tests_use_the_measured_size() {
    let sim = sim();
    sim.preload(
        "hybrid",
        options(json!({"num_ctx": 65536, "num_batch": 512})),
    )
    .await;
    let predicted = GB + 65536 * KV_PER_TOKEN;
    let measured = GB + 65536 * KV_PER_TOKEN * 2 / 8;
    assert_eq!(ps_entry(&sim, "hybrid").await["size"], measured);
    let log = sim.log().await;
    assert_eq!(
        events(&log, "load_started", "hybrid")[0]["bytes"],
        predicted
    );
    assert_eq!(
        events(&log, "load_finished", "hybrid")[0]["measured_bytes"],
        measured
    );
    // big (6 GB) fits in 80 % of 10 GB - measured (6.77 GB) but not of 10 GB - predicted
    // (5.48 GB): no eviction.
    sim.preload("big", options(json!({"num_ctx": 4, "num_batch": 512})))
        .await;
    assert!(events(&sim.log().await, "eviction", "*").is_empty());
    assert_eq!(sim.ps_names().await.len(), 2);
}

/// `automaticGenerationBatch` and `generationBatchSurcharge`: without `num_batch` Ollama
/// picks 1024 above a 4096 context and 2048 above 32768, adding 768 MiB or 2 GiB, and
/// steps down while the model would take more than 60 % (2048) or 75 % (1024) of the
/// available memory or the surcharge breaks the 80 % line. Two automatic values are equal
/// for the reload comparison (`needsReload`).
#[tokio::test]
async fn the_automatic_num_batch_adds_its_surcharge_and_steps_down() {
    let sim = sim();
    sim.preload("dense", options(json!({"num_ctx": 4096})))
        .await;
    assert_eq!(
        ps_entry(&sim, "dense").await["size"],
        GB + 4096 * KV_PER_TOKEN
    );
    sim.preload("dense", options(json!({"num_ctx": 8192})))
        .await;
    assert_eq!(
        ps_entry(&sim, "dense").await["size"],
        GB + 8192 * KV_PER_TOKEN + 768 * MIB
    );
    sim.preload("dense", options(json!({"num_ctx": 40000})))
        .await;
    assert_eq!(
        ps_entry(&sim, "dense").await["size"],
        GB + 40000 * KV_PER_TOKEN + 2 * GIB
    );
    // Automatic equals automatic: the same request again does not reload.
    let loads = events(&sim.log().await, "load_started", "dense").len();
    sim.chat(
        "dense",
        options(json!({"num_ctx": 40000, "num_predict": 1})),
    )
    .await;
    assert_eq!(
        events(&sim.log().await, "load_started", "dense").len(),
        loads
    );
    sim.unload("dense").await;
    sim.wait_for("unloaded", "dense", 3).await;
    // big at 33000 tokens: 7.08 GB is above 60 % of 10 GB, so 2048 steps down to 1024.
    sim.preload("big", options(json!({"num_ctx": 33000}))).await;
    assert_eq!(
        ps_entry(&sim, "big").await["size"],
        6 * GB + 33000 * KV_PER_TOKEN + 768 * MIB
    );
    sim.unload("big").await;
    sim.wait_for("unloaded", "big", 1).await;
    // At 40000 tokens (7.31 GB) even 1024 breaks the 80 % line: 512, no surcharge.
    sim.preload("big", options(json!({"num_ctx": 40000}))).await;
    assert_eq!(
        ps_entry(&sim, "big").await["size"],
        6 * GB + 40000 * KV_PER_TOKEN
    );
}

/// `availableMemoryForLoad`: on an integrated GPU the fit test's free memory is capped by
/// the host's free memory (RAM minus the OS reserve minus the runners).
#[tokio::test]
async fn the_fit_test_is_capped_by_host_free_memory() {
    let sim = Sim::start_with(CONFIG, &[], &["--ram", "12GB"]);
    let exact = options(json!({"num_ctx": 4, "num_batch": 512}));
    sim.preload("dense", exact.clone()).await;
    // GPU: 80 % of 9 GB fits 4.5 GB; host: 80 % of (12 - 6 - 1) GB does not.
    sim.preload("mid", exact).await;
    let log = sim.log().await;
    let evictions = events(&log, "eviction", "*");
    assert_eq!(evictions.len(), 1, "{log:#?}");
    assert_eq!(evictions[0]["reason"], "memory");
    assert_eq!(sim.ps_names().await, ["mid"]);
}

/// `explicitPartialGPUOffload` and the pre-flight check in `Scheduler.load`: `num_gpu: 0`
/// and a partial offload skip the fit test; `/api/ps` shows `size_vram` 0 or the offloaded
/// share, and the layers on the CPU decode at the CPU's memory bandwidth.
#[tokio::test]
async fn cpu_only_and_partial_offload_skip_the_fit_test() {
    let sim = sim();
    let exact = json!({"num_ctx": 4, "num_batch": 512});
    sim.preload("big", options(exact.clone())).await;
    sim.preload(
        "big2",
        options(json!({"num_ctx": 4, "num_batch": 512, "num_gpu": 0})),
    )
    .await;
    sim.preload(
        "dense",
        options(json!({"num_ctx": 4, "num_batch": 512, "num_gpu": 4})),
    )
    .await;
    assert!(events(&sim.log().await, "eviction", "*").is_empty());
    let cpu = ps_entry(&sim, "big2").await;
    assert_eq!(cpu["size_vram"], 0);
    let partial = ps_entry(&sim, "dense").await;
    let size = partial["size"].as_u64().expect("size");
    assert_eq!(partial["size_vram"], (size as f64 * 4.0 / 9.0) as u64);
    // CPU decode: 10 tok/s x 50/200 GB/s = 2.5 tok/s.
    let reply = sim
        .chat(
            "big2",
            options(json!({"num_ctx": 4, "num_batch": 512, "num_gpu": 0, "num_predict": 5})),
        )
        .await;
    let speed = reply["eval_count"].as_f64().expect("eval_count")
        / (reply["eval_duration"].as_f64().expect("eval_duration") / 1e9);
    assert!((speed - 2.5).abs() < 0.01, "{speed} tok/s");
}

/// `needsReload`: `num_ctx` compared after capping at the trained context, `main_gpu`
/// absent differs from 0, and a change of `shift` reloads.
#[tokio::test]
async fn the_reload_comparison_follows_needs_reload() {
    let sim = sim();
    let loads = |log: &[Value]| events(log, "load_started", "dense").len();
    sim.chat(
        "dense",
        options(json!({"num_ctx": 131072, "num_predict": 1})),
    )
    .await;
    sim.chat(
        "dense",
        options(json!({"num_ctx": 100000, "num_predict": 1})),
    )
    .await;
    assert_eq!(loads(&sim.log().await), 1, "both are 65536 after the cap");
    let mut body = options(json!({"num_ctx": 100000, "num_predict": 1, "main_gpu": 0}));
    sim.chat("dense", body.clone()).await;
    assert_eq!(loads(&sim.log().await), 2, "main_gpu absent differs from 0");
    body["shift"] = json!(false);
    sim.chat("dense", body).await;
    assert_eq!(loads(&sim.log().await), 3, "a change of shift reloads");
}

/// `Scheduler.expireRunner` only sees loaded runners: an unload sent while the model is
/// still loading is a no-op, and the model stays resident.
#[tokio::test]
async fn an_unload_during_a_load_is_a_no_op() {
    let sim = sim();
    let api = sim.api.clone();
    let preload = tokio::spawn(async move {
        api.post("/api/generate", json!({"model": "big", "prompt": ""}))
            .await
    });
    sim.wait_for("load_started", "big", 1).await;
    let answer = sim.unload("big").await;
    assert_eq!(answer["done_reason"], "unload");
    let (status, _) = preload.await.expect("preload");
    assert_eq!(status, 200);
    assert_eq!(sim.ps_names().await, ["big"]);
    assert!(events(&sim.log().await, "unload_started", "*").is_empty());
}

/// `Scheduler.load`: one parallel slot for `qwen3next` (and the other listed architectures)
/// and for embedding models, whatever `OLLAMA_NUM_PARALLEL` says.
#[tokio::test]
async fn parallel_is_forced_to_one_for_qwen3next_and_embedding_models() {
    let sim = Sim::start_with(CONFIG, &[("OLLAMA_NUM_PARALLEL", "2")], &[]);
    let exact = options(json!({"num_ctx": 1024, "num_batch": 512}));
    sim.preload("dense", exact.clone()).await;
    assert_eq!(
        ps_entry(&sim, "dense").await["size"],
        GB + 2 * 1024 * KV_PER_TOKEN
    );
    sim.preload("hybrid", exact).await;
    assert_eq!(
        ps_entry(&sim, "hybrid").await["size"],
        GB + 1024 * KV_PER_TOKEN * 2 / 8
    );
}

/// `envconfig.ContextLength` and `OLLAMA_KV_CACHE_TYPE` (`kvCacheTypeFromStr` in
/// `fs/ggml`): the default num_ctx, and a q8_0 cache half and a q4_0 cache a quarter of f16.
#[tokio::test]
async fn context_length_and_kv_cache_type_come_from_the_environment() {
    for (kind, divisor) in [("q8_0", 2), ("q4_0", 4)] {
        let sim = Sim::start_with(
            CONFIG,
            &[
                ("OLLAMA_CONTEXT_LENGTH", "2048"),
                ("OLLAMA_KV_CACHE_TYPE", kind),
            ],
            &[],
        );
        sim.preload("dense", json!({})).await;
        let entry = ps_entry(&sim, "dense").await;
        assert_eq!(entry["context_length"], 2048);
        assert_eq!(entry["size"], GB + 2048 * KV_PER_TOKEN / divisor, "{kind}");
    }
}

/// The page cache is what RAM leaves: RAM minus the memory wired for resident models minus
/// the OS reserve, least recently used files out first. With 6 GB reserved, a 6 GB file
/// does not survive another 6 GB model; with no reserve it does.
#[tokio::test]
async fn the_os_reserve_shrinks_the_page_cache() {
    for (reserve, warm) in [("6GB", false), ("0GB", true)] {
        let sim = Sim::start_with(CONFIG, &[], &["--os-reserve", reserve]);
        let exact = options(json!({"num_ctx": 4, "num_batch": 512}));
        sim.preload("big", exact.clone()).await;
        sim.unload("big").await;
        sim.wait_for("unloaded", "big", 1).await;
        sim.preload("big2", exact.clone()).await;
        sim.unload("big2").await;
        sim.wait_for("unloaded", "big2", 1).await;
        sim.preload("big", exact).await;
        let log = sim.log().await;
        let second = events(&log, "load_started", "big")[1];
        assert_eq!(second["warm"], warm, "reserve {reserve}");
        let disk = if warm { 0 } else { 6 * GB };
        assert_eq!(second["disk_bytes"], disk);
        assert_eq!(second["cache_bytes"], 6 * GB - disk);
    }
}
