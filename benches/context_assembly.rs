//! The cost of assembling a model agent's context, per turn.
//!
//! A TDD conversation of 1,000 turns (a model's reply, then a command's failing output, in
//! turn) is built up one turn at a time; at each turn after the 1,000th the listening agent
//! takes in the new turn and assembles its prompt: the choice of what is kept (pins, elided
//! output, dropped turns) and the rendered messages. Printed per strategy: the median and
//! the 99th percentile time per turn, and the messages assembled.
//!
//! - `window, 1000 msgs` and `messages, 1000`: every turn renders the newest 1,000 messages;
//! - `budget, ~1000 msgs`: a budget of about 1,000 messages, with pins, elided output and
//!   dropped turns (between 700 and 1,000 messages sent);
//! - `budget, 32k`, `window, 32k` (`num_ctx` 32768) and `messages, 12` for comparison.
//!
//! ```sh
//! cargo bench --bench context_assembly
//! ```
//!
//! The target is under 50 µs per turn for a context of 1,000 messages.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use agentrun::{
    AgentMemory, AssemblyConfig, EdgeTarget, Pin, Strategy, TokenEstimator, TranscriptEntry,
};

/// Turns in the conversation when timing starts.
const HISTORY: u32 = 1_000;
/// Turns timed.
const TIMED: u32 = 2_000;
/// The target, per turn, for 1,000 messages.
const TARGET: Duration = Duration::from_micros(50);

fn entry(turn: u32) -> TranscriptEntry {
    let command = turn.is_multiple_of(2);
    TranscriptEntry {
        turn,
        agent: if command { "tests" } else { "coder" }.to_owned(),
        model: (!command).then(|| "qwen3-coder:32b".to_owned()),
        text: if command {
            format!(
                "`cargo test` failed (exit status 101)\n{}",
                "test output line\n".repeat(8)
            )
        } else {
            format!(
                "Turn {turn}: changed the parser so the failing case passes. {}",
                "x".repeat(40)
            )
        },
        choice: None,
        passed: command.then_some(false),
        next: EdgeTarget::End,
        load_wait_s: 0.0,
        generation_s: 1.0,
        tokens: 40,
        resident: Vec::new(),
        started_s: 0.0,
        tool_calls: Vec::new(),
        thinking: None,
        cut_off: false,
        context: None,
        branch: None,
    }
}

/// Times `TIMED` turns of one strategy; returns the per-turn times and the messages sent at
/// the last turn.
fn time(strategy: Strategy, budget_tokens: u64, pins: &[Pin]) -> (Vec<Duration>, usize) {
    let estimator = TokenEstimator::new();
    let mut conversation: Vec<TranscriptEntry> = (1..=HISTORY).map(entry).collect();
    let mut memory = AgentMemory::default();
    let config = AssemblyConfig {
        strategy,
        pins,
        budget_tokens,
        fixed_tokens: 600,
        summary_tokens: 0,
        estimator: &estimator,
    };
    memory.update(&conversation, "coder");
    let selection = memory.plan(&config);
    let _ = memory.render(
        &selection,
        "You are the programmer.",
        "Fix the parser.",
        None,
    );
    let mut times = Vec::with_capacity(TIMED as usize);
    let mut sent = 0;
    for turn in HISTORY + 1..=HISTORY + TIMED {
        conversation.push(entry(turn));
        // The executor keeps a bounded transcript; so does the benchmark.
        if conversation.len() > 2 * HISTORY as usize {
            conversation.drain(..HISTORY as usize);
        }
        let started = Instant::now();
        memory.update(&conversation, "coder");
        let selection = memory.plan(&config);
        let messages = memory.render(
            &selection,
            "You are the programmer.",
            "Fix the parser.",
            None,
        );
        times.push(started.elapsed());
        sent = messages.len();
        std::hint::black_box(messages);
    }
    (times, sent)
}

fn percentile(times: &mut [Duration], share: f64) -> Duration {
    times.sort_unstable();
    times[((times.len() - 1) as f64 * share).round() as usize]
}

fn main() -> ExitCode {
    let pins = [
        Pin::Latest("architect".to_owned()),
        Pin::Of {
            agent: "tests".to_owned(),
            failed: true,
        },
    ];
    // (name, strategy, budget in tokens, pins, whether the 1,000-message target applies)
    let cases: [(&str, Strategy, u64, &[Pin], bool); 6] = [
        (
            "window, 1000 msgs",
            Strategy::Window(1_000),
            u64::MAX,
            &[],
            true,
        ),
        (
            "messages, 1000",
            Strategy::Messages(1_000),
            u64::MAX,
            &[],
            true,
        ),
        // About 45 tokens a message: 700 to 1,000 messages between two shrinks.
        ("budget, ~1000 msgs", Strategy::Budget, 45_000, &pins, true),
        ("budget, 32k", Strategy::Budget, 28_000, &pins, false),
        ("window, 32k", Strategy::Window(10_000), 28_000, &[], false),
        ("messages, 12", Strategy::Messages(12), u64::MAX, &[], false),
    ];
    println!("context assembly per turn, {HISTORY} turns of history, {TIMED} turns timed");
    println!(
        "{:<18} {:>10} {:>10} {:>10}",
        "strategy", "median", "p99", "messages"
    );
    let mut within = true;
    for (name, strategy, budget, pins, target_applies) in cases {
        let (mut times, sent) = time(strategy, budget, pins);
        let median = percentile(&mut times, 0.5);
        let p99 = percentile(&mut times, 0.99);
        println!(
            "{name:<18} {:>7.1} µs {:>7.1} µs {sent:>10}",
            median.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
        if target_applies && median > TARGET {
            within = false;
        }
    }
    if within {
        println!(
            "target: under {} µs per turn for 1,000 messages: met",
            TARGET.as_micros()
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "target: under {} µs per turn for 1,000 messages: MISSED",
            TARGET.as_micros()
        );
        ExitCode::FAILURE
    }
}
