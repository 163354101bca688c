//! Integration tests of the Ollama backend: against byte-exact scripted
//! replies, and against an in-process `ollama-sim`.

mod canned;
mod ollama_rs_gaps;
mod replay;
mod replay_server;
mod sim;
mod slow_load;
mod support;
mod wire;
