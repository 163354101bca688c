//! Tests of the router's answer handling.

use super::*;

fn choices() -> Vec<String> {
    vec!["implement".into(), "design".into(), "done".into()]
}

#[test]
fn a_valid_answer_is_taken() {
    assert_eq!(
        parse_choice(r#"{"choice":"design","reason":"x"}"#, &choices()),
        Ok("design".to_owned())
    );
}

#[test]
fn malformed_answers_say_what_is_wrong() {
    assert!(
        parse_choice("design", &choices())
            .unwrap_err()
            .contains("not JSON")
    );
    assert!(
        parse_choice(r#"{"pick":"design"}"#, &choices())
            .unwrap_err()
            .contains("no \"choice\"")
    );
    assert!(
        parse_choice(r#"{"choice":"ship it"}"#, &choices())
            .unwrap_err()
            .contains("not one of")
    );
}

#[test]
fn fallback_prefers_the_first_choice_named_in_the_text() {
    assert_eq!(
        fallback_choice("I think we are done, no design", &choices()),
        "done"
    );
    assert_eq!(fallback_choice("no idea", &choices()), "implement");
}
