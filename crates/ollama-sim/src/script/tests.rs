//! Tests of script parsing and rule matching.

use super::*;

fn query<'a>(model: &'a str, system: Option<&'a str>, last: &'a str, turn: u64) -> Query<'a> {
    Query {
        model,
        system,
        last_message: last,
        kept_messages: &[],
        turn,
        global_turn: turn,
    }
}

#[test]
fn rules_match_in_order_and_replies_advance() {
    let script = Script::from_yaml_str(
        r#"
rules:
  - model: coder
    system: "(?i)tester"
    replies:
      - text: "{not json"
      - json: {approved: true}
  - message: "^hello"
    reply:
      tool_calls:
        - name: add
          arguments: {a: 1, b: 2}
  - turn: 2
    reply: {text: second, eval_count: 0}
"#,
    )
    .expect("valid script");
    let state = ScriptState::new(script);

    let tester = query("coder:latest", Some("You are the Tester"), "go", 1);
    let first = state.reply_for(&tester).expect("rule 1");
    assert_eq!(first.text.as_deref(), Some("{not json"));
    let second = state.reply_for(&tester).expect("rule 1 again");
    assert_eq!(second.json, Some(serde_json::json!({"approved": true})));
    let third = state.reply_for(&tester).expect("last repeats");
    assert_eq!(third, second);

    let hello = state
        .reply_for(&query("other", None, "hello there", 1))
        .expect("rule 2");
    assert_eq!(hello.tool_calls[0].name, "add");
    assert_eq!(hello.tool_calls[0].arguments["b"], 2);

    assert!(state.reply_for(&query("other", None, "bye", 1)).is_none());
    let by_turn = state
        .reply_for(&query("other", None, "bye", 2))
        .expect("rule 3");
    assert_eq!(by_turn.eval_count, Some(0));

    state.reset_counters();
    let again = state.reply_for(&tester).expect("rule 1 after reset");
    assert_eq!(again.text.as_deref(), Some("{not json"));
}

#[test]
fn bad_scripts_are_rejected_with_the_reason() {
    let no_reply = Script::from_yaml_str("rules:\n  - model: m\n").expect_err("no replies");
    assert!(no_reply.to_string().contains("rule 1"), "{no_reply}");
    let bad_regex = Script::from_yaml_str("rules:\n  - message: \"(\"\n    reply: {text: x}\n")
        .expect_err("bad regex");
    assert!(bad_regex.to_string().contains("regex"), "{bad_regex}");
}

#[test]
fn a_kept_rule_needs_each_pattern_in_a_message_the_runner_kept() {
    let script = Script::from_yaml_str(
        r#"
rules:
  - kept: ["^Task: ", "DESIGN"]
    reply: { text: "I see it all" }
  - reply: { text: "lost" }
"#,
    )
    .expect("valid");
    let state = ScriptState::new(script);
    let kept = ["Task: build it", "[architect]: DESIGN v2", "go"];
    let mut seen = query("m", None, "go", 1);
    seen.kept_messages = &kept;
    assert_eq!(
        state.reply_for(&seen).expect("rule 1").text.as_deref(),
        Some("I see it all")
    );
    let cut = ["[architect]: DESIGN v2", "go"];
    seen.kept_messages = &cut;
    assert_eq!(
        state.reply_for(&seen).expect("rule 2").text.as_deref(),
        Some("lost")
    );
}
