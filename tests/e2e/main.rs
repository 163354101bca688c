//! End-to-end tests: the real `agentrun` binary against the real `ollama-sim`
//! binary over HTTP, with real files and processes.

mod cli;
mod context;
mod dry_run;
mod events_schema;
mod examples;
mod faults;
mod first_run;
mod four_specialists;
mod hosts;
mod learning;
mod mcp;
mod mcp_server;
mod parallel;
mod real_servers;
#[path = "../../crates/agentrun-ollama/tests/backend/replay_server.rs"]
mod replay_server;
mod report;
mod resume;
mod run;
mod sandbox;
mod schemas;
mod shared_model;
mod simulate_policies;
mod support;
mod tdd_cycle;
mod untrusted;
mod validate;
