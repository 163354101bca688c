//! Test support: the real `ollama-sim` and `agentrun` binaries, run as processes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The repository's root.
pub(crate) fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `agentrun` binary cargo built for these tests.
pub(crate) fn agentrun_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_agentrun"))
}

/// The `ollama-sim` binary, built on first use if `cargo test` did not build it
/// already (it belongs to another package of the workspace).
pub(crate) fn sim_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let binary = agentrun_binary().with_file_name("ollama-sim");
        if !binary.exists() {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "ollama-sim", "--bin", "ollama-sim"])
                .current_dir(repo_root())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building ollama-sim failed");
        }
        binary
    })
}

/// A running `ollama-sim` process on a free port, killed on drop.
pub(crate) struct Sim {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
}

impl Sim {
    /// Starts the simulator with extra arguments and waits until it listens.
    pub(crate) fn start(args: &[&str]) -> Sim {
        let ready_dir = tempfile::tempdir().expect("a temporary directory");
        let ready = ready_dir.path().join("ready");
        let mut child = Command::new(sim_binary())
            .args(["--host", "127.0.0.1:0"])
            .arg("--ready-file")
            .arg(&ready)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ollama-sim starts");
        let url = ollama_sim::wait_until_ready(&mut child, &ready, Duration::from_secs(60))
            .unwrap_or_else(|error| panic!("{error}"));
        Sim { child, url }
    }

    /// GETs a path and parses the JSON body.
    pub(crate) fn get_json(&self, path: &str) -> serde_json::Value {
        let body = http(&self.url, "GET", path, None);
        serde_json::from_str(&body).unwrap_or_else(|error| panic!("{path}: {error}: {body}"))
    }

    /// POSTs JSON to a path and returns the body.
    pub(crate) fn post_json(&self, path: &str, body: &serde_json::Value) -> String {
        http(&self.url, "POST", path, Some(&body.to_string()))
    }

    /// The simulator's event log.
    pub(crate) fn log(&self) -> Vec<serde_json::Value> {
        let log = self.get_json("/sim/log");
        match log {
            serde_json::Value::Array(events) => events,
            serde_json::Value::Object(mut object) => match object.remove("events") {
                Some(serde_json::Value::Array(events)) => events,
                _ => panic!("unexpected /sim/log shape"),
            },
            other => panic!("unexpected /sim/log shape: {other}"),
        }
    }
}

impl Sim {
    /// Ends the simulator's process, as a host that goes away mid-run.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client, so tests need no async runtime.
fn http(base: &str, method: &str, path: &str, body: Option<&str>) -> String {
    let address = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(address).expect("the simulator accepts connections");
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request is sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("response is read");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return dechunk(body);
    }
    body.to_owned()
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// Where the tests' runs are kept: under the target directory, never in the repository.
pub(crate) fn runs_dir() -> PathBuf {
    agentrun_binary()
        .parent()
        .expect("the binary is in a directory")
        .join("e2e-runs")
}

/// Runs `agentrun` with arguments from the repository root.
pub(crate) fn agentrun(args: &[&str]) -> Run {
    agentrun_in(repo_root(), args)
}

/// Runs `agentrun` with arguments in a directory.
pub(crate) fn agentrun_in(dir: &Path, args: &[&str]) -> Run {
    agentrun_with(dir, args, &[])
}

/// Runs `agentrun` with arguments and extra environment variables in a directory.
/// Runs and calibration files go under the target directory unless `env` says otherwise.
/// Runs learn nothing across runs unless `env` sets `AGENTRUN_NO_LEARNING=false`: the
/// tests share one home, and one test's runs must not change another's plans.
pub(crate) fn agentrun_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(agentrun_binary())
        .args(args)
        .current_dir(dir)
        .env_remove("OLLAMA_HOST")
        .env_remove("OLLAMA_HOSTS")
        .env_remove("AGENTRUN_HOSTS")
        .env("AGENTRUN_DIR", runs_dir())
        .env("AGENTRUN_HOME", runs_dir().join("home"))
        .env("AGENTRUN_NO_LEARNING", "true")
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .expect("agentrun runs");
    Run {
        args: args.iter().map(|arg| arg.to_string()).collect(),
        output,
    }
}

/// A finished `agentrun` process.
pub(crate) struct Run {
    /// The arguments it was given, for messages.
    pub(crate) args: Vec<String>,
    /// What it printed and how it exited.
    pub(crate) output: Output,
}

impl Run {
    /// Standard output as text.
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit code.
    pub(crate) fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Panics with everything the process printed unless it exited with `code`.
    #[track_caller]
    pub(crate) fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            Some(code),
            "agentrun {:?} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args,
            self.code(),
            self.stdout(),
            self.stderr()
        );
        assert!(
            !self.stderr().contains("panicked"),
            "agentrun {:?} panicked:\n{}",
            self.args,
            self.stderr()
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}", self.stdout()))
    }
}

/// Reads a JSON-lines events file (`--events FILE`).
pub(crate) fn events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("the events file exists")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

/// The events of one `type`.
pub(crate) fn of_type<'a>(
    events: &'a [serde_json::Value],
    kind: &str,
) -> Vec<&'a serde_json::Value> {
    events
        .iter()
        .filter(|event| event["type"] == kind)
        .collect()
}

/// The entries directly in `dir` with their modification times, the build's `target`
/// aside: compared before and after a run, what the run added or changed there.
pub(crate) fn top_level(
    dir: &Path,
) -> std::collections::BTreeMap<String, Option<std::time::SystemTime>> {
    std::fs::read_dir(dir)
        .expect("a readable directory")
        .map(|entry| entry.expect("an entry"))
        .filter(|entry| entry.file_name() != "target")
        .map(|entry| {
            let modified = entry.metadata().and_then(|meta| meta.modified()).ok();
            (entry.file_name().to_string_lossy().into_owned(), modified)
        })
        .collect()
}
