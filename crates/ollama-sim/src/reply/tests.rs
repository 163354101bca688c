//! Tests of generated replies: determinism, lengths and schema conformance.

use serde_json::{Value, json};

use super::schema::value_for;
use super::text::Rng;
use super::*;
use crate::catalogue::Catalogue;
use crate::config::SimConfig;

fn with_model(check: impl FnOnce(&ModelEntry)) {
    let config = SimConfig::target_mac();
    let catalogue = Catalogue::new(&config, "2026-01-01T00:00:00Z");
    check(catalogue.get("qwen3:1.7b").expect("built-in model"));
}

fn input<'a>(
    model: &'a ModelEntry,
    format: Format<'a>,
    num_predict: Option<i64>,
) -> ReplyInput<'a> {
    ReplyInput {
        model,
        format,
        num_predict,
        seed: None,
        think: false,
        last_message: "write a test",
    }
}

#[test]
fn exact_length_text_is_deterministic_and_sized() {
    with_model(|model| {
        let settings = ReplySettings {
            exact_length: true,
            ..ReplySettings::default()
        };
        let a = generated(&input(model, Format::Text, Some(7)), &settings);
        let b = generated(&input(model, Format::Text, Some(7)), &settings);
        assert_eq!(a.content, b.content);
        assert_eq!(a.eval_tokens, 7);
        assert_eq!(a.content.split(' ').count(), 7);
        assert_eq!(a.done_reason, "length");
        let default = generated(&input(model, Format::Text, None), &settings);
        assert_eq!(default.eval_tokens, 120);
        assert_eq!(default.done_reason, "stop");
    });
}

/// Natural lengths: drawn at or below `num_predict` (ending `stop`) or capped by it
/// (`length`), the same for the same request.
#[test]
fn natural_lengths_stop_below_the_limit() {
    with_model(|model| {
        let settings = ReplySettings::default();
        let a = generated(&input(model, Format::Text, None), &settings);
        let b = generated(&input(model, Format::Text, None), &settings);
        assert_eq!(a.content, b.content);
        assert_eq!(a.done_reason, "stop");
        assert!((60..=180).contains(&a.eval_tokens), "{}", a.eval_tokens);
        let capped = generated(&input(model, Format::Text, Some(10)), &settings);
        assert_eq!((capped.eval_tokens, capped.done_reason), (10, "length"));
        let roomy = generated(&input(model, Format::Text, Some(100_000)), &settings);
        assert_eq!(roomy.done_reason, "stop");
    });
}

/// `num_predict` counts thinking and content together (Ollama's runner counts every
/// generated token), so a small limit leaves only thinking.
#[test]
fn a_small_limit_leaves_only_thinking() {
    with_model(|model| {
        let mut request = input(model, Format::Text, Some(5));
        request.think = true;
        let plan = generated(&request, &ReplySettings::default());
        assert_eq!(plan.content, "");
        assert_eq!(plan.thinking.split(' ').count(), 5);
        assert_eq!((plan.eval_tokens, plan.done_reason), (5, "length"));
    });
}

#[test]
fn json_mode_replies_parse() {
    with_model(|model| {
        let plan = generated(&input(model, Format::Json, None), &ReplySettings::default());
        let value: Value = serde_json::from_str(&plan.content).expect("valid JSON");
        assert!(value.is_object());
    });
}

#[test]
fn schema_values_satisfy_the_schema() {
    let schema = json!({
        "type": "object",
        "properties": {
            "approved": {"type": "boolean"},
            "score": {"type": "integer", "minimum": 3, "maximum": 5},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "verdict": {"enum": ["pass", "fail"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "note": {"type": ["string", "null"], "maxLength": 5},
            "inner": {"$ref": "#/$defs/Inner"}
        },
        "required": ["approved", "score", "verdict", "missing"],
        "$defs": {"Inner": {"type": "object", "properties": {"id": {"const": 7}}, "required": ["id"]}}
    });
    for seed in 0..50 {
        let value = value_for(&schema, &schema, &mut Rng::new(seed));
        assert!(value["approved"].is_boolean());
        let score = value["score"].as_i64().expect("integer");
        assert!((3..=5).contains(&score), "{score}");
        let ratio = value["ratio"].as_f64().expect("number");
        assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
        assert!(["pass", "fail"].contains(&value["verdict"].as_str().expect("string")));
        assert!(value["tags"].as_array().expect("array").len() >= 2);
        assert!(value["note"].as_str().expect("string").chars().count() <= 5);
        assert_eq!(value["inner"]["id"], 7);
        assert!(value.get("missing").is_some());
    }
}

#[test]
fn formats_other_than_json_or_a_schema_are_rejected() {
    assert!(Format::parse(Some(&json!("xml"))).is_err());
    assert!(Format::parse(Some(&json!(42))).is_err());
    assert!(matches!(
        Format::parse(Some(&json!("json"))),
        Ok(Format::Json)
    ));
    assert!(matches!(Format::parse(None), Ok(Format::Text)));
}
