//! Tests of what a model's reply becomes: empty replies are never a finished turn, a
//! reply cut at its length limit is kept and marked, reasoning is kept apart from the
//! answer (and sent back inside a tool loop), tool results name their call, and
//! generation time comes from the server's durations when it gives them.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Mutex;

use agentrun_spec::{AgentSpec, Workflow};
use serde_json::json;

use super::*;
use crate::backend::{ChatResponse, TokenSink};
use crate::event::EventSink;
use crate::message::{Role, ToolCall};
use crate::test_backend::{Chat, ChatOnly};
use crate::tools::builtin_tool;

/// A model that answers with scripted responses in order, repeating the last one,
/// and keeps every request.
struct Replies {
    responses: Mutex<VecDeque<ChatResponse>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl Replies {
    fn new(responses: Vec<ChatResponse>) -> ChatOnly<Replies> {
        ChatOnly(Replies {
            responses: Mutex::new(responses.into()),
            requests: Mutex::default(),
        })
    }

    fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Chat for Replies {
    fn name(&self) -> &'static str {
        "replies"
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        self.requests.lock().expect("lock").push(request.clone());
        let mut responses = self.responses.lock().expect("lock");
        let response = if responses.len() > 1 {
            responses.pop_front().expect("a response")
        } else {
            responses.front().cloned().expect("a response")
        };
        on_text(&response.message.content);
        Ok(response)
    }
}

fn response(message: Message, done_reason: DoneReason) -> ChatResponse {
    ChatResponse {
        message,
        done_reason: Some(done_reason),
        metrics: CallMetrics {
            eval_count: Some(10),
            eval: Some(Duration::from_secs(2)),
            ..CallMetrics::default()
        },
    }
}

/// A reply that is all reasoning: what a thinking model gives when `num_predict` runs
/// out before it answers.
fn all_thinking() -> ChatResponse {
    response(
        Message {
            thinking: Some("Okay, the user wants a haiku. Let me count syllables".to_owned()),
            ..Message::assistant("")
        },
        DoneReason::Length,
    )
}

fn agent(extra: &str) -> AgentSpec {
    let yaml = format!(
        "name: t\nagents:\n  writer:\n    model: m\n    prompt: You write.\n{extra}\
         flow:\n  start: writer\n  edges:\n    - {{ from: writer, to: end }}\n"
    );
    Workflow::from_yaml_str(&yaml, Path::new("t.yaml"))
        .expect("a valid workflow")
        .agents
        .remove(0)
}

/// Takes one turn of `spec`; returns its outcome and the events.
async fn turn(
    spec: &AgentSpec,
    backend: &ChatOnly<Replies>,
    options: ModelOptions,
) -> (Result<AgentReply, AgentError>, Vec<Event>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let workspace = Workspace::new(dir.path()).expect("a workspace");
    let tools: Vec<Arc<dyn Tool>> = spec
        .tools()
        .iter()
        .map(|name| builtin_tool(*name))
        .collect();
    let (events, mut receiver) = EventSink::channel();
    let context = TurnContext {
        spec,
        turn: 1,
        task: "the task",
        conversation: &[],
        backend,
        call: Some(ModelCall {
            model: "qwen3:0.6b".to_owned(),
            options,
            keep_alive: None,
        }),
        events: &events,
        workspace: &workspace,
        tools: &tools,
        console: None,
        context_state: None,
        summarizer: None,
        time_scale: 1.0,
    };
    let outcome = LlmAgent::new().respond(context).await;
    drop(events);
    let mut seen = Vec::new();
    while let Some(event) = receiver.recv().await {
        seen.push(event);
    }
    (outcome, seen)
}

fn num_predict(limit: i64) -> ModelOptions {
    let mut options = ModelOptions::new();
    options.insert("num_predict".to_owned(), limit.into());
    options
}

#[tokio::test(start_paused = true)]
async fn an_all_thinking_reply_cut_at_length_is_retried_larger_then_stops_the_turn() {
    let backend = Replies::new(vec![all_thinking()]);
    let (outcome, events) = turn(&agent(""), &backend, num_predict(256)).await;
    let error = outcome.expect_err("an empty reply is never a finished turn");
    let message = error.to_string();
    for needed in [
        "qwen3:0.6b",
        "only thinking",
        "done_reason: length",
        "think: false",
        "num_predict",
        "'writer'",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from {message}"
        );
    }
    let limits: Vec<i64> = backend
        .requests()
        .iter()
        .map(|request| request.options["num_predict"].as_i64().expect("a limit"))
        .collect();
    assert_eq!(limits, [256, 512, 1024], "each retry has more room");
    let retries = events
        .iter()
        .filter(
            |event| matches!(event, Event::Retry { error, .. } if error.contains("empty reply")),
        )
        .count();
    assert_eq!(retries, 2);
}

#[tokio::test(start_paused = true)]
async fn an_empty_reply_followed_by_an_answer_finishes_the_turn() {
    let backend = Replies::new(vec![
        all_thinking(),
        response(Message::assistant("Autumn wind"), DoneReason::Stop),
    ]);
    let (outcome, _) = turn(&agent(""), &backend, ModelOptions::new()).await;
    let reply = outcome.expect("the second reply answers");
    assert_eq!(reply.text, "Autumn wind");
    assert!(!reply.cut_off);
    assert_eq!(backend.requests().len(), 2);
    assert!(
        !backend.requests()[1].options.contains_key("num_predict"),
        "no limit to raise when none was set"
    );
}

#[tokio::test]
async fn a_reply_cut_at_length_is_kept_and_marked() {
    let backend = Replies::new(vec![response(
        Message::assistant("The first half of"),
        DoneReason::Length,
    )]);
    let (outcome, _) = turn(&agent(""), &backend, ModelOptions::new()).await;
    let reply = outcome.expect("a partial reply is a reply");
    assert_eq!(reply.text, "The first half of");
    assert!(reply.cut_off);
}

#[tokio::test]
async fn thinking_is_kept_apart_from_the_answer() {
    let backend = Replies::new(vec![response(
        Message {
            thinking: Some("Should I say APPROVED? No.".to_owned()),
            ..Message::assistant("NEEDS WORK")
        },
        DoneReason::Stop,
    )]);
    let (outcome, _) = turn(&agent(""), &backend, ModelOptions::new()).await;
    let reply = outcome.expect("an answer");
    assert_eq!(reply.text, "NEEDS WORK");
    assert_eq!(
        reply.thinking.as_deref(),
        Some("Should I say APPROVED? No.")
    );
}

#[tokio::test]
async fn inline_reasoning_is_moved_out_of_the_answer() {
    let backend = Replies::new(vec![response(
        Message::assistant("<think>\nMaybe APPROVED?\n</think>\n\nNEEDS WORK"),
        DoneReason::Stop,
    )]);
    let (outcome, _) = turn(&agent(""), &backend, ModelOptions::new()).await;
    let reply = outcome.expect("an answer");
    assert_eq!(reply.text, "NEEDS WORK");
    assert_eq!(reply.thinking.as_deref(), Some("Maybe APPROVED?"));
}

#[tokio::test]
async fn a_router_reads_its_choice_after_inline_reasoning() {
    let backend = Replies::new(vec![response(
        Message::assistant("<think>done or revise?</think>{\"choice\": \"done\"}"),
        DoneReason::Stop,
    )]);
    let mut spec = agent("");
    let agentrun_spec::AgentKind::Llm(llm) = &mut spec.kind else {
        panic!("a model agent")
    };
    llm.choices = vec!["done".to_owned(), "revise".to_owned()];
    let (outcome, _) = turn(&spec, &backend, ModelOptions::new()).await;
    let reply = outcome.expect("a choice");
    assert_eq!(reply.choice.as_deref(), Some("done"));
    assert!(!reply.fallback, "the choice was read, not guessed");
}

#[tokio::test]
async fn tool_results_name_their_call_and_thinking_goes_back_with_the_calls() {
    let call = |id: Option<&str>, path: &str| ToolCall {
        id: id.map(str::to_owned),
        name: "read_file".to_owned(),
        arguments: json!({ "path": path }),
    };
    let backend = Replies::new(vec![
        response(
            Message {
                thinking: Some("I should read both files.".to_owned()),
                tool_calls: vec![call(Some("call_a"), "a.txt"), call(None, "b.txt")],
                ..Message::assistant("")
            },
            DoneReason::Stop,
        ),
        response(Message::assistant("Neither exists."), DoneReason::Stop),
    ]);
    let spec = agent("    tools: [read_file]\n");
    let (outcome, _) = turn(&spec, &backend, ModelOptions::new()).await;
    outcome.expect("an answer");
    let second = &backend.requests()[1].messages;
    let assistant = &second[second.len() - 3];
    assert_eq!(assistant.role, Role::Assistant);
    assert_eq!(
        assistant.thinking.as_deref(),
        Some("I should read both files."),
        "the reasoning goes back with its calls"
    );
    assert_eq!(assistant.tool_calls[0].id.as_deref(), Some("call_a"));
    let results: Vec<(Role, Option<&str>, Option<&str>)> = second[second.len() - 2..]
        .iter()
        .map(|message| {
            (
                message.role,
                message.tool_name.as_deref(),
                message.tool_call_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            (Role::Tool, Some("read_file"), Some("call_a")),
            (Role::Tool, Some("read_file"), None),
        ]
    );
}

#[test]
fn generation_time_comes_from_the_servers_durations_when_it_gives_them() {
    let seconds = Duration::from_secs;
    let measured = seconds(30);
    let full = CallMetrics {
        total: Some(seconds(10)),
        load: Some(seconds(3)),
        prompt_eval: Some(seconds(1)),
        eval: Some(seconds(5)),
        ..CallMetrics::default()
    };
    assert_eq!(generation_time(&full, measured), seconds(6));
    let no_eval = CallMetrics { eval: None, ..full };
    assert_eq!(generation_time(&no_eval, measured), seconds(7));
    let nothing = CallMetrics {
        load: Some(seconds(3)),
        ..CallMetrics::default()
    };
    assert_eq!(generation_time(&nothing, measured), seconds(27));
}
