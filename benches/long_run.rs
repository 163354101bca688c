//! Memory and time per turn of a long `agentrun run` against a zero-latency simulator.
//!
//! Runs the same two-agent loop for 200 and for 2,000 turns against
//! `ollama-sim --time-scale 0` and prints, as medians over the repeats:
//!
//! - the peak resident set size of the `agentrun` process at turn 200 and at turn 2,000
//!   (a run stopped at turn 200 is the first 200 turns of the long one), and the growth
//!   between them;
//! - the median time per turn (between consecutive `turn_started` events) over the first
//!   and the last 100 turns of the long run;
//! - the lines of the run's `transcript.jsonl` against the turns taken: none may be lost.
//!
//! It builds nothing: it runs the `agentrun` and `ollama-sim` binaries of its own target
//! directory, which must be built first:
//!
//! ```sh
//! cargo build --release -p agentrun -p ollama-sim --bins
//! cargo bench --bench long_run
//! ```
//!
//! The targets: peak RSS grows by less than 10% from turn 200 to turn 2,000, and the last
//! 100 turns are at most 25% slower than the first 100.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, ensure};

/// Turns of the short and the long run.
mod support;

use support::{Binaries, Simulator, median};

const SHORT: u32 = 200;
const LONG: u32 = 2000;
/// How many times each run is repeated; the median is shown.
const REPEATS: usize = 3;
/// The window of turns compared at the start and the end of the long run.
const WINDOW: usize = 100;
/// Largest peak RSS growth from turn 200 to turn 2,000.
const TARGET_GROWTH: f64 = 0.10;
/// How much slower the last 100 turns may be than the first 100.
const TARGET_FLATNESS: f64 = 1.25;

fn main() -> ExitCode {
    support::main("long_run", bench)
}

/// What one run gave.
struct RunFigures {
    peak_rss_kib: u64,
    /// Seconds between consecutive turn starts.
    cycles: Vec<f64>,
    transcript_lines: usize,
}

fn bench() -> Result<ExitCode> {
    let Binaries {
        agentrun,
        sim: sim_binary,
    } = Binaries::locate()?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let workflow = dir.path().join("long-run.yaml");
    std::fs::write(&workflow, support::ping_pong_workflow("long-run", 2000))?;
    let sim = Simulator::start(&sim_binary)?;
    println!("agentrun:   {}", agentrun.display());
    println!("ollama-sim: {} at time scale 0", sim.address);
    println!("workflow:   two agents on qwen3:1.7b, num_predict 8; median of {REPEATS} runs");

    let mut short_rss = Vec::new();
    let mut long_rss = Vec::new();
    let mut first = Vec::new();
    let mut last = Vec::new();
    let mut lost = 0usize;
    for repeat in 0..REPEATS {
        for turns in [SHORT, LONG] {
            let run = run_agentrun(&agentrun, &sim, &workflow, dir.path(), turns, repeat)?;
            lost += (turns as usize).saturating_sub(run.transcript_lines);
            let rss_mb = run.peak_rss_kib as f64 * 1024.0 / 1e6;
            if turns == SHORT {
                short_rss.push(rss_mb);
            } else {
                long_rss.push(rss_mb);
                first.push(median(run.cycles[..WINDOW].to_vec()) * 1e3);
                last.push(median(run.cycles[run.cycles.len() - WINDOW..].to_vec()) * 1e3);
            }
        }
    }
    let (rss_short, rss_long) = (median(short_rss), median(long_rss));
    let growth = rss_long / rss_short - 1.0;
    let (first, last) = (median(first), median(last));
    let flatness = last / first;
    println!();
    println!("peak RSS at turn {SHORT}:   {rss_short:.1} MB");
    println!("peak RSS at turn {LONG}: {rss_long:.1} MB");
    println!(
        "growth:                 {:+.1}% (target < {:.0}%)",
        growth * 100.0,
        TARGET_GROWTH * 100.0
    );
    println!("time per turn, turns 1-{WINDOW}:         {first:.3} ms (median)");
    println!(
        "time per turn, turns {}-{LONG}:   {last:.3} ms (median), x{flatness:.2} (target <= x{TARGET_FLATNESS})",
        LONG as usize - WINDOW + 1
    );
    println!("transcript lines lost:  {lost} over {} runs", REPEATS * 2);
    let met = growth < TARGET_GROWTH && flatness <= TARGET_FLATNESS && lost == 0;
    println!("\n{}", if met { "targets met" } else { "TARGETS MISSED" });
    Ok(ExitCode::SUCCESS)
}

fn run_agentrun(
    agentrun: &Path,
    sim: &Simulator,
    workflow: &Path,
    dir: &Path,
    turns: u32,
    repeat: usize,
) -> Result<RunFigures> {
    post(sim, "/sim/reset")?;
    let name = format!("{turns}-{repeat}");
    let events = dir.join(format!("{name}.events.jsonl"));
    let rss = dir.join(format!("{name}.rss"));
    let runs = dir.join(format!("{name}.runs"));
    let output = Command::new(std::env::current_exe()?)
        .arg("--measure-rss")
        .arg(&rss)
        .arg("--")
        .arg(agentrun)
        .arg("run")
        .arg(workflow)
        .args(["--ollama", &format!("http://{}", sim.address)])
        .args(["--json", "-q", "--max-turns", &turns.to_string()])
        .arg("--events")
        .arg(&events)
        .arg("--runs-dir")
        .arg(&runs)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("cannot run agentrun")?;
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("agentrun printed no JSON summary ({})", output.status))?;
    ensure!(
        summary["turns"].as_u64() == Some(u64::from(turns)),
        "agentrun stopped early: {} after {} turns",
        summary["reason"],
        summary["turns"]
    );
    let peak_rss_kib = std::fs::read_to_string(&rss)?.trim().parse()?;
    let started = turn_starts(&events, turns as usize)?;
    let cycles = started.windows(2).map(|pair| pair[1] - pair[0]).collect();
    Ok(RunFigures {
        peak_rss_kib,
        cycles,
        transcript_lines: transcript_lines(&runs)?,
    })
}

/// When each turn started, in seconds since the run began.
fn turn_starts(events: &Path, turns: usize) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(events)
        .with_context(|| format!("cannot read the events file {}", events.display()))?;
    let mut started = vec![f64::NAN; turns];
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        if event["type"] != "turn_started" {
            continue;
        }
        let turn = event["turn"].as_u64().context("an event without a turn")? as usize;
        if (1..=turns).contains(&turn) {
            started[turn - 1] = event["at_s"].as_f64().context("an event without at_s")?;
        }
    }
    ensure!(
        started.iter().all(|at| at.is_finite()),
        "the events file lacks some turns"
    );
    Ok(started)
}

/// Lines of the one run's transcript under a `--runs-dir`.
fn transcript_lines(runs: &Path) -> Result<usize> {
    let mut total = 0;
    for entry in std::fs::read_dir(runs.join("runs")).context("the runs directory")? {
        let transcript = entry?.path().join("transcript.jsonl");
        total += std::fs::read_to_string(&transcript)
            .with_context(|| format!("cannot read {}", transcript.display()))?
            .lines()
            .filter(|line| !line.trim().is_empty())
            .count();
    }
    Ok(total)
}

/// POSTs an empty body and checks for 200.
fn post(sim: &Simulator, path: &str) -> Result<()> {
    let mut stream = TcpStream::connect(&sim.address)
        .with_context(|| format!("cannot connect to the simulator at {}", sim.address))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        sim.address
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    ensure!(
        response.starts_with("HTTP/1.1 200"),
        "POST {path}: {}",
        response.lines().next().unwrap_or("")
    );
    Ok(())
}
