//! The backend against byte-exact scripted replies: cuts, stalls and drops.

use std::time::Duration;

use agentrun_core::{BackendError, ModelBackend};
use agentrun_ollama::{OllamaBackend, OllamaConfig};
use serde_json::json;

use crate::canned::{self, End, Piece, Script};
use crate::support::{PAUSE, backend, chat_request, patient_config};

fn line(value: serde_json::Value) -> String {
    format!("{value}\n")
}

fn piece_line(content: &str) -> String {
    line(
        json!({"model": "coder", "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": content}, "done": false}),
    )
}

fn done_line() -> String {
    line(
        json!({"model": "coder", "created_at": "2026-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": ""},
                "done": true, "done_reason": "stop", "eval_count": 2}),
    )
}

#[tokio::test]
async fn lines_and_characters_cut_across_chunks_are_reassembled() {
    let body = format!(
        "{}{}{}",
        piece_line("déjà "),
        piece_line("vu ✓"),
        done_line()
    );
    let bytes = body.as_bytes();
    // Cut inside 'é', inside '✓', and in the middle of the final line.
    let first = body.find('é').expect("é") + 1;
    let second = body.find('✓').expect("✓") + 2;
    let third = body.find("\"done\":true").expect("final line");
    let server = canned::serve(Script::stream(
        vec![
            Piece::Bytes(bytes[..first].to_vec()),
            Piece::Pause(PAUSE),
            Piece::Bytes(bytes[first..second].to_vec()),
            Piece::Pause(PAUSE),
            Piece::Bytes(bytes[second..third].to_vec()),
            Piece::Pause(PAUSE),
            Piece::Bytes(bytes[third..].to_vec()),
        ],
        End::Complete,
    ))
    .await;
    let mut streamed = Vec::new();
    let reply = backend(&server.url)
        .chat(&chat_request("coder", "hi"), &mut |text| {
            streamed.push(text.to_owned())
        })
        .await
        .expect("a complete reply");
    assert_eq!(streamed, ["déjà ", "vu ✓"]);
    assert_eq!(reply.message.content, "déjà vu ✓");
    assert_eq!(
        reply
            .done_reason
            .as_ref()
            .map(agentrun_core::DoneReason::as_str),
        Some("stop")
    );
    assert_eq!(reply.metrics.eval_count, Some(2));
}

#[tokio::test]
async fn a_final_line_without_newline_still_completes_the_reply() {
    let body = format!("{}{}", piece_line("ok"), done_line().trim_end());
    let server = canned::serve(Script::stream(vec![Piece::text(&body)], End::Complete)).await;
    let reply = backend(&server.url)
        .chat(&chat_request("coder", "hi"), &mut |_| {})
        .await
        .expect("a complete reply");
    assert_eq!(reply.message.content, "ok");
}

#[tokio::test]
async fn a_body_that_ends_without_done_is_a_stream_error() {
    let server = canned::serve(Script::stream(
        vec![Piece::text(&piece_line("half a rep"))],
        End::Complete,
    ))
    .await;
    let error = backend(&server.url)
        .chat(&chat_request("coder", "hi"), &mut |_| {})
        .await
        .expect_err("no final chunk");
    assert!(
        matches!(&error, BackendError::Stream { model, message }
            if model == "coder" && message.contains("without its final chunk") && message.contains("10 characters")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_connection_dropped_mid_body_is_a_stream_error() {
    let server = canned::serve(Script::stream(
        vec![Piece::text(&piece_line("half"))],
        End::Drop,
    ))
    .await;
    let error = backend(&server.url)
        .chat(&chat_request("coder", "hi"), &mut |_| {})
        .await
        .expect_err("a dropped connection");
    assert!(
        matches!(&error, BackendError::Stream { message, .. } if message.contains("connection broke")),
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_stalled_stream_times_out_after_the_stream_timeout() {
    let server = canned::serve(Script::stream(
        vec![Piece::text(&piece_line("and then"))],
        End::Hang,
    ))
    .await;
    let config = OllamaConfig {
        stream_timeout: Duration::from_millis(300),
        ..patient_config()
    };
    let backend = OllamaBackend::new(&server.url, config).expect("a valid URL");
    let mut streamed = String::new();
    let error = backend
        .chat(&chat_request("coder", "hi"), &mut |text| {
            streamed.push_str(text)
        })
        .await
        .expect_err("a stall");
    assert_eq!(streamed, "and then");
    assert!(
        matches!(&error, BackendError::Timeout { model, after } if model == "coder" && *after == Duration::from_millis(300)),
        "{error:?}"
    );
}

/// A slow first chunk is a load in progress: only the load timeout applies,
/// however short the stream timeout.
#[tokio::test]
async fn a_slow_first_chunk_waits_for_the_load_timeout_not_the_stream_timeout() {
    let server = canned::serve(Script::stream(
        vec![
            Piece::Pause(Duration::from_millis(600)),
            Piece::text(&piece_line("loaded")),
            Piece::text(&done_line()),
        ],
        End::Complete,
    ))
    .await;
    let config = OllamaConfig {
        stream_timeout: Duration::from_millis(100),
        ..patient_config()
    };
    let backend = OllamaBackend::new(&server.url, config).expect("a valid URL");
    let reply = backend
        .chat(&chat_request("coder", "hi"), &mut |_| {})
        .await
        .expect("the load is waited for");
    assert_eq!(reply.message.content, "loaded");

    let config = OllamaConfig {
        load_timeout: Duration::from_millis(100),
        ..patient_config()
    };
    let impatient = OllamaBackend::new(&server.url, config).expect("a valid URL");
    let error = impatient
        .chat(&chat_request("coder", "hi"), &mut |_| {})
        .await
        .expect_err("the load takes longer than the load timeout");
    assert!(
        matches!(error, BackendError::Timeout { after, .. } if after == Duration::from_millis(100)),
        "{error:?}"
    );
}

#[tokio::test]
async fn error_statuses_keep_their_meaning() {
    type Expectation = fn(&BackendError) -> bool;
    let cases: [(Script, Expectation); 4] = [
        (
            Script::error(404, "model 'coder' not found"),
            |error| matches!(error, BackendError::ModelNotFound { model, .. } if model == "coder"),
        ),
        (
            Script::error(
                503,
                "server busy, please try again.  maximum pending requests exceeded",
            ),
            |error| matches!(error, BackendError::Busy { .. }),
        ),
        (
            Script::error(400, "coder does not support tools"),
            |error| matches!(error, BackendError::BadRequest { message, .. } if message == "coder does not support tools"),
        ),
        (
            Script::error(500, "llama runner process has terminated"),
            |error| matches!(error, BackendError::Server { status: 500, .. }),
        ),
    ];
    for (script, expected) in cases {
        let status = script.status;
        let server = canned::serve(script).await;
        let error = backend(&server.url)
            .chat(&chat_request("coder", "hi"), &mut |_| {})
            .await
            .expect_err("an error status");
        assert!(expected(&error), "HTTP {status} gave {error:?}");
    }
}

#[tokio::test]
async fn status_lost_by_ollama_rs_is_recovered_from_the_wording() {
    // Preload goes through ollama-rs, which keeps the body but not the status.
    let server = canned::serve(Script::error(
        503,
        "server busy, please try again.  maximum pending requests exceeded",
    ))
    .await;
    let error = backend(&server.url)
        .preload("coder", &Default::default(), None)
        .await
        .expect_err("a full queue");
    assert!(matches!(error, BackendError::Busy { .. }), "{error:?}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_every_call_names_the_url() {
    let url = crate::support::closed_port_url().await;
    let backend = backend(&url);
    let errors = [
        backend
            .chat(&chat_request("coder", "hi"), &mut |_| {})
            .await
            .expect_err("closed"),
        backend
            .preload("coder", &Default::default(), None)
            .await
            .expect_err("closed"),
        backend.unload("coder").await.expect_err("closed"),
        backend.running_models().await.expect_err("closed"),
        backend.model_details("coder").await.expect_err("closed"),
        backend.version().await.expect_err("closed"),
    ];
    for error in errors {
        assert!(
            matches!(&error, BackendError::Unreachable { url: reported, reason }
                if *reported == url && reason.to_lowercase().contains("refused")),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("cannot reach the Ollama server at {url}: "))
        );
        assert!(error.is_retryable());
    }
}

/// Ollama stops generating when its client disconnects; dropping the call's
/// future must therefore close the connection.
#[tokio::test]
async fn dropping_a_chat_closes_its_connection() {
    let mut server = canned::serve(Script::stream(
        vec![Piece::text(&piece_line("thinking hard"))],
        End::Hang,
    ))
    .await;
    let backend = backend(&server.url);
    let request = chat_request("coder", "hi");
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let mut sender = Some(sender);
    let mut on_text = |text: &str| {
        if let Some(sender) = sender.take() {
            let _ = sender.send(text.to_owned());
        }
    };
    // The call is dropped as soon as its first text has arrived.
    let first_text = tokio::select! {
        _ = backend.chat(&request, &mut on_text) => panic!("the hanging reply cannot complete"),
        text = receiver => text.ok(),
    };
    assert_eq!(first_text.as_deref(), Some("thinking hard"));
    server
        .hung_up
        .recv()
        .await
        .expect("the server saw the client hang up");
}
