//! What confinement adds to starting a command: `true` started bare, and through the
//! launcher in each mode, timed from spawn to exit.
//!
//! Run with `cargo bench -p agentrun-sandbox`. To time the `agentrun` binary as its own
//! launcher (as the CLI uses it), build it and pass it:
//! `cargo build --release && cargo bench -p agentrun-sandbox --bench start_cost -- --entry-point $PWD/target/release/agentrun` (an absolute path: cargo runs benchmarks in the crate directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agentrun_sandbox::{Launcher, Sandbox, SandboxMode, SandboxPolicy};

const RUNS: usize = 200;

fn main() {
    let arguments: Vec<String> = std::env::args().collect();
    let launcher = match arguments.iter().position(|argument| argument == "--entry-point") {
        Some(index) => Launcher::entry_point(Path::new(
            arguments.get(index + 1).expect("--entry-point needs a path"),
        )),
        None => Launcher::binary(Path::new(env!("CARGO_BIN_EXE_agentrun-sandbox"))),
    };
    let sandbox = Sandbox::with_launcher(launcher.clone());
    let workspace = tempfile::tempdir().expect("a temp dir");
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let argv = vec!["true".to_owned()];

    println!("start cost of `true`, median of {RUNS} runs (launcher {})", launcher.program().display());
    let bare = median(|| {
        let started = Instant::now();
        let status = Command::new("true").status().expect("true runs");
        assert!(status.success());
        started.elapsed()
    });
    println!("  bare:              {:>7.2} ms", millis(bare));
    for mode in [SandboxMode::Network, SandboxMode::WorkspaceWrite, SandboxMode::ReadOnly] {
        let policy = SandboxPolicy::new(mode, workspace.path(), home.as_deref(), &[]);
        let time = median(|| {
            let started = Instant::now();
            let confined = sandbox
                .prepare(&policy, &argv, workspace.path(), &BTreeMap::new())
                .expect("confined");
            let status = Command::new(&confined.argv[0])
                .args(&confined.argv[1..])
                .envs(&confined.env)
                .status()
                .expect("the launcher runs");
            assert!(status.success(), "the confined command failed");
            drop(confined);
            started.elapsed()
        });
        println!(
            "  {:<18} {:>7.2} ms   (+{:.2} ms)",
            format!("{mode}:"),
            millis(time),
            millis(time.saturating_sub(bare))
        );
    }
}

fn median(mut run: impl FnMut() -> Duration) -> Duration {
    // A few runs first, so the page cache holds the binaries.
    for _ in 0..5 {
        run();
    }
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    times.sort();
    times[RUNS / 2]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
