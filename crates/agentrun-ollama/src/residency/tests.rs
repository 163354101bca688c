//! Tests of how preload requests are put on the wire.

use super::*;

#[track_caller]
fn check(keep_alive: KeepAlive, expected: serde_json::Value) {
    let wire = serde_json::to_value(wire_keep_alive(keep_alive)).expect("serializable");
    assert_eq!(wire, expected, "{keep_alive:?}");
}

#[test]
fn keep_alive_goes_out_in_whole_seconds_rounded_up() {
    check(KeepAlive::Forever, serde_json::json!(-1));
    check(KeepAlive::UnloadWhenIdle, serde_json::json!(0));
    check(KeepAlive::For(Duration::ZERO), serde_json::json!(0));
    check(
        KeepAlive::For(Duration::from_secs(600)),
        serde_json::json!("600s"),
    );
    check(
        KeepAlive::For(Duration::from_millis(1)),
        serde_json::json!("1s"),
    );
    check(
        KeepAlive::For(Duration::from_millis(90_500)),
        serde_json::json!("91s"),
    );
}

#[test]
fn options_go_out_unchanged() {
    let options: ModelOptions = serde_json::from_value(serde_json::json!({
        "num_ctx": 32768, "num_batch": 512, "num_gpu": -1, "use_mmap": false,
        "temperature": 0.2, "seed": 4_000_000_000u64
    }))
    .expect("an object");
    let request = GenerationRequest::new("coder".to_owned(), "")
        .options(ollama_rs::models::ModelOptions::default().extras(options.clone()));
    let wire = serde_json::to_value(&request).expect("serializable");
    assert_eq!(wire["options"], serde_json::Value::Object(options));
}
