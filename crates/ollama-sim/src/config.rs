//! The simulator's settings: the machine, Ollama's limits, load and decode physics, replies,
//! and the model catalogue; loadable from a YAML or JSON file.
//!
//! Byte sizes use decimal units throughout: 1 GB = 10^9 bytes (so the target Mac's 54 GB GPU
//! limit is 54 x 10^9 bytes). Size fields accept a number of bytes or a string such as
//! `"54GB"`, `"1.4 GB"` or `"768MiB"` (the grammar of [`crate::parse_size`]).

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;
use crate::footprint::KvCacheType;
use crate::keep_alive::SessionDuration;
use crate::script::Script;
use agentrun_size::{hardware, parse_size};

/// Every setting of a simulator. [`SimConfig::target_mac`] is the default; a config file may
/// give any subset of the fields, the rest keep their default. A `models` list in a file
/// replaces the built-in catalogue.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Wall seconds per simulated second: 1.0 is real time, 0.01 runs 100x faster, 0 freezes
    /// simulated time (loads, decoding and unloads are instant and idle timers never fire).
    pub time_scale: f64,
    /// GPU memory budget in bytes (the Metal working-set limit on a Mac).
    #[serde(deserialize_with = "byte_size")]
    pub gpu_memory_bytes: u64,
    /// System RAM in bytes; the page cache is RAM minus the memory wired for resident
    /// models minus `os_reserve_bytes`.
    #[serde(deserialize_with = "byte_size")]
    pub ram_bytes: u64,
    /// RAM the operating system and applications keep (4 to 8 GB on a 64 GB Mac): neither
    /// page cache nor free memory for models.
    #[serde(deserialize_with = "byte_size")]
    pub os_reserve_bytes: u64,
    /// `OLLAMA_KV_CACHE_TYPE`: `f16` (default), `q8_0` (half the KV cache) or `q4_0` (a
    /// quarter).
    pub kv_cache_type: KvCacheType,
    /// `OLLAMA_MAX_LOADED_MODELS`: the model-count cap, checked before memory.
    pub max_loaded_models: usize,
    /// `OLLAMA_NUM_PARALLEL`: parallel request slots per loaded model.
    pub num_parallel: usize,
    /// `OLLAMA_MAX_QUEUE`: pending (not yet scheduled) requests before HTTP 503.
    pub max_queue: usize,
    /// `OLLAMA_KEEP_ALIVE`: the session duration of a load whose request gave none.
    pub keep_alive: SessionDuration,
    /// `OLLAMA_LOAD_TIMEOUT` in seconds: a load that makes no progress for this long fails.
    /// Simulated loads always progress, so only a stalled-load fault reaches it.
    pub load_timeout_seconds: f64,
    /// `OLLAMA_CONTEXT_LENGTH`: the `num_ctx` of requests that give none; `None` picks
    /// Ollama's VRAM tier
    /// (>= 47 GiB: 262144, >= 23 GiB: 32768, else 4096).
    pub default_num_ctx: Option<u64>,
    /// Load and unload times.
    pub load: LoadPhysics,
    /// Generation speed.
    pub decode: DecodePhysics,
    /// Unscripted replies.
    pub replies: ReplySettings,
    /// Events kept by the log; the oldest are dropped beyond this.
    pub log_capacity: usize,
    /// The calendar time (Unix seconds) of simulated second 0; `None` reads the system clock
    /// once at start. Set it for identical timestamps from run to run.
    pub epoch_unix_seconds: Option<f64>,
    /// The model catalogue.
    pub models: Vec<ModelSpec>,
    /// Scripted replies (`--script`); empty means every reply is generated.
    #[serde(skip)]
    pub script: Script,
}

/// Load-time model: `fixed_seconds + bytes / bandwidth`, the bandwidth chosen by whether the
/// weights file is in the page cache and, when it is not, by `use_mmap`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoadPhysics {
    /// Runner start-up cost per load, seconds.
    pub fixed_seconds: f64,
    /// Cold file, memory-mapped (Ollama's default on Metal), bytes per second.
    pub cold_mmap_bytes_per_second: f64,
    /// Cold file with `use_mmap: false`, bytes per second.
    pub cold_no_mmap_bytes_per_second: f64,
    /// File still in the page cache, bytes per second.
    pub warm_bytes_per_second: f64,
    /// Time to unload a model and recover its memory, seconds.
    pub unload_seconds: f64,
}

/// Generation speed: decode tokens/s = `efficiency x memory bandwidth / model bytes`, unless a
/// model sets its own `decode_tokens_per_second`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodePhysics {
    /// Memory bandwidth, bytes per second (M4 Pro: 273 GB/s).
    pub memory_bandwidth_bytes_per_second: f64,
    /// Fraction of the bandwidth one decode stream achieves alone.
    pub efficiency: f64,
    /// Fraction of the bandwidth all decode streams together achieve (at least
    /// `efficiency`): requests decoding at once share it (see FIDELITY.md).
    pub concurrent_efficiency: f64,
    /// Prompt evaluation runs this many times faster than decoding.
    pub prompt_eval_speedup: f64,
    /// Reported `load_duration` floor for a resident model, seconds (never slept).
    pub dispatch_seconds: f64,
    /// Memory bandwidth the CPU reaches when layers run on it (`num_gpu: 0` or a partial
    /// offload), bytes per second.
    pub cpu_memory_bandwidth_bytes_per_second: f64,
}

/// How unscripted replies look.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplySettings {
    /// Typical reply length in tokens: natural lengths are drawn between half and one and a
    /// half times this (capped by `num_predict`).
    pub default_tokens: u64,
    /// Typical thinking length in tokens for a thinking model (drawn like replies).
    pub thinking_tokens: u64,
    /// Every unscripted reply is exactly `default_tokens` long (or `num_predict` when set,
    /// ending `length`) and thinks exactly `thinking_tokens`, instead of a drawn natural
    /// length. For tests that count tokens.
    pub exact_length: bool,
    /// Most content chunks in a streamed reply (plus thinking chunks and the final chunk).
    pub stream_chunks: usize,
}

/// One model of the catalogue.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The name clients use, e.g. `qwen3-coder:14b` (a name without a tag gets `:latest`).
    pub name: String,
    /// Weights file size in bytes (`/api/tags` `size`).
    #[serde(deserialize_with = "byte_size")]
    pub size_bytes: u64,
    /// The weights file. Models naming the same file share one runner. Default: the name.
    #[serde(default)]
    pub weights: Option<String>,
    /// The digest shown by tags and ps. Default: derived from the weights file name.
    #[serde(default)]
    pub digest: Option<String>,
    /// Model family, e.g. `qwen3`.
    pub family: String,
    /// The GGUF architecture prefix of `model_info` keys. Default: the family.
    #[serde(default)]
    pub architecture: Option<String>,
    /// e.g. `14.8B`.
    #[serde(default)]
    pub parameter_size: String,
    /// e.g. `Q4_K_M`.
    #[serde(default)]
    pub quantization_level: String,
    /// `<arch>.block_count`: transformer layers.
    pub block_count: u64,
    /// `<arch>.attention.head_count`.
    pub head_count: u64,
    /// `<arch>.attention.head_count_kv`.
    pub head_count_kv: u64,
    /// `<arch>.embedding_length`.
    pub embedding_length: u64,
    /// `<arch>.context_length`: the trained context.
    pub context_length: u64,
    /// `completion`, `tools`, `thinking`, ... Default: `["completion"]`.
    #[serde(default = "default_capabilities")]
    pub capabilities: Vec<String>,
    /// Overrides the bandwidth-derived decode speed.
    #[serde(default)]
    pub decode_tokens_per_second: Option<f64>,
    /// Layers that hold a KV cache, when fewer than `block_count` (hybrid architectures
    /// such as `qwen3next` keep one only in their attention layers). The measured size
    /// uses it; Ollama's prediction counts every layer. Default: `block_count`.
    #[serde(default)]
    pub attention_layers: Option<u64>,
    /// Put the reasoning inline as `<think>...</think>` at the start of `content`, as
    /// servers before the `think` field did, instead of in `thinking`.
    #[serde(default)]
    pub inline_thinking: bool,
}

fn default_capabilities() -> Vec<String> {
    vec!["completion".to_owned()]
}

impl Default for SimConfig {
    /// The target machine, [`SimConfig::target_mac`].
    fn default() -> SimConfig {
        SimConfig::target_mac()
    }
}

impl Default for LoadPhysics {
    fn default() -> LoadPhysics {
        LoadPhysics {
            fixed_seconds: 2.0,
            cold_mmap_bytes_per_second: 0.8e9,
            cold_no_mmap_bytes_per_second: 5.0e9,
            warm_bytes_per_second: 10.0e9,
            unload_seconds: 0.3,
        }
    }
}

impl Default for DecodePhysics {
    fn default() -> DecodePhysics {
        DecodePhysics {
            memory_bandwidth_bytes_per_second: hardware::MEMORY_BANDWIDTH_BYTES_PER_SECOND,
            efficiency: hardware::DECODE_EFFICIENCY,
            concurrent_efficiency: hardware::CONCURRENT_DECODE_EFFICIENCY,
            prompt_eval_speedup: 20.0,
            dispatch_seconds: 0.002,
            cpu_memory_bandwidth_bytes_per_second: 100.0e9,
        }
    }
}

impl Default for ReplySettings {
    fn default() -> ReplySettings {
        ReplySettings {
            default_tokens: 120,
            thinking_tokens: 32,
            exact_length: false,
            stream_chunks: 8,
        }
    }
}

/// Decimal gigabyte.
const GB: u64 = 1_000_000_000;

impl SimConfig {
    /// The target machine: a 64 GB M4 Pro with a 54 GB GPU limit, Ollama's defaults (3 loaded
    /// models, 1 parallel slot, queue 512, keep_alive 5m), real time, and the built-in
    /// catalogue (qwen3:1.7b, qwen3:4b, qwen3:8b, qwen3:14b, qwen3-coder:14b, qwen3-coder:32b,
    /// qwen3-coder-next:q4_K_M).
    pub fn target_mac() -> SimConfig {
        SimConfig {
            time_scale: 1.0,
            gpu_memory_bytes: 54 * GB,
            ram_bytes: 64 * GB,
            os_reserve_bytes: 6 * GB,
            kv_cache_type: KvCacheType::F16,
            max_loaded_models: 3,
            num_parallel: 1,
            max_queue: 512,
            keep_alive: SessionDuration::DEFAULT,
            load_timeout_seconds: 300.0,
            default_num_ctx: None,
            load: LoadPhysics::default(),
            decode: DecodePhysics::default(),
            replies: ReplySettings::default(),
            log_capacity: 100_000,
            epoch_unix_seconds: None,
            models: crate::catalogue::builtin_models(),
            script: Script::default(),
        }
    }

    /// Reads a YAML or JSON file (JSON when the name ends in `.json`).
    pub fn from_file(path: &Path) -> Result<SimConfig, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|ext| ext == "json") {
            SimConfig::from_json_str(&text)
        } else {
            SimConfig::from_yaml_str(&text)
        };
        parsed.map_err(|error| error.in_file(path.to_owned()))
    }

    /// Parses YAML text and validates it.
    pub fn from_yaml_str(text: &str) -> Result<SimConfig, Error> {
        let config: SimConfig =
            serde_saphyr::from_str(text).map_err(|error| Error::config(error.to_string()))?;
        config.validated()
    }

    /// Parses JSON text and validates it.
    pub fn from_json_str(text: &str) -> Result<SimConfig, Error> {
        let config: SimConfig =
            serde_json::from_str(text).map_err(|error| Error::config(error.to_string()))?;
        config.validated()
    }

    /// Checks the values a simulator relies on; returns the config unchanged when they hold.
    pub fn validated(self) -> Result<SimConfig, Error> {
        if !(self.time_scale.is_finite() && self.time_scale >= 0.0) {
            return Err(Error::config("time_scale must be a finite number >= 0"));
        }
        if self.gpu_memory_bytes == 0 {
            return Err(Error::config("gpu_memory_bytes must be positive"));
        }
        for (name, value) in [
            ("max_loaded_models", self.max_loaded_models),
            ("num_parallel", self.num_parallel),
            ("max_queue", self.max_queue),
            ("replies.stream_chunks", self.replies.stream_chunks),
        ] {
            if value == 0 {
                return Err(Error::config(format!("{name} must be at least 1")));
            }
        }
        for (name, value) in [
            (
                "load.cold_mmap_bytes_per_second",
                self.load.cold_mmap_bytes_per_second,
            ),
            (
                "load.cold_no_mmap_bytes_per_second",
                self.load.cold_no_mmap_bytes_per_second,
            ),
            (
                "load.warm_bytes_per_second",
                self.load.warm_bytes_per_second,
            ),
            (
                "decode.memory_bandwidth_bytes_per_second",
                self.decode.memory_bandwidth_bytes_per_second,
            ),
            ("decode.efficiency", self.decode.efficiency),
            (
                "decode.prompt_eval_speedup",
                self.decode.prompt_eval_speedup,
            ),
            (
                "decode.cpu_memory_bandwidth_bytes_per_second",
                self.decode.cpu_memory_bandwidth_bytes_per_second,
            ),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::config(format!("{name} must be a positive number")));
            }
        }
        for (name, value) in [
            ("load.fixed_seconds", self.load.fixed_seconds),
            ("load.unload_seconds", self.load.unload_seconds),
            ("decode.dispatch_seconds", self.decode.dispatch_seconds),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(Error::config(format!("{name} must be a number >= 0")));
            }
        }
        let concurrent = self.decode.concurrent_efficiency;
        if !(concurrent.is_finite() && concurrent >= self.decode.efficiency) {
            return Err(Error::config(format!(
                "decode.concurrent_efficiency must be a number >= decode.efficiency ({}), got {concurrent}",
                self.decode.efficiency
            )));
        }
        if self.load_timeout_seconds.is_nan() || self.load_timeout_seconds <= 0.0 {
            return Err(Error::config("load_timeout_seconds must be positive"));
        }
        let mut seen = std::collections::HashSet::new();
        for model in &self.models {
            model.validate()?;
            if !seen.insert(crate::catalogue::normalize_name(&model.name)) {
                return Err(Error::config(format!(
                    "model {:?} appears twice in the catalogue",
                    model.name
                )));
            }
        }
        Ok(self)
    }

    /// Sets the decode speed of the model called `name` (after Ollama's name
    /// normalization); returns whether the catalogue has it.
    pub fn set_decode_speed(&mut self, name: &str, tokens_per_second: f64) -> bool {
        let wanted = crate::catalogue::normalize_name(name);
        let mut found = false;
        for model in &mut self.models {
            if crate::catalogue::normalize_name(&model.name) == wanted {
                model.decode_tokens_per_second = Some(tokens_per_second);
                found = true;
            }
        }
        found
    }

    /// The `num_ctx` used when a request gives none.
    pub fn effective_default_num_ctx(&self) -> u64 {
        const GIB: u64 = 1 << 30;
        self.default_num_ctx
            .unwrap_or(match self.gpu_memory_bytes {
                bytes if bytes >= 47 * GIB => 262_144,
                bytes if bytes >= 23 * GIB => 32_768,
                _ => 4096,
            })
            .max(1)
    }
}

impl ModelSpec {
    fn validate(&self) -> Result<(), Error> {
        let problem = |what: &str| {
            Err(Error::config(format!(
                "model {:?}: {what} must be positive",
                self.name
            )))
        };
        if self.name.trim().is_empty() {
            return Err(Error::config("a model has an empty name"));
        }
        if self.size_bytes == 0 {
            return problem("size_bytes");
        }
        for (field, value) in [
            ("block_count", self.block_count),
            ("head_count", self.head_count),
            ("head_count_kv", self.head_count_kv),
            ("embedding_length", self.embedding_length),
            ("context_length", self.context_length),
        ] {
            if value == 0 {
                return problem(field);
            }
        }
        if let Some(speed) = self.decode_tokens_per_second
            && !(speed.is_finite() && speed > 0.0)
        {
            return problem("decode_tokens_per_second");
        }
        if let Some(layers) = self.attention_layers
            && layers > self.block_count
        {
            return Err(Error::config(format!(
                "model {:?}: attention_layers ({layers}) cannot exceed block_count ({})",
                self.name, self.block_count
            )));
        }
        Ok(())
    }
}

/// Deserializes a byte count from a number or a string with a unit.
fn byte_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Float(f64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Number(bytes) => Ok(bytes),
        Raw::Float(bytes) if bytes >= 0.0 && bytes.is_finite() => Ok(bytes as u64),
        Raw::Float(bytes) => Err(serde::de::Error::custom(format!(
            "invalid byte size {bytes}"
        ))),
        Raw::Text(text) => parse_size(&text)
            .map_err(|error| serde::de::Error::custom(format!("{error} ({})", error.hint()))),
    }
}

#[cfg(test)]
mod tests;
