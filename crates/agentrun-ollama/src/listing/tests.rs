//! Tests of model name matching.

use super::*;

#[test]
fn a_name_without_tag_means_latest() {
    assert!(same_model("qwen3", "qwen3:latest"));
    assert!(same_model("qwen3:latest", "qwen3"));
    assert!(same_model("Qwen3:1.7B", "qwen3:1.7b"));
    assert!(same_model(
        "localhost:5000/team/coder",
        "localhost:5000/team/coder:latest"
    ));
    assert!(!same_model("qwen3", "qwen3:1.7b"));
    assert!(!same_model("qwen3-coder:14b", "qwen3-coder:32b"));
}
