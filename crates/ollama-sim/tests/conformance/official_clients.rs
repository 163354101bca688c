//! Ollama's official clients against the binary: the Python and JavaScript packages, exactly
//! as published, make the calls programs make (list, show, a preload, ps, chat with thinking,
//! streamed chat, tools, the errors, an unload) and check every answer. Their request shapes
//! are the ones real programs send, so a simulator that drifts from them fails here.
//!
//! The clients come from the package registries (`.ci/run` installs them): `pip install
//! ollama==0.6.3` and `npm ci` in `tests/clients/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Sim;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs one client script against a fresh simulator; the script checks every answer.
fn run_client(program: &str, script: &str) {
    let sim = Sim::start();
    let output = Command::new(program)
        .arg(clients_dir().join(script))
        .arg(&sim.url)
        .current_dir(clients_dir())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|error| panic!("{script} printed no report ({error}): {stdout}"));
    assert!(
        report["streamed_pieces"].as_u64().is_some_and(|n| n > 1),
        "{report}"
    );
    assert!(
        report["chat_thinking_chars"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "a thinking model thinks when asked: {report}"
    );
}

#[test]
#[ignore = "needs Ollama's Python client: python3 -m pip install ollama==0.6.3"]
fn the_official_python_client_reads_every_answer() {
    run_client("python3", "official_python.py");
}

#[test]
#[ignore = "needs Node.js and Ollama's JavaScript client: npm ci in crates/ollama-sim/tests/clients"]
fn the_official_javascript_client_reads_every_answer() {
    run_client("node", "official_js.mjs");
}
