//! Rules 1, 5, 6, 7 and 14 (busy victims): serialized loads, the count cap, eviction order,
//! the fit test.

use serde_json::json;

use crate::support::{CONFIG, GB, KV_PER_TOKEN, Sim, events, seq};

/// Rule 1 (`processPending`, `useLoadedRunner`): loads are serialized FIFO; a resident model
/// is served during another load.
#[tokio::test]
async fn loads_are_serialized_fifo_and_resident_models_take_the_fast_path() {
    // A simulated second of 100 ms: big's 7 s load lasts 0.7 s, so the three requests below
    // are in place well before it ends, however busy the machine.
    let sim = Sim::start_with(CONFIG, &[], &["--time-scale", "0.1"]);
    sim.preload("alpha", json!({})).await;

    let api = sim.api.clone();
    let big = tokio::spawn(async move {
        api.chat("big", json!({"options": {"num_predict": 1}}))
            .await
    });
    sim.wait_for("load_started", "big", 1).await;
    let api = sim.api.clone();
    let beta = tokio::spawn(async move {
        api.chat("beta", json!({"options": {"num_predict": 1}}))
            .await
    });
    sim.wait_for("request_queued", "beta", 1).await;
    let api = sim.api.clone();
    let gamma = tokio::spawn(async move {
        api.chat("gamma", json!({"options": {"num_predict": 1}}))
            .await
    });
    sim.wait_for("request_queued", "gamma", 1).await;

    // Alpha is resident: served at once while big is still loading.
    sim.chat("alpha", json!({"options": {"num_predict": 1}}))
        .await;
    let log = sim.log().await;
    assert!(
        events(&log, "load_finished", "big").is_empty(),
        "alpha should finish during big's load: {log:#?}"
    );
    assert_eq!(
        events(&log, "request_queued", "alpha").len(),
        1,
        "only the preload queued"
    );

    big.await.expect("big");
    beta.await.expect("beta");
    gamma.await.expect("gamma");
    let log = sim.log().await;
    assert!(seq(&log, "load_finished", "big", 0) < seq(&log, "load_started", "beta", 0));
    assert!(seq(&log, "load_finished", "beta", 0) < seq(&log, "load_started", "gamma", 0));
}

/// Rule 5 (`processPending`): the model-count cap is checked before memory.
#[tokio::test]
async fn a_fourth_small_model_evicts_one_although_it_fits() {
    let sim = Sim::start();
    for model in ["alpha", "beta", "gamma", "delta"] {
        sim.preload(model, json!({})).await;
    }
    let log = sim.log().await;
    let evictions = events(&log, "eviction", "*");
    assert_eq!(evictions.len(), 1, "{log:#?}");
    assert_eq!(evictions[0]["reason"], "max_loaded_models");
    assert_eq!(evictions[0]["for_model"], "delta");
    // Equal keep_alive: the tie goes by the weights' digest (`findRunnerToUnload` sorts
    // by model path, a blob named after the digest), not by name: beta's digest is lowest.
    assert_eq!(evictions[0]["model"], "beta");
    assert!(
        evictions[0]["memory_bytes"].as_u64().expect("memory") < 4 * GB,
        "memory was far from full"
    );
    assert_eq!(sim.ps_names().await, ["alpha", "delta", "gamma"]);
}

/// Rule 6 (`findRunnerToUnload`): victims sort by session duration (forever last), then
/// digest; the first idle one goes; forever does not pin.
#[tokio::test]
async fn eviction_follows_session_duration_then_name_and_forever_does_not_pin() {
    let sim = Sim::start();
    sim.preload("alpha", json!({"keep_alive": -1})).await;
    sim.preload("beta", json!({"keep_alive": "10m"})).await;
    sim.preload("gamma", json!({"keep_alive": "2m"})).await;
    sim.preload("delta", json!({})).await; // 5m default; evicts gamma (2m)
    sim.preload("epsilon", json!({"keep_alive": "1m"})).await; // evicts delta (5m < 10m < forever)
    sim.preload("gamma", json!({"keep_alive": "10m"})).await; // evicts epsilon (1m)
    sim.preload("delta", json!({"keep_alive": "20m"})).await; // beta and gamma tie at 10m: beta
    // huge: the count cap evicts gamma (10m), then memory evicts delta (20m), then alpha
    // (forever), and huge loads alone as the first model.
    sim.preload("huge", json!({})).await;

    let log = sim.log().await;
    let evicted: Vec<(&str, &str)> = events(&log, "eviction", "*")
        .iter()
        .map(|e| {
            (
                e["model"].as_str().expect("model"),
                e["reason"].as_str().expect("reason"),
            )
        })
        .collect();
    assert_eq!(
        evicted,
        [
            ("gamma", "max_loaded_models"),
            ("delta", "max_loaded_models"),
            ("epsilon", "max_loaded_models"),
            ("beta", "max_loaded_models"),
            ("gamma", "max_loaded_models"),
            ("delta", "memory"),
            ("alpha", "memory"),
        ]
    );
    let ps = sim.ps().await;
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["name"], "huge");
    // The first model into an empty server skips the fit test and spills to the CPU.
    assert_eq!(ps[0]["size"], 15 * GB + 4096 * KV_PER_TOKEN);
    assert_eq!(ps[0]["size_vram"], 10 * GB);
}

/// Rules 6 and 14 (`processPending`): a busy victim cannot be evicted; the load waits for it to drain, and the
/// whole pending queue waits behind that load.
#[tokio::test]
async fn a_load_queued_behind_a_busy_victim_waits_and_so_does_the_queue() {
    let sim = Sim::start();
    sim.preload("big", json!({})).await;
    let api = sim.api.clone();
    let long = tokio::spawn(async move {
        api.chat("big", json!({"options": {"num_predict": 100}}))
            .await
    });
    sim.wait_for("request_arrived", "big", 2).await;
    // Let the request claim the runner (2 simulated seconds of its 10).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    let api = sim.api.clone();
    let big2 = tokio::spawn(async move {
        api.chat("big2", json!({"options": {"num_predict": 1}}))
            .await
    });
    let log = sim.wait_for("eviction", "big", 1).await;
    let eviction = events(&log, "eviction", "big")[0];
    assert_eq!(eviction["busy"], true);
    assert_eq!(eviction["reason"], "memory");
    // alpha would fit beside big, but it waits behind big2's load.
    let alpha = sim
        .chat("alpha", json!({"options": {"num_predict": 1}}))
        .await;

    let long = long.await.expect("long request");
    assert_eq!(long["eval_count"], 100, "the busy model finished its reply");
    big2.await.expect("big2");
    let log = sim.log().await;
    let long_finished = events(&log, "request_finished", "big")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .max()
        .expect("big requests");
    assert!(long_finished < seq(&log, "unload_started", "big", 0));
    assert!(seq(&log, "unloaded", "big", 0) < seq(&log, "load_started", "big2", 0));
    assert!(seq(&log, "load_started", "big2", 0) < seq(&log, "load_started", "alpha", 0));
    // alpha's load_duration covers the wait for the drain, the unload and big2's load.
    let load_ns = alpha["load_duration"].as_u64().expect("load_duration");
    assert!(load_ns > 7_000_000_000, "load_duration {load_ns}");
}

/// Rule 7 (the pre-flight check of `Scheduler.load`): a model loads beside others only if
/// predicted <= 80% of the free memory.
#[tokio::test]
async fn the_fit_test_keeps_twenty_percent_headroom() {
    let sim = Sim::start();
    let kv = 4096 * KV_PER_TOKEN;
    // 10 GB - (4 GB + kv) leaves 5.99 GB; 80% of it is 4.79 GB.
    sim.preload("mid4", json!({})).await;
    sim.preload("mid45", json!({})).await; // 4.5 GB + kv fits under 80%
    assert_eq!(sim.ps_names().await, ["mid4", "mid45"]);
    assert!(events(&sim.log().await, "eviction", "*").is_empty());

    let (status, _) = sim.post("/sim/reset", json!({})).await;
    assert_eq!(status, 200);
    sim.preload("mid4", json!({})).await;
    // 5 GB + kv is below the 5.99 GB free, but above 80% of it.
    assert!((5 * GB + kv) as f64 <= (10 * GB - 4 * GB - kv) as f64);
    sim.preload("mid5", json!({})).await;
    let log = sim.log().await;
    let evictions = events(&log, "eviction", "*");
    assert_eq!(evictions.len(), 1, "{log:#?}");
    assert_eq!(evictions[0]["model"], "mid4");
    assert_eq!(evictions[0]["reason"], "memory");
    assert_eq!(sim.ps_names().await, ["mid5"]);
}
