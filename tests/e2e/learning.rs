//! Learning across runs: a second run of a workflow on the same server starts from what the
//! first measured, and waits less for it.

use std::path::Path;

use crate::support::{Run, Sim, agentrun_with, events, of_type};

/// One small model. Its load time is what the runs learn.
const WORKFLOW: &str = "\
name: learn-load-mode
task: Write it.
agents:
  writer: { model: 'qwen3:1.7b', prompt: You write., options: { num_ctx: 8192 } }
  reviewer: { model: 'qwen3:1.7b', prompt: You review., options: { num_ctx: 8192 } }
flow:
  start: writer
  edges:
    - { from: writer, to: reviewer }
    - { from: reviewer, to: end }
memory: { gpu_budget: 54GB, load_mode: auto }
";

const REPLIES: &str = "\
rules:
  - { system: You write., reply: { eval_count: 20, text: Draft. } }
  - { system: You review., reply: { eval_count: 10, text: Fine. } }
";

/// A server on which reading the weights into memory (`use_mmap: false`) is slow and
/// memory-mapping fast, the opposite of the Mac that the priors describe: 0.2 s + 1.4 GB at
/// 0.3 GB/s (about 4.7 s) against 0.2 s + 1.4 GB at 10 GB/s (about 0.34 s). Real time, so the
/// client's clock and the server's agree.
const SERVER: &str = "\
load:
  fixed_seconds: 0.2
  cold_mmap_bytes_per_second: 10000000000
  cold_no_mmap_bytes_per_second: 300000000
";

struct Setup {
    dir: tempfile::TempDir,
    port: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("a temp dir");
        for (file, text) in [
            ("learn.yaml", WORKFLOW),
            ("replies.yaml", REPLIES),
            ("server.yaml", SERVER),
        ] {
            std::fs::write(dir.path().join(file), text).expect("written");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("an address")
            .port()
            .to_string();
        Setup { dir, port }
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).to_string_lossy().into_owned()
    }

    /// The server, started afresh at the same address: the same server to agentrun, with a
    /// cold page cache, so a run waits less only when it loads better.
    fn server(&self) -> Sim {
        Sim::start(&[
            "--port",
            &self.port,
            "--time-scale",
            "1",
            "--script",
            &self.path("replies.yaml"),
            "--config",
            &self.path("server.yaml"),
        ])
    }

    fn agentrun(&self, args: &[&str], learning: bool) -> Run {
        let home = self.dir.path().join("home");
        let env = [
            ("AGENTRUN_HOME", home.to_str().expect("a UTF-8 path")),
            (
                "AGENTRUN_NO_LEARNING",
                if learning { "false" } else { "true" },
            ),
        ];
        agentrun_with(self.dir.path(), args, &env)
    }

    /// Runs the workflow on a fresh start of the server: the first turn's load wait and the
    /// server's loads as `(mmap, warm)`.
    fn run(&self, label: &str, learning: bool, extra: &[&str]) -> (Run, f64, Vec<(bool, bool)>) {
        let sim = self.server();
        let events_path = self.path(&format!("{label}.jsonl"));
        let mut args = vec![
            self.path("learn.yaml"),
            "--ollama".to_owned(),
            sim.url.clone(),
            "--events".to_owned(),
            events_path.clone(),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = self.agentrun(&args, learning);
        run.expect_code(0);
        let events = events(Path::new(&events_path));
        let first_wait = of_type(&events, "turn_finished")[0]["load_wait_s"]
            .as_f64()
            .expect("a load wait");
        let loads = sim
            .log()
            .iter()
            .filter(|event| event["event"] == "load_started")
            .map(|event| (event["mmap"] == true, event["warm"] == true))
            .collect();
        (run, first_wait, loads)
    }

    fn knowledge_file(&self) -> std::path::PathBuf {
        let folder = self.dir.path().join("home").join("knowledge");
        let files: Vec<_> = std::fs::read_dir(&folder)
            .expect("the knowledge folder")
            .map(|entry| entry.expect("an entry").path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }
}

#[test]
fn a_second_run_starts_from_the_first_runs_knowledge_and_waits_less() {
    let setup = Setup::new();

    // First run: the priors say no-mmap loads faster; on this server it is slow.
    let (first, first_wait, first_loads) = setup.run("first", true, &[]);
    assert_eq!(first_loads, [(false, false)], "one cold no-mmap load");
    assert!(first_wait > 3.0, "the first load took {first_wait} s");
    assert!(
        !first.stderr().contains("earlier run"),
        "{}",
        first.stderr()
    );
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(setup.knowledge_file()).expect("read"))
            .expect("JSON");
    assert_eq!(kept["runs"], 1, "{kept:#}");
    assert_eq!(kept["edges"]["writer"]["taken"]["reviewer"], 1, "{kept:#}");

    // Second run on the same server: it knows the no-mmap load is slow, and mmap wins.
    let (second, second_wait, second_loads) = setup.run("second", true, &[]);
    assert!(
        second
            .stderr()
            .contains("starts from what 1 earlier run of this workflow"),
        "{}",
        second.stderr()
    );
    assert_eq!(second_loads, [(true, false)], "one cold mmap load");
    assert!(
        second_wait < first_wait / 3.0,
        "the second run waited {second_wait} s on its first turn, the first {first_wait} s"
    );

    // Without what was learnt, the same server and workflow wait as long as the first time:
    // the gain is the knowledge, not the server.
    let (_, blind_wait, blind_loads) = setup.run("blind", false, &[]);
    assert_eq!(blind_loads, [(false, false)]);
    assert!(blind_wait > 3.0, "{blind_wait}");

    // `plan` shows what is known and from how many runs (the blind run kept nothing).
    let sim = setup.server();
    let plan = setup.agentrun(
        &["plan", &setup.path("learn.yaml"), "--ollama", &sim.url],
        true,
    );
    plan.expect_code(0);
    let stdout = plan.stdout();
    assert!(
        stdout.contains("Learnt from 2 earlier runs on this server"),
        "{stdout}"
    );
    assert!(
        stdout.contains("load of qwen3:1.7b") && stdout.contains("mmap (1 loads)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("measured: 2 turns in earlier runs"),
        "{stdout}"
    );
}

#[test]
fn a_damaged_knowledge_file_is_a_warning_and_is_replaced() {
    let setup = Setup::new();
    setup.run("first", true, &[]);
    let file = setup.knowledge_file();
    std::fs::write(&file, "{\"version\": 1, \"runs\": ").expect("damaged");

    let (run, wait, loads) = setup.run("second", true, &[]);
    assert!(
        run.stderr().contains("warning:") && run.stderr().contains("is not a knowledge file"),
        "{}",
        run.stderr()
    );
    // It started from the priors, as the first run did, and kept what it learnt.
    assert_eq!(loads, [(false, false)]);
    assert!(wait > 3.0, "{wait}");
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
    assert_eq!(kept["runs"], 1, "{kept:#}");

    // `plan --forget` deletes it.
    let sim = setup.server();
    let plan = setup.agentrun(
        &[
            "plan",
            &setup.path("learn.yaml"),
            "--ollama",
            &sim.url,
            "--forget",
        ],
        true,
    );
    plan.expect_code(0);
    assert!(!file.exists());
    assert!(
        plan.stdout()
            .contains("Learnt from earlier runs: nothing yet"),
        "{}",
        plan.stdout()
    );
}
