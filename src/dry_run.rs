//! `DryRun`: simulated replies for every agent of a workflow, drawn from its `simulation`
//! section, for `--sim` runs that have no reply script.
//!
//! The simulator alone answers with filler text, which never satisfies a `contains`
//! condition nor picks the router choice a workflow makes likely, so such a run would circle
//! until its turn limit. A dry run instead draws each turn the way `agentrun simulate`
//! draws the future: router choices by weight, text conditions by match rate, command
//! outcomes by pass rate. Model agents still call their model on the simulator, with the
//! drawn reply length, so loads, preloads and keep_alive play out as in a real run.
//! Commands are not run and tools are not called: nothing is written anywhere.

use std::sync::Mutex;

use agentrun_core::{
    Agent, AgentError, AgentReply, ChatRequest, ConversationGraph, Event, Message, TurnContext,
};
use agentrun_spec::{AgentKind, Condition, Workflow};
use async_trait::async_trait;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::simulate::draw_turn;

/// An [`Agent`] that stands in for every agent of a workflow with replies drawn from the
/// workflow's `simulation` section (its defaults where the section says nothing).
pub struct DryRun {
    workflow: Workflow,
    graph: ConversationGraph,
    rng: Mutex<StdRng>,
}

impl DryRun {
    /// Simulated replies for `workflow`, seeded with its `simulation.seed`.
    pub fn new(workflow: &Workflow) -> DryRun {
        DryRun {
            graph: ConversationGraph::new(workflow),
            rng: Mutex::new(StdRng::seed_from_u64(workflow.simulation.seed)),
            workflow: workflow.clone(),
        }
    }
}

#[async_trait]
impl Agent for DryRun {
    async fn respond(&self, context: TurnContext<'_>) -> Result<AgentReply, AgentError> {
        let spec = context.spec;
        let Some(agent) = self
            .workflow
            .agents
            .iter()
            .position(|agent| agent.name == spec.name)
        else {
            return Err(AgentError::custom(format!(
                "'{}' is not an agent of the simulated workflow",
                spec.name
            )));
        };
        let drawn = {
            // A poisoned lock only means a panic elsewhere; the generator is still usable.
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            draw_turn(&self.workflow, &self.graph, agent, &mut rng)
        };
        let edge = drawn.taken.map(|(edge, _)| edge);
        let mut reply = AgentReply {
            forced_edge: edge,
            passed: drawn.passed,
            choice: drawn.choice.clone(),
            ..AgentReply::default()
        };
        if let Some(call) = context.call {
            let mut options = call.options.clone();
            options.insert("num_predict".into(), drawn.tokens.max(1).into());
            let request = ChatRequest {
                model: call.model,
                // The turn number varies the simulator's filler text from turn to turn.
                messages: vec![
                    Message::system(spec.llm().map(|llm| llm.prompt.clone()).unwrap_or_default()),
                    Message::user(format!("{} (turn {})", context.task, context.turn)),
                ],
                options,
                keep_alive: call.keep_alive,
                format: None,
                tools: Vec::new(),
                think: None,
            };
            let events = context.events;
            let response = context
                .backend
                .chat(&request, &mut |text| {
                    events.emit(Event::TextDelta {
                        agent: spec.name.clone(),
                        text: text.to_owned(),
                    })
                })
                .await?;
            reply.load_wait = response.metrics.load.unwrap_or_default();
            reply.generation = response.metrics.eval.unwrap_or_default()
                + response.metrics.prompt_eval.unwrap_or_default();
            reply.tokens = response.metrics.eval_count.unwrap_or_default();
            reply.text = response.message.content;
        }
        let said = self.what_the_draw_says(agent, &drawn, edge);
        if !said.is_empty() {
            // A command's verdict is shown from its turn's text; the rest streams.
            if !matches!(spec.kind, AgentKind::Command(_)) {
                context.events.emit(Event::TextDelta {
                    agent: spec.name.clone(),
                    text: format!("\n{said}"),
                });
            }
            if !reply.text.is_empty() {
                reply.text.push('\n');
            }
            reply.text.push_str(&said);
        }
        Ok(reply)
    }
}

impl DryRun {
    /// The part of a simulated reply that states what was drawn, so the transcript reads
    /// as the edge it took: the text a `contains` condition looks for, the router's choice,
    /// a command's outcome.
    fn what_the_draw_says(
        &self,
        agent: usize,
        drawn: &crate::simulate::DrawnTurn,
        edge: Option<usize>,
    ) -> String {
        let spec = &self.workflow.agents[agent];
        let mut said = Vec::new();
        if let AgentKind::Command(command) = &spec.kind {
            let verdict = if drawn.passed == Some(true) {
                "passed"
            } else {
                "failed"
            };
            said.push(format!(
                "`{}` {verdict} (simulated: not run)",
                command.argv.join(" ")
            ));
        }
        if let Some(choice) = &drawn.choice {
            said.push(format!("choice: {choice}"));
        }
        let condition = edge.and_then(|rank| {
            self.graph
                .edge(agent, rank)
                .map(|step| step.condition.clone())
        });
        match condition {
            Some(Condition::Contains(text)) => said.push(text),
            Some(Condition::Matches(pattern)) => {
                said.push(format!("(a reply matching /{}/)", pattern.as_str()))
            }
            _ => {}
        }
        if matches!(spec.kind, AgentKind::Human(_)) && said.is_empty() {
            said.push("(a simulated answer)".to_owned());
        }
        said.join("\n")
    }
}
