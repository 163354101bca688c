//! End-to-end tests: the real `agentrun` binary against the real `ollama-sim`
//! binary over HTTP, with real files and processes.

mod cli;
mod run;
mod simulate_policies;
mod support;
mod tdd_cycle;
mod validate;
