//! Embedding agentrun: load a workflow, run it on the built-in simulator, print the events.
//!
//! Run with `cargo run --example embed`. The simulator answers with the replies scripted for
//! the review workflow (`workflows/sim/review.yaml`): one round of changes, then approval.
//! Swap `SimBackend` for
//! `OllamaBackend::new("http://127.0.0.1:11434", OllamaConfig::default())?` to use a real server.

use std::sync::Arc;

use agentrun::{Event, EventSink, Executor, RunOptions, SimBackend, SimScript, Workflow};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workflow = Workflow::from_yaml_file("workflows/review.yaml".as_ref())?;
    // One simulated second takes a millisecond, so the run finishes at once.
    let backend = SimBackend::target_mac(0.001);
    // Without a script the simulator's replies are filler text that never approves.
    backend
        .simulator()
        .set_script(SimScript::from_file("workflows/sim/review.yaml".as_ref())?);
    let backend = Arc::new(backend);
    let (events, mut receiver) = EventSink::channel();
    let printer = tokio::spawn(async move {
        while let Some(event) = receiver.recv().await {
            match event {
                Event::TurnStarted { turn, agent, .. } => println!("turn {turn}: {agent}"),
                Event::EdgeTaken { from, to } => println!("  {from} -> {to}"),
                _ => {}
            }
        }
    });
    let executor = Executor::new(workflow, backend).with_events(events);
    let options = RunOptions::new("Write a function that reverses a string.");
    let outcome = executor.run(options).await?;
    drop(executor);
    printer.await?;
    println!(
        "{}: {} ({}) after {} turns, {:.1} s waiting for model loads",
        outcome.summary.workflow,
        outcome.summary.status.as_str(),
        outcome.summary.reason,
        outcome.summary.turns,
        outcome.summary.load_wait_s
    );
    Ok(())
}
