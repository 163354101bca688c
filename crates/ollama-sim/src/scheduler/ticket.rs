//! A request's ticket: it logs how the request ended and releases its runner when dropped,
//! so a client that goes away (a dropped future or stream) is accounted for like Ollama's
//! cancelled request context.

use std::sync::Arc;

use super::{RunnerLease, Scheduler};
use crate::log::Event;

/// How a request ended; the default is a client that went away (499).
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub(crate) status: u16,
    pub(crate) done_reason: Option<&'static str>,
    pub(crate) error: Option<String>,
    pub(crate) load_duration_ns: Option<u64>,
    pub(crate) eval_count: Option<u64>,
    pub(crate) prompt: Option<PromptTokens>,
}

/// What became of a request's prompt: kept after the cut to the context, found in the
/// slot's cache, evaluated.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PromptTokens {
    pub(crate) kept: u64,
    pub(crate) cached: u64,
    pub(crate) evaluated: u64,
    /// Messages cut to fit the context.
    pub(crate) dropped_messages: u64,
}

impl Default for Outcome {
    fn default() -> Outcome {
        Outcome {
            status: 499,
            done_reason: None,
            error: Some("request canceled".to_owned()),
            load_duration_ns: None,
            eval_count: None,
            prompt: None,
        }
    }
}

impl Outcome {
    pub(crate) fn done(done_reason: &'static str) -> Outcome {
        Outcome {
            status: 200,
            done_reason: Some(done_reason),
            error: None,
            load_duration_ns: None,
            eval_count: None,
            prompt: None,
        }
    }

    pub(crate) fn failed(status: u16, message: &str) -> Outcome {
        Outcome {
            status,
            done_reason: None,
            error: Some(message.to_owned()),
            load_duration_ns: None,
            eval_count: None,
            prompt: None,
        }
    }
}

/// One chat or generate request in flight.
pub(crate) struct Ticket {
    scheduler: Arc<Scheduler>,
    request_id: u64,
    model: Arc<str>,
    lease: Option<RunnerLease>,
    outcome: Outcome,
}

impl Ticket {
    pub(super) fn new(scheduler: Arc<Scheduler>, request_id: u64, model: Arc<str>) -> Ticket {
        Ticket {
            scheduler,
            request_id,
            model,
            lease: None,
            outcome: Outcome::default(),
        }
    }

    pub(crate) fn request_id(&self) -> u64 {
        self.request_id
    }

    pub(super) fn adopt(&mut self, lease: RunnerLease) {
        self.lease = Some(lease);
    }

    pub(crate) fn lease(&self) -> Option<&RunnerLease> {
        self.lease.as_ref()
    }

    /// Records how the request ended; logged when the ticket drops.
    pub(crate) fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let runner = self.lease.take().map(RunnerLease::disarm);
        let outcome = std::mem::take(&mut self.outcome);
        let mut state = self.scheduler.lock();
        state.log(Event::RequestFinished {
            request_id: self.request_id,
            model: Arc::clone(&self.model),
            status: outcome.status,
            done_reason: outcome.done_reason.map(str::to_owned),
            error: outcome.error,
            load_duration_ns: outcome.load_duration_ns,
            eval_count: outcome.eval_count,
            prompt_tokens_kept: outcome.prompt.map(|p| p.kept),
            prompt_tokens_cached: outcome.prompt.map(|p| p.cached),
            prompt_tokens_evaluated: outcome.prompt.map(|p| p.evaluated),
            prompt_messages_dropped: outcome.prompt.map(|p| p.dropped_messages),
        });
        if let Some(runner_id) = runner {
            state.release(runner_id);
        }
    }
}
