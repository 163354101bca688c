//! Every residency policy on random workflows ([`agentrun::RandomWorkflow`]): chains, router
//! fan-outs, TDD loops and mixtures, one to six models, budgets from 16 to 128 GB.
//!
//! Each workflow is simulated on five drawn futures (seeds) at two load modes, Ollama's
//! default (mmap) and `auto`, every policy at the same one. It prints the distribution
//! (median, p90, worst) over workflows of the seed-summed load waits as ratios:
//! smart/bound, oracle/bound, static/smart and ollama-default/smart, and lists every
//! workflow where smart waits more than 1 % longer than static or ollama-default at the same
//! load mode, summed over the seeds, and the workflows where smart is furthest above the
//! bound (by ratio and in seconds); last, the bound's computation time per turn.
//!
//! ```sh
//! cargo bench --bench random_workflows              # 200 workflows
//! RANDOM_WORKFLOWS=50 cargo bench --bench random_workflows
//! ```
//!
//! The bound is checked on the way: a policy waiting less than it stops the benchmark.

use std::process::ExitCode;
use std::time::Instant;

use agentrun::{LoadModeChoice, Policy, RandomWorkflow, SimulationOptions};

/// Workflows drawn, unless `RANDOM_WORKFLOWS` says otherwise.
const WORKFLOWS: u64 = 200;
/// Futures drawn per workflow.
const SEEDS: u64 = 5;
/// Turns per simulated run.
const MAX_TURNS: u32 = 100;
/// Smart may wait this much longer than a baseline before the workflow is listed.
const TOLERANCE: f64 = 1.01;
/// Waits below this many seconds in total count as none (ratios of nothing are noise).
const NEGLIGIBLE_S: f64 = 0.5;

/// Seed-summed figures of one workflow at one load mode.
#[derive(Debug, Default, Clone)]
struct Sums {
    bound: f64,
    smart: f64,
    oracle: f64,
    fixed: f64,
    default: f64,
}

/// Which tail of a ratio's distribution is the bad one.
#[derive(Clone, Copy)]
enum Tail {
    /// Higher is worse (a policy over the bound): p90 and the maximum.
    High,
    /// Lower is worse (a baseline over smart): p10 and the minimum.
    Low,
}

/// Prints the median, the bad tail's 10 % quantile and its extreme of `num / den` over the
/// workflows at one load mode.
fn print_ratio(
    name: &str,
    rows: &[(RandomWorkflow, [Sums; 2])],
    slot: usize,
    tail: Tail,
    num: &dyn Fn(&Sums) -> f64,
    den: &dyn Fn(&Sums) -> f64,
) {
    let mut values: Vec<f64> = rows
        .iter()
        .map(|(_, sums)| &sums[slot])
        .filter(|s| den(s) > NEGLIGIBLE_S)
        .map(|s| num(s) / den(s))
        .collect();
    values.sort_by(f64::total_cmp);
    let (Some(&lowest), Some(&highest)) = (values.first(), values.last()) else {
        println!("{name:<22} {:>8}", "-");
        return;
    };
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    let (quantile, worst) = match tail {
        Tail::High => (at(0.9), highest),
        Tail::Low => (at(0.1), lowest),
    };
    println!(
        "{name:<22} {:>8.3} {:>8.3} {:>8.3} {:>9}",
        at(0.5),
        quantile,
        worst,
        values.len()
    );
}

fn main() -> ExitCode {
    let workflows = std::env::var("RANDOM_WORKFLOWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(WORKFLOWS);
    let modes = [LoadModeChoice::Mmap, LoadModeChoice::Auto];
    let started = Instant::now();
    let mut rows: Vec<(RandomWorkflow, [Sums; 2])> = Vec::new();
    let mut bound_time_per_turn = Vec::new();
    for index in 0..workflows {
        let random = RandomWorkflow::generate(index, MAX_TURNS);
        let mut sums = [Sums::default(), Sums::default()];
        for (slot, &mode) in modes.iter().enumerate() {
            for seed in 0..SEEDS {
                let options = SimulationOptions {
                    seed: Some(seed + 1),
                    policies: Policy::ALL.to_vec(),
                    load_mode: Some(mode),
                    machine: random.machine.clone(),
                    keep_events: false,
                    branches: agentrun::BranchMode::Planned,
                    hosts: Vec::new(),
                };
                let report = match agentrun::simulate(&random.workflow, &options) {
                    Ok(report) => report,
                    Err(error) => {
                        eprintln!("{}: {error}", random.describe());
                        return ExitCode::FAILURE;
                    }
                };
                if report.turns > 0 {
                    bound_time_per_turn.push(report.bound_compute_s / report.turns as f64);
                }
                let wait = |policy| report.policies[&policy].load_wait_s;
                for policy in Policy::ALL {
                    if wait(*policy) < report.bound_s - 1e-6 {
                        eprintln!(
                            "{} seed {}: {} waits {:.3} s, below the bound {:.3} s",
                            random.describe(),
                            seed + 1,
                            policy.name(),
                            wait(*policy),
                            report.bound_s
                        );
                        return ExitCode::FAILURE;
                    }
                }
                let s = &mut sums[slot];
                s.bound += report.bound_s;
                s.smart += wait(Policy::Smart);
                s.oracle += wait(Policy::Oracle);
                s.fixed += wait(Policy::Static);
                s.default += wait(Policy::OllamaDefault);
            }
        }
        rows.push((random, sums));
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "random_workflows: {workflows} workflows x {SEEDS} seeds x 2 load modes x 4 policies, \
         {MAX_TURNS} turns each, in {elapsed:.1} s"
    );
    for (slot, mode) in modes.iter().enumerate() {
        println!("\nload mode {} for every policy:", mode.name());
        println!(
            "{:<22} {:>8} {:>8} {:>8} {:>9}",
            "ratio (seed sums)", "median", "p90", "worst", "workflows"
        );
        print_ratio("smart/bound", &rows, slot, Tail::High, &|s| s.smart, &|s| {
            s.bound
        });
        print_ratio(
            "oracle/bound",
            &rows,
            slot,
            Tail::High,
            &|s| s.oracle,
            &|s| s.bound,
        );
        // For the baselines over smart the bad tail is the low one: p10 and the minimum.
        println!(
            "{:<22} {:>8} {:>8} {:>8} {:>9}",
            "", "median", "p10", "worst", "workflows"
        );
        let smart = |s: &Sums| s.smart;
        print_ratio("static/smart", &rows, slot, Tail::Low, &|s| s.fixed, &smart);
        print_ratio(
            "ollama-default/smart",
            &rows,
            slot,
            Tail::Low,
            &|s| s.default,
            &smart,
        );
        let losses: Vec<String> = rows
            .iter()
            .filter(|(_, sums)| {
                let s = &sums[slot];
                s.smart > NEGLIGIBLE_S
                    && (s.smart > TOLERANCE * s.fixed || s.smart > TOLERANCE * s.default)
            })
            .map(|(random, sums)| {
                let s = &sums[slot];
                format!(
                    "  {}: smart {:.1} s, static {:.1} s, ollama-default {:.1} s, oracle {:.1} s, bound {:.1} s",
                    random.describe(),
                    s.smart,
                    s.fixed,
                    s.default,
                    s.oracle,
                    s.bound
                )
            })
            .collect();
        println!(
            "workflows where smart waits over 1 % longer than static or ollama-default: {}",
            losses.len()
        );
        for line in &losses {
            println!("{line}");
        }
        let mut worst: Vec<&(RandomWorkflow, [Sums; 2])> = rows
            .iter()
            .filter(|(_, sums)| sums[slot].smart > NEGLIGIBLE_S)
            .collect();
        worst.sort_by(|a, b| {
            let excess = |s: &Sums| s.smart - s.bound;
            excess(&b.1[slot]).total_cmp(&excess(&a.1[slot]))
        });
        let mut by_ratio: Vec<&(RandomWorkflow, [Sums; 2])> = rows
            .iter()
            .filter(|(_, sums)| sums[slot].bound > NEGLIGIBLE_S)
            .collect();
        by_ratio.sort_by(|a, b| {
            let ratio = |s: &Sums| s.smart / s.bound;
            ratio(&b.1[slot]).total_cmp(&ratio(&a.1[slot]))
        });
        println!("largest smart/bound:");
        for (random, sums) in by_ratio.iter().take(5) {
            let s = &sums[slot];
            println!(
                "  {}: smart/bound {:.1}, smart {:.1} s, oracle {:.1} s, bound {:.1} s, static {:.1} s",
                random.describe(),
                s.smart / s.bound,
                s.smart,
                s.oracle,
                s.bound,
                s.fixed
            );
        }
        println!("largest excess of smart over the bound:");
        for (random, sums) in worst.iter().take(5) {
            let s = &sums[slot];
            println!(
                "  {}: smart {:.1} s, oracle {:.1} s, bound {:.1} s, static {:.1} s",
                random.describe(),
                s.smart,
                s.oracle,
                s.bound,
                s.fixed
            );
        }
    }
    bound_time_per_turn.sort_by(f64::total_cmp);
    if let Some(median) = bound_time_per_turn.get(bound_time_per_turn.len() / 2) {
        println!(
            "\nbound computation: median {:.2} us per turn ({:.2} ms for 300 turns)",
            median * 1e6,
            median * 300.0 * 1e3
        );
    }
    ExitCode::SUCCESS
}
