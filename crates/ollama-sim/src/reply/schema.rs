//! JSON values that satisfy a JSON schema, for replies with `format`.
//!
//! Covers what structured-output schemas use: objects (every listed property, so the required
//! ones too), arrays with `minItems`/`maxItems`, `enum`, `const`, strings (with length limits
//! and the common formats), integers and numbers within their bounds, booleans, null,
//! `anyOf`/`oneOf` (the first non-null branch), `allOf` (merged) and local `$ref`s. String
//! `pattern`s are not honoured.

use serde_json::{Map, Number, Value, json};

use super::text::{Rng, filler};

const MAX_DEPTH: usize = 12;

/// A value valid against `schema`; `root` resolves `$ref`s.
pub(crate) fn value_for(schema: &Value, root: &Value, rng: &mut Rng) -> Value {
    generate(schema, root, rng, 0)
}

fn generate(schema: &Value, root: &Value, rng: &mut Rng, depth: usize) -> Value {
    let Some(object) = schema.as_object() else {
        // `true` or an empty schema accepts anything.
        return Value::String(filler(rng, 3));
    };
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(target) = object.get("$ref").and_then(Value::as_str) {
        return match resolve(root, target) {
            Some(resolved) => generate(resolved, root, rng, depth + 1),
            None => Value::Null,
        };
    }
    if let Some(constant) = object.get("const") {
        return constant.clone();
    }
    if let Some(choices) = object.get("enum").and_then(Value::as_array)
        && !choices.is_empty()
    {
        return choices[rng.below(choices.len() as u64) as usize].clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = object.get(key).and_then(Value::as_array)
            && let Some(branch) = branches
                .iter()
                .find(|branch| type_name(branch) != Some("null"))
                .or(branches.first())
        {
            return generate(branch, root, rng, depth + 1);
        }
    }
    if let Some(parts) = object.get("allOf").and_then(Value::as_array) {
        let merged = merge_all_of(parts, root);
        return generate(&merged, root, rng, depth + 1);
    }
    let kind = type_name(schema).unwrap_or(if object.contains_key("properties") {
        "object"
    } else if object.contains_key("items") {
        "array"
    } else {
        "string"
    });
    match kind {
        "object" => object_value(object, root, rng, depth),
        "array" => array_value(object, root, rng, depth),
        "integer" => integer_value(object, rng),
        "number" => number_value(object, rng),
        "boolean" => Value::Bool(rng.below(2) == 0),
        "null" => Value::Null,
        _ => string_value(object, rng),
    }
}

/// The schema's type; for a list of types, the first that is not `null`.
fn type_name(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(name) => Some(name),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .find(|name| *name != "null")
            .or_else(|| names.first().and_then(Value::as_str)),
        _ => None,
    }
}

fn resolve<'a>(root: &'a Value, target: &str) -> Option<&'a Value> {
    let pointer = target.strip_prefix('#')?;
    root.pointer(pointer)
}

fn merge_all_of(parts: &[Value], root: &Value) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut other = Map::new();
    for part in parts {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(target) => resolve(root, target).unwrap_or(part),
            None => part,
        };
        let Some(object) = part.as_object() else {
            continue;
        };
        for (key, value) in object {
            match key.as_str() {
                "properties" => {
                    if let Some(props) = value.as_object() {
                        properties.extend(props.clone());
                    }
                }
                "required" => {
                    if let Some(names) = value.as_array() {
                        required.extend(names.iter().cloned());
                    }
                }
                _ => {
                    other.insert(key.clone(), value.clone());
                }
            }
        }
    }
    if !properties.is_empty() {
        other.insert("type".into(), json!("object"));
        other.insert("properties".into(), Value::Object(properties));
        other.insert("required".into(), Value::Array(required));
    }
    Value::Object(other)
}

fn object_value(object: &Map<String, Value>, root: &Value, rng: &mut Rng, depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, schema) in properties {
            out.insert(name.clone(), generate(schema, root, rng, depth + 1));
        }
    }
    // A required name without a property schema still has to be present.
    if let Some(required) = object.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !out.contains_key(name) {
                out.insert(name.to_owned(), Value::String(filler(rng, 2)));
            }
        }
    }
    Value::Object(out)
}

fn array_value(object: &Map<String, Value>, root: &Value, rng: &mut Rng, depth: usize) -> Value {
    let min = object.get("minItems").and_then(Value::as_u64).unwrap_or(1);
    let max = object.get("maxItems").and_then(Value::as_u64).unwrap_or(3);
    let count = min.max(1).min(max).max(min);
    let empty = Value::Object(Map::new());
    let items = object.get("items").unwrap_or(&empty);
    (0..count)
        .map(|_| generate(items, root, rng, depth + 1))
        .collect()
}

fn bounds(object: &Map<String, Value>) -> (Option<f64>, Option<f64>, bool, bool) {
    let number = |key: &str| object.get(key).and_then(Value::as_f64);
    let mut low = number("minimum");
    let mut high = number("maximum");
    let mut low_exclusive = false;
    let mut high_exclusive = false;
    if let Some(value) = number("exclusiveMinimum") {
        low = Some(value);
        low_exclusive = true;
    }
    if let Some(value) = number("exclusiveMaximum") {
        high = Some(value);
        high_exclusive = true;
    }
    (low, high, low_exclusive, high_exclusive)
}

fn integer_value(object: &Map<String, Value>, rng: &mut Rng) -> Value {
    let (low, high, low_exclusive, high_exclusive) = bounds(object);
    let mut low = low.map(|v| v.ceil() as i64 + i64::from(low_exclusive && v.fract() == 0.0));
    let mut high = high.map(|v| v.floor() as i64 - i64::from(high_exclusive && v.fract() == 0.0));
    match (low, high) {
        (None, None) => {
            low = Some(1);
            high = Some(100);
        }
        (Some(l), None) => high = Some(l.saturating_add(100)),
        (None, Some(h)) => low = Some(h.saturating_sub(100).min(h)),
        _ => {}
    }
    let (low, high) = (low.unwrap_or(0), high.unwrap_or(0));
    if high <= low {
        return json!(low);
    }
    let span = (high as i128 - low as i128 + 1) as u128;
    let offset = (u128::from(rng.next_u64()) % span) as i128;
    json!((low as i128 + offset) as i64)
}

fn number_value(object: &Map<String, Value>, rng: &mut Rng) -> Value {
    let (low, high, _, _) = bounds(object);
    let (low, high) = match (low, high) {
        (None, None) => (0.0, 100.0),
        (Some(l), None) => (l, l + 100.0),
        (None, Some(h)) => (h - 100.0, h),
        (Some(l), Some(h)) => (l, h),
    };
    // The midpoint region keeps exclusive bounds satisfied.
    let value = low + (high - low) * (0.25 + 0.5 * rng.unit());
    let rounded = (value * 100.0).round() / 100.0;
    let value = if rounded > low && rounded < high {
        rounded
    } else {
        value
    };
    Number::from_f64(value).map_or(Value::Null, Value::Number)
}

fn string_value(object: &Map<String, Value>, rng: &mut Rng) -> Value {
    let format = object.get("format").and_then(Value::as_str).unwrap_or("");
    let mut text = match format {
        "date-time" => "2026-01-01T00:00:00Z".to_owned(),
        "date" => "2026-01-01".to_owned(),
        "time" => "12:00:00".to_owned(),
        "email" => "user@example.com".to_owned(),
        "uri" | "url" => "https://example.com/".to_owned(),
        "uuid" => "00000000-0000-4000-8000-000000000000".to_owned(),
        _ => {
            let words = 1 + rng.below(5);
            filler(rng, words)
        }
    };
    let min = object.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = object.get("maxLength").and_then(Value::as_u64);
    while text.chars().count() < min {
        text.push('x');
    }
    if let Some(max) = max {
        text = text.chars().take(max as usize).collect();
    }
    Value::String(text)
}
