//! Tools a model may call: the `Tool` trait, the context tools act in, and the built-in
//! file and command tools, each confined to the run's workspace.

mod edit_file;
mod list_files;
mod read_file;
mod run_command;
mod search_files;
mod workspace;
mod write_file;

use std::sync::Arc;

use agentrun_spec::{AgentSpec, ToolName};
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::backend::ToolSpec;
use crate::console::Console;

pub use workspace::Workspace;

/// Why a tool call did not do what was asked. The message goes back to the model, which can
/// then try again differently, so it says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's parameters.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The call is not permitted: a path outside the workspace, a command not on the
    /// allow-list, an approval declined.
    #[error("refused: {0}")]
    Refused(String),
    /// The call was permitted but failed: a missing file, a text that is not unique, a
    /// command that timed out.
    #[error("{0}")]
    Failed(String),
}

/// What a tool call may use.
pub struct ToolContext<'a> {
    /// The calling agent: its allow-list, command environment and time limit.
    pub agent: &'a AgentSpec,
    /// The directory the run works in; tools act inside it only.
    pub workspace: &'a Workspace,
    /// The person at the terminal, for approvals; `None` in a non-interactive run.
    pub console: Option<&'a dyn Console>,
}

/// A function a model may call.
///
/// Implement it to give agents a tool of your own and register it with
/// [`crate::Executor::with_tool`]. Describe the parameters with a `schemars` type, build the
/// spec with [`ToolSpec::for_parameters`] and read the arguments with [`parse_arguments`]:
///
/// ```
/// use agentrun_core::{Tool, ToolContext, ToolError, ToolSpec, parse_arguments};
///
/// #[derive(serde::Deserialize, schemars::JsonSchema)]
/// struct Args {
///     /// The text to count the words of.
///     text: String,
/// }
///
/// struct WordCount;
///
/// #[async_trait::async_trait]
/// impl Tool for WordCount {
///     fn spec(&self) -> ToolSpec {
///         ToolSpec::for_parameters::<Args>("word_count", "Counts the words of a text.")
///     }
///
///     async fn call(&self, arguments: serde_json::Value, _: &ToolContext<'_>) -> Result<String, ToolError> {
///         let args: Args = parse_arguments(arguments)?;
///         Ok(args.text.split_whitespace().count().to_string())
///     }
/// }
/// ```
#[async_trait]
pub trait Tool: Send + Sync {
    /// The name, description and JSON Schema of the parameters, as offered to the model.
    fn spec(&self) -> ToolSpec;

    /// Runs one call. `Ok` text and `Err` messages alike go back to the model.
    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext<'_>,
    ) -> Result<String, ToolError>;
}

impl ToolSpec {
    /// A tool spec whose parameters are the JSON Schema of `P` (its doc comments become the
    /// parameters' descriptions).
    pub fn for_parameters<P: JsonSchema>(name: &str, description: &str) -> ToolSpec {
        ToolSpec {
            name: name.to_owned(),
            description: description.to_owned(),
            parameters: parameters_schema::<P>(),
        }
    }
}

/// Reads a call's arguments into the tool's parameter type; the error says what is wrong in
/// words the model can act on.
pub fn parse_arguments<P: DeserializeOwned>(arguments: serde_json::Value) -> Result<P, ToolError> {
    // Some models send the arguments object as a JSON string.
    let arguments = match arguments {
        serde_json::Value::String(text) => serde_json::from_str(&text).map_err(|_| {
            ToolError::InvalidArguments(format!("expected a JSON object, found the text {text:?}"))
        })?,
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other,
    };
    if !arguments.is_object() {
        return Err(ToolError::InvalidArguments(format!(
            "expected a JSON object, found {arguments}"
        )));
    }
    serde_json::from_value(arguments)
        .map_err(|error| ToolError::InvalidArguments(error.to_string()))
}

/// Asks the person at the terminal to approve `shown` with `question`; refuses when nobody
/// is there or they say no.
pub(crate) async fn ask_approval(
    context: &ToolContext<'_>,
    shown: &str,
    question: &str,
) -> Result<(), ToolError> {
    let Some(console) = context.console else {
        return Err(ToolError::Refused(format!(
            "`{shown}` needs a person's approval (`approve: ask`), and this run is non-interactive"
        )));
    };
    let answer = console
        .ask(&context.agent.name, question)
        .await
        .unwrap_or_default();
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(ToolError::Refused(format!(
            "the person running the workflow declined `{shown}`"
        )))
    }
}

/// The built-in tool of that name.
pub fn builtin_tool(name: ToolName) -> Arc<dyn Tool> {
    match name {
        ToolName::ReadFile => Arc::new(read_file::ReadFile),
        ToolName::WriteFile => Arc::new(write_file::WriteFile),
        ToolName::EditFile => Arc::new(edit_file::EditFile),
        ToolName::ListFiles => Arc::new(list_files::ListFiles),
        ToolName::SearchFiles => Arc::new(search_files::SearchFiles),
        ToolName::RunCommand => Arc::new(run_command::RunCommand),
    }
}

/// The parameters' JSON Schema in the plain shape Ollama's `tools` takes: an object with
/// `properties` and `required`, no `$schema` or title, optional fields not `null`able.
fn parameters_schema<P: JsonSchema>() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<P>();
    let mut value = serde_json::to_value(schema).expect("a generated schema is valid JSON");
    if let Some(object) = value.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
        if let Some(serde_json::Value::Object(properties)) = object.get_mut("properties") {
            for property in properties.values_mut() {
                drop_null_type(property);
            }
        }
    }
    value
}

/// `"type": ["integer", "null"]` becomes `"type": "integer"`: a field left out is the
/// model's way to say "none", and small models handle single types best.
fn drop_null_type(property: &mut serde_json::Value) {
    let Some(types) = property.get("type").and_then(|types| types.as_array()) else {
        return;
    };
    let kept: Vec<serde_json::Value> = types
        .iter()
        .filter(|kind| kind.as_str() != Some("null"))
        .cloned()
        .collect();
    if let [only] = kept.as_slice() {
        property["type"] = only.clone();
    }
}

#[cfg(test)]
mod tests;
