//! The built-in human agent: a person answers at the terminal, or canned answers stand in.

use std::sync::Mutex;

use agentrun_spec::{AgentKind, HumanAgentSpec, KindName};
use async_trait::async_trait;
use tokio::time::Instant;

use crate::agent::{Agent, AgentError, AgentReply, TurnContext};

/// Times a person is asked again after an answer that is not one of the choices.
const MAX_ASKS: u32 = 3;

/// Asks a person for the turn's reply.
///
/// The agent's canned `answers` come first, in order, one per turn; then the person at the
/// terminal is asked. In a non-interactive run (no console) a turn with no canned answer
/// left fails the run with a message saying how to give one. A human router's answer must
/// be one of its choices.
#[derive(Debug, Default)]
pub struct HumanAgent {
    /// Canned answers used so far.
    used: Mutex<usize>,
}

impl HumanAgent {
    /// A human agent that has used none of its canned answers.
    pub fn new() -> HumanAgent {
        HumanAgent::default()
    }

    fn next_canned(&self, answers: &[String]) -> Option<String> {
        let mut used = self.used.lock().expect("answer counter lock poisoned");
        let answer = answers.get(*used).cloned();
        if answer.is_some() {
            *used += 1;
        }
        answer
    }
}

#[async_trait]
impl Agent for HumanAgent {
    async fn respond(&self, context: TurnContext<'_>) -> Result<AgentReply, AgentError> {
        let spec = context.spec;
        let AgentKind::Human(human) = &spec.kind else {
            return Err(AgentError::WrongKind {
                agent: spec.name.clone(),
                expected_kind: KindName::Human,
            });
        };
        let started = Instant::now();
        let reply = |text: String, choice: Option<String>| AgentReply {
            text,
            choice,
            // Real seconds in every mode: a person answers in real time.
            generation: started.elapsed(),
            ..AgentReply::default()
        };
        let choices = &human.choices;
        if let Some(answer) = self.next_canned(&human.answers) {
            if choices.is_empty() {
                return Ok(reply(answer, None));
            }
            return match find_choice(&answer, choices) {
                Some(choice) => Ok(reply(answer, Some(choice))),
                None => Err(AgentError::CannedAnswerNotAChoice {
                    agent: spec.name.clone(),
                    answer,
                    choices: choices.clone(),
                }),
            };
        }
        let Some(console) = context.console else {
            return Err(AgentError::NoAnswerLeft {
                agent: spec.name.clone(),
                given: human.answers.len(),
            });
        };
        let mut question = question(&context, human);
        for _ in 0..MAX_ASKS {
            let Some(answer) = console.ask(&spec.name, &question).await else {
                return Err(AgentError::InputEnded {
                    agent: spec.name.clone(),
                });
            };
            if choices.is_empty() {
                return Ok(reply(answer, None));
            }
            if let Some(choice) = find_choice(&answer, choices) {
                return Ok(reply(answer, Some(choice)));
            }
            question = format!(
                "`{}` is not one of the choices; answer with one of: {}",
                answer.trim(),
                choices.join(", ")
            );
        }
        Err(AgentError::NoValidChoice {
            agent: spec.name.clone(),
            tries: MAX_ASKS,
        })
    }
}

/// What the person is asked: the role prompt, the last thing said, and the choices.
fn question(context: &TurnContext<'_>, spec: &HumanAgentSpec) -> String {
    let mut question = String::new();
    if !spec.prompt.trim().is_empty() {
        question.push_str(spec.prompt.trim());
        question.push('\n');
    }
    if let Some(last) = context.conversation.last() {
        question.push_str(&format!("[{}]: {}\n", last.agent, last.text.trim()));
    }
    if !spec.choices.is_empty() {
        let described: Vec<String> = spec
            .choices
            .iter()
            .map(|choice| match spec.choice_descriptions.get(choice) {
                Some(description) => format!("{choice} ({description})"),
                None => choice.clone(),
            })
            .collect();
        question.push_str(&format!("Choose one of: {}", described.join(", ")));
    } else {
        question.push_str("Your reply:");
    }
    question
}

/// The choice an answer names: exactly, ignoring case and surrounding space.
fn find_choice(answer: &str, choices: &[String]) -> Option<String> {
    let answer = answer.trim();
    choices
        .iter()
        .find(|choice| choice.eq_ignore_ascii_case(answer))
        .cloned()
}
