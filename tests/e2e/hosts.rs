//! Several Ollama hosts: two or three `ollama-sim` processes with their own budgets and
//! catalogues. Calls go to the host each model is placed on (each host's `/sim/log` says
//! which models it served), a host killed mid-run hands its models to the others, and bad
//! host input stops the run before it starts, naming the host or agent.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    Run, Sim, agentrun, agentrun_binary, events, of_type, repo_root, runs_dir, sim_binary,
};

const CODER: &str = "qwen3-coder:32b";
const REVIEWER: &str = "qwen3-coder:14b";

/// A simulated host with its own GPU budget and only `models` in its catalogue, replying
/// from the review loop's script.
struct Host {
    sim: Sim,
    _config: tempfile::TempDir,
}

impl Host {
    fn start(gpu: &str, models: &[&str], time_scale: &str) -> Host {
        Host::start_with(gpu, models, time_scale, |_| {})
    }

    /// A host whose machine settings `tweak` changes (its load speeds, a model's digest).
    fn start_with(
        gpu: &str,
        models: &[&str],
        time_scale: &str,
        tweak: impl FnOnce(&mut Value),
    ) -> Host {
        let printed = Command::new(sim_binary())
            .arg("--print-config")
            .stderr(Stdio::null())
            .output()
            .expect("ollama-sim prints its configuration");
        let mut config: Value = serde_json::from_slice(&printed.stdout).expect("JSON");
        let catalogue = config["models"].as_array().expect("a catalogue").clone();
        config["models"] = Value::Array(
            catalogue
                .into_iter()
                .filter(|model| models.contains(&model["name"].as_str().unwrap_or("")))
                .collect(),
        );
        tweak(&mut config);
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("machine.json");
        std::fs::write(&path, config.to_string()).expect("written");
        let sim = Sim::start(&[
            "--config",
            &path.to_string_lossy(),
            "--gpu-memory",
            gpu,
            "--time-scale",
            time_scale,
            "--script",
            "workflows/sim/review.yaml",
        ]);
        Host { sim, _config: dir }
    }

    fn url(&self) -> &str {
        &self.sim.url
    }

    /// The chats this host answered in full, by model (preloads and unloads left out).
    fn answered(&self) -> Vec<String> {
        self.sim
            .log()
            .iter()
            .filter(|event| {
                event["event"] == "request_finished"
                    && matches!(event["done_reason"].as_str(), Some("stop" | "length"))
            })
            .map(|event| event["model"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

/// A hosts file naming each host.
fn hosts_file(dir: &Path, hosts: &[(&str, &str, &str, &[&str])]) -> PathBuf {
    let mut text = String::from("hosts:\n");
    for (name, url, budget, labels) in hosts {
        text.push_str(&format!(
            "  - name: {name}\n    url: {url}\n    gpu_budget: {budget}\n    labels: [{}]\n",
            labels.join(", ")
        ));
    }
    let path = dir.join("hosts.yaml");
    std::fs::write(&path, text).expect("written");
    path
}

/// The review loop with extra residency lines for the reviewer (labels).
fn review_workflow(dir: &Path, reviewer_residency: &str) -> PathBuf {
    let agents = repo_root().join("agents");
    let text = format!(
        "name: review\ntask: Write parse_duration.\nagents:\n  coder:\n    use: {}\n  \
         reviewer:\n    use: {}\n{reviewer_residency}flow:\n  start: coder\n  edges:\n    \
         - {{ from: coder, to: reviewer }}\n    \
         - {{ from: reviewer, to: end, when: {{ matches: \"(?m)^\\\\s*APPROVED\\\\s*$\" }} }}\n    \
         - {{ from: reviewer, to: coder }}\nlimits:\n  max_turns: 20\nmemory:\n  gpu_budget: 54GB\n",
        agents.join("coder.yaml").display(),
        agents.join("reviewer.yaml").display(),
    );
    let path = dir.join("review.yaml");
    std::fs::write(&path, text).expect("written");
    path
}

/// The transcript of the one run kept under `runs`.
fn transcript(runs: &Path) -> Vec<Value> {
    let kept: Vec<PathBuf> = std::fs::read_dir(runs.join("runs"))
        .expect("a runs folder")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    std::fs::read_to_string(kept[0].join("transcript.jsonl"))
        .expect("a transcript")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect()
}

fn run_args<'a>(runs: &'a str, events: &'a str) -> Vec<&'a str> {
    vec!["--json", "-q", "--runs-dir", runs, "--events", events]
}

#[test]
fn each_call_goes_to_the_host_its_model_is_placed_on() {
    // Each host has one of the two models: the catalogues decide the placement.
    let mac = Host::start("54GB", &[CODER], "0.001");
    let linux = Host::start("24GB", &[REVIEWER], "0.001");
    let runs = tempfile::tempdir().expect("a temp dir");
    let events_path = runs.path().join("events.jsonl");
    let (runs_text, events_text) = (
        runs.path().to_string_lossy().into_owned(),
        events_path.to_string_lossy().into_owned(),
    );
    let mut args = vec![
        "workflows/review.yaml",
        "--ollama",
        mac.url(),
        "--ollama",
        linux.url(),
    ];
    args.extend(run_args(&runs_text, &events_text));
    let run = agentrun(&args);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "completed");
    assert_eq!(mac.answered(), vec![CODER, CODER]);
    assert_eq!(linux.answered(), vec![REVIEWER, REVIEWER]);
    let events = events(&events_path);
    let placements = of_type(&events, "placement");
    assert_eq!(placements.len(), 1, "{placements:?}");
    assert_eq!(
        placements[0]["hosts"][0]["models"],
        serde_json::json!([CODER])
    );
    assert_eq!(
        placements[0]["hosts"][1]["models"],
        serde_json::json!([REVIEWER])
    );
    // The summary gives each host its part.
    let hosts = &run.json()["hosts"];
    let mac_name = mac.url().trim_start_matches("http://");
    let linux_name = linux.url().trim_start_matches("http://");
    assert_eq!(
        hosts[mac_name]["models"],
        serde_json::json!([CODER]),
        "{hosts:#}"
    );
    assert_eq!(
        hosts[linux_name]["models"],
        serde_json::json!([REVIEWER]),
        "{hosts:#}"
    );
    assert_eq!(hosts[mac_name]["loads"], 1, "{hosts:#}");
}

#[test]
fn labels_in_the_workflow_choose_among_hosts_that_have_the_model() {
    // Both hosts have both models; the reviewer requires `linux`, which only the second has.
    let mac = Host::start("54GB", &[CODER, REVIEWER], "0.001");
    let linux = Host::start("24GB", &[CODER, REVIEWER], "0.001");
    let dir = tempfile::tempdir().expect("a temp dir");
    let hosts = hosts_file(
        dir.path(),
        &[
            ("mac", mac.url(), "54GB", &["big"]),
            ("linux", linux.url(), "24GB", &["linux"]),
        ],
    );
    let workflow = review_workflow(
        dir.path(),
        "    residency:\n      require_labels: [linux]\n",
    );
    let workflow_text = workflow.to_string_lossy().into_owned();
    let hosts_text = hosts.to_string_lossy().into_owned();
    let run = crate::support::agentrun_with(
        repo_root(),
        &[&workflow_text, "--json", "-q"],
        &[("AGENTRUN_HOSTS", &hosts_text)],
    );
    run.expect_code(0);
    assert_eq!(mac.answered(), vec![CODER, CODER]);
    assert_eq!(linux.answered(), vec![REVIEWER, REVIEWER]);
}

#[test]
fn a_host_killed_mid_run_hands_its_models_to_the_others_and_no_turn_is_lost_or_repeated() {
    // The linux box comes first, so the reviewer's model lives there; the Mac has both.
    let mut linux = Host::start("24GB", &[REVIEWER], "0.05");
    let mac = Host::start("54GB", &[CODER, REVIEWER], "0.05");
    let dir = tempfile::tempdir().expect("a temp dir");
    let hosts = hosts_file(
        dir.path(),
        &[
            ("linux", linux.url(), "24GB", &[]),
            ("mac", mac.url(), "54GB", &[]),
        ],
    );
    let runs = tempfile::tempdir().expect("a temp dir");
    let events_path = runs.path().join("events.jsonl");
    let run = run_killing_after_first_review(
        Path::new("workflows/review.yaml"),
        &hosts,
        runs.path(),
        &mut linux,
    );
    run.expect_code(0);
    assert_eq!(run.json()["status"], "completed");
    let turns = transcript(runs.path());
    // The Mac's script starts its reviewer replies afresh, so the loop may take another
    // round there; whatever its length, each turn is in the transcript once, in order.
    let numbers: Vec<u64> = turns
        .iter()
        .map(|turn| turn["turn"].as_u64().expect("a number"))
        .collect();
    let expected: Vec<u64> = (1..=turns.len() as u64).collect();
    assert_eq!(numbers, expected, "every turn once");
    assert!(turns.len() >= 4, "{turns:?}");
    for (index, turn) in turns.iter().enumerate() {
        let agent = if index % 2 == 0 { "coder" } else { "reviewer" };
        assert_eq!(turn["agent"], agent, "{turns:?}");
    }
    assert!(
        turns
            .last()
            .and_then(|turn| turn["text"].as_str())
            .is_some_and(|text| text.contains("APPROVED")),
        "{turns:?}"
    );
    // Every review after the first ran on the Mac, and every coder turn.
    let answered = mac.answered();
    let reviews = turns
        .iter()
        .filter(|turn| turn["agent"] == "reviewer")
        .count();
    let coders = turns.len() - reviews;
    assert_eq!(
        answered.iter().filter(|model| *model == REVIEWER).count(),
        reviews - 1,
        "{answered:?}"
    );
    assert_eq!(
        answered.iter().filter(|model| *model == CODER).count(),
        coders
    );
    let events = events(&events_path);
    let placements = of_type(&events, "placement");
    assert_eq!(placements.len(), 2, "{placements:?}");
    let reason = placements[1]["reason"].as_str().expect("a reason");
    assert!(
        reason.contains("host 'linux' stopped answering"),
        "{reason}"
    );
    assert!(reason.contains(&format!("{REVIEWER} to 'mac'")), "{reason}");
    assert_eq!(placements[1]["hosts"][0]["up"], false);
}

/// Runs `workflow` on the hosts of `hosts_file`, its events in `runs/events.jsonl`, and kills
/// `victim` as soon as it has answered the reviewer once.
fn run_killing_after_first_review(
    workflow: &Path,
    hosts_file: &Path,
    runs: &Path,
    victim: &mut Host,
) -> Run {
    let child = Command::new(agentrun_binary())
        .arg(workflow)
        .arg("--hosts")
        .arg(hosts_file)
        .args(["--json", "-q", "--runs-dir"])
        .arg(runs)
        .arg("--events")
        .arg(runs.join("events.jsonl"))
        .current_dir(repo_root())
        .env_remove("OLLAMA_HOST")
        .env_remove("OLLAMA_HOSTS")
        .env_remove("AGENTRUN_HOSTS")
        .env("AGENTRUN_HOME", runs_dir().join("home"))
        .env("AGENTRUN_NO_LEARNING", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentrun starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !victim.answered().contains(&REVIEWER.to_owned()) {
        assert!(Instant::now() < deadline, "the reviewer never answered");
        std::thread::sleep(Duration::from_millis(5));
    }
    victim.sim.kill();
    let output = child.wait_with_output().expect("agentrun ends");
    Run {
        args: vec![workflow.display().to_string()],
        output,
    }
}

#[test]
fn an_agent_whose_model_no_host_remains_for_uses_its_fallback_or_the_run_stops_naming_it() {
    const FALLBACK: &str = "qwen3:8b";
    let dir = tempfile::tempdir().expect("a temp dir");
    for fallback in [true, false] {
        // Only the Linux box has the reviewer's model; the Mac has the fallback.
        let mut linux = Host::start("24GB", &[REVIEWER], "0.05");
        let mac = Host::start("54GB", &[CODER, FALLBACK], "0.05");
        let hosts = hosts_file(
            dir.path(),
            &[
                ("linux", linux.url(), "24GB", &[]),
                ("mac", mac.url(), "54GB", &[]),
            ],
        );
        let extra = if fallback {
            format!("    fallback: {FALLBACK}\n")
        } else {
            String::new()
        };
        let workflow = review_workflow(dir.path(), &extra);
        let runs = tempfile::tempdir().expect("a temp dir");
        let run = run_killing_after_first_review(&workflow, &hosts, runs.path(), &mut linux);
        let turns = transcript(runs.path());
        if fallback {
            run.expect_code(0);
            // The second review was answered by the fallback, on the Mac.
            let reviews: Vec<&Value> = turns.iter().filter(|t| t["agent"] == "reviewer").collect();
            assert_eq!(reviews[0]["model"], REVIEWER, "{turns:?}");
            assert_eq!(reviews[1]["model"], FALLBACK, "{turns:?}");
            assert!(mac.answered().contains(&FALLBACK.to_owned()));
        } else {
            run.expect_code(1);
            let summary = run.json();
            assert_eq!(summary["status"], "failed");
            let reason = summary["reason"].as_str().expect("a reason");
            assert!(reason.contains("agent 'reviewer' failed"), "{reason}");
            assert!(reason.contains("host 'linux' is lost"), "{reason}");
            assert!(
                reason.contains("agent 'reviewer' has no `fallback` model"),
                "{reason}"
            );
            // Every turn before the loss is kept, once.
            let numbers: Vec<u64> = turns.iter().filter_map(|t| t["turn"].as_u64()).collect();
            assert_eq!(numbers, vec![1, 2, 3], "{turns:?}");
        }
    }
}

/// A run that stops before its first turn with exit 2 and this in its error.
#[track_caller]
fn refused(run: &Run, words: &str) {
    run.expect_code(2);
    let stderr = run.stderr();
    assert!(stderr.contains(words), "expected {words:?} in:\n{stderr}");
}

#[test]
fn bad_host_input_stops_the_run_naming_the_host_or_agent() {
    let mac = Host::start("54GB", &[CODER], "0");
    let linux = Host::start("24GB", &[CODER], "0");
    let both = Host::start("24GB", &[CODER, REVIEWER], "0");
    // An unreachable host at start.
    let closed = "http://127.0.0.1:9";
    refused(
        &agentrun(&[
            "workflows/review.yaml",
            "--ollama",
            mac.url(),
            "--ollama",
            closed,
            "-q",
        ]),
        "host '127.0.0.1:9': the Ollama server at http://127.0.0.1:9 does not answer",
    );
    // The same address twice.
    refused(
        &agentrun(&[
            "workflows/review.yaml",
            "--ollama",
            mac.url(),
            "--ollama",
            &format!("{}/", mac.url()),
            "-q",
        ]),
        "is given twice",
    );
    // A model no host has.
    refused(
        &agentrun(&[
            "workflows/review.yaml",
            "--ollama",
            mac.url(),
            "--ollama",
            linux.url(),
            "-q",
        ]),
        &format!(
            "agent 'reviewer' uses model '{REVIEWER}', which no host it may use has; pull it on \
             host '{}' with `OLLAMA_HOST={} ollama pull {REVIEWER}`",
            mac.url().trim_start_matches("http://"),
            mac.url()
        ),
    );
    // A label nothing satisfies.
    let dir = tempfile::tempdir().expect("a temp dir");
    let hosts = hosts_file(
        dir.path(),
        &[
            ("mac", mac.url(), "54GB", &["big"]),
            ("linux", both.url(), "24GB", &[]),
        ],
    );
    let workflow = review_workflow(dir.path(), "    residency:\n      require_labels: [gpu]\n");
    refused(
        &agentrun(&[
            &workflow.to_string_lossy(),
            "--hosts",
            &hosts.to_string_lossy(),
            "-q",
        ]),
        "agent 'reviewer' requires a host labelled gpu, and no host is: the hosts are 'mac' (big), 'linux' (no labels)",
    );
}

#[test]
fn ps_shows_every_host_with_what_it_holds() {
    let mac = Host::start("54GB", &[CODER], "0");
    let linux = Host::start("24GB", &[REVIEWER], "0");
    // Load the reviewer's model on the Linux box only.
    linux
        .sim
        .post_json("/api/generate", &serde_json::json!({ "model": REVIEWER }));
    let run = agentrun(&["ps", "--ollama", mac.url(), "--ollama", linux.url()]);
    run.expect_code(0);
    let out = run.stdout();
    let linux_block = out
        .split("host ")
        .find(|block| block.contains(linux.url()))
        .expect("a block for the Linux box");
    assert!(linux_block.contains(REVIEWER), "{out}");
    let mac_block = out
        .split("host ")
        .find(|block| block.contains(mac.url()))
        .expect("a block for the Mac");
    assert!(mac_block.contains("no models resident"), "{out}");
}

#[test]
fn plan_prints_where_each_model_lives_and_what_a_second_host_saves() {
    let mac = Host::start("54GB", &[CODER, REVIEWER], "0");
    let linux = Host::start("24GB", &[REVIEWER], "0");
    let dir = tempfile::tempdir().expect("a temp dir");
    let hosts = hosts_file(
        dir.path(),
        &[
            ("mac", mac.url(), "54GB", &[]),
            ("linux", linux.url(), "24GB", &[]),
        ],
    );
    let run = agentrun(&[
        "plan",
        "workflows/review.yaml",
        "--hosts",
        &hosts.to_string_lossy(),
        "--no-learning",
    ]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.starts_with("Placement on 2 hosts\n"), "{out}");
    assert!(out.contains("host mac:"), "{out}");
    assert!(out.contains(&format!("  {CODER} (")), "{out}");
    assert!(out.contains("expected load wait:"), "{out}");
}

#[test]
fn simulate_compares_the_shipped_two_host_fleet_with_one_host_on_the_same_future() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let page = dir.path().join("hosts.html");
    let run = agentrun(&[
        "simulate",
        "workflows/scenarios/mac-54gb.yaml",
        "--hosts",
        "workflows/sim/hosts/mac-plus-linux.yaml",
        "--policy",
        "smart",
        "--json",
        "--report",
        page.to_str().expect("a UTF-8 path"),
    ]);
    run.expect_code(0);
    let html = std::fs::read_to_string(&page).expect("the report is written");
    assert!(
        html.contains(r#"data-host="linux""#) && html.contains(r#"data-host="mac""#),
        "the timeline groups the lanes by host"
    );
    let both = run.json();
    assert_eq!(both["host_names"], serde_json::json!(["mac", "linux"]));
    assert_eq!(both["one_host"]["turns"], both["hosts"]["turns"]);
    let one = both["one_host"]["policies"]["smart"]["load_wait_s"]
        .as_f64()
        .expect("a wait");
    let two = both["hosts"]["policies"]["smart"]["load_wait_s"]
        .as_f64()
        .expect("a wait");
    assert!(two < one, "two hosts {two} s, one host {one} s");
    assert!(both["one_host"]["bound_s"].as_f64().expect("a bound") > 0.0);
}

/// A host's name when it is named by its address.
fn address_name(host: &Host) -> String {
    host.url().trim_start_matches("http://").to_owned()
}

/// Load physics of a machine reading weights at `bytes_per_second` in every mode, warm or
/// cold.
fn load_speed(bytes_per_second: f64) -> impl FnOnce(&mut Value) {
    move |config: &mut Value| {
        for key in [
            "cold_mmap_bytes_per_second",
            "cold_no_mmap_bytes_per_second",
            "warm_bytes_per_second",
        ] {
            config["load"][key] = serde_json::json!(bytes_per_second);
        }
    }
}

/// The hosts each model is placed on, from `agentrun plan --json`.
fn placed(plan: &Run) -> Value {
    let models = plan.json()["placement"]["models"].clone();
    let mut hosts = serde_json::Map::new();
    for model in models.as_array().expect("placed models") {
        hosts.insert(
            model["model"].as_str().expect("a name").to_owned(),
            model["hosts"].clone(),
        );
    }
    Value::Object(hosts)
}

#[test]
fn calibrate_measures_every_host_and_placement_prices_each_with_its_own_speed() {
    // The same models on both; the slow host is first, so only speed can move the models.
    let slow = Host::start_with("54GB", &[CODER, REVIEWER], "0.002", load_speed(0.2e9));
    let fast = Host::start_with("54GB", &[CODER, REVIEWER], "0.002", load_speed(8.0e9));
    let home = tempfile::tempdir().expect("a temp dir");
    let home_text = home.path().to_string_lossy().into_owned();
    let env = [("AGENTRUN_HOME", home_text.as_str())];
    let (slow_name, fast_name) = (address_name(&slow), address_name(&fast));
    let plan = || {
        let run = crate::support::agentrun_with(
            repo_root(),
            &[
                "plan",
                "workflows/review.yaml",
                "--ollama",
                slow.url(),
                "--ollama",
                fast.url(),
                "--no-learning",
                "--json",
            ],
            &env,
        );
        run.expect_code(0);
        placed(&run)
    };
    // Unmeasured, the hosts look alike and the first is taken.
    let before = plan();
    assert_eq!(before[CODER], serde_json::json!([slow_name]), "{before}");

    let calibrate = crate::support::agentrun_with(
        repo_root(),
        &[
            "calibrate",
            "workflows/review.yaml",
            "--ollama",
            slow.url(),
            "--ollama",
            fast.url(),
        ],
        &env,
    );
    calibrate.expect_code(0);
    // Progress and figures per host.
    let (out, err) = (calibrate.stdout(), calibrate.stderr());
    for host in [&slow, &fast] {
        let name = address_name(host);
        assert!(
            out.contains(&format!("host {name} ({})", host.url())),
            "{out}"
        );
        assert!(
            err.contains(&format!("calibrating 2 models on host '{name}'")),
            "{err}"
        );
        // Each host loaded each model twice, once per load mode.
        let loads = host
            .sim
            .log()
            .into_iter()
            .filter(|event| event["event"] == "load_started")
            .count();
        assert_eq!(loads, 4, "{name}");
    }
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(home.path().join("calibration.json")).expect("saved"),
    )
    .expect("JSON");
    let seconds = |host: &Host| {
        saved["servers"][host.url()][CODER]["no_mmap_s"]
            .as_f64()
            .unwrap_or_else(|| panic!("{saved:#}"))
    };
    // 19 GB at 0.2 GB/s against 8 GB/s, each after the 2 s start (about 98 s and 4.4 s;
    // the simulator's clock runs 500 times faster than real time, so allow for jitter).
    assert!(seconds(&slow) > 80.0, "{saved:#}");
    assert!(seconds(&fast) < 20.0, "{saved:#}");

    // Measured, each host is priced with its own loads: the models go to the fast one.
    let after = plan();
    assert_eq!(after[CODER], serde_json::json!([fast_name]), "{after}");
    assert_eq!(after[REVIEWER], serde_json::json!([fast_name]), "{after}");
}

#[test]
fn hosts_named_by_address_plan_with_their_measured_budget_or_say_they_take_the_runs() {
    // The coder does not fit the small host's 16 GB: calibration sees it spill there.
    let small = Host::start("16GB", &[CODER, REVIEWER], "0.0002");
    let large = Host::start("54GB", &[CODER, REVIEWER], "0.0002");
    let home = tempfile::tempdir().expect("a temp dir");
    let home_text = home.path().to_string_lossy().into_owned();
    let env = [("AGENTRUN_HOME", home_text.as_str())];
    let calibrate = crate::support::agentrun_with(
        repo_root(),
        &[
            "calibrate",
            "workflows/review.yaml",
            "--ollama",
            small.url(),
            "--ollama",
            large.url(),
        ],
        &env,
    );
    calibrate.expect_code(0);
    assert!(
        calibrate.stderr().contains(&format!(
            "{CODER} did not fit the GPU of host '{}'",
            address_name(&small)
        )),
        "{}",
        calibrate.stderr()
    );
    let calibrated = (small.answered().len(), large.answered().len());
    let runs = tempfile::tempdir().expect("a temp dir");
    let events_path = runs.path().join("events.jsonl");
    let (runs_text, events_text) = (
        runs.path().to_string_lossy().into_owned(),
        events_path.to_string_lossy().into_owned(),
    );
    let hosts = format!("{},{}", small.url(), large.url());
    let mut args = vec!["workflows/review.yaml"];
    args.extend(run_args(&runs_text, &events_text));
    let run = crate::support::agentrun_with(
        repo_root(),
        &args,
        &[
            ("AGENTRUN_HOME", home_text.as_str()),
            ("OLLAMA_HOSTS", &hosts),
        ],
    );
    run.expect_code(0);
    let stderr = run.stderr();
    // The large host showed no limit: it takes the workflow's budget, and says so.
    assert!(
        stderr.contains(&format!(
            "note: host '{}' ({}): its GPU budget is not known",
            address_name(&large),
            large.url()
        )) && stderr.contains("it plans with the run's 54.0 GB"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("host '{}' (", address_name(&small))),
        "{stderr}"
    );
    let events = events(&events_path);
    let placement = &of_type(&events, "placement")[0];
    assert_eq!(
        placement["hosts"][0]["gpu_budget_bytes"], 16_000_000_000u64,
        "{placement}"
    );
    assert_eq!(
        placement["hosts"][1]["gpu_budget_bytes"], 54_000_000_000u64,
        "{placement}"
    );
    // The small host cannot hold the coder: its calls went to the large one.
    let in_run = |host: &Host, skip: usize| host.answered()[skip..].to_vec();
    assert!(!in_run(&small, calibrated.0).contains(&CODER.to_owned()));
    assert!(in_run(&large, calibrated.1).contains(&CODER.to_owned()));
}

#[test]
fn two_hosts_with_different_weights_under_one_name_stop_the_run_naming_both() {
    const OTHER: &str = "sha256:abababababab0000000000000000000000000000000000000000000000000000";
    let mac = Host::start("54GB", &[CODER, REVIEWER], "0");
    let linux = Host::start_with("24GB", &[REVIEWER], "0", |config| {
        for model in config["models"].as_array_mut().expect("a catalogue") {
            model["digest"] = serde_json::json!(OTHER);
        }
    });
    let tags = mac.sim.get_json("/api/tags");
    let ours = tags["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|model| model["name"] == REVIEWER)
        .and_then(|model| model["digest"].as_str())
        .expect("a digest")
        .trim_start_matches("sha256:")[..12]
        .to_owned();
    let run = agentrun(&[
        "workflows/review.yaml",
        "--ollama",
        mac.url(),
        "--ollama",
        linux.url(),
        "-q",
    ]);
    refused(
        &run,
        &format!(
            "model '{REVIEWER}' is different weights on host '{}' (digest {ours}) and on host \
             '{}' (digest abababababab)",
            address_name(&mac),
            address_name(&linux)
        ),
    );
    refused(
        &run,
        &format!("`OLLAMA_HOST={} ollama pull {REVIEWER}`", linux.url()),
    );
    // Nothing was sent to either host.
    assert!(mac.answered().is_empty() && linux.answered().is_empty());
}

#[test]
fn a_model_placed_on_two_hosts_serves_each_branch_from_the_copy_its_agent_may_use() {
    // Both hosts have both models; the two reviews of one change require a host each, so
    // the reviewer's model is placed on both.
    let left = Host::start("54GB", &[CODER, REVIEWER], "0.001");
    let right = Host::start("54GB", &[CODER, REVIEWER], "0.001");
    let dir = tempfile::tempdir().expect("a temp dir");
    let hosts = hosts_file(
        dir.path(),
        &[
            ("left", left.url(), "54GB", &["left"]),
            ("right", right.url(), "54GB", &["right"]),
        ],
    );
    let agents = repo_root().join("agents");
    let (coder, reviewer) = (agents.join("coder.yaml"), agents.join("reviewer.yaml"));
    let text = format!(
        "name: replicas\ntask: Write parse_duration.\nagents:\n  coder:\n    use: {coder}\n  \
         left-review:\n    use: {reviewer}\n    residency:\n      require_labels: [left]\n  \
         right-review:\n    use: {reviewer}\n    residency:\n      require_labels: [right]\n  \
         judge:\n    use: {coder}\nflow:\n  start: coder\n  edges:\n    \
         - {{ from: coder, to: [left-review, right-review] }}\n    \
         - {{ from: left-review, to: judge }}\n    - {{ from: right-review, to: judge }}\n    \
         - {{ from: judge, to: end }}\n  joins:\n    judge: {{ wait: all }}\n\
         limits:\n  max_turns: 8\nmemory:\n  gpu_budget: 54GB\n",
        coder = coder.display(),
        reviewer = reviewer.display(),
    );
    let workflow = dir.path().join("replicas.yaml");
    std::fs::write(&workflow, text).expect("written");
    let runs = tempfile::tempdir().expect("a temp dir");
    let events_path = runs.path().join("events.jsonl");
    let (runs_text, events_text) = (
        runs.path().to_string_lossy().into_owned(),
        events_path.to_string_lossy().into_owned(),
    );
    let (workflow_text, hosts_text) = (
        workflow.to_string_lossy().into_owned(),
        hosts.to_string_lossy().into_owned(),
    );
    let mut args = vec![workflow_text.as_str(), "--hosts", hosts_text.as_str()];
    args.extend(run_args(&runs_text, &events_text));
    let run = agentrun(&args);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "completed");
    let events = events(&events_path);
    let placement = &of_type(&events, "placement")[0];
    for host in 0..2 {
        assert!(
            placement["hosts"][host]["models"]
                .as_array()
                .expect("models")
                .contains(&Value::from(REVIEWER)),
            "{placement}"
        );
    }
    // One review on each host's copy, as each host's log shows.
    let reviews = |host: &Host| {
        host.answered()
            .iter()
            .filter(|model| *model == REVIEWER)
            .count()
    };
    assert_eq!((reviews(&left), reviews(&right)), (1, 1));
    let turns = transcript(runs.path());
    let agents: Vec<&str> = turns
        .iter()
        .map(|turn| turn["agent"].as_str().expect("an agent"))
        .collect();
    assert_eq!(agents.len(), 4, "{agents:?}");
    assert_eq!((agents[0], agents[3]), ("coder", "judge"), "{agents:?}");
}

/// Runs that learn across runs (the tests' default is not to).
const LEARN: (&str, &str) = ("AGENTRUN_NO_LEARNING", "false");

/// What runs of the review workflow kept per server under `home`, by server address.
fn knowledge_by_server(home: &Path) -> serde_json::Map<String, Value> {
    let mut kept = serde_json::Map::new();
    for entry in std::fs::read_dir(home.join("knowledge")).expect("a knowledge folder") {
        let text = std::fs::read_to_string(entry.expect("an entry").path()).expect("readable");
        let file: Value = serde_json::from_str(&text).expect("JSON");
        kept.insert(file["server"].as_str().expect("a server").to_owned(), file);
    }
    kept
}

/// The expected load seconds of each `load_started` of `model` in an events file.
fn expected_loads(events_file: &Path, model: &str) -> Vec<f64> {
    events(events_file)
        .iter()
        .filter(|event| event["type"] == "load_started" && event["model"] == model)
        .filter_map(|event| event["expected_s"].as_f64())
        .collect()
}

#[test]
fn each_host_keeps_and_plans_with_its_own_load_times_across_one_host_and_fleet_runs() {
    // A slow host with both models, a fast one; the reviewer requires the fast one's label.
    // Slow enough a clock that keep_alive does not run out between turns on a busy machine.
    let slow = Host::start_with("54GB", &[CODER, REVIEWER], "0.01", load_speed(0.5e9));
    let fast = Host::start_with("54GB", &[CODER, REVIEWER], "0.01", load_speed(8.0e9));
    let dir = tempfile::tempdir().expect("a temp dir");
    let home = dir.path().join("home");
    let home_text = home.to_string_lossy().into_owned();
    let runs = dir.path().join("runs");
    let runs_text = runs.to_string_lossy().into_owned();
    let workflow = review_workflow(dir.path(), "    residency:\n      require_labels: [fast]\n");
    // One load mode throughout, so the figure measured is the one planned with.
    let mut text = std::fs::read_to_string(&workflow).expect("written");
    text.push_str("  load_mode: no-mmap\n");
    std::fs::write(&workflow, text).expect("written");
    let workflow_text = workflow.to_string_lossy().into_owned();
    let hosts = hosts_file(
        dir.path(),
        &[
            ("slow", slow.url(), "54GB", &["slow"]),
            ("fast", fast.url(), "54GB", &["fast"]),
        ],
    );
    let hosts_text = hosts.to_string_lossy().into_owned();

    // First, the slow host alone (the workflow's labels matter only with several hosts).
    let alone = crate::support::agentrun_with(
        repo_root(),
        &[
            &workflow_text,
            "--ollama",
            slow.url(),
            "--json",
            "-q",
            "--runs-dir",
            &runs_text,
        ],
        &[("AGENTRUN_HOME", &home_text), LEARN],
    );
    alone.expect_code(0);
    let kept = knowledge_by_server(&home);
    let slow_file = &kept[slow.url()];
    let measured = |file: &Value, model: &str| -> f64 {
        let modes = file["loads"][model]["modes"]
            .as_object()
            .unwrap_or_else(|| panic!("no loads of {model}: {file:#}"));
        let samples = modes.values().next().expect("a mode");
        samples["total_s"].as_f64().expect("seconds") / samples["count"].as_f64().expect("count")
    };
    let slow_coder = measured(slow_file, CODER);
    let slow_reviewer = slow_file["loads"].get(REVIEWER).cloned();
    // 19 GB at 0.5 GB/s after a 2 s start (about 40 s; a reload from the page cache, should
    // the model expire between turns, brings the mean down).
    assert!(slow_coder > 15.0, "{slow_file:#}");

    // Then both hosts: what the slow host learnt alone is its own here too.
    let events_file = dir.path().join("fleet.jsonl");
    let events_text = events_file.to_string_lossy().into_owned();
    let fleet = crate::support::agentrun_with(
        repo_root(),
        &[
            &workflow_text,
            "--json",
            "-q",
            "--runs-dir",
            &runs_text,
            "--events",
            &events_text,
        ],
        &[
            ("AGENTRUN_HOME", &home_text),
            ("AGENTRUN_HOSTS", &hosts_text),
            LEARN,
        ],
    );
    fleet.expect_code(0);
    assert_eq!(fast.answered(), vec![REVIEWER, REVIEWER]);
    // The coder loads on the slow host, expected as slow as it was measured there.
    let coder_expected = expected_loads(&events_file, CODER);
    assert!(!coder_expected.is_empty(), "no coder load");
    assert!(
        (coder_expected[0] - slow_coder).abs() < 0.2 * slow_coder,
        "{coder_expected:?} against {slow_coder}"
    );
    // The reviewer loads on the fast host, not expected at the slow host's speed (9 GB at
    // 0.5 GB/s would be 20 s).
    let reviewer_expected = expected_loads(&events_file, REVIEWER);
    assert!(!reviewer_expected.is_empty(), "no reviewer load");
    assert!(reviewer_expected[0] < 10.0, "{reviewer_expected:?}");

    // Each host's file keeps the loads measured on it, and both the workflow's facts.
    let kept = knowledge_by_server(&home);
    assert_eq!(kept.len(), 2, "{:?}", kept.keys());
    let (slow_file, fast_file) = (&kept[slow.url()], &kept[fast.url()]);
    assert_eq!(slow_file["runs"], 2, "{slow_file:#}");
    assert_eq!(fast_file["runs"], 1, "{fast_file:#}");
    assert!(fast_file["loads"].get(CODER).is_none(), "{fast_file:#}");
    // The reviewer's loads on the fast host are not the slow host's: its figure is the one
    // it had after running alone.
    assert_eq!(
        slow_file["loads"].get(REVIEWER).cloned(),
        slow_reviewer,
        "{slow_file:#}"
    );
    assert!(fast_file["agents"].get("coder").is_some(), "{fast_file:#}");

    // `plan` on the hosts shows what each knows and from how many runs.
    let plan = crate::support::agentrun_with(
        repo_root(),
        &["plan", &workflow_text],
        &[
            ("AGENTRUN_HOME", &home_text),
            ("AGENTRUN_HOSTS", &hosts_text),
            LEARN,
        ],
    );
    plan.expect_code(0);
    let out = plan.stdout();
    assert!(
        out.contains(&format!(
            "Learnt from 2 earlier runs on host {}",
            slow.url()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("Learnt from 1 earlier run on host {}", fast.url())),
        "{out}"
    );
}
