//! A runner's memory and its load-time options: Ollama's prediction (weights + KV cache for
//! every layer + the batch surcharge) used for the fit test, the size measured after the load
//! (KV cache only for the layers that have one), the automatic `num_batch`, and the
//! comparison that decides whether a loaded runner can serve a request or must reload.

use serde::{Deserialize, Serialize};

use crate::api;
use crate::catalogue::ModelEntry;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Ollama's default `num_batch` (`api.DefaultOptions`).
const DEFAULT_BATCH: u64 = 512;

/// Architectures Ollama runs with one parallel slot whatever `OLLAMA_NUM_PARALLEL` says
/// (`Scheduler.load` in `server/sched.go`).
const SINGLE_SLOT_ARCHITECTURES: &[&str] = &[
    "mllama",
    "qwen3vl",
    "qwen3vlmoe",
    "qwen35",
    "qwen35moe",
    "qwen3next",
    "lfm2",
    "lfm2moe",
    "nemotron_h",
    "nemotron_h_moe",
    "nemotron_h_omni",
];

/// `OLLAMA_KV_CACHE_TYPE`: the element type of the KV cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvCacheType {
    /// 2 bytes per element (Ollama's default).
    #[default]
    #[serde(rename = "f16")]
    F16,
    /// 1 byte per element: half the f16 cache.
    #[serde(rename = "q8_0")]
    Q8_0,
    /// Half a byte per element: a quarter of the f16 cache.
    #[serde(rename = "q4_0")]
    Q4_0,
}

impl KvCacheType {
    /// Parses `OLLAMA_KV_CACHE_TYPE`; like Ollama, an unknown or empty value means f16.
    pub fn from_env(text: &str) -> KvCacheType {
        match text.trim().to_ascii_lowercase().as_str() {
            "q8_0" => KvCacheType::Q8_0,
            "q4_0" => KvCacheType::Q4_0,
            _ => KvCacheType::F16,
        }
    }

    /// f16 bytes are divided by this.
    fn divisor(self) -> u64 {
        match self {
            KvCacheType::F16 => 1,
            KvCacheType::Q8_0 => 2,
            KvCacheType::Q4_0 => 4,
        }
    }
}

/// The load-time options of a request as sent; `None` means the client left it to Ollama.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LoadOptions {
    pub(crate) num_ctx: Option<u64>,
    pub(crate) num_batch: Option<u64>,
    pub(crate) num_gpu: Option<i64>,
    pub(crate) main_gpu: Option<i64>,
    pub(crate) use_mmap: Option<bool>,
    pub(crate) num_thread: Option<u64>,
    pub(crate) draft_num_predict: Option<i64>,
    /// Context shift (the request's `shift`, default on).
    pub(crate) shift: bool,
}

impl LoadOptions {
    /// The request's load-time options.
    pub(crate) fn from_request(options: Option<&api::Options>, shift: Option<bool>) -> Self {
        let empty = api::Options::default();
        let options = options.unwrap_or(&empty);
        LoadOptions {
            num_ctx: options.num_ctx,
            num_batch: options.num_batch,
            num_gpu: options.num_gpu,
            main_gpu: options.main_gpu,
            use_mmap: options.use_mmap,
            num_thread: options.num_thread,
            draft_num_predict: options.draft_num_predict,
            shift: shift.unwrap_or(true),
        }
    }

    /// `num_gpu` as a layer count: `None` for "all" (absent or negative).
    pub(crate) fn gpu_layers(&self) -> Option<u64> {
        self.num_gpu.filter(|n| *n >= 0).map(|n| n as u64)
    }

    /// Ollama's `explicitPartialGPUOffload`: `0 < num_gpu < block_count + 1`.
    pub(crate) fn partial_offload(&self, model: &ModelEntry) -> bool {
        self.gpu_layers()
            .is_some_and(|layers| layers > 0 && layers < model.spec.block_count + 1)
    }

    /// Whether the fit test applies: not for CPU-only (`num_gpu: 0`) or a partial offload.
    pub(crate) fn needs_fit_test(&self, model: &ModelEntry) -> bool {
        self.gpu_layers() != Some(0) && !self.partial_offload(model)
    }

    /// The share of the model in GPU memory: 0 for `num_gpu: 0`, `num_gpu / (layers + 1)`
    /// for a partial offload, else all of it.
    pub(crate) fn gpu_fraction(&self, model: &ModelEntry) -> f64 {
        match self.gpu_layers() {
            Some(layers) if layers < model.spec.block_count + 1 => {
                layers as f64 / (model.spec.block_count + 1) as f64
            }
            _ => 1.0,
        }
    }
}

/// A runner's options once loaded: the context and batch it really uses, and whether they
/// were chosen automatically (which matters for the reload comparison).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RunnerOptions {
    pub(crate) requested: LoadOptions,
    /// `num_ctx` capped at the trained context: the context per slot.
    pub(crate) context_per_slot: u64,
    pub(crate) num_batch: u64,
    pub(crate) parallel: u64,
}

impl RunnerOptions {
    /// Ollama's `needsReload`, inverted: whether this runner can serve `wanted`.
    /// `num_ctx` is compared after capping at the trained context, and an automatic value
    /// equals another automatic one; the same for `num_batch`; a negative or absent
    /// `num_gpu` accepts any; `main_gpu` absent differs from 0; a change of `shift` reloads.
    pub(crate) fn serves(
        &self,
        model: &ModelEntry,
        wanted: &LoadOptions,
        default_ctx: u64,
    ) -> bool {
        let have = &self.requested;
        let ctx_matches = (have.num_ctx.is_none() && wanted.num_ctx.is_none())
            || context_per_slot(model, wanted, default_ctx) == self.context_per_slot;
        let batch_matches = (have.num_batch.is_none() && wanted.num_batch.is_none())
            || wanted.num_batch.unwrap_or(DEFAULT_BATCH) == self.num_batch;
        let gpu_matches = wanted.num_gpu.is_none_or(|n| n < 0)
            || have.num_gpu.unwrap_or(-1) == wanted.num_gpu.unwrap_or(-1);
        ctx_matches
            && batch_matches
            && gpu_matches
            && have.main_gpu == wanted.main_gpu
            && have.use_mmap == wanted.use_mmap
            && have.num_thread.unwrap_or(0) == wanted.num_thread.unwrap_or(0)
            && have.draft_num_predict.unwrap_or(0) == wanted.draft_num_predict.unwrap_or(0)
            && have.shift == wanted.shift
    }
}

/// A load's memory: what Ollama predicts before it, and what the runner reports after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Weights + KV cache for every layer + batch surcharge: the fit test's figure.
    pub(crate) predicted: u64,
    /// Weights + KV cache of the layers that have one + batch surcharge: `/api/ps` `size`
    /// and what later fit tests subtract.
    pub(crate) measured: u64,
    /// The measured KV cache, bytes.
    pub(crate) kv_bytes: u64,
}

/// The context per slot: `num_ctx` (or the default) capped at the trained context, at
/// least 4 as in Ollama.
pub(crate) fn context_per_slot(model: &ModelEntry, options: &LoadOptions, default_ctx: u64) -> u64 {
    options
        .num_ctx
        .unwrap_or(default_ctx)
        .min(model.spec.context_length)
        .max(4)
}

/// Parallel slots of a runner: 1 for embedding models and the architectures Ollama forces
/// to one slot, else `OLLAMA_NUM_PARALLEL`.
pub(crate) fn parallel_for(model: &ModelEntry, configured: u64) -> u64 {
    let single = !model.has_capability("completion")
        || SINGLE_SLOT_ARCHITECTURES.contains(&model.architecture.as_str());
    if single { 1 } else { configured.max(1) }
}

/// The KV cache of `layers` layers: `2 x layers x kv heads x (embedding / heads) x ctx x 2`
/// bytes for f16, halved for q8_0 and quartered for q4_0.
pub(crate) fn kv_cache_bytes(model: &ModelEntry, layers: u64, ctx: u64, kv: KvCacheType) -> u64 {
    let spec = &model.spec;
    let head_dim = spec.embedding_length / spec.head_count.max(1);
    2 * layers * spec.head_count_kv * head_dim * ctx * 2 / kv.divisor()
}

/// The compute-graph surcharge of a large `num_batch` (`generationBatchSurcharge`).
pub(crate) fn batch_surcharge_bytes(num_batch: u64) -> u64 {
    match num_batch {
        n if n >= 2048 => 2 * GIB,
        n if n >= 1024 => 768 * MIB,
        _ => 0,
    }
}

/// Ollama's `automaticGenerationBatch` on Metal: 2048 for a total context above 32768,
/// 1024 above 4096, else 512; stepped down (2048 to 1024 to 512) while the model would use
/// more than 60 % (2048) or 75 % (1024) of the available memory, or the prediction with the
/// surcharge more than 80 %.
pub(crate) fn automatic_batch(total_ctx: u64, predicted: u64, available: u64) -> u64 {
    let mut batch = match total_ctx {
        n if n > 32768 => 2048,
        n if n > 4096 => 1024,
        _ => DEFAULT_BATCH,
    };
    while batch > DEFAULT_BATCH && !batch_fits(batch, predicted, available) {
        batch = if batch > 1024 { 1024 } else { DEFAULT_BATCH };
    }
    batch
}

/// `generationBatchFits` and `generationBatchHasHeadroom`.
fn batch_fits(batch: u64, predicted: u64, available: u64) -> bool {
    if predicted == 0 || available == 0 {
        return true;
    }
    let threshold = available * 80 / 100;
    if predicted > threshold {
        return false;
    }
    let headroom_percent = if batch >= 2048 { 60 } else { 75 };
    predicted <= available * headroom_percent / 100
        && batch_surcharge_bytes(batch) <= threshold - predicted
}

/// Resolves a load: the context, the parallel slots, the batch size (automatic when the
/// client sent none, for completion models) and the memory predicted and measured.
/// `available` is the memory the fit test would see (for the automatic batch).
pub(crate) fn plan_load(
    model: &ModelEntry,
    options: &LoadOptions,
    default_ctx: u64,
    configured_parallel: u64,
    kv: KvCacheType,
    available: u64,
) -> (RunnerOptions, Footprint) {
    let per_slot = context_per_slot(model, options, default_ctx);
    let parallel = parallel_for(model, configured_parallel);
    let total_ctx = per_slot * parallel;
    let size = model.spec.size_bytes;
    let predicted_base = size + kv_cache_bytes(model, model.spec.block_count, total_ctx, kv);
    let completion = model.has_capability("completion");
    let num_batch = match options.num_batch {
        Some(batch) => batch,
        None if completion => automatic_batch(total_ctx, predicted_base, available),
        None => DEFAULT_BATCH,
    };
    let surcharge = if completion {
        batch_surcharge_bytes(num_batch)
    } else {
        0
    };
    let attention_layers = model
        .spec
        .attention_layers
        .unwrap_or(model.spec.block_count);
    let kv_bytes = kv_cache_bytes(model, attention_layers, total_ctx, kv);
    let runner = RunnerOptions {
        requested: options.clone(),
        context_per_slot: per_slot,
        num_batch,
        parallel,
    };
    let footprint = Footprint {
        predicted: predicted_base + surcharge,
        measured: size + kv_bytes + surcharge,
        kv_bytes,
    };
    (runner, footprint)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of Ollama's `TestAutomaticGenerationBatch` for Metal (no CUDA rule).
    #[test]
    fn automatic_batch_follows_automatic_generation_batch() {
        const G: u64 = GIB;
        assert_eq!(automatic_batch(4096, 10 * G, 50 * G), 512);
        assert_eq!(automatic_batch(8192, 10 * G, 50 * G), 1024);
        assert_eq!(automatic_batch(65536, 10 * G, 50 * G), 2048);
        // Above 60 % of available: 2048 steps down to 1024.
        assert_eq!(automatic_batch(65536, 31 * G, 50 * G), 1024);
        // Above 75 %: down to 512.
        assert_eq!(automatic_batch(65536, 38 * G, 50 * G), 512);
        // Unknown memory: no step-down.
        assert_eq!(automatic_batch(65536, 38 * G, 0), 2048);
    }

    #[test]
    fn kv_cache_types_halve_and_quarter() {
        assert_eq!(KvCacheType::from_env("q8_0").divisor(), 2);
        assert_eq!(KvCacheType::from_env("Q4_0").divisor(), 4);
        assert_eq!(KvCacheType::from_env("bogus"), KvCacheType::F16);
    }
}
