//! Assumptions about the target machine's memory (an M4 Pro Mac), one source for agentrun's
//! planner and ollama-sim's default physics, so that what the planner expects is what the
//! simulator does unless a scenario says otherwise.
//!
//! Decoding is memory bound: each token reads the weights once. One decode stream alone reaches
//! [`DECODE_EFFICIENCY`] of the bandwidth; several streams decoding at once (two models, or
//! requests the server cannot batch) reach at most [`CONCURRENT_DECODE_EFFICIENCY`] together,
//! so two models decoding at once gain, but far from twice. Both shares are assumptions about
//! the hardware, not measurements of it: `agentrun calibrate` measures the single-stream speed
//! of a real server.

/// The target machine's memory bandwidth, bytes per second (M4 Pro: 273 GB/s).
pub const MEMORY_BANDWIDTH_BYTES_PER_SECOND: f64 = 273.0e9;

/// The share of the memory bandwidth one decode stream reaches alone.
pub const DECODE_EFFICIENCY: f64 = 0.7;

/// The share of the memory bandwidth every decode stream together reaches at most (at least
/// [`DECODE_EFFICIENCY`]).
pub const CONCURRENT_DECODE_EFFICIENCY: f64 = 0.85;
