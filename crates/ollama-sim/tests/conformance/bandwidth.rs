//! Concurrent decoding shares the memory bandwidth (FIDELITY.md, "Concurrent decoding"):
//! two large models decoding at once each slow down by `2 x efficiency /
//! concurrent_efficiency`; two slots of one model batch and nearly keep their speed; a lone
//! request decodes at the model's own speed; a stream slows while another decodes and
//! recovers when it ends.

use serde_json::{Value, json};

use crate::support::{Sim, events, unix_seconds};

/// Two 20 GB models on the default Mac bandwidth (273 GB/s, 70 % for one stream, 85 % for
/// all together), whose speed follows from the bandwidth: 0.7 x 273 / 20 = 9.555 tokens/s.
/// Their 8k context keeps both resident together. One simulated second = 50 ms.
const CONFIG: &str = r#"
time_scale: 0.05
gpu_memory_bytes: 54GB
ram_bytes: 64GB
epoch_unix_seconds: 1767225600
load:
  fixed_seconds: 1
  cold_mmap_bytes_per_second: 40000000000
  cold_no_mmap_bytes_per_second: 40000000000
  warm_bytes_per_second: 40000000000
decode:
  prompt_eval_speedup: 1000
replies:
  default_tokens: 100
  exact_length: true
  stream_chunks: 20
models:
  - &big {name: coder, size_bytes: 20GB, family: qwen3, block_count: 64, head_count: 64, head_count_kv: 8, embedding_length: 5120, context_length: 8192, capabilities: [completion]}
  - {<<: *big, name: reviewer}
"#;

const TOKENS_PER_SECOND: f64 = 0.7 * 273e9 / 20e9;
/// Two streams draw 2 x 70 % of a bandwidth that delivers 85 %.
const SHARED: f64 = 2.0 * 0.7 / 0.85;
/// The KV cache of one token of context: 2 x 64 layers x 8 heads x 80 dims x 2 bytes.
const KV_PER_TOKEN: f64 = 2.0 * 64.0 * 8.0 * 80.0 * 2.0;

fn seconds(reply: &Value, field: &str) -> f64 {
    reply[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {reply}")) as f64
        / 1e9
}

fn alone(tokens: f64) -> f64 {
    tokens / TOKENS_PER_SECOND
}

#[track_caller]
fn within(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual / expected - 1.0).abs() <= tolerance,
        "expected {expected:.4} (±{:.1} %), got {actual:.4}",
        tolerance * 100.0
    );
}

/// Both requests decoded at the same time: each started before the other finished.
fn overlapped(first: &Value, second: &Value) -> bool {
    let end = |reply: &Value| unix_seconds(&reply["created_at"]);
    let start = |reply: &Value| end(reply) - seconds(reply, "eval_duration");
    start(first) < end(second) && start(second) < end(first)
}

#[tokio::test]
async fn a_lone_request_decodes_at_the_models_own_speed() {
    let sim = Sim::start_with(CONFIG, &[], &[]);
    sim.preload("coder", json!({})).await;
    let reply = sim.chat("coder", json!({})).await;
    assert_eq!(reply["eval_count"], 100);
    let expected_ns = (alone(100.0) * 1e9).round();
    let eval_ns = reply["eval_duration"].as_u64().expect("eval_duration") as f64;
    assert!(
        (eval_ns - expected_ns).abs() <= 1000.0,
        "{eval_ns} ns, expected {expected_ns} ns"
    );
}

#[tokio::test]
async fn two_large_models_decoding_at_once_each_slow_by_the_predicted_factor() {
    let sim = Sim::start_with(CONFIG, &[], &[]);
    sim.preload("coder", json!({})).await;
    sim.preload("reviewer", json!({})).await;
    let (api, other) = (sim.api.clone(), sim.api.clone());
    let (coder, reviewer) = tokio::join!(
        async move { api.chat("coder", json!({})).await },
        async move { other.chat("reviewer", json!({})).await },
    );
    assert!(overlapped(&coder, &reviewer), "{coder}\n{reviewer}");
    // Each takes 1.65 x as long as alone: together 2 / 1.65 = 1.21 x the throughput of one,
    // not 2 x.
    for reply in [&coder, &reviewer] {
        within(seconds(reply, "eval_duration"), alone(100.0) * SHARED, 0.03);
    }
}

#[tokio::test]
async fn two_slots_of_one_model_batch_and_nearly_keep_their_speed() {
    let sim = Sim::start_with(CONFIG, &[("OLLAMA_NUM_PARALLEL", "2")], &[]);
    sim.preload("coder", json!({})).await;
    // A long prompt (about 5k tokens) makes each slot's KV read visible beside the weights.
    let long = "word ".repeat(4000);
    let body = json!({
        "messages": [{"role": "user", "content": long}],
    });
    let (api, other) = (sim.api.clone(), sim.api.clone());
    let (body_a, body_b) = (body.clone(), body);
    let (first, second) =
        tokio::join!(async move { api.chat("coder", body_a).await }, async move {
            other.chat("coder", body_b).await
        },);
    assert!(overlapped(&first, &second), "{first}\n{second}");
    let kept = first["prompt_eval_count"]
        .as_u64()
        .expect("prompt_eval_count") as f64;
    assert!(kept > 4000.0, "{first}");
    // One step reads the weights once and both slots' KV caches (prompt + half the reply).
    let batch = (20e9 + KV_PER_TOKEN * (kept + 50.0)) / 20e9;
    for reply in [&first, &second] {
        within(seconds(reply, "eval_duration"), alone(100.0) * batch, 0.01);
    }
    assert!(
        batch < 1.1 && batch > 1.03,
        "two slots nearly double the throughput ({batch})"
    );
    let log = sim.log().await;
    assert_eq!(events(&log, "load_started", "coder").len(), 1, "one runner");
}

#[tokio::test]
async fn a_stream_slows_while_another_decodes_and_recovers_when_it_ends() {
    let sim = Sim::start_with(CONFIG, &[], &[]);
    sim.preload("coder", json!({})).await;
    sim.preload("reviewer", json!({})).await;
    let api = sim.api.clone();
    let long = tokio::spawn(async move {
        api.post_lines(
            "/api/chat",
            json!({
                "model": "coder",
                "messages": [{"role": "user", "content": "hi"}],
                "options": {"num_predict": 200},
            }),
        )
        .await
    });
    // Five simulated seconds into the long reply's 21, a 40-token reply to the other model.
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    let short = sim
        .chat("reviewer", json!({"options": {"num_predict": 40}}))
        .await;
    let (status, lines) = long.await.expect("long stream");
    assert_eq!(status, 200);
    let last = lines.last().expect("a final chunk");
    assert_eq!(last["eval_count"], 200);

    // The short reply overlapped the long one from start to end, each at 1 / 1.65 of its
    // speed; the long one lost exactly that overlap x (1 - 1 / 1.65).
    let short_eval = seconds(&short, "eval_duration");
    within(short_eval, alone(40.0) * SHARED, 0.01);
    within(
        seconds(last, "eval_duration"),
        alone(200.0) + short_eval * (1.0 - 1.0 / SHARED),
        0.01,
    );

    // The chunks show it: ten tokens a chunk, 1.05 s apart alone, 1.72 s while both decode.
    let short_end = unix_seconds(&short["created_at"]);
    let short_start = short_end - short_eval;
    let times: Vec<f64> = lines
        .iter()
        .map(|line| unix_seconds(&line["created_at"]))
        .collect();
    let mean_gap = |from: f64, to: f64| -> f64 {
        let gaps: Vec<f64> = times
            .windows(2)
            .filter(|pair| pair[0] >= from && pair[1] <= to)
            .map(|pair| pair[1] - pair[0])
            .collect();
        assert!(gaps.len() >= 2, "chunks between {from} and {to}: {times:?}");
        gaps.iter().sum::<f64>() / gaps.len() as f64
    };
    // Every line, the final one included, comes an equal share of the tokens later.
    let chunk = 200.0 / lines.len() as f64;
    within(mean_gap(f64::MIN, short_start), alone(chunk), 0.15);
    within(
        mean_gap(short_start, short_end),
        alone(chunk) * SHARED,
        0.15,
    );
    within(mean_gap(short_end, f64::MAX), alone(chunk), 0.15);
}
