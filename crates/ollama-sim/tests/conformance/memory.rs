//! Rules 8 and 10 and the load-time model: memory prediction, reloads on load-time options,
//! shared weights, and the page cache that makes reloads warm.

use serde_json::{Value, json};

use crate::support::{GB, KV_PER_TOKEN, Sim, events};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

async fn loaded(sim: &Sim, model: &str) -> Value {
    sim.ps()
        .await
        .into_iter()
        .find(|m| m["name"] == model)
        .unwrap_or_else(|| panic!("{model} not loaded"))
}

/// Rule 8 (`PredictServerVRAM`, `generationBatchSurcharge`): size = weights + f16 KV cache for min(num_ctx, trained) x num_parallel + batch
/// surcharge.
#[tokio::test]
async fn ps_size_is_weights_plus_kv_cache_plus_batch_surcharge() {
    let sim = Sim::start();
    for (options, kv_tokens, surcharge, context) in [
        (json!({"num_ctx": 2048}), 2048, 0, 2048),
        (json!({"num_ctx": 100_000}), 4096, 0, 4096),
        (
            json!({"num_ctx": 2048, "num_batch": 1024}),
            2048,
            768 * MIB,
            2048,
        ),
        (
            json!({"num_ctx": 2048, "num_batch": 2048}),
            2048,
            2 * GIB,
            2048,
        ),
    ] {
        sim.preload("alpha", json!({"options": options})).await;
        let entry = loaded(&sim, "alpha").await;
        assert_eq!(
            entry["size"],
            GB + kv_tokens * KV_PER_TOKEN + surcharge,
            "{options}"
        );
        assert_eq!(entry["size_vram"], entry["size"]);
        assert_eq!(entry["context_length"], context);
    }
}

/// Rule 8 (`effectiveLlamaServerContext`): num_parallel multiplies the KV cache.
#[tokio::test]
async fn num_parallel_multiplies_the_kv_cache() {
    let sim = Sim::start_env(&[("OLLAMA_NUM_PARALLEL", "2")]);
    sim.preload("alpha", json!({"options": {"num_ctx": 2048}}))
        .await;
    let entry = loaded(&sim, "alpha").await;
    assert_eq!(entry["size"], GB + 2 * 2048 * KV_PER_TOKEN);
    assert_eq!(entry["context_length"], 2048);
}

/// Rule 10 (`needsReload`, `schedulerModelKey`): a changed load-time option reloads; a sampling option does not; two names on
/// one weights file share a runner.
#[tokio::test]
async fn load_options_reload_sampling_options_do_not_and_shared_weights_share_a_runner() {
    let sim = Sim::start();
    let opts = |extra: Value| json!({"options": extra, "stream": false});
    sim.chat("alpha", opts(json!({"num_ctx": 2048}))).await;
    sim.chat(
        "alpha",
        opts(json!({"num_ctx": 2048, "temperature": 0.1, "seed": 7, "top_k": 5})),
    )
    .await;
    assert_eq!(events(&sim.log().await, "load_started", "alpha").len(), 1);

    sim.chat("alias", opts(json!({"num_ctx": 2048}))).await;
    let log = sim.log().await;
    assert!(
        events(&log, "load_started", "alias").is_empty(),
        "alias shares alpha's runner"
    );
    assert_eq!(sim.ps_names().await, ["alpha"]);

    for (index, changed) in [
        json!({"num_ctx": 4096}),
        json!({"num_ctx": 4096, "num_batch": 1024}),
        json!({"num_ctx": 4096, "num_batch": 1024, "use_mmap": false}),
        json!({"num_ctx": 4096, "num_batch": 1024, "use_mmap": false, "num_thread": 2}),
    ]
    .into_iter()
    .enumerate()
    {
        sim.chat("alpha", opts(changed.clone())).await;
        let log = sim.log().await;
        assert_eq!(
            events(&log, "load_started", "alpha").len(),
            index + 2,
            "{changed} reloads"
        );
        let evictions = events(&log, "eviction", "alpha");
        assert_eq!(evictions[index]["reason"], "reload");
    }
    let log = sim.log().await;
    assert_eq!(events(&log, "load_started", "alpha")[3]["mmap"], false);
}

/// The load-time model (the operating system's page cache; no Ollama function): a file still in the page cache reloads warm; a big model pushes it
/// out of RAM; use_mmap false reads a cold file faster.
#[tokio::test]
async fn the_page_cache_makes_reloads_warm_until_a_big_model_pushes_files_out() {
    let sim = Sim::start();
    let load_seconds = |log: &[Value], nth: usize| -> (bool, f64) {
        let load = events(log, "load_started", "alpha")[nth];
        (
            load["warm"].as_bool().expect("warm"),
            load["seconds"].as_f64().expect("seconds"),
        )
    };
    sim.preload("alpha", json!({})).await;
    sim.unload("alpha").await;
    sim.wait_for("unloaded", "alpha", 1).await;
    sim.preload("alpha", json!({})).await;
    let log = sim.log().await;
    assert_eq!(
        load_seconds(&log, 0),
        (false, 2.0),
        "cold: 1 s + 1 GB at 1 GB/s"
    );
    assert_eq!(
        load_seconds(&log, 1),
        (true, 1.1),
        "warm: 1 s + 1 GB at 10 GB/s"
    );

    // huge (15 GB) leaves under 1 GB of the 16 GB RAM for the page cache.
    sim.unload("alpha").await;
    sim.wait_for("unloaded", "alpha", 2).await;
    sim.preload("huge", json!({})).await;
    sim.unload("huge").await;
    sim.wait_for("unloaded", "huge", 1).await;
    sim.preload("alpha", json!({})).await;
    let log = sim.log().await;
    assert_eq!(
        load_seconds(&log, 2),
        (false, 2.0),
        "pushed out of the cache"
    );

    sim.unload("alpha").await;
    sim.wait_for("unloaded", "alpha", 3).await;
    sim.preload("beta", json!({"options": {"use_mmap": false}}))
        .await;
    let log = sim.log().await;
    let beta = events(&log, "load_started", "beta")[0];
    assert_eq!(
        beta["seconds"], 1.25,
        "cold without mmap: 1 s + 1 GB at 4 GB/s"
    );
}
