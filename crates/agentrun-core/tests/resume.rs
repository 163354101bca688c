//! Resuming a run: a run stopped after some turns and resumed ends with the same
//! transcript and figures as one that never stopped.

use std::path::Path;
use std::sync::Arc;

use agentrun_core::{
    Event, EventSink, Executor, Message, Resume, ResumeError, RunError, RunOptions, RunStatus,
    TranscriptEntry,
};
use agentrun_spec::Workflow;

mod support;
use support::FakeServer;

/// A server whose replies are a function of the conversation: the writer answers the
/// reviewer's last words, the reviewer approves the third draft.
fn conversational() -> FakeServer {
    FakeServer::new(|request| {
        let last = request
            .messages
            .last()
            .map(|message| message.content.as_str())
            .unwrap_or("");
        let text = if request.messages[0].content.contains("reviewer") {
            if last.contains("draft 3") {
                "APPROVED".to_owned()
            } else {
                format!("changes to {}", last.trim_start_matches("[writer]: "))
            }
        } else {
            let number = last
                .rsplit(' ')
                .next()
                .and_then(|word| word.parse::<u32>().ok())
                .map_or(1, |n| n + 1);
            format!("draft {number}")
        };
        Message::assistant(text)
    })
}

const REVIEW: &str = "\
name: review
agents:
  writer: { model: 'writer:1b', prompt: You are the writer., options: { num_ctx: 2048 } }
  reviewer: { model: 'reviewer:1b', prompt: You are the reviewer., options: { num_ctx: 2048 } }
flow:
  start: writer
  edges:
    - { from: writer, to: reviewer }
    - { from: reviewer, to: end, when: { contains: APPROVED } }
    - { from: reviewer, to: writer }
memory: { gpu_budget: 24GB }
";

fn executor(backend: Arc<FakeServer>) -> Executor {
    let workflow = Workflow::from_yaml_str(REVIEW, Path::new("review.yaml")).expect("valid");
    Executor::new(workflow, backend)
}

fn options() -> RunOptions {
    let mut options = RunOptions::new("write a poem");
    options.workspace = Some(std::env::temp_dir());
    options
}

fn said(transcript: &[TranscriptEntry]) -> Vec<(u32, String, String, String)> {
    transcript
        .iter()
        .map(|e| (e.turn, e.agent.clone(), e.text.clone(), e.next.to_string()))
        .collect()
}

#[tokio::test]
async fn a_run_stopped_after_any_turn_resumes_to_the_same_transcript() {
    let whole = executor(Arc::new(conversational()))
        .run(options())
        .await
        .expect("the run starts");
    assert_eq!(whole.summary.status, RunStatus::Completed);
    assert_eq!(whole.transcript.len(), 6, "{:#?}", said(&whole.transcript));

    for stop_after in 0..whole.transcript.len() as u32 {
        let backend = Arc::new(conversational());
        let mut first = options();
        first.max_turns = Some(stop_after);
        let stopped = executor(backend.clone())
            .run(first)
            .await
            .expect("the run starts");
        assert_eq!(stopped.transcript.len() as u32, stop_after);

        let (events, mut receiver) = EventSink::channel();
        let mut second = options();
        second.resume = Some(Resume::new(stopped.transcript.clone()));
        let resumed = executor(backend.clone())
            .with_events(events)
            .run(second)
            .await
            .expect("the run resumes");
        assert_eq!(
            said(&resumed.transcript),
            said(&whole.transcript),
            "stopped after {stop_after}"
        );
        assert_eq!(resumed.summary.status, RunStatus::Completed);
        assert_eq!(resumed.summary.turns, 6);
        assert_eq!(resumed.summary.agents, whole.summary.agents);

        let mut seen = Vec::new();
        while let Ok(event) = receiver.try_recv() {
            seen.push(event);
        }
        let Some(Event::RunStarted {
            resumed_turns,
            at_s,
            ..
        }) = seen.first()
        else {
            panic!("the first event is run_started: {seen:?}");
        };
        assert_eq!(*resumed_turns, stop_after);
        let last_end = stopped
            .transcript
            .last()
            .map_or(0.0, |e| e.started_s + e.load_wait_s + e.generation_s);
        assert!(*at_s >= last_end, "the clock goes on: {at_s} < {last_end}");
        let started: Vec<u32> = seen
            .iter()
            .filter_map(|event| match event {
                Event::TurnStarted { turn, .. } => Some(*turn),
                _ => None,
            })
            .collect();
        assert_eq!(started, (stop_after + 1..=6).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn a_resumed_run_unloads_what_the_run_loaded_before_it_stopped() {
    let backend = Arc::new(conversational());
    let mut first = options();
    first.max_turns = Some(2);
    first.unload_at_end = false; // as if the process had died
    let stopped = executor(backend.clone())
        .run(first)
        .await
        .expect("the run starts");
    assert_eq!(backend.resident.lock().expect("lock").len(), 2);

    let (events, mut receiver) = EventSink::channel();
    let mut resume = Resume::new(stopped.transcript);
    resume.resident_at_start = Some(Vec::new());
    let mut second = options();
    second.resume = Some(resume);
    executor(backend.clone())
        .with_events(events)
        .run(second)
        .await
        .expect("the run resumes");
    assert!(backend.resident.lock().expect("lock").is_empty());
    let mut reasons = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        if let Event::Unload { model, reason, .. } = event {
            reasons.push((model, reason));
        }
    }
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons.iter().all(|(_, reason)| reason.contains("ended")));
}

#[tokio::test]
async fn a_transcript_that_does_not_fit_is_refused() {
    let whole = executor(Arc::new(conversational()))
        .run(options())
        .await
        .expect("the run starts");
    let resume_with = |transcript: Vec<TranscriptEntry>| {
        let mut options = options();
        options.resume = Some(Resume::new(transcript));
        async move { executor(Arc::new(conversational())).run(options).await }
    };

    let error = resume_with(whole.transcript.clone()).await.err();
    assert!(
        matches!(
            error,
            Some(RunError::Resume(ResumeError::AlreadyEnded { turn: 6 }))
        ),
        "{error:?}"
    );

    let mut missing = whole.transcript[..4].to_vec();
    missing.remove(1);
    let error = resume_with(missing).await.err();
    assert!(
        matches!(
            error,
            Some(RunError::Resume(ResumeError::TurnOutOfOrder {
                expected: 2,
                found: 3
            }))
        ),
        "{error:?}"
    );

    let mut stranger = whole.transcript[..2].to_vec();
    stranger[1].next = agentrun_spec::EdgeTarget::Agent("editor".to_owned());
    let error = resume_with(stranger).await.err();
    assert!(
        matches!(
            &error,
            Some(RunError::Resume(ResumeError::UnknownAgent { turn: 2, agent })) if agent == "editor"
        ),
        "{error:?}"
    );
}
