//! Tests of the mapping from HTTP answers and ollama-rs errors to backend errors.

use super::*;

const SERVER: &str = "http://127.0.0.1:11434";

fn chat_target() -> Target<'static> {
    Target::model(SERVER, "qwen3:1.7b", "POST /api/chat")
}

#[test]
fn unknown_model_says_how_to_pull_it() {
    let error = chat_target().response(
        StatusCode::NOT_FOUND,
        r#"{"error":"model 'qwen3:1.7b' not found"}"#,
    );
    assert!(
        matches!(error, BackendError::ModelNotFound { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "model 'qwen3:1.7b' not found on http://127.0.0.1:11434; pull it with `ollama pull qwen3:1.7b`"
    );
}

#[test]
fn a_bare_404_questions_the_address_instead_of_the_model() {
    let error = chat_target().response(StatusCode::NOT_FOUND, "404 page not found");
    let BackendError::BadRequest { message, .. } = &error else {
        panic!("expected BadRequest, got {error:?}");
    };
    assert!(
        message.contains("is this the address of an Ollama server"),
        "{message}"
    );
    assert!(message.contains("POST /api/chat"), "{message}");
}

#[test]
fn statuses_map_to_their_kinds() {
    let busy = chat_target().response(
        StatusCode::SERVICE_UNAVAILABLE,
        r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
    );
    assert_eq!(
        busy.to_string(),
        "server busy: server busy, please try again.  maximum pending requests exceeded \
         (http://127.0.0.1:11434)"
    );
    assert!(busy.is_retryable());

    let bad = chat_target().response(
        StatusCode::BAD_REQUEST,
        r#"{"error":"qwen3:1.7b does not support tools"}"#,
    );
    assert!(
        matches!(&bad, BackendError::BadRequest { message, .. } if message == "qwen3:1.7b does not support tools")
    );
    assert!(!bad.is_retryable());

    let cancelled = chat_target().response(StatusCode::from_u16(499).expect("valid"), "{}");
    assert!(
        matches!(&cancelled, BackendError::BadRequest { message, .. } if message.starts_with("HTTP 499"))
    );

    let failed = chat_target().response(
        StatusCode::INTERNAL_SERVER_ERROR,
        r#"{"error":"model requires more system memory (60 GiB) than is available (48 GiB)"}"#,
    );
    assert!(
        matches!(&failed, BackendError::OutOfMemory { status: 500, message, .. } if message.contains("more system memory"))
    );
    assert!(failed.is_retryable());

    let gateway = chat_target().response(StatusCode::BAD_GATEWAY, "");
    assert!(
        matches!(&gateway, BackendError::Server { status: 502, message, .. } if message.contains("empty body"))
    );
}

#[test]
fn long_non_json_bodies_are_shortened() {
    let page = "<html>".repeat(200);
    let error = chat_target().response(StatusCode::BAD_GATEWAY, &page);
    let BackendError::Server { message, .. } = error else {
        panic!("expected Server");
    };
    assert_eq!(message.chars().count(), MAX_QUOTED_BODY_CHARS + 3);
}

#[test]
fn ollama_rs_bodies_are_classified_by_wording() {
    let target = Target::model(SERVER, "missing:latest", "POST /api/generate");
    let not_found = target.ollama_rs(OllamaError::Other(
        r#"{"error":"model \"missing:latest\" not found, try pulling it first"}"#.to_owned(),
    ));
    assert!(
        matches!(&not_found, BackendError::ModelNotFound { model, .. } if model == "missing:latest")
    );

    let busy = target.ollama_rs(OllamaError::Other(
        r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#
            .to_owned(),
    ));
    assert!(matches!(busy, BackendError::Busy { .. }));

    let bad = target.ollama_rs(OllamaError::Other(
        r#"{"error":"time: missing unit in duration \"300\""}"#.to_owned(),
    ));
    assert!(matches!(bad, BackendError::BadRequest { .. }));

    let load_failed = target.ollama_rs(OllamaError::Other(
        r#"{"error":"llama runner process has terminated: signal: killed"}"#.to_owned(),
    ));
    assert!(matches!(
        load_failed,
        BackendError::Server { status: 500, .. }
    ));
}

#[test]
fn calls_without_a_model_name_their_endpoint() {
    let target = Target::server(SERVER, "GET /api/ps");
    let error = target.timeout(Duration::from_secs(30));
    assert_eq!(error.to_string(), "'GET /api/ps' did not answer within 30s");
    let error = target.response(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#);
    assert!(
        matches!(error, BackendError::BadRequest { .. }),
        "{error:?}"
    );
}
