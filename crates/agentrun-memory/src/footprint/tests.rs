//! Hand-computed footprints.

use super::*;

fn qwen3_coder_32b() -> FootprintInputs {
    FootprintInputs {
        file_bytes: 19_851_336_256,
        block_count: 64,
        head_count: 64,
        head_count_kv: 8,
        embedding_length: 5120,
        trained_context: 40_960,
        num_ctx: 32_768,
        num_parallel: 1,
        num_batch: 512,
    }
}

#[test]
fn kv_cache_is_f16_keys_and_values_per_layer() {
    // 2 x 64 x 8 x (5120 / 64 = 80) x 32768 x 2 = 5_368_709_120
    assert_eq!(
        predict_footprint(&qwen3_coder_32b()),
        19_851_336_256 + 5_368_709_120
    );
}

#[test]
fn context_is_capped_at_the_trained_context() {
    let inputs = FootprintInputs {
        num_ctx: 262_144,
        ..qwen3_coder_32b()
    };
    // ctx = 40960: 2 x 64 x 8 x 80 x 40960 x 2 = 6_710_886_400
    assert_eq!(predict_footprint(&inputs), 19_851_336_256 + 6_710_886_400);
}

#[test]
fn each_parallel_slot_gets_its_own_context() {
    let inputs = FootprintInputs {
        num_parallel: 4,
        num_ctx: 8192,
        ..qwen3_coder_32b()
    };
    // ctx = 8192 x 4 = 32768: the same cache as one slot of 32k.
    assert_eq!(predict_footprint(&inputs), 19_851_336_256 + 5_368_709_120);
}

#[test]
fn large_batches_add_a_surcharge() {
    let base = predict_footprint(&qwen3_coder_32b());
    let at = |num_batch| {
        predict_footprint(&FootprintInputs {
            num_batch,
            ..qwen3_coder_32b()
        })
    };
    assert_eq!(at(512), base);
    assert_eq!(at(1023), base);
    assert_eq!(at(1024), base + 805_306_368);
    assert_eq!(at(2047), base + 805_306_368);
    assert_eq!(at(2048), base + 2_147_483_648);
    assert_eq!(at(4096), base + 2_147_483_648);
}

#[test]
fn small_model_by_hand() {
    // qwen3:1.7b-like: 28 layers, 16 heads, 8 KV heads, 2048 embeddings, 4096 ctx.
    // 2 x 28 x 8 x 128 x 4096 x 2 = 469_762_048
    let inputs = FootprintInputs {
        file_bytes: 1_359_000_000,
        block_count: 28,
        head_count: 16,
        head_count_kv: 8,
        embedding_length: 2048,
        trained_context: 40_960,
        num_ctx: 4096,
        num_parallel: 1,
        num_batch: 512,
    };
    assert_eq!(predict_footprint(&inputs), 1_359_000_000 + 469_762_048);
}

#[test]
fn degenerate_inputs_do_not_panic() {
    let zero_heads = FootprintInputs {
        head_count: 0,
        ..qwen3_coder_32b()
    };
    assert_eq!(predict_footprint(&zero_heads), 19_851_336_256);
    let unknown_training = FootprintInputs {
        trained_context: 0,
        num_parallel: 0,
        num_ctx: 65_536,
        ..qwen3_coder_32b()
    };
    assert_eq!(
        predict_footprint(&unknown_training),
        19_851_336_256 + 2 * 5_368_709_120
    );
    let huge = FootprintInputs {
        file_bytes: u64::MAX,
        num_ctx: u64::MAX,
        trained_context: 0,
        ..qwen3_coder_32b()
    };
    assert_eq!(predict_footprint(&huge), u64::MAX);
}
