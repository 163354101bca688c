//! How shape problems are worded: what was found, what was expected, and the hint.

use serde_json::Value as Json;

use super::schema_types;
use crate::agent::KNOWN_OLLAMA_OPTIONS;
use crate::node::{Node, Value};

pub(super) fn describe_node(node: &Node) -> String {
    match &node.value {
        Value::Null => "nothing (the value is empty)".to_owned(),
        Value::Bool(value) => format!("`{value}`"),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) => {
            format!("the number {}", node.raw.as_deref().unwrap_or("?"))
        }
        Value::Str(text) => {
            let short: String = text.chars().take(40).collect();
            let ellipsis = if short.len() < text.len() { "..." } else { "" };
            format!("the text {short:?}{ellipsis}")
        }
        Value::Seq(_) => "a list".to_owned(),
        Value::Map(_) => "a mapping".to_owned(),
    }
}

pub(super) fn describe_schema(schema: &Json) -> String {
    if let Some(constant) = schema.get("const").and_then(Json::as_str) {
        return format!("`{constant}`");
    }
    let kinds: Vec<&str> = schema_types(schema)
        .into_iter()
        .filter(|kind| *kind != "null")
        .map(|kind| match kind {
            "string" => "text",
            "integer" => "a whole number",
            "number" => "a number",
            "boolean" => "`true` or `false`",
            "array" => "a list",
            "object" => "a mapping",
            other => other,
        })
        .collect();
    if kinds.is_empty() {
        return "a value".to_owned();
    }
    kinds.join(" or ")
}

pub(super) fn describe_alternatives(alternatives: &[&Json]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let constants: Vec<String> = alternatives
        .iter()
        .filter_map(|schema| schema.get("const").and_then(Json::as_str))
        .map(|constant| format!("`{constant}`"))
        .collect();
    if !constants.is_empty() {
        parts.push(constants.join(", "));
    }
    let single_keys: Vec<String> = alternatives
        .iter()
        .filter(|schema| schema.get("const").is_none())
        .filter_map(|schema| {
            let required = schema.get("required")?.as_array()?;
            match required.as_slice() {
                [key] => key.as_str().map(|key| format!("`{key}`")),
                _ => None,
            }
        })
        .collect();
    if !single_keys.is_empty() {
        parts.push(format!(
            "a mapping with one key: {}",
            single_keys.join(", ")
        ));
    }
    for schema in alternatives {
        let is_single_key = schema
            .get("required")
            .and_then(Json::as_array)
            .is_some_and(|r| r.len() == 1);
        if schema.get("const").is_none() && !is_single_key {
            let described = describe_schema(schema);
            if !parts.contains(&described) {
                parts.push(described);
            }
        }
    }
    parts.join(" or ")
}

/// A fix for the commonest type mistakes.
pub(super) fn type_hint(node: &Node, schema: &Json) -> Option<String> {
    let types = schema_types(schema);
    let hint = match (&node.value, types.as_slice()) {
        (Value::Null, _) => "give a value after the colon, or remove the key",
        (Value::Float(_), kinds) if kinds.contains(&"integer") => "write a whole number",
        (Value::Str(_), kinds) if kinds.contains(&"integer") || kinds.contains(&"number") => {
            "write the number without quotes"
        }
        (Value::Seq(_) | Value::Map(_), kinds) if kinds.contains(&"string") => {
            "put the text in quotes: unquoted text starting with `[` or `{`, or containing `: `, \
             is read as a list or a mapping"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}

/// Hints for keys that are right, but in the wrong place.
pub(super) fn misplaced_key_hint(def_name: &str, key: &str) -> Option<&'static str> {
    let hint = match (def_name, key) {
        ("AgentFile", "keep_alive" | "load_mode") => {
            "residency hints go under `residency:`, e.g. `residency: { keep_alive: 30m }`"
        }
        ("AgentFile", "name") => "an agent's name is its key under `agents:`",
        ("AgentFile", "system" | "system_prompt" | "role" | "instructions") => {
            "the role prompt is `prompt:` (inline) or `prompt_file:` (a file)"
        }
        ("AgentFile", "args" | "argv" | "cmd" | "run") => {
            "a command agent takes `command: [program, argument, ...]`"
        }
        ("AgentFile", option) if KNOWN_OLLAMA_OPTIONS.contains(&option) => {
            "Ollama options go under `options:`, e.g. `options: { num_ctx: 8192 }`"
        }
        ("WorkflowFile", "start" | "edges") => "this goes under `flow:`",
        ("WorkflowFile", "max_turns" | "timeout") => "this goes under `limits:`",
        (
            "WorkflowFile",
            "gpu_budget" | "max_loaded_models" | "num_parallel" | "policy" | "load_mode",
        ) => "this goes under `memory:`",
        ("WorkflowFile", "seed") => "this goes under `simulation:`",
        ("EdgeFile", "contains" | "matches" | "choice") => {
            "conditions go under `when:`, e.g. `when: { contains: APPROVED }`"
        }
        ("EdgeFile", "if" | "condition" | "on") => "an edge's condition is `when:`",
        ("MemoryFile", "budget" | "vram" | "gpu_memory") => "the budget is `gpu_budget:`",
        _ => return None,
    };
    Some(hint)
}

pub(super) fn first_sentence(text: &str) -> &str {
    let text = text.trim();
    match text.find(". ") {
        Some(end) => &text[..end],
        None => text.trim_end_matches('.'),
    }
}

pub(super) fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        Some(first) => std::iter::once(first).chain(chars).collect(),
        None => String::new(),
    }
}

/// A field's documentation as a one-line hint.
pub(super) fn as_hint(description: &str) -> String {
    description.split_whitespace().collect::<Vec<_>>().join(" ")
}
