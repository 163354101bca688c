//! The tools `agentrun mcp` offers: their names, descriptions and arguments.

use std::path::PathBuf;

use rmcp::model::{JsonObject, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Arguments of `validate`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateParams {
    /// The workflow file.
    pub(crate) workflow: PathBuf,
}

/// Arguments of `plan`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlanParams {
    /// The workflow file.
    pub(crate) workflow: PathBuf,
    /// Read model sizes from the simulated Mac's catalogue rather than the Ollama server.
    #[serde(default)]
    pub(crate) sim: bool,
    /// Plan from the workflow alone, without what earlier runs on this server learnt.
    #[serde(default)]
    pub(crate) no_learning: bool,
}

/// Arguments of `run`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunParams {
    /// The workflow file.
    pub(crate) workflow: PathBuf,
    /// The task for the agents (default: the workflow's `task`).
    pub(crate) task: Option<String>,
    /// The directory the agents work in. Default: a fresh directory in the run's directory
    /// (on the simulator, a copy of the workflow's `simulation.workspace` when it has one).
    pub(crate) workspace: Option<PathBuf>,
    /// Run on the built-in simulator. Without it the run uses the Ollama server, or the
    /// simulator when no Ollama server answers.
    #[serde(default)]
    pub(crate) sim: bool,
    /// The simulator's scripted replies (default: `sim/NAME.yaml` beside the workflow).
    pub(crate) sim_script: Option<PathBuf>,
    /// How long a simulated second takes, in seconds (default 0.01).
    pub(crate) time_scale: Option<f64>,
    /// Overrides the workflow's turn limit.
    pub(crate) max_turns: Option<u32>,
    /// Where runs are kept (default: `$AGENTRUN_DIR`, else `.agentrun`).
    pub(crate) runs_dir: Option<PathBuf>,
}

/// Arguments of `runs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsParams {
    /// Where runs are kept (default: `$AGENTRUN_DIR`, else `.agentrun`).
    pub(crate) runs_dir: Option<PathBuf>,
}

/// Arguments of `summary`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SummaryParams {
    /// The run's directory, as `run` and `runs` give it.
    pub(crate) run: PathBuf,
}

/// Arguments of `ps`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PsParams {}

/// The tools, in the order a client lists them.
pub(crate) fn tools() -> Vec<Tool> {
    vec![
        tool::<ValidateParams>(
            "validate",
            "Check a workflow file and report every problem with its file, line and column.",
        ),
        tool::<PlanParams>(
            "plan",
            "The residency plan of a workflow, as JSON: which models stay resident in each \
             phase, the loads each phase change forces, and the warnings.",
        ),
        tool::<RunParams>(
            "run",
            "Run a workflow to its end; progress is reported turn by turn, and the result is \
             the run's summary with its directory.",
        ),
        tool::<RunsParams>(
            "runs",
            "The runs kept on disk, newest last, with how each ended.",
        ),
        tool::<SummaryParams>("summary", "The summary of a finished run, as JSON."),
        tool::<PsParams>(
            "ps",
            "The models the Ollama server (`$OLLAMA_HOST`) has resident, with their sizes \
             and expiry.",
        ),
    ]
}

/// A tool whose arguments are `P`.
fn tool<P: JsonSchema>(name: &'static str, description: &'static str) -> Tool {
    let schema = serde_json::to_value(schemars::schema_for!(P)).unwrap_or_default();
    let mut object = match schema {
        serde_json::Value::Object(object) => object,
        _ => JsonObject::new(),
    };
    // The parameter type's own name and doc comment say nothing to a client.
    object.remove("title");
    object.remove("description");
    object.remove("$schema");
    Tool::new(name, description, object)
}

/// The arguments of a call to `tool`, or a message naming what is wrong with them.
pub(crate) fn arguments<P: DeserializeOwned>(
    tool: &str,
    given: Option<JsonObject>,
) -> Result<P, String> {
    serde_json::from_value(serde_json::Value::Object(given.unwrap_or_default()))
        .map_err(|error| format!("invalid arguments to `{tool}`: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_takes_an_object_with_its_fields() {
        for tool in tools() {
            assert_eq!(
                tool.input_schema.get("type"),
                Some(&serde_json::json!("object")),
                "{}",
                tool.name
            );
        }
        let run = tools()
            .into_iter()
            .find(|tool| tool.name == "run")
            .expect("run is offered");
        let required = run
            .input_schema
            .get("required")
            .expect("run requires fields");
        assert_eq!(required, &serde_json::json!(["workflow"]));
    }

    #[test]
    fn unknown_or_missing_arguments_are_named() {
        let error = arguments::<RunParams>("run", None).expect_err("workflow is required");
        assert!(
            error.contains("`run`") && error.contains("workflow"),
            "{error}"
        );
        let mut given = JsonObject::new();
        given.insert("workflow".into(), "a.yaml".into());
        given.insert("workspce".into(), "/tmp".into());
        let error = arguments::<RunParams>("run", Some(given)).expect_err("typo is refused");
        assert!(error.contains("workspce"), "{error}");
    }
}
