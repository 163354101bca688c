//! Conformance tests: the real `ollama-sim` binary driven over HTTP, one test per simulated
//! rule of Ollama's scheduler (rule numbers refer to the Ollama facts the simulator follows),
//! plus the REST surface, scripts, faults and virtual time.

mod bandwidth;
mod binary;
mod errors;
mod fidelity;
mod keep_alive;
mod lifecycle;
mod memory;
mod official_clients;
mod replies;
mod scheduler;
mod support;
mod surface;
mod virtual_time;
