//! The small commands: schema, plan, ps, and errors a user meets first.

use std::net::TcpListener;

use crate::support::{Sim, agentrun};

#[test]
fn schema_is_json_schema_of_the_workflow_format() {
    let run = agentrun(&["schema"]);
    run.expect_code(0);
    let schema = run.json();
    let properties = schema["properties"].as_object().expect("an object schema");
    for key in ["name", "agents", "flow", "limits", "memory", "simulation"] {
        assert!(properties.contains_key(key), "schema lacks `{key}`");
    }
}

#[test]
fn an_unreachable_server_names_the_url_and_suggests_the_simulator() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("an address")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = agentrun(&["workflows/review.yaml", "--ollama", &url]);
    run.expect_code(2);
    let stderr = run.stderr();
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(stderr.contains("ollama serve"), "{stderr}");
    assert!(stderr.contains("--sim"), "{stderr}");
}

#[test]
fn a_model_that_is_not_pulled_is_named_before_the_run_starts() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let workflow = dir.path().join("missing.yaml");
    std::fs::write(
        &workflow,
        "name: missing\ntask: say hi\nagents:\n  solo:\n    model: nosuch:7b\n    prompt: You say hi.\n\
         flow:\n  start: solo\n  edges:\n    - { from: solo, to: end }\nmemory:\n  gpu_budget: 24GB\n",
    )
    .expect("workflow written");
    let sim = Sim::start(&["--time-scale", "0"]);
    let run = agentrun(&["run", &workflow.to_string_lossy(), "--ollama", &sim.url]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("ollama pull nosuch:7b"),
        "{}",
        run.stderr()
    );
    let chats = sim
        .log()
        .into_iter()
        .filter(|event| event["event"] == "request_arrived" && event["endpoint"] == "chat")
        .count();
    assert_eq!(
        chats, 0,
        "no chat request may be sent for a run that cannot start"
    );
}

#[test]
fn plan_shows_the_phases_and_their_working_sets() {
    let sim = Sim::start(&["--time-scale", "0"]);
    let run = agentrun(&["plan", "workflows/tdd.yaml", "--ollama", &sim.url, "--json"]);
    run.expect_code(0);
    let plan = run.json();
    let phases = plan["phases"].as_array().expect("phases");
    assert!(phases.len() >= 2, "{plan:#}");
    let loop_phase = phases
        .iter()
        .find(|phase| {
            phase["agents"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "coder"))
        })
        .expect("a phase with the coder");
    assert_eq!(loop_phase["fits"], true, "{plan:#}");
    let text = agentrun(&["plan", "workflows/tdd.yaml", "--ollama", &sim.url]);
    text.expect_code(0);
    assert!(text.stdout().contains("Phases:"), "{}", text.stdout());
}

#[test]
fn ps_lists_what_the_server_holds() {
    let sim = Sim::start(&["--time-scale", "0"]);
    sim.post_json(
        "/api/generate",
        &serde_json::json!({"model": "qwen3:1.7b", "prompt": "", "keep_alive": -1}),
    );
    let run = agentrun(&["ps", "--ollama", &sim.url, "--budget", "54GB"]);
    run.expect_code(0);
    let stdout = run.stdout();
    assert!(stdout.contains("qwen3:1.7b"), "{stdout}");
    assert!(stdout.contains("forever"), "{stdout}");
    assert!(stdout.contains("of 54.0 GB in use"), "{stdout}");
}
