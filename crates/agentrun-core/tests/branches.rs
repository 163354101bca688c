//! Whole runs through a fan-out and its join, with agents of this test's own: the join's
//! failure rule, a `first` join stopping the branch still running, and the branches'
//! turns recorded with their branch.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentrun_core::{
    Agent, AgentError, AgentReply, Event, EventSink, Executor, RunOptions, RunStatus, TurnContext,
};
use agentrun_spec::Workflow;
use async_trait::async_trait;

mod support;
use support::FakeServer;

/// A server no agent calls: every agent of these workflows is a command.
fn no_models() -> Arc<FakeServer> {
    Arc::new(FakeServer::new(|_| unreachable!("no agent calls a model")))
}

/// Takes `delay`, then says its name, or fails.
struct Timed {
    delay: Duration,
    fails: bool,
}

#[async_trait]
impl Agent for Timed {
    async fn respond(&self, context: TurnContext<'_>) -> Result<AgentReply, AgentError> {
        tokio::time::sleep(self.delay).await;
        if self.fails {
            return Err(AgentError::custom("the review crashed"));
        }
        // What the agent saw: the other branch's turns must not be there.
        let seen: Vec<&str> = context
            .conversation
            .iter()
            .map(|entry| entry.agent.as_str())
            .collect();
        Ok(AgentReply {
            text: format!("{} saw [{}]", context.spec.name, seen.join(", ")),
            ..AgentReply::default()
        })
    }
}

fn workflow(join: &str) -> Workflow {
    let yaml = format!(
        "name: b\nagents:\n  coder: {{ kind: command, command: [true] }}\n  slow: {{ kind: command, command: [true] }}\n  fast: {{ kind: command, command: [true] }}\n  again: {{ kind: command, command: [true] }}\n  lead: {{ kind: command, command: [true] }}\nflow:\n  start: coder\n  edges:\n    - {{ from: coder, to: [slow, fast] }}\n    - {{ from: slow, to: lead }}\n    - {{ from: fast, to: again }}\n    - {{ from: again, to: lead }}\n    - {{ from: lead, to: end }}\n  joins:\n    lead: {join}\nmemory: {{ gpu_budget: 24GB }}\nsandbox: {{ mode: off }}\n"
    );
    Workflow::from_yaml_str(&yaml, Path::new("b.yaml")).expect("a valid workflow")
}

async fn run(join: &str, slow_fails: bool) -> (agentrun_core::RunOutcome, Vec<Event>) {
    let agent = |millis: u64, fails: bool| -> Arc<dyn Agent> {
        Arc::new(Timed {
            delay: Duration::from_millis(millis),
            fails,
        })
    };
    let (sink, mut receiver) = EventSink::channel();
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut options = RunOptions::new("check it");
    options.workspace = Some(dir.path().to_path_buf());
    options.unload_at_end = false;
    let outcome = Executor::new(workflow(join), no_models())
        .with_agent("coder", agent(1, false))
        .with_agent("slow", agent(400, slow_fails))
        .with_agent("fast", agent(50, false))
        .with_agent("again", agent(50, false))
        .with_agent("lead", agent(1, false))
        .with_events(sink)
        .run(options)
        .await
        .expect("the run starts");
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }
    (outcome, events)
}

fn spoken(outcome: &agentrun_core::RunOutcome) -> Vec<(String, Option<u32>)> {
    outcome
        .transcript
        .iter()
        .map(|entry| {
            (
                entry.agent.clone(),
                entry.branch.as_ref().map(|branch| branch.index),
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_all_join_waits_for_both_branches_which_run_at_once_and_see_only_their_own() {
    let (outcome, _) = run("{ wait: all }", false).await;
    assert_eq!(outcome.summary.status, RunStatus::Completed);
    let order: Vec<(String, Option<u32>)> = spoken(&outcome);
    // Finished in this order: the fast branch's two turns before the slow one's.
    let expected = [
        ("coder", None),
        ("fast", Some(1)),
        ("again", Some(1)),
        ("slow", Some(0)),
        ("lead", None),
    ];
    assert_eq!(
        order,
        expected.map(|(agent, branch)| (agent.to_owned(), branch))
    );
    let text = |agent: &str| {
        outcome
            .transcript
            .iter()
            .find(|entry| entry.agent == agent)
            .map(|entry| entry.text.clone())
            .expect("spoke")
    };
    assert_eq!(text("again"), "again saw [coder, fast]");
    assert_eq!(text("slow"), "slow saw [coder]");
    // The join sees both branches, by branch: the slow one (branch 0) first.
    assert_eq!(text("lead"), "lead saw [coder, slow, fast, again]");
    // At once: the whole region took the slow branch's time, not the sum.
    let slow = &outcome.transcript[3];
    assert!(slow.started_s < 0.01, "slow started at {}", slow.started_s);
}

#[tokio::test(start_paused = true)]
async fn a_failing_branch_fails_the_run_unless_its_join_continues() {
    let (failed, _) = run("{ wait: all }", true).await;
    assert_eq!(failed.summary.status, RunStatus::Failed);
    assert!(
        failed.summary.reason.contains("agent 'slow' failed"),
        "{}",
        failed.summary.reason
    );

    let (outcome, events) = run("{ wait: all, on_failure: continue }", true).await;
    assert_eq!(outcome.summary.status, RunStatus::Completed);
    let agents: Vec<String> = spoken(&outcome).into_iter().map(|(a, _)| a).collect();
    assert_eq!(agents, ["coder", "fast", "again", "lead"]);
    assert!(events.iter().any(|event| matches!(
        event,
        Event::BranchFailed { agent, .. } if agent == "slow"
    )));
}

#[tokio::test(start_paused = true)]
async fn a_first_join_opens_at_the_first_arrival_and_stops_the_other_branch() {
    let (outcome, events) = run("{ wait: first }", false).await;
    assert_eq!(outcome.summary.status, RunStatus::Completed);
    let agents: Vec<String> = spoken(&outcome).into_iter().map(|(a, _)| a).collect();
    assert_eq!(agents, ["coder", "fast", "again", "lead"]);
    let stopped: Vec<&Vec<u32>> = events
        .iter()
        .filter_map(|event| match event {
            Event::JoinOpened { stopped, .. } => Some(stopped),
            _ => None,
        })
        .collect();
    assert_eq!(stopped, [&vec![0]]);

    // A condition no branch meets: the join opens once both have arrived.
    let (outcome, _) = run("{ wait: { first: { contains: NEVER } } }", false).await;
    let agents: Vec<String> = spoken(&outcome).into_iter().map(|(a, _)| a).collect();
    assert_eq!(agents, ["coder", "fast", "again", "slow", "lead"]);
}
