//! The life of one chat or generate request, shared by both endpoints: validation in
//! Ollama's order, unload and preload, scheduling, and the reply plan.

use std::sync::Arc;

use serde_json::Value;
use tokio::time::Instant;

use crate::api::{self, ApiError};
use crate::bandwidth::DecodeCost;
use crate::faults::StreamFault;
use crate::footprint::LoadOptions;
use crate::keep_alive::SessionDuration;
use crate::prompt::Prompt;
use crate::reply::{self, Format, ReplyInput, ReplyPlan};
use crate::scheduler::{Outcome, Ticket};
use crate::script::Query;
use crate::simulator::Inner;
use crate::stream::Generation;

/// The endpoint-independent view of a request.
pub(crate) struct Inference<'a> {
    pub(crate) endpoint: &'static str,
    pub(crate) model: &'a str,
    pub(crate) keep_alive: Option<&'a api::KeepAlive>,
    pub(crate) options: Option<&'a api::Options>,
    pub(crate) format: Option<&'a Value>,
    pub(crate) think: Option<&'a api::Think>,
    pub(crate) uses_tools: bool,
    /// No messages (chat) or an empty prompt (generate): a preload or an unload.
    pub(crate) empty: bool,
    pub(crate) system: Option<&'a str>,
    pub(crate) last_message: &'a str,
    /// Every message's content, in order (chat; empty for generate).
    pub(crate) messages: Vec<&'a str>,
    pub(crate) prompt: Prompt,
    /// The request's `shift` (context shift; absent = on).
    pub(crate) shift: Option<bool>,
}

/// What the handler answers.
pub(crate) enum Prepared {
    /// A one-chunk answer, `done_reason` `load` or `unload`.
    Immediate(&'static str),
    /// A reply to stream.
    Reply(Box<Generation>),
}

pub(crate) async fn prepare(
    inner: &Arc<Inner>,
    request: Inference<'_>,
) -> Result<Prepared, ApiError> {
    let scheduler = &inner.scheduler;
    scheduler.ensure_started();
    let handler_start = Instant::now();
    let num_ctx = request.options.and_then(|options| options.num_ctx);
    let mut ticket = scheduler.arrive(request.endpoint, request.model, num_ctx);
    match run(inner, &request, &mut ticket, handler_start).await {
        Ok(Step::Immediate(done_reason)) => Ok(Prepared::Immediate(done_reason)),
        Ok(Step::Reply(parts)) => Ok(Prepared::Reply(Box::new(Generation {
            scheduler: Arc::clone(scheduler),
            ticket,
            plan: parts.plan,
            prompt: parts.prompt,
            scripted_prompt_tokens: parts.scripted_prompt_tokens,
            handler_start,
            load_seconds: parts.load_seconds,
            prompt_tokens_per_second: parts.decode_tokens_per_second
                * inner.config.decode.prompt_eval_speedup,
            decode: parts.decode,
            kv_bytes_per_token: parts.kv_bytes_per_token,
            stream_chunks: inner.config.replies.stream_chunks,
            fault: parts.fault,
        }))),
        Err(error) => {
            ticket.set_outcome(Outcome::failed(error.status, &error.message));
            Err(error)
        }
    }
}

enum Step {
    Immediate(&'static str),
    Reply(Box<ReplyParts>),
}

struct ReplyParts {
    plan: ReplyPlan,
    prompt: crate::prompt::KeptPrompt,
    scripted_prompt_tokens: Option<u64>,
    load_seconds: f64,
    decode_tokens_per_second: f64,
    /// What decoding costs, without the slot's KV read (known once the slot is taken).
    decode: DecodeCost,
    kv_bytes_per_token: f64,
    fault: Option<StreamFault>,
}

async fn run(
    inner: &Arc<Inner>,
    request: &Inference<'_>,
    ticket: &mut Ticket,
    handler_start: Instant,
) -> Result<Step, ApiError> {
    let scheduler = &inner.scheduler;
    let config = &inner.config;
    // `think` is checked while the body is decoded, before the model name.
    if let Some(think) = request.think {
        think.validate()?;
    }
    if request.model.trim().is_empty() {
        return Err(ApiError::bad_request("model is required"));
    }
    let session = request
        .keep_alive
        .map(SessionDuration::from_request)
        .transpose()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let model = inner
        .catalogue
        .get(request.model)
        .ok_or_else(|| ApiError::model_not_found(request.model))?
        .clone();
    let format = Format::parse(request.format)?;
    if request.empty && session.is_some_and(SessionDuration::is_zero) {
        scheduler.request_unload(&model);
        ticket.set_outcome(Outcome::done("unload"));
        return Ok(Step::Immediate("unload"));
    }
    if !model.has_capability("completion") {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support {}",
            request.model, request.endpoint
        )));
    }
    if request.uses_tools && !model.has_capability("tools") {
        return Err(ApiError::bad_request(format!(
            "{} does not support tools",
            model.full_name()
        )));
    }
    let asked_to_think = request.think.is_some_and(api::Think::is_enabled);
    if asked_to_think && !model.has_capability("thinking") {
        return Err(ApiError::bad_request(format!(
            "\"{}\" does not support thinking",
            request.model
        )));
    }
    if scheduler.take_unavailable() {
        return Err(ApiError::server_busy());
    }
    // Since v0.12.4 a thinking model thinks unless told not to.
    let think = match request.think {
        Some(think) => think.is_enabled(),
        None => model.has_capability("thinking"),
    };
    // Ollama's `resolveContextShift`: on unless asked otherwise, except for deepseek2.
    let shift = request.shift.unwrap_or(model.architecture != "deepseek2");
    let options = LoadOptions::from_request(request.options, Some(shift));
    let (turn, global_turn) = scheduler
        .schedule(ticket, &model, options, session, !request.empty)
        .await?;
    let own_load = ticket.lease().map_or(0.0, |lease| lease.load_seconds());
    let load_seconds = scheduler
        .clock()
        .since(handler_start)
        .max(own_load + config.decode.dispatch_seconds);
    if request.empty {
        let mut outcome = Outcome::done("load");
        outcome.load_duration_ns = Some((load_seconds * 1e9).round() as u64);
        ticket.set_outcome(outcome);
        return Ok(Step::Immediate("load"));
    }
    let (context, gpu_fraction, runner, kv_bytes_per_token) =
        ticket
            .lease()
            .map_or((u64::MAX, 1.0, u64::MAX, 0.0), |lease| {
                (
                    lease.context_per_slot(),
                    lease.gpu_fraction(),
                    lease.runner_id(),
                    lease.kv_bytes_per_token(),
                )
            });
    let cpu_ratio = config.decode.cpu_memory_bandwidth_bytes_per_second
        / config.decode.memory_bandwidth_bytes_per_second;
    let kept = request.prompt.fit(context, shift)?;
    let kept_messages = request.messages.get(kept.start..).unwrap_or(&[]);
    let query = Query {
        model: &model.name,
        system: request.system,
        last_message: request.last_message,
        kept_messages,
        turn,
        global_turn,
    };
    let (plan, scripted_prompt_tokens) = match inner.script.reply_for(&query) {
        Some(scripted) => {
            let prompt_tokens = scripted.prompt_eval_count;
            (reply::scripted(scripted), prompt_tokens)
        }
        None => (
            reply::generated(
                &ReplyInput {
                    model: &model,
                    format,
                    num_predict: request.options.and_then(|o| o.num_predict),
                    seed: request.options.and_then(|o| o.seed),
                    think,
                    last_message: request.last_message,
                },
                &config.replies,
            ),
            None,
        ),
    };
    Ok(Step::Reply(Box::new(ReplyParts {
        plan,
        prompt: kept,
        scripted_prompt_tokens,
        load_seconds,
        decode_tokens_per_second: decode_speed(
            model.decode_tokens_per_second,
            gpu_fraction,
            cpu_ratio,
        ),
        decode: decode_cost(
            runner,
            model.decode_tokens_per_second,
            gpu_fraction,
            cpu_ratio,
            config.decode.efficiency * config.decode.memory_bandwidth_bytes_per_second,
        ),
        kv_bytes_per_token,
        fault: scheduler.take_stream_fault(&model.name),
    })))
}

/// What a token costs alone on `runner`: the GPU and CPU seconds of its step, and the bytes
/// the step reads for the weights (what the GPU speed implies at the stream's bandwidth).
fn decode_cost(
    runner: u64,
    gpu_tokens_per_second: f64,
    gpu_fraction: f64,
    cpu_ratio: f64,
    stream_bytes_per_second: f64,
) -> DecodeCost {
    let gpu_fraction = gpu_fraction.clamp(0.0, 1.0);
    DecodeCost {
        runner,
        gpu_seconds_per_token: gpu_fraction / gpu_tokens_per_second,
        cpu_seconds_per_token: (1.0 - gpu_fraction) / (gpu_tokens_per_second * cpu_ratio),
        weights_bytes: stream_bytes_per_second / gpu_tokens_per_second,
        slot_bytes: 0.0,
    }
}

/// Decode speed when `gpu_fraction` of the layers run on the GPU and the rest on the CPU
/// at `cpu_ratio` of the GPU's speed: the per-token times add up.
fn decode_speed(gpu_tokens_per_second: f64, gpu_fraction: f64, cpu_ratio: f64) -> f64 {
    if gpu_fraction >= 1.0 {
        return gpu_tokens_per_second;
    }
    let cpu_tokens_per_second = gpu_tokens_per_second * cpu_ratio;
    1.0 / (gpu_fraction / gpu_tokens_per_second + (1.0 - gpu_fraction) / cpu_tokens_per_second)
}
