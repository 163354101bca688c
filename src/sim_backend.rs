//! `SimBackend`: drives the simulator's scheduler in-process, without sockets.
//!
//! Virtual-time simulations run on a paused tokio clock, which jumps ahead only
//! while every task waits on a timer; real socket I/O would stall it. So
//! `--sim` runs and `agentrun simulate` call the simulator directly.

use std::time::Duration;

use agentrun_core::{
    BackendError, CallMetrics, ChatRequest, ChatResponse, DoneReason, KeepAlive, LoadReport,
    Message, ModelBackend, ModelDetails, ModelOptions, Role, RunningModel, TokenSink, ToolCall,
};
use async_trait::async_trait;
use futures::StreamExt;
use ollama_sim::{SimConfig, Simulator, api};

/// A [`ModelBackend`] over an in-process [`Simulator`].
#[derive(Debug, Clone)]
pub struct SimBackend {
    simulator: Simulator,
}

impl SimBackend {
    /// A backend over the given simulator.
    pub fn new(simulator: Simulator) -> SimBackend {
        SimBackend { simulator }
    }

    /// The simulated target machine (a 64 GB M4 Pro with a 54 GB GPU limit),
    /// where one simulated second takes `time_scale` seconds.
    pub fn target_mac(time_scale: f64) -> SimBackend {
        let mut config = SimConfig::target_mac();
        config.time_scale = time_scale;
        SimBackend::new(Simulator::new(config))
    }

    /// The simulated machine's GPU memory in bytes.
    pub fn gpu_budget(&self) -> u64 {
        self.simulator.config().gpu_memory_bytes
    }

    /// The simulated machine's memory, as the planner's page-cache estimate needs it.
    pub fn host_memory(&self) -> agentrun_memory::HostMemory {
        host_memory_of(self.simulator.config())
    }

    /// The simulator, for its log and settings.
    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    fn error(&self, model: &str, error: api::ApiError) -> BackendError {
        match error.status {
            404 => BackendError::ModelNotFound {
                model: model.to_owned(),
                url: self.endpoint(),
            },
            503 => BackendError::Busy {
                message: error.message,
            },
            400 => BackendError::BadRequest {
                model: model.to_owned(),
                message: error.message,
            },
            0 => BackendError::Stream {
                model: model.to_owned(),
                message: error.message,
            },
            status => BackendError::server_failure(model.to_owned(), status, error.message),
        }
    }

    /// An empty chat request: Ollama's idiom for a preload or, with keep_alive 0, an unload.
    async fn empty_request(
        &self,
        model: &str,
        options: Option<&ModelOptions>,
        keep_alive: Option<KeepAlive>,
    ) -> Result<api::ChatChunk, BackendError> {
        let request = api::ChatRequest {
            model: model.to_owned(),
            options: options
                .map(|options| wire_options(model, options))
                .transpose()?,
            keep_alive: keep_alive.map(wire_keep_alive),
            stream: Some(false),
            ..api::ChatRequest::default()
        };
        let stream = self
            .simulator
            .chat(request)
            .await
            .map_err(|error| self.error(model, error))?;
        stream
            .collect()
            .await
            .map_err(|error| self.error(model, error))
    }
}

#[async_trait]
impl ModelBackend for SimBackend {
    fn endpoint(&self) -> String {
        "the built-in simulator".to_owned()
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        let model = request.model.as_str();
        let wire = api::ChatRequest {
            model: request.model.clone(),
            messages: request.messages.iter().map(wire_message).collect(),
            tools: request
                .tools
                .iter()
                .map(|tool| {
                    serde_json::json!({
                        "type": "function",
                        "function": {
                            "name": tool.name,
                            "description": tool.description,
                            "parameters": tool.parameters,
                        }
                    })
                })
                .collect(),
            format: request.format.clone(),
            options: Some(wire_options(model, &request.options)?),
            stream: Some(true),
            keep_alive: request.keep_alive.map(wire_keep_alive),
            // Through JSON, as over HTTP: a level is its name, on or off a bool.
            think: request
                .think
                .and_then(|think| serde_json::from_value(serde_json::to_value(think).ok()?).ok()),
            ..api::ChatRequest::default()
        };
        let mut stream = self
            .simulator
            .chat(wire)
            .await
            .map_err(|error| self.error(model, error))?;
        let mut content = String::new();
        let mut tool_calls = Vec::new();
        let mut thinking: Option<String> = None;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| self.error(model, error))?;
            if !chunk.message.content.is_empty() {
                on_text(&chunk.message.content);
                content.push_str(&chunk.message.content);
            }
            if let Some(piece) = &chunk.message.thinking {
                thinking.get_or_insert_with(String::new).push_str(piece);
            }
            tool_calls.extend(chunk.message.tool_calls.iter().map(|call| ToolCall {
                id: call.id.clone(),
                name: call.function.name.clone(),
                arguments: call.function.arguments.clone(),
            }));
            if chunk.done {
                return Ok(ChatResponse {
                    message: Message {
                        role: Role::Assistant,
                        content,
                        tool_calls,
                        thinking,
                        tool_name: None,
                        tool_call_id: None,
                    },
                    done_reason: chunk.done_reason.clone().map(DoneReason::from),
                    metrics: metrics(&chunk.metrics),
                });
            }
        }
        Err(BackendError::Stream {
            model: model.to_owned(),
            message: "the reply ended without a final chunk".to_owned(),
        })
    }

    async fn preload(
        &self,
        model: &str,
        options: &ModelOptions,
        keep_alive: Option<KeepAlive>,
    ) -> Result<LoadReport, BackendError> {
        let chunk = self.empty_request(model, Some(options), keep_alive).await?;
        Ok(LoadReport {
            load_duration: chunk.metrics.load_duration.map(Duration::from_nanos),
        })
    }

    async fn unload(&self, model: &str) -> Result<(), BackendError> {
        self.empty_request(model, None, Some(KeepAlive::UnloadWhenIdle))
            .await
            .map(|_| ())
    }

    async fn running_models(&self) -> Result<Vec<RunningModel>, BackendError> {
        Ok(self
            .simulator
            .ps()
            .models
            .into_iter()
            .map(|model| RunningModel {
                name: model.name,
                size_bytes: model.size,
                size_vram_bytes: model.size_vram,
                expires_at: Some(model.expires_at),
                context_length: Some(model.context_length),
            })
            .collect())
    }

    async fn model_details(&self, model: &str) -> Result<ModelDetails, BackendError> {
        let request = api::ShowRequest {
            model: model.to_owned(),
            name: None,
            verbose: None,
        };
        let show = self
            .simulator
            .show(&request)
            .map_err(|error| self.error(model, error))?;
        let tag = self
            .simulator
            .tags()
            .models
            .into_iter()
            .find(|tag| tag.name == model);
        let arch = show
            .model_info
            .get("general.architecture")
            .and_then(|arch| arch.as_str())
            .unwrap_or_default()
            .to_owned();
        let field = |key: &str| {
            show.model_info
                .get(&format!("{arch}.{key}"))
                .and_then(|value| value.as_u64())
        };
        Ok(ModelDetails {
            name: model.to_owned(),
            file_bytes: tag.as_ref().map(|tag| tag.size).unwrap_or_default(),
            digest: tag.map(|tag| tag.digest),
            block_count: field("block_count"),
            head_count: field("attention.head_count"),
            head_count_kv: field("attention.head_count_kv"),
            embedding_length: field("embedding_length"),
            context_length: field("context_length"),
            capabilities: show.capabilities,
        })
    }
}

fn wire_message(message: &Message) -> api::Message {
    api::Message {
        role: match message.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
        .to_owned(),
        content: message.content.clone(),
        thinking: message.thinking.clone(),
        tool_name: message.tool_name.clone(),
        tool_call_id: message.tool_call_id.clone(),
        tool_calls: message
            .tool_calls
            .iter()
            .map(|call| api::ToolCall {
                id: call.id.clone(),
                function: api::ToolCallFunction {
                    index: None,
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                },
            })
            .collect(),
        ..api::Message::default()
    }
}

/// Options go through JSON, exactly as they would over HTTP.
fn wire_options(model: &str, options: &ModelOptions) -> Result<api::Options, BackendError> {
    serde_json::from_value(serde_json::Value::Object(options.clone())).map_err(|error| {
        BackendError::BadRequest {
            model: model.to_owned(),
            message: format!("invalid options: {error}"),
        }
    })
}

fn wire_keep_alive(keep_alive: KeepAlive) -> api::KeepAlive {
    match keep_alive {
        KeepAlive::Forever => api::KeepAlive::Seconds(-1.0),
        KeepAlive::UnloadWhenIdle => api::KeepAlive::Seconds(0.0),
        KeepAlive::For(duration) => api::KeepAlive::Seconds(duration.as_secs_f64()),
    }
}

fn metrics(metrics: &api::Metrics) -> CallMetrics {
    let duration = |nanos: Option<u64>| nanos.map(Duration::from_nanos);
    CallMetrics {
        total: duration(metrics.total_duration),
        load: duration(metrics.load_duration),
        prompt_eval_count: metrics.prompt_eval_count,
        prompt_eval: duration(metrics.prompt_eval_duration),
        eval_count: metrics.eval_count,
        eval: duration(metrics.eval_duration),
    }
}

/// A simulated machine's RAM, reserve and warm read speed, as the planner's page-cache
/// estimate needs them.
pub(crate) fn host_memory_of(config: &ollama_sim::SimConfig) -> agentrun_memory::HostMemory {
    agentrun_memory::HostMemory {
        ram_bytes: config.ram_bytes,
        os_reserve_bytes: config.os_reserve_bytes,
        warm_bytes_per_second: config.load.warm_bytes_per_second,
        load_fixed_seconds: config.load.fixed_seconds,
    }
}
