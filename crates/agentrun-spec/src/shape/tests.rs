//! Tests of the shape check against the workflow schema.

use super::check_shape;
use crate::node::parse_yaml;
use crate::schema;
use crate::source::FileId;

fn problems(text: &str) -> Vec<(String, u32, String, Option<String>)> {
    let node = parse_yaml(text, FileId(0)).expect("valid YAML");
    check_shape(&node, schema::workflow_schema(), "WorkflowFile")
        .into_iter()
        .map(|p| (p.path.to_string(), p.pos.line, p.message, p.hint))
        .collect()
}

const VALID: &str = "name: t\nagents:\n  a: {model: m, prompt: p}\nflow:\n  start: a\n  edges: [{from: a, to: end}]\n";

#[test]
fn a_valid_file_has_no_problems() {
    assert_eq!(problems(VALID), vec![]);
}

#[test]
fn unknown_keys_suggest_the_nearest() {
    let text = VALID.replace("model: m", "modle: m");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "agents.a.modle");
    assert_eq!(found[0].2, "unknown key");
    assert_eq!(found[0].3.as_deref(), Some("did you mean `model`?"));
}

#[test]
fn misplaced_keys_say_where_they_belong() {
    let text = VALID.replace("model: m", "model: m, num_ctx: 8192");
    let found = problems(&text);
    assert!(
        found[0]
            .3
            .as_deref()
            .unwrap_or_default()
            .contains("options:"),
        "{found:?}"
    );
}

#[test]
fn wrong_types_name_both_kinds() {
    let text = format!("{VALID}limits: {{max_turns: many}}\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "limits.max_turns");
    assert_eq!(
        found[0].2,
        "expected a whole number, found the text \"many\""
    );
    assert_eq!(
        found[0].3.as_deref(),
        Some("write the number without quotes")
    );
}

#[test]
fn text_fields_take_any_scalar() {
    let text = VALID.replace("model: m", "model: 7");
    assert_eq!(problems(&text), vec![]);
}

#[test]
fn missing_required_keys_are_reported_at_their_parent() {
    let text = "name: t\nagents: {}\nflow:\n  edges: []\n";
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].0.as_str(), found[0].1), ("flow.start", 3));
    assert_eq!(
        found[0].3.as_deref(),
        Some("add `start:` here (the agent that speaks first)")
    );
}

#[test]
fn conditions_pick_the_alternative_by_key() {
    let text = VALID.replace("to: end}", "to: end, when: {contians: X}}");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "flow.edges[0].when.contians");
    assert_eq!(found[0].3.as_deref(), Some("did you mean `contains`?"));

    let text = VALID.replace("to: end}", "to: end, when: allways}");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].2.starts_with(
            "unknown value `allways`; expected `always`, `pass`, `fail` or a mapping with one key"
        ),
        "{found:?}"
    );
    assert_eq!(found[0].3.as_deref(), Some("did you mean `always`?"));

    let text = VALID.replace("to: end}", "to: end, when: {contains: X, choice: Y}}");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].3.as_deref(),
        Some("give exactly one of these keys")
    );
}

#[test]
fn untagged_values_need_their_real_kind() {
    let text = format!("{VALID}limits: {{timeout: 1.5}}\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].2,
        "expected a whole number or text, found the number 1.5"
    );
    let text = format!("{VALID}simulation: {{agents: {{a: {{reply_tokens: [1, 2, 3]}}}}}}\n");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].2, "expected exactly 2 values, found 3");
}

#[test]
fn negative_counts_are_rejected() {
    let text = format!("{VALID}memory: {{max_loaded_models: -1}}\n");
    let found = problems(&text);
    assert_eq!(found[0].2, "expected a number of at least 0, found -1");
}

#[test]
fn every_problem_is_reported() {
    let text = "name: t\nagents:\n  a: {modle: m, kind: lm, think: maybe}\nflow: {start: a, edges: [], extra: 1}\n";
    assert_eq!(problems(text).len(), 4, "{:?}", problems(text));
}
