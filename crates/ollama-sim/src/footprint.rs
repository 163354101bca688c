//! A loaded model's memory: Ollama's prediction from the weights file, the f16 KV cache and
//! the batch surcharge, and the load-time options that decide whether a runner can be reused.

use crate::api;
use crate::catalogue::ModelEntry;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The options fixed when a runner starts; any difference forces a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadOptions {
    pub(crate) num_ctx: u64,
    pub(crate) num_batch: u64,
    pub(crate) num_gpu: i64,
    pub(crate) main_gpu: i64,
    pub(crate) use_mmap: Option<bool>,
    pub(crate) num_thread: u64,
    pub(crate) draft_num_predict: i64,
}

impl LoadOptions {
    /// The request's load-time options with Ollama's defaults filled in.
    pub(crate) fn from_request(options: Option<&api::Options>, default_num_ctx: u64) -> Self {
        let empty = api::Options::default();
        let options = options.unwrap_or(&empty);
        LoadOptions {
            // Ollama raises num_ctx below 4 to 4.
            num_ctx: options.num_ctx.unwrap_or(default_num_ctx).max(4),
            num_batch: options.num_batch.unwrap_or(512),
            num_gpu: options.num_gpu.unwrap_or(-1),
            main_gpu: options.main_gpu.unwrap_or(0),
            use_mmap: options.use_mmap,
            num_thread: options.num_thread.unwrap_or(0),
            draft_num_predict: options.draft_num_predict.unwrap_or(0),
        }
    }

    /// Whether a runner started with `self` can serve a request asking for `wanted`.
    /// As in Ollama's `needsReload`, a request with a negative `num_gpu` accepts any value.
    pub(crate) fn serves(&self, wanted: &LoadOptions) -> bool {
        let num_gpu_matches = wanted.num_gpu < 0 || self.num_gpu == wanted.num_gpu;
        num_gpu_matches
            && self.num_ctx == wanted.num_ctx
            && self.num_batch == wanted.num_batch
            && self.main_gpu == wanted.main_gpu
            && self.use_mmap == wanted.use_mmap
            && self.num_thread == wanted.num_thread
            && self.draft_num_predict == wanted.draft_num_predict
    }
}

/// The context per slot: `num_ctx` capped at the trained context.
pub(crate) fn context_per_slot(model: &ModelEntry, options: &LoadOptions) -> u64 {
    options.num_ctx.min(model.spec.context_length)
}

/// The f16 KV cache: `2 x layers x kv heads x (embedding / heads) x ctx x 2 bytes`, with
/// `ctx = min(num_ctx, trained) x num_parallel`.
pub(crate) fn kv_cache_bytes(model: &ModelEntry, options: &LoadOptions, num_parallel: u64) -> u64 {
    let spec = &model.spec;
    let head_dim = spec.embedding_length / spec.head_count;
    let ctx = context_per_slot(model, options) * num_parallel;
    2 * spec.block_count * spec.head_count_kv * head_dim * ctx * 2
}

/// The compute-graph surcharge of a large `num_batch`.
pub(crate) fn batch_surcharge_bytes(num_batch: u64) -> u64 {
    match num_batch {
        n if n >= 2048 => 2 * GIB,
        n if n >= 1024 => 768 * MIB,
        _ => 0,
    }
}

/// Ollama's predicted footprint: weights + KV cache + batch surcharge.
pub(crate) fn predicted_bytes(model: &ModelEntry, options: &LoadOptions, num_parallel: u64) -> u64 {
    model.spec.size_bytes
        + kv_cache_bytes(model, options, num_parallel)
        + batch_surcharge_bytes(options.num_batch)
}
