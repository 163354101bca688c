//! Tests of how a model call is bounded and kept going: a reply that never ends is cut off,
//! kept and marked; a server that went away is waited for, within a bounded time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agentrun_spec::Workflow;

use super::*;
use crate::backend::{ChatResponse, ModelOptions, TokenSink};
use crate::test_backend::{Chat, ChatOnly};

/// A server that is unreachable for its first `down` calls, then answers "back".
struct Restarting {
    down: std::sync::Mutex<u32>,
}

#[async_trait]
impl Chat for Restarting {
    fn name(&self) -> &'static str {
        "restarting"
    }

    async fn chat(
        &self,
        _: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        let mut down = self.down.lock().expect("lock");
        if *down > 0 {
            *down -= 1;
            return Err(BackendError::Unreachable {
                url: self.name().to_owned(),
                reason: "connection refused".to_owned(),
            });
        }
        on_text("back");
        Ok(ChatResponse {
            message: Message::assistant("back"),
            done_reason: Some(crate::backend::DoneReason::Stop),
            metrics: crate::backend::CallMetrics::default(),
        })
    }
}

/// A model that streams `piece` every second and never finishes; it notes when the
/// caller hangs up.
struct Endless {
    piece: &'static str,
    hung_up: Arc<AtomicBool>,
}

/// Sets its flag when dropped: the call's future went away.
struct HangUp(Arc<AtomicBool>);

impl Drop for HangUp {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Chat for Endless {
    fn name(&self) -> &'static str {
        "endless"
    }

    async fn chat(
        &self,
        _: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        let _guard = HangUp(self.hung_up.clone());
        // Loading takes a while before the first word: not part of the reply's time.
        tokio::time::sleep(Duration::from_secs(600)).await;
        loop {
            on_text(self.piece);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

fn writer() -> AgentSpec {
    let yaml = "name: t\nagents:\n  writer:\n    model: m\n    prompt: You write.\n    \
                options: { num_ctx: 2048 }\nflow:\n  start: writer\n  edges:\n    - { from: writer, to: end }\n";
    Workflow::from_yaml_str(yaml, std::path::Path::new("t.yaml"))
        .expect("a valid workflow")
        .agents
        .remove(0)
}

async fn endless_turn(agent: &LlmAgent, piece: &'static str) -> (AgentReply, bool) {
    let hung_up = Arc::new(AtomicBool::new(false));
    let backend = ChatOnly(Endless {
        piece,
        hung_up: hung_up.clone(),
    });
    let (reply, _) = turn_with(agent, &backend).await;
    (
        reply.expect("a cut-off reply is a reply"),
        hung_up.load(Ordering::SeqCst),
    )
}

/// One turn of a plain model agent against `backend`, with the events it emitted.
async fn turn_with(
    agent: &LlmAgent,
    backend: &dyn ModelBackend,
) -> (Result<AgentReply, AgentError>, Vec<Event>) {
    let spec = writer();
    let dir = tempfile::tempdir().expect("a temp dir");
    let workspace = Workspace::new(dir.path()).expect("a workspace");
    let (events, mut receiver) = EventSink::channel();
    let context = TurnContext {
        spec: &spec,
        turn: 1,
        task: "write",
        conversation: &[],
        backend,
        call: Some(ModelCall {
            model: "m".to_owned(),
            options: ModelOptions::new(),
            keep_alive: None,
        }),
        events: &events,
        workspace: &workspace,
        tools: &[],
        console: None,
        context_state: None,
        summarizer: None,
        time_scale: 1.0,
    };
    let reply = agent.respond(context).await;
    drop(events);
    let mut seen = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        seen.push(event);
    }
    (reply, seen)
}

#[tokio::test(start_paused = true)]
async fn a_server_that_restarts_mid_turn_is_waited_for() {
    let backend = ChatOnly(Restarting {
        down: std::sync::Mutex::new(4),
    });
    let started = tokio::time::Instant::now();
    let (reply, events) = turn_with(&LlmAgent::new(), &backend).await;
    assert_eq!(reply.expect("the server came back").text, "back");
    // Four refusals, waited out with growing pauses, not counted as the two retries.
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(500 + 1000 + 2000 + 4000)
    );
    let waits = events
        .iter()
        .filter(|event| matches!(event, Event::Retry { error, .. } if error.contains("waiting for the server")))
        .count();
    assert_eq!(waits, 4);
}

#[tokio::test(start_paused = true)]
async fn a_server_that_stays_gone_ends_the_turn_after_the_window() {
    let backend = ChatOnly(Restarting {
        down: std::sync::Mutex::new(u32::MAX),
    });
    let started = tokio::time::Instant::now();
    let (reply, _) = turn_with(&LlmAgent::new(), &backend).await;
    assert!(
        matches!(
            reply,
            Err(AgentError::Backend(BackendError::Unreachable { .. }))
        ),
        "{reply:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= reconnect::RECONNECT_WINDOW && waited < Duration::from_secs(90),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reply_that_never_ends_is_cut_off_at_the_time_limit_and_kept() {
    let agent = LlmAgent {
        max_reply_time: Some(Duration::from_secs(60)),
        max_reply_chars: None,
        ..LlmAgent::new()
    };
    let started = tokio::time::Instant::now();
    let (reply, hung_up) = endless_turn(&agent, "la ").await;
    // The ten minutes before the first word do not count; sixty seconds of words do.
    assert_eq!(started.elapsed(), Duration::from_secs(660));
    assert!(
        hung_up,
        "the call was dropped, so the server stops generating"
    );
    assert!(reply.text.starts_with("la la la "), "{}", reply.text);
    // One word as the clock starts, then one a second up to and including the 60th.
    assert_eq!(reply.text.matches("la ").count(), 61, "{}", reply.text);
    assert!(
        reply
            .text
            .ends_with("[cut off: the reply went on for more than 1m (the reply time limit)]"),
        "{}",
        reply.text
    );
}

#[tokio::test(start_paused = true)]
async fn a_reply_that_never_ends_is_cut_off_at_the_length_limit_on_a_character() {
    let agent = LlmAgent {
        max_reply_time: None,
        max_reply_chars: Some(100),
        ..LlmAgent::new()
    };
    let (reply, hung_up) = endless_turn(&agent, "déjà ").await;
    assert!(hung_up);
    let (kept, marker) = reply
        .text
        .split_once("\n\n")
        .expect("text, then the marker");
    assert!(kept.len() <= 100 && kept.len() > 90, "{kept:?}");
    assert!(kept.starts_with("déjà déjà"), "{kept:?}");
    assert_eq!(
        marker,
        "[cut off: the reply went past 100 characters (the reply length limit)]"
    );
}

#[test]
fn a_new_agent_has_both_reply_limits() {
    let agent = LlmAgent::new();
    assert_eq!(agent.max_reply_time, Some(DEFAULT_MAX_REPLY_TIME));
    assert_eq!(agent.max_reply_chars, Some(DEFAULT_MAX_REPLY_CHARS));
}
