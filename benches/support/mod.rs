//! What the benchmarks share: the binaries they run, the simulator they run against, the
//! peak RSS of a child process, and medians.
//!
//! Each benchmark re-runs itself as `BENCH --measure-rss FILE -- PROGRAM ARGS...` to measure
//! one `agentrun` process at a time.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};

/// The benchmark's `main`: dispatches the `--measure-rss` re-run, else runs `bench`.
pub(crate) fn main(name: &str, bench: fn() -> Result<ExitCode>) -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("--measure-rss") {
        measure_rss(&args[2..])
    } else {
        bench()
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{name}: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--measure-rss FILE -- PROGRAM ARGS...`: runs PROGRAM with this process's stdio, then
/// writes its peak RSS in KiB to FILE and exits with its status.
///
/// A process of its own per run, because `getrusage(RUSAGE_CHILDREN)` reports the largest
/// child ever waited for: in the benchmark's own process that would mix the runs together
/// (and the simulator, once it is stopped).
fn measure_rss(args: &[String]) -> Result<ExitCode> {
    let [out, separator, program, rest @ ..] = args else {
        bail!("usage: --measure-rss FILE -- PROGRAM ARGS...");
    };
    ensure!(
        separator == "--",
        "usage: --measure-rss FILE -- PROGRAM ARGS..."
    );
    let status = Command::new(program)
        .args(rest)
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    std::fs::write(out, children_peak_rss_kib()?.to_string())?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// The peak RSS of the largest child waited for, in KiB.
#[cfg(unix)]
fn children_peak_rss_kib() -> Result<u64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .context("getrusage(RUSAGE_CHILDREN)")?;
    let max_rss = u64::try_from(usage.max_rss()).unwrap_or(0);
    // macOS reports ru_maxrss in bytes, Linux in KiB.
    Ok(if cfg!(target_os = "macos") {
        max_rss / 1024
    } else {
        max_rss
    })
}

#[cfg(not(unix))]
fn children_peak_rss_kib() -> Result<u64> {
    bail!("measuring a child's peak RSS needs getrusage (Unix)")
}

/// The two binaries, next to this benchmark's own target directory.
pub(crate) struct Binaries {
    pub(crate) agentrun: PathBuf,
    pub(crate) sim: PathBuf,
}

impl Binaries {
    /// Bench executables live in `target/<profile>/deps/`; the binaries one level up.
    pub(crate) fn locate() -> Result<Binaries> {
        let exe = std::env::current_exe().context("cannot locate the benchmark executable")?;
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .context("the benchmark executable has no parent directory")?;
        let binaries = Binaries {
            agentrun: profile_dir.join(format!("agentrun{}", std::env::consts::EXE_SUFFIX)),
            sim: profile_dir.join(format!("ollama-sim{}", std::env::consts::EXE_SUFFIX)),
        };
        for binary in [&binaries.agentrun, &binaries.sim] {
            ensure!(
                binary.is_file(),
                "{} is missing; build the binaries first, with the same CARGO_TARGET_DIR:\n    \
                 cargo build --release -p agentrun -p ollama-sim --bins",
                binary.display()
            );
        }
        Ok(binaries)
    }
}

/// A running `ollama-sim`, stopped when dropped.
pub(crate) struct Simulator {
    child: Child,
    /// `host:port`.
    pub(crate) address: String,
}

impl Simulator {
    pub(crate) fn start(binary: &Path) -> Result<Simulator> {
        let ready_dir = tempfile::tempdir().context("a temporary directory")?;
        let ready = ready_dir.path().join("ready");
        let mut child = Command::new(binary)
            .args(["--host", "127.0.0.1:0", "--time-scale", "0"])
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let url = match ollama_sim::wait_until_ready(&mut child, &ready, Duration::from_secs(60)) {
            Ok(url) => url,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the simulator did not start: {error}");
            }
        };
        let address = url.trim_start_matches("http://").to_owned();
        Ok(Simulator { child, address })
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The median; NaN for no values.
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Two agents on one model, replying in 8 tokens, looping until the turn limit:
/// unscripted simulator replies never say APPROVED.
pub(crate) fn ping_pong_workflow(name: &str, max_turns: u32) -> String {
    format!(
        r#"name: {name}
description: Two agents answering each other in a few tokens, until the turn limit.
task: "Say something short."
agents:
  a:
    model: qwen3:1.7b
    prompt: You are A.
    options: {{ num_ctx: 4096, num_predict: 8 }}
  b:
    model: qwen3:1.7b
    prompt: You are B.
    options: {{ num_ctx: 4096, num_predict: 8 }}
flow:
  start: a
  edges:
    - {{ from: a, to: b }}
    - {{ from: b, to: end, when: {{ matches: "^\\s*APPROVED\\s*$" }} }}
    - {{ from: b, to: a }}
limits: {{ max_turns: {max_turns} }}
memory: {{ gpu_budget: 54GB }}
"#
    )
}
