//! The JSON Schema of the file format, generated from the serde types with schemars.

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::Value;

use crate::document::{AgentFile, WorkflowFile};

/// The JSON Schema (draft 2020-12) of a workflow file, as `agentrun schema` prints it.
/// Point an editor's YAML support at it for completion and checking as you type.
pub fn json_schema() -> Value {
    workflow_schema().clone()
}

/// The JSON Schema of a reusable agent file (`agents/*.yaml`).
pub fn agent_json_schema() -> Value {
    agent_schema().clone()
}

pub(crate) fn workflow_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(generate::<WorkflowFile>)
}

pub(crate) fn agent_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(generate::<AgentFile>)
}

fn generate<T: schemars::JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    // A schemars schema is JSON by construction.
    serde_json::to_value(schema).expect("a generated schema is valid JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_schema_names_every_top_level_key() {
        let schema = json_schema();
        let properties = schema["properties"].as_object().expect("properties");
        for key in [
            "version",
            "name",
            "description",
            "task",
            "agents",
            "flow",
            "limits",
            "memory",
            "simulation",
        ] {
            assert!(properties.contains_key(key), "missing {key}");
        }
        assert_eq!(schema["additionalProperties"], Value::Bool(false));
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(required, ["name", "agents", "flow"]);
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }

    #[test]
    fn the_agent_schema_describes_fields() {
        let schema = agent_json_schema();
        let model = &schema["properties"]["model"];
        assert!(
            model["description"]
                .as_str()
                .is_some_and(|text| text.contains("Ollama model"))
        );
        assert!(schema["properties"]["use"].is_object());
    }
}
