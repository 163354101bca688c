//! What confinement adds to starting a command: `true` started bare, and through the
//! launcher in each mode, timed from spawn to exit (median wall time), with the CPU time the
//! processes used (mean of user and system time), which other work on the machine does not
//! inflate.
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
    let launcher = match arguments
        .iter()
        .position(|argument| argument == "--entry-point")
    {
        Some(index) => Launcher::entry_point(Path::new(
            arguments
                .get(index + 1)
                .expect("--entry-point needs a path"),
        )),
        None => Launcher::binary(Path::new(env!("CARGO_BIN_EXE_agentrun-sandbox"))),
    };
    let sandbox = Sandbox::with_launcher(launcher.clone());
    let plain = tempfile::tempdir().expect("a temp dir");
    // A repository, as most workspaces are: its `.git` is bound read-only, which costs a
    // mount namespace.
    let repository = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir(repository.path().join(".git")).expect("a .git");
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let argv = vec!["true".to_owned()];

    println!(
        "start cost of `true`, median of {RUNS} runs (launcher {})",
        launcher.program().display()
    );
    let bare = median(|| {
        let started = Instant::now();
        let status = Command::new("true").status().expect("true runs");
        assert!(status.success());
        started.elapsed()
    });
    println!(
        "  {:<29} {:>7.2} ms wall   {:>5.2} ms cpu",
        "bare:",
        millis(bare.wall),
        millis(bare.cpu)
    );
    for (workspace, kind) in [(&plain, "plain dir"), (&repository, "with .git")] {
        for mode in [
            SandboxMode::Network,
            SandboxMode::WorkspaceWrite,
            SandboxMode::ReadOnly,
        ] {
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
                "  {:<29} {:>7.2} ms wall (+{:.2})   {:>5.2} ms cpu (+{:.2})",
                format!("{mode}, {kind}:"),
                millis(time.wall),
                millis(time.wall.saturating_sub(bare.wall)),
                millis(time.cpu),
                millis(time.cpu.saturating_sub(bare.cpu))
            );
        }
    }
}

/// The median wall time of `run`, and the mean CPU time of the processes it waited for.
fn median(mut run: impl FnMut() -> Duration) -> Figures {
    // A few runs first, so the page cache holds the binaries.
    for _ in 0..5 {
        run();
    }
    let cpu_before = children_cpu();
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    let cpu = (children_cpu() - cpu_before) / RUNS as u32;
    times.sort();
    Figures {
        wall: times[RUNS / 2],
        cpu,
    }
}

struct Figures {
    wall: Duration,
    cpu: Duration,
}

/// User and system time of all waited-for children so far.
fn children_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let micros = |time: nix::sys::time::TimeVal| {
        Duration::from_secs(time.tv_sec() as u64) + Duration::from_micros(time.tv_usec() as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
