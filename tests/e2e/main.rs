//! End-to-end tests: the real `agentrun` binary against the real `ollama-sim`
//! binary over HTTP, with real files and processes.

mod cli;
mod events_schema;
mod faults;
mod report;
mod resume;
mod run;
mod sandbox;
mod simulate_policies;
mod support;
mod tdd_cycle;
mod untrusted;
mod validate;
