//! Tests of the tool-calling loop against a scripted model.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use agentrun_spec::{AgentSpec, Workflow};
use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::agent::Agent;
use crate::backend::{BackendError, CallMetrics, ChatResponse, ModelOptions, TokenSink};
use crate::event::EventSink;
use crate::test_backend::{Chat, ChatOnly};
use crate::tools::{Tool, Workspace, builtin_tool};

/// A model that answers with scripted messages in order, repeating the last one.
struct Scripted {
    replies: Mutex<VecDeque<Message>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl Scripted {
    fn new(replies: Vec<Message>) -> ChatOnly<Scripted> {
        ChatOnly(Scripted {
            replies: Mutex::new(replies.into()),
            requests: Mutex::default(),
        })
    }

    fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Chat for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn chat(
        &self,
        request: &ChatRequest,
        on_text: TokenSink<'_>,
    ) -> Result<ChatResponse, BackendError> {
        self.requests.lock().expect("lock").push(request.clone());
        let mut replies = self.replies.lock().expect("lock");
        let message = if replies.len() > 1 {
            replies.pop_front().expect("a reply")
        } else {
            replies.front().cloned().expect("a reply")
        };
        on_text(&message.content);
        Ok(ChatResponse {
            message,
            done_reason: Some(crate::backend::DoneReason::Stop),
            metrics: CallMetrics {
                eval_count: Some(10),
                ..CallMetrics::default()
            },
        })
    }
}

fn calling(calls: &[(&str, serde_json::Value)]) -> Message {
    Message {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: calls
            .iter()
            .map(|(name, arguments)| ToolCall {
                id: None,
                name: (*name).to_owned(),
                arguments: arguments.clone(),
            })
            .collect(),
        ..Message::assistant("")
    }
}

fn coder(extra: &str) -> AgentSpec {
    let yaml = format!(
        "name: t\nagents:\n  coder:\n    model: m\n    prompt: You write code.\n    options: {{ num_ctx: 2048 }}\n    \
         tools: [read_file, write_file]\n{extra}flow:\n  start: coder\n  edges:\n    - {{ from: coder, to: end }}\n"
    );
    Workflow::from_yaml_str(&yaml, Path::new("t.yaml"))
        .expect("a valid workflow")
        .agents
        .remove(0)
}

/// Runs one turn of `spec` against `backend` in `dir`; returns the reply and the events.
async fn turn(
    spec: &AgentSpec,
    backend: &ChatOnly<Scripted>,
    dir: &Path,
    extra_tools: Vec<Arc<dyn Tool>>,
) -> (AgentReply, Vec<Event>) {
    let workspace = Workspace::new(dir).expect("a workspace");
    let mut tools: Vec<Arc<dyn Tool>> = spec
        .tools()
        .iter()
        .map(|name| builtin_tool(*name))
        .collect();
    tools.extend(extra_tools);
    let (events, mut receiver) = EventSink::channel();
    let context = TurnContext {
        spec,
        turn: 1,
        task: "the task",
        conversation: &[],
        backend,
        call: Some(ModelCall {
            model: "m".to_owned(),
            options: ModelOptions::new(),
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
    let reply = LlmAgent::new()
        .respond(context)
        .await
        .expect("the turn succeeds");
    drop(events);
    let mut seen = Vec::new();
    while let Some(event) = receiver.recv().await {
        seen.push(event);
    }
    (reply, seen)
}

#[tokio::test]
async fn tool_calls_run_and_their_results_go_back_to_the_model() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let backend = Scripted::new(vec![
        calling(&[("write_file", json!({"path": "a.txt", "content": "hello"}))]),
        calling(&[("read_file", json!({"path": "a.txt"}))]),
        Message::assistant("Done: a.txt says hello."),
    ]);
    let (reply, events) = turn(&coder(""), &backend, dir.path(), Vec::new()).await;
    assert_eq!(reply.text, "Done: a.txt says hello.");
    assert_eq!(reply.tokens, 30, "every call's tokens count");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).expect("written"),
        "hello"
    );
    let records: Vec<(u32, &str, bool, &str)> = reply
        .tool_calls
        .iter()
        .map(|r| (r.round, r.tool.as_str(), r.ok, r.output.as_str()))
        .collect();
    assert_eq!(
        records,
        [
            (1, "write_file", true, "wrote 5 bytes to a.txt (new file)"),
            (2, "read_file", true, "hello"),
        ]
    );
    let requests = backend.requests();
    assert_eq!(requests.len(), 3);
    let offered: Vec<&str> = requests[0].tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(offered, ["read_file", "write_file"]);
    let last = &requests[2].messages;
    let tail: Vec<(Role, &str)> = last[last.len() - 2..]
        .iter()
        .map(|m| (m.role, m.content.as_str()))
        .collect();
    assert_eq!(tail, [(Role::Assistant, ""), (Role::Tool, "hello")]);
    assert_eq!(last[last.len() - 2].tool_calls[0].name, "read_file");
    let tool_events: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::ToolCall { .. } | Event::ToolResult { .. }))
        .collect();
    assert_eq!(tool_events.len(), 4);
    assert!(matches!(
        tool_events[1],
        Event::ToolResult { tool, ok: true, round: 1, .. } if tool == "write_file"
    ));
}

#[tokio::test]
async fn unknown_tools_and_malformed_arguments_go_back_as_errors() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let backend = Scripted::new(vec![
        calling(&[
            ("delete_everything", json!({})),
            ("write_file", json!({"path": "a.txt"})),
            ("write_file", json!("not json at all")),
            ("read_file", json!({"path": "/etc/passwd"})),
        ]),
        Message::assistant("I will stop."),
    ]);
    let (reply, events) = turn(&coder(""), &backend, dir.path(), Vec::new()).await;
    assert_eq!(reply.text, "I will stop.");
    let outputs: Vec<(bool, &str)> = reply
        .tool_calls
        .iter()
        .map(|r| (r.ok, r.output.as_str()))
        .collect();
    assert_eq!(
        outputs,
        [
            (
                false,
                "error: refused: there is no tool `delete_everything`; the tools are: read_file, write_file"
            ),
            (false, "error: invalid arguments: missing field `content`"),
            (
                false,
                "error: invalid arguments: expected a JSON object, found the text \"not json at all\""
            ),
            (
                false,
                "error: refused: `/etc/passwd` is an absolute path; give a path relative to the workspace, e.g. `src/main.rs`"
            ),
        ]
    );
    let requests = backend.requests();
    let sent: Vec<&str> = requests[1]
        .messages
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(sent.len(), 4, "each error went back to the model");
    assert!(sent[0].contains("no tool `delete_everything`"));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::ToolResult { ok: false, .. }))
            .count(),
        4
    );
}

#[tokio::test]
async fn a_model_that_never_stops_calling_tools_is_cut_off() {
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::write(dir.path().join("a.txt"), "again").expect("written");
    let backend = Scripted::new(vec![Message {
        content: "Let me look once more.".to_owned(),
        ..calling(&[("read_file", json!({"path": "a.txt"}))])
    }]);
    let (reply, events) = turn(
        &coder("    max_tool_rounds: 3\n"),
        &backend,
        dir.path(),
        Vec::new(),
    )
    .await;
    assert_eq!(
        backend.requests().len(),
        4,
        "three rounds, then the answer that is cut off"
    );
    assert_eq!(reply.tool_calls.len(), 3);
    assert_eq!(
        reply.text,
        "Let me look once more.\n\n[cut off: still calling tools after 3 rounds (max_tool_rounds); \
         the last calls (read_file) were not run]"
    );
    assert!(events.contains(&Event::ToolLimit {
        agent: "coder".to_owned(),
        rounds: 3
    }));
}

/// A custom tool that always panics.
struct Broken;

#[async_trait]
impl Tool for Broken {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "broken".to_owned(),
            description: "Always fails.".to_owned(),
            parameters: json!({"type": "object", "properties": {}}),
        }
    }

    async fn call(&self, _: serde_json::Value, _: &ToolContext<'_>) -> Result<String, ToolError> {
        panic!("a bug in a custom tool")
    }
}

#[tokio::test]
async fn a_custom_tool_is_offered_and_its_failure_does_not_end_the_turn() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let backend = Scripted::new(vec![
        calling(&[("broken", json!({}))]),
        Message::assistant("It failed; moving on."),
    ]);
    let (reply, _) = turn(&coder(""), &backend, dir.path(), vec![Arc::new(Broken)]).await;
    assert_eq!(reply.text, "It failed; moving on.");
    assert_eq!(
        reply.tool_calls[0].output,
        "error: the tool failed unexpectedly"
    );
    let offered: Vec<String> = backend.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert_eq!(offered, ["read_file", "write_file", "broken"]);
}

#[tokio::test]
async fn huge_and_mistyped_arguments_are_refused_and_recorded_bounded() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let huge = "x".repeat(MAX_ARGUMENT_BYTES + 1);
    let backend = Scripted::new(vec![
        calling(&[
            ("write_file", json!({"path": "big.txt", "content": huge})),
            ("write_file", json!({"path": 42, "content": "text"})),
            ("write_file", json!({"path": ["a", "b"], "content": "text"})),
            ("read_file", json!({"path": "a.txt", "extra": [1, 2, 3]})),
            ("read_file", json!(null)),
        ]),
        Message::assistant("done"),
    ]);
    let (reply, events) = turn(&coder(""), &backend, dir.path(), Vec::new()).await;
    assert!(!dir.path().join("big.txt").exists(), "nothing was written");
    let records = &reply.tool_calls;
    assert_eq!(records.len(), 5);
    assert!(
        !records[0].ok && records[0].output.contains("more than the 1048576 allowed"),
        "{:?}",
        records[0].output
    );
    // The transcript and the events keep the size, not the text.
    let recorded = records[0].arguments.to_string();
    assert!(recorded.len() < 100, "{recorded}");
    assert!(recorded.contains("omitted_bytes"), "{recorded}");
    let logged = events
        .iter()
        .find_map(|event| match event {
            Event::ToolCall { arguments, .. } => Some(arguments.to_string()),
            _ => None,
        })
        .expect("a tool call event");
    assert!(logged.len() < 100, "{logged}");
    // So does what goes back to the model.
    let requests = backend.requests();
    let sent: usize = requests[1]
        .messages
        .iter()
        .flat_map(|message| &message.tool_calls)
        .map(|call| call.arguments.to_string().len())
        .sum();
    assert!(sent < 1_000, "{sent} bytes of arguments went back");
    for (record, gist) in records[1..].iter().zip([
        "invalid type: integer `42`, expected a string",
        "invalid type: sequence, expected a string",
        "does not exist",
        "missing field `path`",
    ]) {
        assert!(!record.ok, "{record:?}");
        assert!(
            record.output.contains(gist),
            "{} lacks {gist}",
            record.output
        );
    }
    assert_eq!(reply.text, "done");
}

#[test]
fn argument_sizes_are_their_json_length() {
    let arguments = json!({"path": "a.txt", "content": "é"});
    assert_eq!(argument_bytes(&arguments), arguments.to_string().len());
}
