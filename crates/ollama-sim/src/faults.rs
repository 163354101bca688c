//! Injected failures (`POST /sim/faults`): failing and slow loads, broken streams, 503s.

use serde::{Deserialize, Serialize};

use crate::catalogue::normalize_name;

/// The failures to inject. Setting faults replaces the previous set; `POST /sim/reset` clears
/// them. A `model` of `None` matches every model; `times` of `None` fires forever.
///
/// JSON: `{"load_failures":[{"model":"m","times":1}],"slow_loads":[{"model":"m","factor":3}],
/// "stream_errors":[{"after_chunks":2}],"disconnects":[{"model":"m"}],"unavailable_requests":2}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Loads that fail with HTTP 500 after the fixed start-up time.
    pub load_failures: Vec<LoadFailure>,
    /// Loads that make no progress, so the load timeout (`OLLAMA_LOAD_TIMEOUT`) fails them.
    pub stalled_loads: Vec<StalledLoad>,
    /// Loads that take longer.
    pub slow_loads: Vec<SlowLoad>,
    /// Streams that end with an `{"error": ..}` line (status stays 200).
    pub stream_errors: Vec<StreamError>,
    /// Streams whose connection drops without a final chunk.
    pub disconnects: Vec<Disconnect>,
    /// Streams that end cleanly (the response completes) without a `done` chunk.
    pub early_ends: Vec<Disconnect>,
    /// Runtime out-of-memory errors: the reply ends with an error line and, as in Ollama,
    /// every runner is expired (each unloads once idle).
    pub out_of_memory: Vec<Disconnect>,
    /// The next N chat or generate requests get HTTP 503 (server busy).
    pub unavailable_requests: u32,
}

/// A load that fails after the fixed start-up time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadFailure {
    /// The model, or every model.
    #[serde(default)]
    pub model: Option<String>,
    /// The error text; default: Ollama's out-of-memory wording with the model's figures.
    #[serde(default)]
    pub message: Option<String>,
    /// How many loads fail; default: all.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A load that stalls and fails with Ollama's timeout message after the load timeout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StalledLoad {
    /// The model, or every model.
    #[serde(default)]
    pub model: Option<String>,
    /// How many loads stall; default: all.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A load that takes `factor x normal + extra_seconds`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowLoad {
    /// The model, or every model.
    #[serde(default)]
    pub model: Option<String>,
    /// Multiplier of the normal load time; default 1.
    #[serde(default = "one")]
    pub factor: f64,
    /// Simulated seconds added; default 0.
    #[serde(default)]
    pub extra_seconds: f64,
}

fn one() -> f64 {
    1.0
}

/// A reply that fails after some chunks with an error line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamError {
    /// The model, or every model.
    #[serde(default)]
    pub model: Option<String>,
    /// Content chunks sent before the error; default 0.
    #[serde(default)]
    pub after_chunks: u32,
    /// The error text; default `an error was encountered while running the model: unexpected EOF`.
    #[serde(default)]
    pub message: Option<String>,
    /// How many replies fail; default: all.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A reply whose connection drops after some chunks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disconnect {
    /// The model, or every model.
    #[serde(default)]
    pub model: Option<String>,
    /// Content chunks sent before the drop; default 0.
    #[serde(default)]
    pub after_chunks: u32,
    /// How many replies drop; default: all.
    #[serde(default)]
    pub times: Option<u32>,
}

/// A load fault picked for one load.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LoadFault {
    /// Fails after the fixed start-up time, with this message or the default wording.
    Fail(Option<String>),
    /// Never progresses; the load timeout fails it.
    Stall,
}

/// A stream fault picked for one reply.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StreamFault {
    Error { after_chunks: u32, message: String },
    Disconnect { after_chunks: u32 },
    EarlyEnd { after_chunks: u32 },
    OutOfMemory { after_chunks: u32 },
}

impl StreamFault {
    /// Chunks sent before the fault fires.
    pub(crate) fn after_chunks(&self) -> u32 {
        match self {
            StreamFault::Error { after_chunks, .. }
            | StreamFault::Disconnect { after_chunks }
            | StreamFault::EarlyEnd { after_chunks }
            | StreamFault::OutOfMemory { after_chunks } => *after_chunks,
        }
    }
}

/// Ollama's message when the Metal runner runs out of memory mid-generation.
pub(crate) const OUT_OF_MEMORY_MESSAGE: &str = "llama runner process has terminated: error:Insufficient Memory (00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)";

fn matches(filter: &Option<String>, model: &str) -> bool {
    match filter {
        None => true,
        Some(wanted) => normalize_name(wanted) == normalize_name(model),
    }
}

/// Uses up one firing of a fault with `times`; returns whether it fired.
fn fire(times: &mut Option<u32>) -> bool {
    match times {
        None => true,
        Some(0) => false,
        Some(left) => {
            *left -= 1;
            true
        }
    }
}

impl Faults {
    /// Whether any fault is set.
    pub fn is_empty(&self) -> bool {
        *self == Faults::default()
    }

    pub(crate) fn take_unavailable(&mut self) -> bool {
        if self.unavailable_requests > 0 {
            self.unavailable_requests -= 1;
            true
        } else {
            false
        }
    }

    /// The fault due for a load of `model`, if any; stalls come first.
    pub(crate) fn take_load_failure(&mut self, model: &str) -> Option<LoadFault> {
        if let Some(fault) = self
            .stalled_loads
            .iter_mut()
            .find(|fault| matches(&fault.model, model) && fault.times != Some(0))
            && fire(&mut fault.times)
        {
            return Some(LoadFault::Stall);
        }
        self.load_failures
            .iter_mut()
            .find(|fault| matches(&fault.model, model) && fault.times != Some(0))
            .and_then(|fault| {
                fire(&mut fault.times).then(|| LoadFault::Fail(fault.message.clone()))
            })
    }

    /// `(factor, extra_seconds)` for a load of `model`.
    pub(crate) fn slow_load(&self, model: &str) -> (f64, f64) {
        self.slow_loads
            .iter()
            .filter(|fault| matches(&fault.model, model))
            .fold((1.0, 0.0), |(factor, extra), fault| {
                (factor * fault.factor, extra + fault.extra_seconds)
            })
    }

    pub(crate) fn take_stream_fault(&mut self, model: &str) -> Option<StreamFault> {
        if let Some(fault) = self
            .stream_errors
            .iter_mut()
            .find(|fault| matches(&fault.model, model) && fault.times != Some(0))
            && fire(&mut fault.times)
        {
            return Some(StreamFault::Error {
                after_chunks: fault.after_chunks,
                message: fault.message.clone().unwrap_or_else(|| {
                    "an error was encountered while running the model: unexpected EOF".to_owned()
                }),
            });
        }
        for (faults, make) in [
            (
                &mut self.out_of_memory,
                (|after_chunks| StreamFault::OutOfMemory { after_chunks })
                    as fn(u32) -> StreamFault,
            ),
            (&mut self.early_ends, |after_chunks| StreamFault::EarlyEnd {
                after_chunks,
            }),
        ] {
            if let Some(fault) = faults
                .iter_mut()
                .find(|fault| matches(&fault.model, model) && fault.times != Some(0))
                && fire(&mut fault.times)
            {
                return Some(make(fault.after_chunks));
            }
        }
        self.disconnects
            .iter_mut()
            .find(|fault| matches(&fault.model, model) && fault.times != Some(0))
            .and_then(|fault| {
                fire(&mut fault.times).then_some(StreamFault::Disconnect {
                    after_chunks: fault.after_chunks,
                })
            })
    }
}
