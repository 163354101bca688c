//! Rules 2, 3 and 4: keep_alive is last-writer-wins, counts down from the last request's
//! end, and parses like Ollama's `api.Duration`.

use serde_json::json;

use crate::support::{Sim, events, keep_alive_left, sim_time, unix_seconds};

#[track_caller]
fn assert_near(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "expected {expected} +- {tolerance}, got {actual}"
    );
}

/// Rule 2 (`useLoadedRunner`, `Scheduler.load`): a request with keep_alive overwrites it; one without leaves it alone; a new load
/// without one gets the server default.
#[tokio::test]
async fn keep_alive_is_last_writer_wins() {
    let sim = Sim::start();
    let reply = sim.chat("alpha", json!({"keep_alive": "10m"})).await;
    assert_near(keep_alive_left(&sim, "alpha", &reply).await, 600.0, 1.0);
    let reply = sim.chat("alpha", json!({})).await;
    assert_near(keep_alive_left(&sim, "alpha", &reply).await, 600.0, 1.0);
    let reply = sim.chat("alpha", json!({"keep_alive": 30})).await;
    assert_near(keep_alive_left(&sim, "alpha", &reply).await, 30.0, 1.0);
    let reply = sim.chat("beta", json!({})).await;
    assert_near(keep_alive_left(&sim, "beta", &reply).await, 300.0, 1.0);
}

/// Rule 2 (`envconfig.KeepAlive`): `OLLAMA_KEEP_ALIVE` sets the default (plain seconds accepted there).
#[tokio::test]
async fn ollama_keep_alive_sets_the_default() {
    let sim = Sim::start_env(&[("OLLAMA_KEEP_ALIVE", "3600")]);
    let reply = sim.chat("alpha", json!({})).await;
    assert_near(keep_alive_left(&sim, "alpha", &reply).await, 3600.0, 1.0);
}

/// Rule 3 (`processCompleted`): the countdown starts when the last in-flight request finishes; while requests are
/// in flight ps shows the previous expiry; keep_alive 0 unloads at the end of the request.
#[tokio::test]
async fn the_idle_countdown_starts_when_the_last_request_finishes() {
    let sim = Sim::start();
    let preload = sim.preload("alpha", json!({"keep_alive": "3s"})).await;
    let previous = unix_seconds(&preload["created_at"]) + 3.0;
    let api = sim.api.clone();
    // 100 tokens at 10 tokens/s: 10 simulated seconds, far beyond the 3 s keep_alive.
    let long = tokio::spawn(async move {
        api.chat(
            "alpha",
            json!({"keep_alive": "3s", "options": {"num_predict": 100}}),
        )
        .await
    });
    sim.wait_for("request_arrived", "alpha", 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let ps = sim.ps().await;
    assert_eq!(ps.len(), 1, "alpha stays loaded while busy: {ps:#?}");
    assert_near(unix_seconds(&ps[0]["expires_at"]), previous, 0.5);

    let reply = long.await.expect("long request");
    assert_near(keep_alive_left(&sim, "alpha", &reply).await, 3.0, 0.5);
    let log = sim.wait_for("unload_started", "alpha", 1).await;
    let unload = events(&log, "unload_started", "alpha")[0];
    assert_eq!(unload["reason"], "expired");
    let idle = sim_time(&log, "unload_started", "alpha", 0)
        - sim_time(&log, "request_finished", "alpha", 1);
    assert_near(idle, 3.0, 1.0);

    sim.chat("beta", json!({"keep_alive": 0})).await;
    let log = sim.wait_for("unload_started", "beta", 1).await;
    assert_eq!(
        events(&log, "unload_started", "beta")[0]["reason"],
        "keep_alive_zero"
    );

    // With two requests in flight, the first to finish does not unload the model.
    let body = json!({"keep_alive": 0, "options": {"num_predict": 20}});
    let (first, second) = tokio::join!(sim.chat("gamma", body.clone()), sim.chat("gamma", body));
    assert_eq!(
        (first["eval_count"].clone(), second["eval_count"].clone()),
        (json!(20), json!(20))
    );
    let log = sim.wait_for("unload_started", "gamma", 1).await;
    assert_eq!(events(&log, "load_started", "gamma").len(), 1);
    let last_finished = events(&log, "request_finished", "gamma")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .max()
        .expect("gamma requests");
    assert!(last_finished < crate::support::seq(&log, "unload_started", "gamma", 0));
}

/// Rule 4 (`Duration.UnmarshalJSON` in `api/types.go`): numbers are seconds (negative = forever), strings are Go durations, a string
/// without a unit is a 400 with Go's message.
#[tokio::test]
async fn keep_alive_values_parse_like_ollama() {
    let sim = Sim::start();
    let forever_seconds = i64::MAX as f64 / 1e9;
    for (value, expected) in [
        (json!(90.5), 90.5),
        (json!("1h30m"), 5400.0),
        (json!("1.5m"), 90.0),
        (json!(-1), forever_seconds),
        (json!("-1m"), forever_seconds),
    ] {
        let reply = sim.preload("alpha", json!({"keep_alive": value})).await;
        let left = keep_alive_left(&sim, "alpha", &reply).await;
        assert_near(left, expected, 1.0 + expected * 1e-9);
    }
    let (status, body) = sim.chat_raw("alpha", json!({"keep_alive": "300"})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "time: missing unit in duration \"300\""})
    );
    let (status, body) = sim
        .post(
            "/api/generate",
            json!({"model": "alpha", "prompt": "", "keep_alive": "0"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["done_reason"], "unload");
    sim.wait_for("unloaded", "alpha", 1).await;
    assert!(sim.ps().await.is_empty());
}
