//! Ollama's prediction of a model's memory footprint, the figure its fit test compares.

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Everything Ollama's memory prediction reads: the GGUF facts from `/api/tags` (`size`) and
/// `/api/show` (`model_info`), and the load-time options the agent sends.
///
/// A zero `trained_context` means "unknown" (no cap on `num_ctx`); a zero `num_parallel` is
/// read as Ollama's default of 1; a zero `head_count` gives no KV cache rather than a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FootprintInputs {
    /// The GGUF file size in bytes (`/api/tags` `size`).
    pub file_bytes: u64,
    /// `<arch>.block_count`: the number of layers.
    pub block_count: u64,
    /// `<arch>.attention.head_count`.
    pub head_count: u64,
    /// `<arch>.attention.head_count_kv`.
    pub head_count_kv: u64,
    /// `<arch>.embedding_length`.
    pub embedding_length: u64,
    /// `<arch>.context_length`: the context the model was trained for.
    pub trained_context: u64,
    /// The `num_ctx` option every call of the model sends.
    pub num_ctx: u64,
    /// `OLLAMA_NUM_PARALLEL` (default 1): each parallel slot gets its own context.
    pub num_parallel: u64,
    /// The `num_batch` option (Ollama's default is 512).
    pub num_batch: u64,
}

/// Predicts the bytes Ollama accounts for a model before loading it.
///
/// `file_bytes + 2 x block_count x head_count_kv x (embedding_length / head_count) x ctx x 2`
/// with `ctx = min(num_ctx, trained_context) x num_parallel` (an f16 K and V cache), plus a
/// batch surcharge of 768 MiB for `num_batch >= 1024` and 2 GiB for `num_batch >= 2048`.
/// The division is an integer one, as in Ollama. Arithmetic saturates instead of overflowing.
///
/// ```
/// use agentrun_memory::{FootprintInputs, predict_footprint};
///
/// // A 20 GB model with 64 layers, 64 heads (8 for K/V) and 5120 embeddings at 32k context:
/// // the KV cache is 2 x 64 x 8 x 80 x 32768 x 2 bytes = 5 GiB.
/// let inputs = FootprintInputs {
///     file_bytes: 20_000_000_000,
///     block_count: 64,
///     head_count: 64,
///     head_count_kv: 8,
///     embedding_length: 5120,
///     trained_context: 40_960,
///     num_ctx: 32_768,
///     num_parallel: 1,
///     num_batch: 512,
/// };
/// assert_eq!(predict_footprint(&inputs), 20_000_000_000 + 5 * 1024 * 1024 * 1024);
/// ```
pub fn predict_footprint(inputs: &FootprintInputs) -> u64 {
    let ctx = if inputs.trained_context == 0 {
        inputs.num_ctx
    } else {
        inputs.num_ctx.min(inputs.trained_context)
    };
    let ctx = u128::from(ctx) * u128::from(inputs.num_parallel.max(1));
    let head_dim = inputs
        .embedding_length
        .checked_div(inputs.head_count)
        .unwrap_or(0);
    let kv_cache = 2
        * u128::from(inputs.block_count)
        * u128::from(inputs.head_count_kv)
        * u128::from(head_dim)
        * ctx
        * 2;
    let surcharge = batch_surcharge(inputs.num_batch);
    let total = u128::from(inputs.file_bytes) + kv_cache + u128::from(surcharge);
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// The extra compute-graph memory Ollama reserves for large batches.
fn batch_surcharge(num_batch: u64) -> u64 {
    match num_batch {
        2048.. => 2 * GIB,
        1024.. => 768 * MIB,
        _ => 0,
    }
}
