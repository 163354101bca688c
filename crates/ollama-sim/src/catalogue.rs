//! The model catalogue: the built-in models of the target Mac and name lookup.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::api;
use crate::config::{ModelSpec, SimConfig};

/// The built-in catalogue: Qwen3 models as Ollama ships them (Q4_K_M GGUF), with their
/// architecture figures.
pub(crate) fn builtin_models() -> Vec<ModelSpec> {
    let model = |name: &str,
                 size_bytes: u64,
                 family: &str,
                 parameter_size: &str,
                 arch: [u64; 5],
                 capabilities: &[&str]| ModelSpec {
        name: name.to_owned(),
        size_bytes,
        weights: None,
        digest: None,
        family: family.to_owned(),
        architecture: None,
        parameter_size: parameter_size.to_owned(),
        quantization_level: "Q4_K_M".to_owned(),
        block_count: arch[0],
        head_count: arch[1],
        head_count_kv: arch[2],
        embedding_length: arch[3],
        context_length: arch[4],
        capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        decode_tokens_per_second: None,
        attention_layers: None,
        inline_thinking: false,
    };
    let mut coder_next = model(
        "qwen3-coder-next:q4_K_M",
        51_962_429_440,
        "qwen3next",
        "79.7B",
        [48, 16, 2, 2048, 262_144],
        &["completion", "tools"],
    );
    // Gated DeltaNet hybrid: one full-attention layer in four keeps a KV cache.
    coder_next.attention_layers = Some(12);
    vec![
        model(
            "qwen3:1.7b",
            1_359_293_440,
            "qwen3",
            "2.0B",
            [28, 16, 8, 2048, 40_960],
            &["completion", "tools", "thinking"],
        ),
        model(
            "qwen3:4b",
            2_497_280_256,
            "qwen3",
            "4.0B",
            [36, 32, 8, 2560, 262_144],
            &["completion", "tools", "thinking"],
        ),
        model(
            "qwen3:8b",
            5_225_376_768,
            "qwen3",
            "8.2B",
            [36, 32, 8, 4096, 40_960],
            &["completion", "tools", "thinking"],
        ),
        model(
            "qwen3:14b",
            9_276_198_912,
            "qwen3",
            "14.8B",
            [40, 40, 8, 5120, 40_960],
            &["completion", "tools", "thinking"],
        ),
        model(
            "qwen3-coder:14b",
            9_001_753_472,
            "qwen3",
            "14.8B",
            [40, 40, 8, 5120, 262_144],
            &["completion", "tools"],
        ),
        model(
            "qwen3-coder:32b",
            19_215_872_000,
            "qwen3",
            "32.8B",
            [64, 64, 8, 5120, 262_144],
            &["completion", "tools"],
        ),
        coder_next,
    ]
}

/// Ollama's name normalization: case-insensitive, `registry.ollama.ai/library/` implied,
/// `:latest` when no tag is given.
pub(crate) fn normalize_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    let short = lower
        .strip_prefix("registry.ollama.ai/library/")
        .unwrap_or(&lower);
    let last_segment = short.rsplit('/').next().unwrap_or(short);
    if last_segment.contains(':') {
        short.to_owned()
    } else {
        format!("{short}:latest")
    }
}

/// A catalogue model with everything derived from its spec.
#[derive(Debug)]
pub(crate) struct ModelEntry {
    pub(crate) name: Arc<str>,
    pub(crate) weights: Arc<str>,
    pub(crate) digest: String,
    pub(crate) architecture: String,
    pub(crate) spec: ModelSpec,
    pub(crate) decode_tokens_per_second: f64,
    pub(crate) modified_at: String,
}

impl ModelEntry {
    pub(crate) fn has_capability(&self, capability: &str) -> bool {
        self.spec.capabilities.iter().any(|c| c == capability)
    }

    pub(crate) fn details(&self) -> api::ModelDetails {
        api::ModelDetails {
            parent_model: String::new(),
            format: "gguf".to_owned(),
            family: self.spec.family.clone(),
            families: vec![self.spec.family.clone()],
            parameter_size: self.spec.parameter_size.clone(),
            quantization_level: self.spec.quantization_level.clone(),
        }
    }

    /// Ollama's full model name, as its capability errors print it
    /// (`registry.ollama.ai/library/qwen3:8b`).
    pub(crate) fn full_name(&self) -> String {
        let normalized = normalize_name(&self.name);
        match normalized.matches('/').count() {
            0 => format!("registry.ollama.ai/library/{normalized}"),
            1 => format!("registry.ollama.ai/{normalized}"),
            _ => normalized,
        }
    }

    /// GGUF metadata as `/api/show` reports it: the general keys, the architecture's
    /// hyperparameters (with the recurrent-layer keys of the hybrid `qwen3next`), and the
    /// tokenizer keys. Without `verbose`, arrays longer than five are sent empty, as
    /// Ollama's `getModelData` does.
    pub(crate) fn model_info(&self, verbose: bool) -> Map<String, Value> {
        let arch = &self.architecture;
        let spec = &self.spec;
        let mut info = Map::new();
        info.insert("general.architecture".into(), json!(arch));
        info.insert("general.basename".into(), json!(spec.name));
        info.insert("general.file_type".into(), json!(15));
        info.insert("general.quantization_version".into(), json!(2));
        info.insert("general.type".into(), json!("model"));
        if let Some(count) = parse_parameter_count(&spec.parameter_size) {
            info.insert("general.parameter_count".into(), json!(count));
        }
        let head_dim = spec.embedding_length / spec.head_count.max(1);
        let mut put = |key: &str, value: Value| {
            info.insert(format!("{arch}.{key}"), value);
        };
        put("block_count", json!(spec.block_count));
        put("attention.head_count", json!(spec.head_count));
        put("attention.head_count_kv", json!(spec.head_count_kv));
        put("attention.key_length", json!(head_dim));
        put("attention.value_length", json!(head_dim));
        put("attention.layer_norm_rms_epsilon", json!(1e-6));
        put("embedding_length", json!(spec.embedding_length));
        put("feed_forward_length", json!(spec.embedding_length * 3));
        put("context_length", json!(spec.context_length));
        put("rope.freq_base", json!(1_000_000));
        if let Some(layers) = spec.attention_layers {
            // Hybrid layers: recurrent (SSM) blocks with a full-attention block every n.
            put(
                "full_attention_interval",
                json!(spec.block_count / layers.max(1)),
            );
            put("ssm.conv_kernel", json!(4));
            put("ssm.group_count", json!(16));
            put("ssm.inner_size", json!(4096));
            put("ssm.state_size", json!(128));
            put("ssm.time_step_rank", json!(32));
            put("expert_count", json!(512));
            put("expert_used_count", json!(10));
        }
        let per_token = |values: Value| if verbose { values } else { json!([]) };
        info.insert("tokenizer.ggml.model".into(), json!("gpt2"));
        info.insert("tokenizer.ggml.pre".into(), json!("qwen2"));
        info.insert("tokenizer.ggml.bos_token_id".into(), json!(151_643));
        info.insert("tokenizer.ggml.eos_token_id".into(), json!(151_645));
        info.insert(
            "tokenizer.ggml.tokens".into(),
            per_token(json!(["!", "\"", "#", "$", "%", "&", "'", "("])),
        );
        info.insert(
            "tokenizer.ggml.token_type".into(),
            per_token(json!([1, 1, 1, 1, 1, 1, 1, 1])),
        );
        info.insert(
            "tokenizer.ggml.merges".into(),
            per_token(json!([
                "Ġ Ġ",
                "ĠĠ ĠĠ",
                "i n",
                "Ġ t",
                "e r",
                "o n",
                "Ġ a",
                "r e"
            ])),
        );
        info
    }
}

/// `"14.8B"` -> 14_800_000_000.
fn parse_parameter_count(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, multiplier) = match text.chars().last()? {
        'B' | 'b' => (&text[..text.len() - 1], 1e9),
        'M' | 'm' => (&text[..text.len() - 1], 1e6),
        _ => (text, 1.0),
    };
    let value: f64 = number.parse().ok()?;
    Some((value * multiplier).round() as u64)
}

/// A hex digest derived from the weights file name, stable across runs.
fn derived_digest(weights: &str) -> String {
    (0u64..4)
        .map(|seed| format!("{:016x}", fnv1a(weights.as_bytes(), seed)))
        .collect()
}

/// FNV-1a, seeded; used for stable digests and reply seeds.
pub(crate) fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The models a simulator serves, looked up by name.
#[derive(Debug)]
pub(crate) struct Catalogue {
    entries: Vec<Arc<ModelEntry>>,
    by_name: HashMap<String, Arc<ModelEntry>>,
}

impl Catalogue {
    pub(crate) fn new(config: &SimConfig, modified_at: &str) -> Catalogue {
        let mut entries = Vec::with_capacity(config.models.len());
        let mut by_name = HashMap::new();
        for spec in &config.models {
            let weights = spec.weights.clone().unwrap_or_else(|| spec.name.clone());
            let decode_tokens_per_second = spec.decode_tokens_per_second.unwrap_or(
                config.decode.efficiency * config.decode.memory_bandwidth_bytes_per_second
                    / spec.size_bytes as f64,
            );
            let entry = Arc::new(ModelEntry {
                name: Arc::from(spec.name.as_str()),
                digest: spec
                    .digest
                    .clone()
                    .unwrap_or_else(|| derived_digest(&weights)),
                weights: Arc::from(weights.as_str()),
                architecture: spec
                    .architecture
                    .clone()
                    .unwrap_or_else(|| spec.family.clone()),
                spec: spec.clone(),
                decode_tokens_per_second,
                modified_at: modified_at.to_owned(),
            });
            by_name.insert(spec.name.clone(), Arc::clone(&entry));
            by_name.insert(normalize_name(&spec.name), Arc::clone(&entry));
            entries.push(entry);
        }
        Catalogue { entries, by_name }
    }

    /// The model called `name`, after Ollama's normalization.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<ModelEntry>> {
        self.by_name
            .get(name)
            .or_else(|| self.by_name.get(&normalize_name(name)))
    }

    pub(crate) fn entries(&self) -> &[Arc<ModelEntry>] {
        &self.entries
    }
}
