//! Tests of inline reasoning taken out of replies.

use super::*;

#[track_caller]
fn separated(content: &str) -> (String, Option<String>) {
    let mut message = Message::assistant(content);
    message.separate_inline_thinking();
    (message.content, message.thinking)
}

#[test]
fn inline_reasoning_leaves_the_answer() {
    assert_eq!(
        separated("<think>\nIt could say APPROVED.\n</think>\n\nNEEDS WORK"),
        (
            "NEEDS WORK".to_owned(),
            Some("It could say APPROVED.".to_owned())
        )
    );
}

#[test]
fn unclosed_reasoning_is_all_reasoning() {
    assert_eq!(
        separated("<think>still going"),
        (String::new(), Some("still going".to_owned()))
    );
}

#[test]
fn a_think_tag_inside_an_answer_stays() {
    assert_eq!(
        separated("Use <think> tags like this."),
        ("Use <think> tags like this.".to_owned(), None)
    );
    assert_eq!(separated("plain"), ("plain".to_owned(), None));
}
