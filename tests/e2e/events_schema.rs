//! The event schema: `docs/events.schema.json` is what the code generates,
//! `docs/events.md` documents every event and field, and the events of a real run
//! validate against the schema.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{Sim, agentrun, repo_root};
use crate::tdd_cycle::example_project;

fn shipped_schema() -> Value {
    let text = std::fs::read_to_string(repo_root().join("docs/events.schema.json"))
        .expect("docs/events.schema.json exists");
    serde_json::from_str(&text).expect("the shipped schema is JSON")
}

/// Each event variant of the schema: its `type` and its fields.
fn variants(schema: &Value) -> Vec<(String, Vec<String>)> {
    schema["oneOf"]
        .as_array()
        .expect("the schema is a oneOf of event types")
        .iter()
        .map(|variant| {
            let kind = variant["properties"]["type"]["const"]
                .as_str()
                .expect("each variant names its type")
                .to_owned();
            let fields = variant["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .filter(|field| *field != "type")
                .cloned()
                .collect();
            (kind, fields)
        })
        .collect()
}

#[test]
fn the_shipped_event_schema_is_the_one_the_code_generates() {
    let printed = agentrun(&["schema", "--events"]);
    printed.expect_code(0);
    let generated: Value = serde_json::from_str(&printed.stdout()).expect("JSON");
    assert!(
        generated == shipped_schema(),
        "docs/events.schema.json is out of date; regenerate it with \
         `cargo run -- schema --events > docs/events.schema.json`"
    );
}

#[test]
fn every_event_and_field_is_documented() {
    let docs = std::fs::read_to_string(repo_root().join("docs/events.md")).expect("docs");
    let found = variants(&shipped_schema());
    assert!(found.len() >= 17, "{found:?}");
    for (kind, fields) in found {
        let heading = format!("### `{kind}`");
        let start = docs
            .find(&heading)
            .unwrap_or_else(|| panic!("docs/events.md has no section {heading}"));
        let rest = &docs[start + heading.len()..];
        let section = &rest[..rest.find("\n#").unwrap_or(rest.len())];
        for field in fields {
            assert!(
                section.contains(&format!("`{field}`")),
                "docs/events.md does not describe `{field}` of `{kind}`"
            );
        }
    }
}

#[test]
fn the_check_catches_events_that_break_the_schema() {
    let schema = shipped_schema();
    let good = json!({"type": "edge_taken", "from": "coder", "to": "end"});
    assert_eq!(validate(&schema, &good), Ok(()));
    let bad = [
        json!({"type": "edge_taken", "from": "coder"}),
        json!({"type": "edge_taken", "from": "coder", "to": 3}),
        json!({"type": "edge_missed", "from": "coder", "to": "end"}),
        json!({"type": "turn_started", "turn": -1, "agent": "a", "model": null, "at_s": 0.0}),
        json!({"type": "turn_started", "turn": 1, "agent": "a", "model": null, "at_s": "0"}),
        json!({"type": "load_started", "model": "m", "cause": "boredom", "expected_s": null, "at_s": 1.0}),
        json!({"type": "resident", "turn": 1, "models": [{"model": "m"}], "at_s": 1.0}),
    ];
    for event in bad {
        assert!(
            validate(&schema, &event).is_err(),
            "{event} passed the check"
        );
    }
}

#[test]
fn a_real_runs_events_follow_the_schema() {
    let sim = Sim::start(&[
        "--time-scale",
        "0.002",
        "--script",
        "workflows/sim/tdd.yaml",
    ]);
    let dir = tempfile::tempdir().expect("a temp dir");
    let project = example_project();
    let events_path = dir.path().join("events.jsonl");
    let runs_dir = dir.path().join("runs");
    agentrun(&[
        "workflows/tdd.yaml",
        "--ollama",
        &sim.url,
        "--workspace",
        &project.path().to_string_lossy(),
        "--non-interactive",
        "-q",
        "--events",
        &events_path.to_string_lossy(),
        "--runs-dir",
        &runs_dir.to_string_lossy(),
    ])
    .expect_code(0);
    let run_dir = std::fs::read_dir(runs_dir.join("runs"))
        .expect("a runs folder")
        .next()
        .expect("one run")
        .expect("an entry")
        .path();
    let schema = shipped_schema();
    let mut seen = BTreeSet::new();
    for file in [events_path, run_dir.join("events.jsonl")] {
        let text = std::fs::read_to_string(&file).expect("an events file");
        for (number, line) in text.lines().enumerate() {
            let event: Value = serde_json::from_str(line).expect("JSON");
            if let Err(problem) = validate(&schema, &event) {
                panic!("{}:{}: {problem}\n{line}", file.display(), number + 1);
            }
            seen.insert(event["type"].as_str().expect("a type").to_owned());
        }
    }
    for kind in [
        "run_started",
        "resident",
        "turn_started",
        "turn_finished",
        "edge_taken",
        "load_started",
        "load_finished",
        "unload",
        "router_decision",
        "router_repair",
        "tool_call",
        "tool_result",
        "run_finished",
    ] {
        assert!(seen.contains(kind), "the run had no {kind} event: {seen:?}");
    }
}

/// Checks `value` against `schema`, for the keywords schemars writes. An unknown
/// keyword fails the check rather than being skipped.
pub(crate) fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, schema, value, "$")
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let object = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err(format!("{at}: nothing is allowed here")),
        Value::Object(object) => object,
        other => return Err(format!("{at}: not a schema: {other}")),
    };
    for (keyword, rule) in object {
        match keyword.as_str() {
            "$schema" | "$defs" | "title" | "description" | "default" => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .ok_or_else(|| format!("{at}: unsupported $ref {rule}"))?;
                check(root, &root["$defs"][name], value, at)?;
            }
            "oneOf" => {
                let matching = rule
                    .as_array()
                    .ok_or("oneOf is not an array")?
                    .iter()
                    .filter(|option| check(root, option, value, at).is_ok())
                    .count();
                if matching != 1 {
                    return Err(format!("{at}: matches {matching} of oneOf, not one"));
                }
            }
            "anyOf" => {
                let options = rule.as_array().ok_or("anyOf is not an array")?;
                if !options.iter().any(|o| check(root, o, value, at).is_ok()) {
                    return Err(format!("{at}: matches none of anyOf"));
                }
            }
            "allOf" => {
                for option in rule.as_array().ok_or("allOf is not an array")? {
                    check(root, option, value, at)?;
                }
            }
            "type" => {
                let allowed: Vec<&str> = match rule {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    other => return Err(format!("{at}: unsupported type {other}")),
                };
                if !allowed.iter().any(|kind| is_type(value, kind)) {
                    return Err(format!("{at}: {value} is not {allowed:?}"));
                }
            }
            "const" => {
                if value != rule {
                    return Err(format!("{at}: {value} is not {rule}"));
                }
            }
            "enum" => {
                if !rule
                    .as_array()
                    .is_some_and(|options| options.contains(value))
                {
                    return Err(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "minimum" => {
                if let (Some(number), Some(minimum)) = (value.as_f64(), rule.as_f64())
                    && number < minimum
                {
                    return Err(format!("{at}: {number} is below {minimum}"));
                }
            }
            "format" => check_format(rule.as_str().unwrap_or(""), value, at)?,
            "required" => {
                if let Some(fields) = value.as_object() {
                    for name in rule.as_array().ok_or("required is not an array")? {
                        let name = name.as_str().ok_or("a required name is not a string")?;
                        if !fields.contains_key(name) {
                            return Err(format!("{at}: `{name}` is missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(fields) = value.as_object() {
                    for (name, property) in rule.as_object().ok_or("properties is not a map")? {
                        if let Some(field) = fields.get(name) {
                            check(root, property, field, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(fields) = value.as_object() {
                    let declared = object.get("properties").and_then(Value::as_object);
                    for (name, field) in fields {
                        if declared.is_none_or(|declared| !declared.contains_key(name)) {
                            check(root, rule, field, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (index, item) in items.iter().enumerate() {
                        check(root, rule, item, &format!("{at}[{index}]"))?;
                    }
                }
            }
            unknown => return Err(format!("{at}: the check does not know `{unknown}`")),
        }
    }
    Ok(())
}

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

fn check_format(format: &str, value: &Value, at: &str) -> Result<(), String> {
    let fits = match format {
        "uint32" => value.as_u64().is_none_or(|n| n <= u64::from(u32::MAX)),
        "uint64" | "uint" => !value.is_number() || value.is_u64(),
        "double" | "float" => true,
        other => return Err(format!("{at}: the check does not know format `{other}`")),
    };
    if value.is_null() || fits {
        Ok(())
    } else {
        Err(format!("{at}: {value} is not a {format}"))
    }
}
