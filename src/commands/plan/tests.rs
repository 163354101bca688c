//! Tests of what `plan` says about a footprint.

use super::file_size_only_note;

fn details(block_count: Option<u64>) -> agentrun::ModelDetails {
    agentrun::ModelDetails {
        name: "old:7b".to_owned(),
        file_bytes: 4_000_000_000,
        digest: None,
        block_count,
        head_count: Some(32),
        head_count_kv: Some(8),
        embedding_length: Some(4096),
        context_length: Some(8192),
        capabilities: Vec::new(),
    }
}

#[test]
fn a_footprint_without_layer_figures_is_said_to_be_the_file_size() {
    let note = file_size_only_note(&details(None)).expect("a note");
    assert!(
        note.contains("old:7b") && note.contains("only its file size"),
        "{note}"
    );
    assert_eq!(file_size_only_note(&details(Some(32))), None);
}
