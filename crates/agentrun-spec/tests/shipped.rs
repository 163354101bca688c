//! The shipped agents and workflows load without a problem, fit the JSON Schema and survive a
//! round trip through `to_yaml`.

use std::path::{Path, PathBuf};

use agentrun_memory::Policy;
use agentrun_spec::{
    AgentKind, AgentSpec, GpuBudget, LlmAgentSpec, ToolName, Workflow, json_schema,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The workflows under `workflows/`, without the simulator's reply scripts (`workflows/sim/`).
fn shipped_workflows() -> Vec<PathBuf> {
    let mut files = yaml_files(&repo_root().join("workflows"));
    let scripts = repo_root().join("workflows").join("sim");
    files.retain(|path| !path.starts_with(&scripts));
    assert!(
        files.len() >= 7,
        "expected the shipped workflows, found {files:?}"
    );
    files
}

#[test]
fn every_shipped_workflow_loads_without_errors_or_warnings() {
    for path in shipped_workflows() {
        let workflow = Workflow::from_yaml_file(&path)
            .unwrap_or_else(|error| panic!("{}:\n{error}", path.display()));
        assert!(
            workflow.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            workflow.warnings
        );
        for agent in &workflow.agents {
            if let AgentKind::Llm(llm) = &agent.kind {
                assert!(
                    llm.options.num_ctx.is_some(),
                    "{}: {} sets no num_ctx",
                    path.display(),
                    agent.name
                );
                assert!(!llm.prompt.trim().is_empty());
            }
        }
    }
}

#[test]
fn every_shipped_agent_loads_on_its_own() {
    let files = yaml_files(&repo_root().join("agents"));
    let names: Vec<String> = files
        .iter()
        .map(|path| {
            path.file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for expected in ["router", "architect", "coder", "tester", "reviewer"] {
        assert!(
            names.iter().any(|name| name == expected),
            "agents/{expected}.yaml is missing"
        );
    }
    for path in files {
        let agent = AgentSpec::from_yaml_file(&path)
            .unwrap_or_else(|error| panic!("{}:\n{error}", path.display()));
        let llm = agent.llm().expect("a model agent");
        assert!(llm.prompt.len() > 200, "{} has a thin prompt", agent.name);
    }
}

#[test]
fn the_tdd_workflow_has_the_target_machines_shape() {
    let workflow =
        Workflow::from_yaml_file(&repo_root().join("workflows/tdd.yaml")).expect("loads");
    let model = |name: &str| {
        workflow
            .agent(name)
            .and_then(|agent| agent.model())
            .unwrap_or_default()
    };
    assert_eq!(model("router"), "qwen3:1.7b");
    assert_eq!(model("architect"), "qwen3-coder-next:q4_K_M");
    assert_eq!(model("coder"), "qwen3-coder:32b");
    assert_eq!(model("tester"), "qwen3-coder:14b");
    assert_eq!(model("reviewer"), "qwen3-coder:14b");
    let tester = workflow.agent("tester").expect("tester");
    let reviewer = workflow.agent("reviewer").expect("reviewer");
    assert_eq!(
        llm(tester).options.load_time_options(),
        llm(reviewer).options.load_time_options(),
        "one model, one set of load-time options"
    );
    assert_ne!(llm(tester).prompt, llm(reviewer).prompt);
    assert_eq!(workflow.memory.gpu_budget, GpuBudget::Bytes(54_000_000_000));
    assert_eq!(workflow.memory.max_loaded_models, Some(3));
    assert_eq!(workflow.memory.policy, Policy::Smart);
    let router = workflow.agent("router").expect("router");
    assert_eq!(router.choices(), ["implement", "design", "done"]);
    let weights = &workflow.simulation.agents["router"].choices;
    assert!(weights["design"] < weights["implement"]);
    // The loop: an approved review goes to the router, anything else back to the coder.
    let after_review = |text: &str| {
        workflow
            .flow
            .outgoing("reviewer")
            .find(|edge| edge.when.matches(text, None, None))
            .map(|edge| edge.to.name().into_owned())
    };
    assert_eq!(after_review("APPROVED").as_deref(), Some("router"));
    assert_eq!(
        after_review("1. src/main.rs: handle the empty file").as_deref(),
        Some("coder")
    );
}

#[test]
fn shipped_workflows_survive_a_round_trip_through_yaml() {
    for path in shipped_workflows() {
        let workflow = Workflow::from_yaml_file(&path).expect("loads");
        let text = workflow.to_yaml();
        let again = Workflow::from_yaml_str(&text, &path)
            .unwrap_or_else(|error| panic!("{}:\n{error}\n{text}", path.display()));
        assert_eq!(again, workflow, "{}", path.display());
    }
}

/// A structural check of each file against the schema: its keys are the schema's, its
/// required keys are there, and each agent's keys are agent keys.
#[test]
fn shipped_workflows_fit_the_json_schema() {
    let schema = json_schema();
    let properties = |schema: &serde_json::Value| -> Vec<String> {
        schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect()
    };
    let top = properties(&schema);
    let agent = properties(&schema["$defs"]["AgentFile"]);
    let edge = properties(&schema["$defs"]["EdgeFile"]);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(|key| key.as_str())
        .collect();
    for path in shipped_workflows() {
        let text = std::fs::read_to_string(&path).expect("readable");
        let value: serde_json::Value = serde_saphyr::from_str(&text).expect("YAML");
        let object = value.as_object().expect("a mapping");
        for key in object.keys() {
            assert!(
                top.contains(key),
                "{}: `{key}` is not in the schema",
                path.display()
            );
        }
        for key in &required {
            assert!(
                object.contains_key(*key),
                "{}: `{key}` is missing",
                path.display()
            );
        }
        for (name, definition) in object["agents"].as_object().expect("agents") {
            for key in definition.as_object().expect("agent mapping").keys() {
                assert!(
                    agent.contains(key),
                    "{}: agents.{name}.{key} is not in the schema",
                    path.display()
                );
            }
        }
        for edge_value in object["flow"]["edges"].as_array().expect("edges") {
            for key in edge_value.as_object().expect("edge mapping").keys() {
                assert!(
                    edge.contains(key),
                    "{}: edge key `{key}` is not in the schema",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn the_tdd_workflow_is_a_real_loop_with_tools_and_a_test_runner() {
    let workflow =
        Workflow::from_yaml_file(&repo_root().join("workflows/tdd.yaml")).expect("loads");
    let tests = workflow.agent("tests").expect("a test runner");
    let AgentKind::Command(command) = &tests.kind else {
        panic!("the test runner is a command agent")
    };
    let next = |passed: bool| {
        workflow
            .flow
            .outgoing("tests")
            .find(|edge| edge.when.matches("", None, Some(passed)))
            .map(|edge| edge.to.name().into_owned())
    };
    assert_eq!(next(true).as_deref(), Some("reviewer"));
    assert_eq!(next(false).as_deref(), Some("coder"));
    let coder = workflow.agent("coder").expect("coder");
    for tool in [
        ToolName::WriteFile,
        ToolName::EditFile,
        ToolName::RunCommand,
    ] {
        assert!(coder.has_tool(tool), "the coder lacks {tool}");
    }
    assert!(
        llm(coder).command_policy.allows(&command.argv),
        "the coder may run the tests itself"
    );
    let tester = workflow.agent("tester").expect("tester");
    assert!(tester.has_tool(ToolName::WriteFile) && !tester.has_tool(ToolName::RunCommand));
    let reviewer = workflow.agent("reviewer").expect("reviewer");
    assert!(reviewer.has_tool(ToolName::ReadFile) && !reviewer.has_tool(ToolName::WriteFile));
    assert!(workflow.agent("router").expect("router").tools().is_empty());
}

/// The model agent's data of an agent the test knows to be one.
fn llm(agent: &AgentSpec) -> &LlmAgentSpec {
    agent.llm().expect("an llm agent")
}
