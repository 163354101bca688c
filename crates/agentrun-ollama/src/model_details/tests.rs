//! Tests of reading model figures out of `/api/show`.

use super::*;

fn info(model_info: serde_json::Value) -> ShowInfo {
    serde_json::from_value(serde_json::json!({
        "model_info": model_info,
        "capabilities": ["completion", "tools"],
    }))
    .expect("a ShowInfo")
}

fn local() -> LocalModel {
    LocalModel {
        name: "qwen3:1.7b".to_owned(),
        file_bytes: 1_359_293_440,
        digest: Some("8f68893c685c".to_owned()),
    }
}

#[test]
fn figures_are_read_under_the_architecture_prefix() {
    let info = info(serde_json::json!({
        "general.architecture": "qwen3",
        "qwen3.block_count": 28,
        "qwen3.attention.head_count": 16,
        "qwen3.attention.head_count_kv": 8,
        "qwen3.embedding_length": 2048,
        "qwen3.context_length": 40960,
        "llama.block_count": 99,
    }));
    let details = details("qwen3:1.7b", local(), &info);
    assert_eq!(
        details,
        ModelDetails {
            name: "qwen3:1.7b".to_owned(),
            file_bytes: 1_359_293_440,
            digest: Some("8f68893c685c".to_owned()),
            block_count: Some(28),
            head_count: Some(16),
            head_count_kv: Some(8),
            embedding_length: Some(2048),
            context_length: Some(40960),
            capabilities: vec!["completion".to_owned(), "tools".to_owned()],
        }
    );
}

#[test]
fn per_layer_head_counts_take_the_largest() {
    let info = info(serde_json::json!({
        "general.architecture": "gemma3n",
        "gemma3n.attention.head_count_kv": [2, 2, 4, 2],
    }));
    assert_eq!(details("g", local(), &info).head_count_kv, Some(4));
}

#[test]
fn without_an_architecture_the_figures_are_unknown() {
    let info = info(serde_json::json!({ "qwen3.block_count": 28 }));
    let details = details("qwen3:1.7b", local(), &info);
    assert_eq!(details.block_count, None);
    assert_eq!(details.file_bytes, 1_359_293_440);
}

#[test]
fn an_emptied_per_layer_figure_asks_for_the_verbose_answer() {
    let short = info(serde_json::json!({
        "general.architecture": "gemma3n",
        "gemma3n.block_count": 30,
        "gemma3n.attention.head_count_kv": [],
        "gemma3n.embedding_length": 2048,
    }));
    assert!(needs_verbose(&short));
    let null = info(serde_json::json!({
        "general.architecture": "qwen3",
        "qwen3.attention.head_count": null,
    }));
    assert!(needs_verbose(&null));
    let whole = info(serde_json::json!({
        "general.architecture": "qwen3",
        "qwen3.block_count": 28,
        "qwen3.attention.head_count_kv": 8,
        "tokenizer.ggml.tokens": [],
    }));
    assert!(!needs_verbose(&whole), "an emptied tokenizer is not needed");
}
