//! The small commands: schema, plan, ps, and errors a user meets first.

use std::net::TcpListener;

use crate::support::{Sim, agentrun, agentrun_with, repo_root};

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
fn plan_shows_how_each_fan_out_runs_and_why() {
    let sim = Sim::start(&["--time-scale", "0"]);
    let run = agentrun(&["plan", "workflows/tdd-parallel.yaml", "--ollama", &sim.url]);
    run.expect_code(0);
    let stdout = run.stdout();
    let section = stdout
        .split("\nFan-outs")
        .nth(1)
        .unwrap_or_else(|| panic!("no fan-out section in\n{stdout}"));
    let lines: Vec<&str> = section
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(
        lines[0], "  coder -> [tests, reviewer, security], joined by router",
        "{section}"
    );
    // The reason names the choice, and the command branch always overlaps.
    let reason = lines[1].trim_start();
    assert!(
        ["concurrent: ", "grouped: ", "serialized: "]
            .iter()
            .any(|choice| reason.starts_with(choice)),
        "{reason}"
    );
    assert!(reason.ends_with("tests overlap (no model)"), "{reason}");
    // Every option with its estimates; exactly one chosen, and it is the reason's.
    let options: Vec<&str> = lines[2..].to_vec();
    assert!(options.len() >= 2, "{section}");
    let chosen: Vec<&&str> = options.iter().filter(|l| l.starts_with("    * ")).collect();
    assert_eq!(chosen.len(), 1, "{section}");
    let chosen_kind = chosen[0]
        .trim_start_matches("    * ")
        .split_whitespace()
        .next();
    assert!(reason.starts_with(chosen_kind.unwrap_or("?")), "{section}");
    for option in &options {
        assert!(
            option.contains(" s load wait; [") && option.contains("; loads "),
            "{option}"
        );
    }
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

#[test]
fn calibration_measures_both_load_modes_and_plans_use_it() {
    let sim = Sim::start(&["--time-scale", "0.001"]);
    let home = tempfile::tempdir().expect("a temp dir");
    let home_dir = home.path().to_string_lossy().into_owned();
    let env = [("AGENTRUN_HOME", home_dir.as_str())];
    let run = agentrun_with(
        repo_root(),
        &["calibrate", "workflows/review.yaml", "--ollama", &sim.url],
        &env,
    );
    run.expect_code(0);
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join("calibration.json")).expect("saved"),
    )
    .expect("JSON");
    let coder = &saved["servers"][sim.url.as_str()]["qwen3-coder:32b"];
    let (mmap, no_mmap) = (coder["mmap_s"].as_f64(), coder["no_mmap_s"].as_f64());
    // The simulated Mac reads 0.8 GB/s with mmap and 5 GB/s without.
    assert!(
        matches!((mmap, no_mmap), (Some(m), Some(n)) if m > 2.0 * n && n > 1.0),
        "{saved:#}"
    );
    // Both loads were real loads: the simulator saw two for the coder, and the
    // model is not left loaded.
    let loads = sim
        .log()
        .into_iter()
        .filter(|event| event["event"] == "load_started" && event["model"] == "qwen3-coder:32b")
        .count();
    assert_eq!(loads, 2);
    assert_eq!(sim.get_json("/api/ps")["models"], serde_json::json!([]));
    // The decode speed came from the same requests: 0.7 x 273 GB/s over 19.1 GB is about 10
    // tokens per second on the simulated Mac.
    let decode = &coder["decode"];
    let speed = decode["tokens"].as_f64().unwrap_or_default()
        / decode["seconds"].as_f64().unwrap_or(f64::INFINITY);
    assert!((9.0..11.0).contains(&speed), "{saved:#}");

    let plan = agentrun_with(
        repo_root(),
        &["plan", "workflows/review.yaml", "--ollama", &sim.url],
        &env,
    );
    plan.expect_code(0);
    let expected = format!("load ~{:.0} s (mmap)", mmap.unwrap_or_default());
    assert!(
        plan.stdout().contains(&expected),
        "{expected} not in\n{}",
        plan.stdout()
    );
    // ... and the turn-length priors its decode speeds.
    assert!(
        plan.stdout().contains("tokens/s (measured on this server)"),
        "{}",
        plan.stdout()
    );
}
