//! An MCP tool's input schema as the parameters of an Ollama tool definition.
//!
//! Ollama reads a tool's parameters as an object whose properties each have a `type` (one
//! name or a list), a description, an enum and items; anything else it drops, and the model
//! would never learn of it. So references are inlined, an optional field's
//! `anyOf: [T, null]` becomes `T`, and a schema that still has a property without a type is
//! refused, naming the property, rather than offered half-described.

use serde_json::{Map, Value};

/// How deep `$ref`s are followed before the schema is called recursive.
const MAX_REF_DEPTH: usize = 8;

/// The parameters for a tool whose MCP input schema is `schema`, or why it cannot be offered.
pub(crate) fn ollama_parameters(schema: &Map<String, Value>) -> Result<Value, String> {
    let defs = schema
        .get("$defs")
        .or_else(|| schema.get("definitions"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {}
        None if schema.contains_key("properties") => {}
        Some(other) => {
            return Err(format!(
                "its input is of type `{other}`, and a tool's arguments must be an object"
            ));
        }
        None => {
            return Err("its input schema does not say the arguments are an object".to_owned());
        }
    }
    let mut parameters = Map::new();
    parameters.insert("type".to_owned(), Value::String("object".to_owned()));
    let mut properties = Map::new();
    if let Some(given) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in given {
            let property = property_schema(property, &defs, 0)
                .map_err(|why| format!("its parameter `{name}` {why}"))?;
            properties.insert(name.clone(), property);
        }
    }
    parameters.insert("properties".to_owned(), Value::Object(properties));
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        parameters.insert("required".to_owned(), Value::Array(required.clone()));
    }
    Ok(Value::Object(parameters))
}

/// One property, with references inlined and `null` alternatives dropped.
fn property_schema(
    property: &Value,
    defs: &Map<String, Value>,
    depth: usize,
) -> Result<Value, String> {
    let Some(object) = property.as_object() else {
        // `true` accepts anything: a type the model format has no word for.
        return Err("accepts any value, which a model's tool format cannot describe".to_owned());
    };
    if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
        if depth >= MAX_REF_DEPTH {
            return Err(format!("refers to itself through `{reference}`"));
        }
        let name = reference
            .rsplit('/')
            .next()
            .filter(|_| {
                reference.starts_with("#/$defs/") || reference.starts_with("#/definitions/")
            })
            .ok_or_else(|| format!("refers to `{reference}`, outside the schema"))?;
        let target = defs
            .get(name)
            .ok_or_else(|| format!("refers to `{reference}`, which the schema does not define"))?;
        let mut merged = property_schema(target, defs, depth + 1)?;
        // A description next to the reference is the more specific one.
        if let (Some(description), Some(merged)) =
            (object.get("description"), merged.as_object_mut())
        {
            merged.insert("description".to_owned(), description.clone());
        }
        return Ok(merged);
    }
    let mut out = Map::new();
    for key in ["description", "enum", "default", "format", "title"] {
        if let Some(value) = object.get(key) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    let kind = match object.get("type") {
        Some(Value::String(kind)) => Some(Value::String(kind.clone())),
        Some(Value::Array(kinds)) => {
            let kept: Vec<Value> = kinds
                .iter()
                .filter(|kind| kind.as_str() != Some("null"))
                .cloned()
                .collect();
            match kept.as_slice() {
                [] => None,
                [only] => Some(only.clone()),
                _ => Some(Value::Array(kept)),
            }
        }
        _ => None,
    };
    let kind = match kind {
        Some(kind) => kind,
        None => {
            let alternatives = object
                .get("anyOf")
                .or_else(|| object.get("oneOf"))
                .and_then(Value::as_array);
            let Some(alternatives) = alternatives else {
                if object.contains_key("enum") {
                    out.insert("type".to_owned(), Value::String("string".to_owned()));
                    return Ok(Value::Object(out));
                }
                return Err("has no type, which a model's tool format cannot describe".to_owned());
            };
            let non_null: Vec<&Value> = alternatives
                .iter()
                .filter(|alternative| {
                    alternative.get("type").and_then(Value::as_str) != Some("null")
                })
                .collect();
            match non_null.as_slice() {
                [only] => {
                    let mut inner = property_schema(only, defs, depth + 1)?;
                    if let Some(inner) = inner.as_object_mut() {
                        for (key, value) in out {
                            inner.entry(key).or_insert(value);
                        }
                    }
                    return Ok(inner);
                }
                several => {
                    // Several simple types become a list of types; anything richer cannot
                    // be said in the model's format.
                    let mut kinds = Vec::new();
                    for alternative in several {
                        let simple = alternative.as_object().filter(|alternative| {
                            alternative.len() == 1
                                && alternative.get("type").is_some_and(Value::is_string)
                        });
                        match simple {
                            Some(simple) => kinds.push(simple["type"].clone()),
                            None => {
                                return Err("is one of several shapes (`anyOf`/`oneOf`), which a model's tool format cannot describe".to_owned());
                            }
                        }
                    }
                    Value::Array(kinds)
                }
            }
        }
    };
    if kind.as_str() == Some("array")
        && let Some(items) = object.get("items")
    {
        let items = property_schema(items, defs, depth + 1)
            .map_err(|why| format!("has items that {why}"))?;
        out.insert("items".to_owned(), items);
    }
    if kind.as_str() == Some("object")
        && let Some(nested) = object.get("properties").and_then(Value::as_object)
    {
        let mut properties = Map::new();
        for (name, property) in nested {
            let property = property_schema(property, defs, depth + 1)
                .map_err(|why| format!("has a field `{name}` that {why}"))?;
            properties.insert(name.clone(), property);
        }
        out.insert("properties".to_owned(), Value::Object(properties));
        if let Some(required) = object.get("required") {
            out.insert("required".to_owned(), required.clone());
        }
    }
    out.insert("type".to_owned(), kind);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::ollama_parameters;

    fn parameters(schema: serde_json::Value) -> Result<serde_json::Value, String> {
        ollama_parameters(schema.as_object().expect("an object"))
    }

    #[test]
    fn optional_fields_and_references_become_plain_types() {
        let schema = json!({
            "type": "object",
            "$defs": { "Mode": { "type": "string", "enum": ["fast", "slow"] } },
            "properties": {
                "path": { "type": "string", "description": "Where." },
                "limit": { "anyOf": [{ "type": "integer" }, { "type": "null" }], "default": null },
                "mode": { "$ref": "#/$defs/Mode", "description": "How." },
                "tags": { "type": "array", "items": { "type": "string" } }
            },
            "required": ["path"]
        });
        let out = parameters(schema).expect("expressible");
        assert_eq!(out["properties"]["limit"]["type"], "integer");
        assert_eq!(out["properties"]["mode"]["type"], "string");
        assert_eq!(out["properties"]["mode"]["enum"], json!(["fast", "slow"]));
        assert_eq!(out["properties"]["mode"]["description"], "How.");
        assert_eq!(out["properties"]["tags"]["items"]["type"], "string");
        assert_eq!(out["required"], json!(["path"]));
    }

    #[test]
    fn a_schema_the_model_format_cannot_say_is_refused_naming_the_part() {
        let not_object = parameters(json!({ "type": "array" })).expect_err("refused");
        assert!(not_object.contains("of type `array`"), "{not_object}");
        let shapes = parameters(json!({
            "type": "object",
            "properties": { "target": { "oneOf": [
                { "type": "object", "properties": { "id": { "type": "integer" } } },
                { "type": "string", "minLength": 2 }
            ] } }
        }))
        .expect_err("refused");
        assert!(shapes.contains("parameter `target`"), "{shapes}");
        let untyped = parameters(json!({ "type": "object", "properties": { "x": {} } }))
            .expect_err("refused");
        assert!(untyped.contains("`x` has no type"), "{untyped}");
        let dangling = parameters(
            json!({ "type": "object", "properties": { "x": { "$ref": "#/$defs/Gone" } } }),
        )
        .expect_err("refused");
        assert!(dangling.contains("does not define"), "{dangling}");
    }
}
