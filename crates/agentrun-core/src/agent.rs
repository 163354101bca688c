//! The `Agent` trait and the built-in model agent (with its router variant).

use std::sync::Arc;
use std::time::Duration;

use agentrun_spec::{AgentSpec, KindName};
use async_trait::async_trait;

use self::out_of_memory::{explained, free_memory_for, is_out_of_memory};
use agentrun_spec::Think;

use crate::backend::{
    BackendError, CallMetrics, ChatRequest, ChatResponse, DoneReason, KeepAlive, ModelBackend,
    ModelOptions, ToolSpec,
};
use crate::console::Console;
use crate::context::prompt::{TurnPrompt, tools_bytes, turn_prompt};
use crate::event::{Event, EventSink};
use crate::message::Message;
use crate::tools::{Tool, Workspace};
use crate::transcript::{ToolRecord, TranscriptEntry};

/// How the executor wants a turn's model call made.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCall {
    /// The model to call.
    pub model: String,
    /// Options: the model's fixed load-time options and the agent's sampling options.
    pub options: ModelOptions,
    /// The `keep_alive` the residency planner chose for this call.
    pub keep_alive: Option<KeepAlive>,
}

/// Everything an agent sees when it takes a turn.
pub struct TurnContext<'a> {
    /// The agent's definition.
    pub spec: &'a AgentSpec,
    /// 1-based turn number.
    pub turn: u32,
    /// The task the run was given.
    pub task: &'a str,
    /// The conversation so far, oldest first.
    pub conversation: &'a [TranscriptEntry],
    /// The model server.
    pub backend: &'a dyn ModelBackend,
    /// The model call to make, for agents that have a model.
    pub call: Option<ModelCall>,
    /// Where to report progress (streamed text, retries, router decisions, tool calls).
    pub events: &'a EventSink,
    /// The directory the run works in: commands run there, tools act inside it.
    pub workspace: &'a Workspace,
    /// The tools the agent's model may call.
    pub tools: &'a [Arc<dyn Tool>],
    /// The person at the terminal; `None` in a non-interactive run.
    pub console: Option<&'a dyn Console>,
    /// What each agent's context kept from turn to turn, and each model's token estimate;
    /// `None`: every turn assembles its context afresh.
    pub context_state: Option<&'a crate::context::ContextState>,
    /// The call that writes a `summarize` context's running summary (the summarizer
    /// agent's model with its options); `None`: the agent's own model.
    pub summarizer: Option<ModelCall>,
    /// Real seconds per reported second (see [`crate::RunOptions::time_scale`]), to report
    /// work measured on the wall clock in the run's time.
    pub time_scale: f64,
}

impl TurnContext<'_> {
    /// A real duration in the run's reported time.
    pub fn reported(&self, real: Duration) -> Duration {
        if self.time_scale > 0.0 {
            real.div_f64(self.time_scale)
        } else {
            real
        }
    }
}

/// What an agent produced in its turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentReply {
    /// The text that joins the conversation.
    pub text: String,
    /// A router's choice among its outgoing `choice` edges.
    pub choice: Option<String>,
    /// A command's outcome (`Some(true)` = pass).
    pub passed: Option<bool>,
    /// Take this outgoing edge (by its position in the file) whatever the text says.
    /// Used by synthetic agents in simulations.
    pub forced_edge: Option<usize>,
    /// Time the call waited for its model to load.
    pub load_wait: Duration,
    /// Time spent generating or working.
    pub generation: Duration,
    /// Tokens generated.
    pub tokens: u64,
    /// Router repair attempts that were needed.
    pub repairs: u32,
    /// Whether a router's choice is the deterministic fallback.
    pub fallback: bool,
    /// The model that answered, when it was not the agent's own (its `fallback`
    /// model, because its own did not fit in memory).
    pub answered_by: Option<String>,
    /// The tool calls made during the turn, in order.
    pub tool_calls: Vec<ToolRecord>,
    /// The model's reasoning during the turn, kept apart from `text`: other agents
    /// never see it.
    pub thinking: Option<String>,
    /// Whether the reply stopped at the length limit (`num_predict` or a full
    /// context) rather than at its end.
    pub cut_off: bool,
    /// What a model agent's context held.
    pub context: Option<crate::context::ContextUse>,
}

/// Why an agent could not take its turn.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The model server failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A built-in agent was given an agent of another kind (a custom mapping gone wrong).
    #[error("agent '{agent}' is not {}, so the built-in {} agent cannot take its turn", .expected_kind.an_agent(), .expected_kind)]
    WrongKind {
        /// The agent.
        agent: String,
        /// The kind the built-in agent serves.
        expected_kind: KindName,
    },
    /// A human agent's canned answer is not one of its choices.
    #[error("the canned answer `{answer}` of '{agent}' is not one of its choices: {}", .choices.join(", "))]
    CannedAnswerNotAChoice {
        /// The agent.
        agent: String,
        /// The answer.
        answer: String,
        /// Its choices.
        choices: Vec<String>,
    },
    /// A human agent's turn came in a non-interactive run with no canned answer left.
    #[error(
        "'{agent}' needs a person's answer, and the run is non-interactive with no canned answer left ({given} given); add `answers:` to the agent, give `--answer {agent}=TEXT`, or run without --non-interactive"
    )]
    NoAnswerLeft {
        /// The agent.
        agent: String,
        /// How many canned answers the agent had.
        given: usize,
    },
    /// The terminal's input ended before the person answered.
    #[error("the terminal's input ended before '{agent}' answered")]
    InputEnded {
        /// The agent.
        agent: String,
    },
    /// The person answered with no valid choice, again and again.
    #[error("'{agent}' gave no valid choice in {tries} tries")]
    NoValidChoice {
        /// The agent.
        agent: String,
        /// How many times the person was asked.
        tries: u32,
    },
    /// A command agent's program could not be started.
    #[error("cannot run `{command}` in {}: {source}", .workspace.display())]
    CommandNotStarted {
        /// The command line.
        command: String,
        /// Where it was to run.
        workspace: std::path::PathBuf,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// The model answered with nothing usable (no text, no tool call) every time it was
    /// asked; the words name the agent, the model, why and the fix.
    #[error("{0}")]
    EmptyReply(String),
    /// A custom agent's own failure.
    #[error(transparent)]
    Custom(Box<dyn std::error::Error + Send + Sync>),
}

impl AgentError {
    /// A custom agent's failure, from any error or message.
    pub fn custom(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> AgentError {
        AgentError::Custom(error.into())
    }
}

/// A participant in the conversation.
///
/// Implement it to plug a custom agent into a run; the built-in model agent is
/// [`LlmAgent`].
#[async_trait]
pub trait Agent: Send + Sync {
    /// Takes one turn.
    async fn respond(&self, context: TurnContext<'_>) -> Result<AgentReply, AgentError>;
}

/// The built-in agent that answers through its model; with `choices` it is a router.
#[derive(Debug, Clone)]
pub struct LlmAgent {
    /// Retries of a failed call before the turn fails (retryable errors only).
    pub max_retries: u32,
    /// Repair attempts for a router answer that is not a valid choice.
    pub max_repairs: u32,
    /// Longest a reply may stream, from its first text, before it is cut off; `None`: no
    /// limit. A model caught in a loop can otherwise generate until its context is full,
    /// and Ollama's context shift lets some go on forever.
    pub max_reply_time: Option<Duration>,
    /// Most characters of text kept from one reply before it is cut off; `None`: no limit.
    pub max_reply_chars: Option<usize>,
}

/// Default `max_reply_time` (30 minutes): far beyond a sane reply of a local model.
const DEFAULT_MAX_REPLY_TIME: Duration = Duration::from_secs(30 * 60);

/// Default `max_reply_chars`: about 250,000 tokens, more than any context a
/// local model runs with.
const DEFAULT_MAX_REPLY_CHARS: usize = 1_000_000;

impl LlmAgent {
    /// A model agent with the default retry, repair and reply limits.
    pub fn new() -> LlmAgent {
        LlmAgent {
            max_retries: 2,
            max_repairs: 2,
            max_reply_time: Some(DEFAULT_MAX_REPLY_TIME),
            max_reply_chars: Some(DEFAULT_MAX_REPLY_CHARS),
        }
    }
}

impl Default for LlmAgent {
    /// The same agent as [`LlmAgent::new`].
    fn default() -> LlmAgent {
        LlmAgent::new()
    }
}

#[async_trait]
impl Agent for LlmAgent {
    async fn respond(&self, context: TurnContext<'_>) -> Result<AgentReply, AgentError> {
        let (Some(llm), Some(call)) = (context.spec.llm(), context.call.clone()) else {
            return Err(AgentError::WrongKind {
                agent: context.spec.name.clone(),
                expected_kind: KindName::Llm,
            });
        };
        if !llm.choices.is_empty() {
            let prompt = turn_prompt(&context, llm, &call, &[]).await;
            self.route(&context, &call, prompt).await
        } else {
            let specs: Vec<ToolSpec> = context.tools.iter().map(|tool| tool.spec()).collect();
            let prompt = turn_prompt(&context, llm, &call, &specs).await;
            self.converse(&context, &call, prompt, specs).await
        }
    }
}

impl LlmAgent {
    /// A router's turn: an answer that names one of its choices, repaired or replaced by a
    /// fallback when it does not.
    async fn route(
        &self,
        context: &TurnContext<'_>,
        call: &ModelCall,
        prompt: TurnPrompt,
    ) -> Result<AgentReply, AgentError> {
        let choices = context.spec.choices();
        let format = Some(router_schema(choices));
        let mut reply = AgentReply {
            context: Some(prompt.record),
            ..AgentReply::default()
        };
        let mut messages = prompt.messages;
        let mut repairs = 0;
        // Every answer the router gave this turn, for the fallback.
        let mut answers = String::new();
        loop {
            let request = ChatRequest {
                model: call.model.clone(),
                messages: messages.clone(),
                options: call.options.clone(),
                keep_alive: call.keep_alive,
                format: format.clone(),
                tools: Vec::new(),
                think: Some(Think::Enabled(false)),
            };
            let response = self.chat_for_answer(context, request, &mut reply).await?;
            reply.keep_thinking(response.message.thinking.as_deref());
            let text = response.message.content;
            answers.push_str(&text);
            answers.push('\n');
            match parse_choice(&text, choices) {
                Ok(choice) => {
                    reply.repairs = repairs;
                    context.events.emit(Event::RouterDecision {
                        agent: context.spec.name.clone(),
                        choice: choice.clone(),
                        repairs,
                        fallback: false,
                    });
                    reply.text = text;
                    reply.choice = Some(choice);
                    return Ok(reply);
                }
                Err(problem) if repairs < self.max_repairs => {
                    repairs += 1;
                    context.events.emit(Event::RouterRepair {
                        agent: context.spec.name.clone(),
                        problem: problem.clone(),
                        attempt: repairs,
                    });
                    messages.push(Message::assistant(text));
                    messages.push(Message::user(format!(
                        "That answer is not usable: {problem}. Answer with JSON only, \
                         {{\"choice\": \"...\", \"reason\": \"...\"}}, where choice is one of: {}.",
                        choices.join(", ")
                    )));
                }
                Err(_) => {
                    // Small router models do fail at structured output; rather than
                    // stopping a long run, take a deterministic route and record it.
                    let choice = fallback_choice(&answers, choices);
                    context.events.emit(Event::RouterDecision {
                        agent: context.spec.name.clone(),
                        choice: choice.clone(),
                        repairs,
                        fallback: true,
                    });
                    reply.repairs = repairs;
                    reply.fallback = true;
                    reply.text = text;
                    reply.choice = Some(choice);
                    return Ok(reply);
                }
            }
        }
    }
}

impl AgentReply {
    /// Adds one call's figures to the turn's: the server's durations when it gives
    /// them, else the time the call was measured to take.
    pub(crate) fn add_metrics(&mut self, metrics: &CallMetrics, measured: Duration) {
        let load = metrics.load.unwrap_or_default();
        self.load_wait += load;
        self.generation += generation_time(metrics, measured);
        self.tokens += metrics.eval_count.unwrap_or_default();
    }

    /// Keeps one call's reasoning with the turn's.
    pub(crate) fn keep_thinking(&mut self, thinking: Option<&str>) {
        let Some(thinking) = thinking.filter(|thinking| !thinking.trim().is_empty()) else {
            return;
        };
        let kept = self.thinking.get_or_insert_with(String::new);
        if !kept.is_empty() {
            kept.push_str("\n\n");
        }
        kept.push_str(thinking);
    }
}

/// Time a call spent evaluating the prompt and generating. Servers omit a duration
/// that is zero and some omit `eval_duration` altogether: then the whole request
/// less its load, and with no durations at all the measured time less the load.
pub(crate) fn generation_time(metrics: &CallMetrics, measured: Duration) -> Duration {
    let load = metrics.load.unwrap_or_default();
    let prompt = metrics.prompt_eval.unwrap_or_default();
    match (metrics.eval, metrics.total) {
        (Some(eval), _) => eval + prompt,
        (None, Some(total)) => total.saturating_sub(load),
        (None, None) => measured.saturating_sub(load),
    }
}

/// Times an empty reply is asked again before the run stops.
const EMPTY_REPLY_RETRIES: u32 = 2;

impl LlmAgent {
    /// A call whose reply can be used: reasoning written inline is moved out of the
    /// answer, and an empty reply (no text, no tool calls) is asked again, with a
    /// larger `num_predict` when the model ran out of room, before the turn fails
    /// with what to change. An empty reply is never a finished turn.
    pub(crate) async fn chat_for_answer(
        &self,
        context: &TurnContext<'_>,
        mut request: ChatRequest,
        reply: &mut AgentReply,
    ) -> Result<ChatResponse, AgentError> {
        let mut attempt = 0;
        loop {
            let started = tokio::time::Instant::now();
            let mut response = self.chat_with_retries(context, &request, reply).await?;
            reply.add_metrics(&response.metrics, context.reported(started.elapsed()));
            observe_prompt(context, &request, &response, reply);
            response.message.separate_inline_thinking();
            let message = &response.message;
            if !message.content.trim().is_empty() || !message.tool_calls.is_empty() {
                return Ok(response);
            }
            let reason = response.done_reason.clone();
            let thought = message
                .thinking
                .as_deref()
                .is_some_and(|thinking| !thinking.trim().is_empty());
            if attempt == EMPTY_REPLY_RETRIES {
                return Err(AgentError::EmptyReply(empty_reply_error(
                    &context.spec.name,
                    &request,
                    reason.as_ref(),
                    thought,
                    attempt + 1,
                )));
            }
            attempt += 1;
            let raised = if reason == Some(DoneReason::Length) {
                raise_num_predict(&mut request.options)
            } else {
                None
            };
            context.events.emit(Event::Retry {
                model: request.model.clone(),
                error: format!(
                    "empty reply ({}{}); asking again{}",
                    reason.as_ref().map_or("no done_reason", DoneReason::as_str),
                    if thought { ", all thinking" } else { "" },
                    raised.map_or(String::new(), |limit| format!(" with num_predict {limit}")),
                ),
                attempt,
            });
        }
    }
}

/// Doubles a positive `num_predict`; returns the new limit. Without one (or with
/// Ollama's "no limit" values) there is nothing to raise.
fn raise_num_predict(options: &mut ModelOptions) -> Option<i64> {
    let current = options
        .get("num_predict")?
        .as_i64()
        .filter(|limit| *limit > 0)?;
    let raised = current.saturating_mul(2);
    options.insert("num_predict".to_owned(), raised.into());
    Some(raised)
}

/// Why a turn stopped on empty replies, with the fix.
fn empty_reply_error(
    agent: &str,
    request: &ChatRequest,
    reason: Option<&DoneReason>,
    thought: bool,
    tries: u32,
) -> String {
    let model = &request.model;
    let what = if thought {
        "only thinking and no answer"
    } else {
        "no answer and no tool calls"
    };
    match reason {
        Some(DoneReason::Length) => {
            let limit = request
                .options
                .get("num_predict")
                .map_or("unset".to_owned(), ToString::to_string);
            format!(
                "model '{model}' replied with {what} {tries} times: each reply was cut off \
                 at its length limit (done_reason: length, num_predict {limit}); set \
                 `think: false` on agent '{agent}', or give it a larger `num_predict` \
                 (and `num_ctx`) in its options"
            )
        }
        reason => format!(
            "model '{model}' replied with {what} {tries} times (done_reason: {}); \
             set `think: false` on agent '{agent}' or try another model",
            reason.map_or("none", DoneReason::as_str)
        ),
    }
}

impl LlmAgent {
    /// Makes a model call, retrying what can succeed on a second try. A model that does
    /// not fit in memory gets one more try once the other resident models are unloaded,
    /// then the agent's `fallback` model if the workflow gives one.
    pub(crate) async fn chat_with_retries(
        &self,
        context: &TurnContext<'_>,
        request: &ChatRequest,
        reply: &mut AgentReply,
    ) -> Result<crate::backend::ChatResponse, BackendError> {
        match self.chat_retrying(context, request).await {
            Err(error) if is_out_of_memory(&error) => {
                self.recover_memory(context, request, error, reply).await
            }
            // Of several hosts, none serves the model any more: only a fallback can answer.
            Err(error @ BackendError::NoHost { .. }) => {
                self.use_fallback(context, request, error, reply).await
            }
            answered => answered,
        }
    }

    /// The agent's `fallback` model answers instead of its own, which no host can serve.
    async fn use_fallback(
        &self,
        context: &TurnContext<'_>,
        request: &ChatRequest,
        error: BackendError,
        reply: &mut AgentReply,
    ) -> Result<crate::backend::ChatResponse, BackendError> {
        let agent = &context.spec.name;
        let Some(fallback) = context
            .spec
            .llm()
            .and_then(|llm| llm.fallback.as_deref())
            .filter(|fallback| *fallback != request.model)
        else {
            return Err(BackendError::NoHost {
                model: request.model.clone(),
                reason: format!(
                    "{}; agent '{agent}' has no `fallback` model to use instead",
                    match &error {
                        BackendError::NoHost { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    }
                ),
            });
        };
        context.events.emit(Event::Retry {
            model: fallback.to_owned(),
            error: format!("{error}; trying agent '{agent}''s fallback model '{fallback}'"),
            attempt: 1,
        });
        let mut other = request.clone();
        other.model = fallback.to_owned();
        reply.answered_by = Some(fallback.to_owned());
        self.chat_retrying(context, &other).await
    }

    /// The road after a load that did not fit: free memory and retry once, then the
    /// fallback model, else an error that says what to change.
    async fn recover_memory(
        &self,
        context: &TurnContext<'_>,
        request: &ChatRequest,
        error: BackendError,
        reply: &mut AgentReply,
    ) -> Result<crate::backend::ChatResponse, BackendError> {
        let agent = &context.spec.name;
        let unloaded = free_memory_for(context.backend, &request.model).await;
        context.events.emit(Event::Retry {
            model: request.model.clone(),
            error: if unloaded.is_empty() {
                format!("{error}; nothing else to unload, trying once more")
            } else {
                format!("{error}; unloaded {} and trying again", unloaded.join(", "))
            },
            attempt: 1,
        });
        let error = match self.chat_retrying(context, request).await {
            Err(error) if is_out_of_memory(&error) => error,
            answered => return answered,
        };
        let Some(fallback) = context
            .spec
            .llm()
            .and_then(|llm| llm.fallback.as_deref())
            .filter(|fallback| *fallback != request.model)
        else {
            return Err(explained(error, agent, None));
        };
        context.events.emit(Event::Retry {
            model: fallback.to_owned(),
            error: format!("{error}; trying agent '{agent}''s fallback model '{fallback}'"),
            attempt: 2,
        });
        tracing::warn!(%agent, model = %request.model, %fallback, "model does not fit; using the fallback");
        let mut smaller = request.clone();
        smaller.model = fallback.to_owned();
        reply.answered_by = Some(fallback.to_owned());
        self.chat_retrying(context, &smaller)
            .await
            .map_err(|error| {
                if is_out_of_memory(&error) {
                    explained(error, agent, Some(fallback))
                } else {
                    error
                }
            })
    }

    /// One call with the generic retries; a model that does not fit is not retried here,
    /// since the same call can only fail the same way.
    async fn chat_retrying(
        &self,
        context: &TurnContext<'_>,
        request: &ChatRequest,
    ) -> Result<crate::backend::ChatResponse, BackendError> {
        let mut attempt = 0;
        // Since when the server has been unreachable, and how many times it was tried.
        let mut gone: Option<(tokio::time::Instant, u32)> = None;
        loop {
            match self.chat_bounded(context, request).await {
                Ok(response) => return Ok(response),
                // A server that went away (a restart) is waited for, within a bounded time.
                Err(error @ BackendError::Unreachable { .. })
                    if gone.is_none_or(|(since, _)| reconnect::within_window(since)) =>
                {
                    let (since, tries) = gone.unwrap_or((tokio::time::Instant::now(), 0));
                    gone = Some((since, tries + 1));
                    context.events.emit(Event::Retry {
                        model: request.model.clone(),
                        error: format!("{error}; waiting for the server to come back"),
                        attempt: tries + 1,
                    });
                    tokio::time::sleep(reconnect::backoff(tries + 1)).await;
                }
                Err(error)
                    if error.is_retryable()
                        && !is_out_of_memory(&error)
                        && attempt < self.max_retries =>
                {
                    attempt += 1;
                    context.events.emit(Event::Retry {
                        model: request.model.clone(),
                        error: error.to_string(),
                        attempt,
                    });
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

impl LlmAgent {
    /// One call, its reply cut off once it streams longer than
    /// [`LlmAgent::max_reply_time`] or past [`LlmAgent::max_reply_chars`]: the text so far
    /// is kept, marked as cut off, and dropping the call tells the server to stop.
    async fn chat_bounded(
        &self,
        context: &TurnContext<'_>,
        request: &ChatRequest,
    ) -> Result<crate::backend::ChatResponse, BackendError> {
        let max_chars = self.max_reply_chars.unwrap_or(usize::MAX);
        let mut streamed = String::new();
        let started = tokio::sync::Notify::new();
        let too_long = tokio::sync::Notify::new();
        let cut = {
            let agent = context.spec.name.clone();
            let events = context.events;
            let mut on_text = |text: &str| {
                started.notify_one();
                events.emit(Event::TextDelta {
                    agent: agent.clone(),
                    text: text.to_owned(),
                });
                if streamed.len() < max_chars {
                    streamed.push_str(text);
                    if streamed.len() >= max_chars {
                        too_long.notify_one();
                    }
                }
            };
            let timer = async {
                match self.max_reply_time {
                    Some(limit) => {
                        started.notified().await;
                        tokio::time::sleep(limit).await;
                        limit
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                answered = context.backend.chat(request, &mut on_text) => return answered,
                limit = timer => format!(
                    "went on for more than {} (the reply time limit)",
                    humantime::format_duration(limit)
                ),
                _ = too_long.notified() => format!(
                    "went past {max_chars} characters (the reply length limit)"
                ),
            }
        };
        tracing::warn!(agent = %context.spec.name, model = %request.model, "reply cut off: it {cut}");
        let mut kept = streamed.len().min(max_chars);
        while !streamed.is_char_boundary(kept) {
            kept -= 1;
        }
        streamed.truncate(kept);
        Ok(crate::backend::ChatResponse {
            message: Message::assistant(format!("{streamed}\n\n[cut off: the reply {cut}]")),
            // Cut off by our own limit, as the server cuts at its length limit.
            done_reason: Some(DoneReason::Length),
            metrics: crate::backend::CallMetrics::default(),
        })
    }
}

/// Learns from a call's reported prompt size, and reports a prompt the server cut: an
/// event and a warning that name the agent and the fix.
fn observe_prompt(
    context: &TurnContext<'_>,
    request: &ChatRequest,
    response: &ChatResponse,
    reply: &mut AgentReply,
) {
    let Some(num_ctx) = crate::context::num_ctx_of(&request.options) else {
        return;
    };
    let fresh = crate::context::ContextState::new();
    let state = context.context_state.unwrap_or(&fresh);
    let observation = state.with_model(&request.model, |prompts| {
        prompts.observe(
            &request.messages,
            tools_bytes(&request.tools),
            &response.message,
            response.metrics.prompt_eval_count,
            num_ctx,
        )
    });
    let record = reply.context.get_or_insert_with(Default::default);
    record.prompt_tokens = record.prompt_tokens.max(observation.sent_tokens);
    if !observation.cut {
        return;
    }
    let agent = &context.spec.name;
    let first_cut = !record.cut_by_server;
    record.cut_by_server = true;
    if !first_cut {
        return;
    }
    let fix = match context.spec.llm().and_then(|llm| llm.context.as_ref()) {
        None => format!(
            "give agent '{agent}' `context: {{ strategy: budget }}` (or `summarize`) so its \
             prompt is fitted to num_ctx, or raise its `options.num_ctx`"
        ),
        Some(_) => format!(
            "raise `options.num_ctx` of agent '{agent}', or lower its `context.reply_tokens`: \
             its role prompt, task and pinned messages alone do not fit"
        ),
    };
    tracing::warn!(
        %agent,
        model = %request.model,
        sent_tokens = observation.sent_tokens,
        num_ctx,
        "the server cut the prompt to num_ctx, dropping its oldest messages; {fix}"
    );
    context.events.emit(Event::ContextTruncated {
        agent: agent.clone(),
        model: request.model.clone(),
        sent_tokens: observation.sent_tokens,
        reported_tokens: response.metrics.prompt_eval_count,
        num_ctx,
        fix,
    });
}

/// The JSON Schema a router's answer must satisfy: its choices as an enum.
pub fn router_schema(choices: &[String]) -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "choice": { "type": "string", "enum": choices },
            "reason": { "type": "string" }
        },
        "required": ["choice"]
    })
}

/// Reads a router's answer; the error says what is wrong with it.
fn parse_choice(text: &str, choices: &[String]) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(text.trim()).map_err(|error| format!("it is not JSON ({error})"))?;
    let choice = value
        .get("choice")
        .and_then(|choice| choice.as_str())
        .ok_or_else(|| "it has no \"choice\" string".to_owned())?;
    choices
        .iter()
        .find(|known| known.as_str() == choice.trim())
        .cloned()
        .ok_or_else(|| format!("\"{choice}\" is not one of the choices"))
}

/// The route taken when a router keeps failing: the first choice its answers
/// name (the first answer is usually its most natural one), else the first
/// choice listed.
fn fallback_choice(text: &str, choices: &[String]) -> String {
    let lower = text.to_lowercase();
    choices
        .iter()
        .filter_map(|choice| lower.find(&choice.to_lowercase()).map(|at| (at, choice)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, choice)| choice.clone())
        .unwrap_or_else(|| choices[0].clone())
}

mod out_of_memory;
pub(crate) mod reconnect;

#[cfg(test)]
mod answer_tests;
#[cfg(test)]
mod call_tests;
#[cfg(test)]
mod tests;
