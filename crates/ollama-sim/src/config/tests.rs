//! Tests of configuration parsing and defaults.

use super::*;

/// Numbers in YAML are bytes; strings follow the size grammar, and a bare `G` is refused.
#[test]
fn config_sizes_are_bytes_or_sizes_with_units() {
    let config =
        SimConfig::from_yaml_str("gpu_memory_bytes: 1000\nram_bytes: 16GiB\n").expect("valid");
    assert_eq!(config.gpu_memory_bytes, 1000);
    assert_eq!(config.ram_bytes, 16 << 30);
    let error = SimConfig::from_yaml_str("gpu_memory_bytes: 54G\n").expect_err("ambiguous");
    assert!(error.to_string().contains("ambiguous"), "{error}");
}

#[test]
fn target_mac_uses_the_high_vram_context_tier() {
    let config = SimConfig::target_mac();
    assert_eq!(config.gpu_memory_bytes, 54_000_000_000);
    assert_eq!(config.effective_default_num_ctx(), 262_144);
    let names: Vec<&str> = config.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "qwen3:1.7b",
            "qwen3:4b",
            "qwen3:8b",
            "qwen3:14b",
            "qwen3-coder:14b",
            "qwen3-coder:32b",
            "qwen3-coder-next:q4_K_M",
        ]
    );
}

#[test]
fn a_partial_yaml_file_keeps_the_other_defaults() {
    let config = SimConfig::from_yaml_str(
        "time_scale: 0.01\ngpu_memory_bytes: 10GB\nload:\n  fixed_seconds: 1\nmodels:\n  - name: tiny\n    size_bytes: 1GB\n    family: llama\n    block_count: 4\n    head_count: 4\n    head_count_kv: 4\n    embedding_length: 256\n    context_length: 4096\n",
    )
    .expect("valid config");
    assert_eq!(config.time_scale, 0.01);
    assert_eq!(config.gpu_memory_bytes, 10_000_000_000);
    assert_eq!(config.load.fixed_seconds, 1.0);
    assert_eq!(config.load.unload_seconds, 0.3);
    assert_eq!(config.max_loaded_models, 3);
    assert_eq!(config.models.len(), 1);
    assert_eq!(config.effective_default_num_ctx(), 4096);
}

#[test]
fn unknown_fields_and_bad_values_are_rejected() {
    let unknown = SimConfig::from_yaml_str("gpu_memory: 10GB\n").expect_err("unknown field");
    assert!(unknown.to_string().contains("gpu_memory"), "{unknown}");
    let zero = SimConfig::from_json_str(r#"{"num_parallel":0}"#).expect_err("zero slots");
    assert!(zero.to_string().contains("num_parallel"), "{zero}");
}
