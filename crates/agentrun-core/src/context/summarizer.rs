//! The running summary of a `summarize` context: when turns are dropped, a summarizer model
//! folds them into the summary so far. The summary is reused unchanged until more is
//! dropped, so the prompt's prefix stays the same between those turns.

use agentrun_spec::Workflow;

use super::assembly::RunningSummary;
use super::history::Item;
use crate::agent::ModelCall;
use crate::backend::{BackendError, ChatRequest, ModelBackend};
use crate::message::Message;
use crate::process::cap_text;

/// Words the summary may run to; its room in the budget follows from it.
pub(crate) const SUMMARY_WORDS: u64 = 300;

/// Bytes kept from each end of one dropped turn: the summary needs its gist, not its logs.
const KEPT_TURN_BYTES: usize = 1_500;

/// What the summarizer model is told.
const INSTRUCTIONS: &str = "You keep the running summary of a conversation between agents \
working on a task. Fold the new turns into the summary so far. Keep decisions, requirements, \
file and function names, commands run with their outcome, and open problems; drop \
pleasantries and repetition. Answer with the summary only.";

/// For each agent with a `summarize` context, the agent whose model writes its summary:
/// the one it names, else the workflow's router (a small model that stays resident, so the
/// summary costs no load), else none (its own model).
pub(crate) fn summarizer_agents(workflow: &Workflow) -> Vec<Option<usize>> {
    let index_of = |name: &str| workflow.agents.iter().position(|agent| agent.name == name);
    let router = workflow
        .agents
        .iter()
        .position(|agent| agent.llm().is_some() && agent.is_router());
    workflow
        .agents
        .iter()
        .map(|agent| {
            let context = agent.llm()?.context.as_ref()?;
            if context.strategy != agentrun_spec::ContextStrategy::Summarize {
                return None;
            }
            match &context.summarizer {
                Some(name) => index_of(name),
                None => router,
            }
        })
        .collect()
}

/// Folds `dropped` into `previous` with the summarizer's model; returns the new summary.
pub(crate) async fn fold(
    backend: &dyn ModelBackend,
    call: &ModelCall,
    previous: Option<&RunningSummary>,
    dropped: &[&Item],
) -> Result<RunningSummary, BackendError> {
    let mut input = String::new();
    if let Some(previous) = previous {
        input.push_str("Summary so far:\n");
        input.push_str(&previous.text);
        input.push_str("\n\n");
    }
    input.push_str("New turns:\n");
    for item in dropped {
        let text = item.note.as_deref().unwrap_or(&item.text);
        input.push_str(&cap_text(text, KEPT_TURN_BYTES));
        input.push_str("\n\n");
    }
    input.push_str(&format!(
        "Write the new summary in at most {SUMMARY_WORDS} words."
    ));
    let mut options = call.options.clone();
    // A summary is short; a model that rambles is cut, not waited for.
    options.insert("num_predict".to_owned(), (SUMMARY_WORDS * 2).into());
    let request = ChatRequest {
        model: call.model.clone(),
        messages: vec![Message::system(INSTRUCTIONS), Message::user(input)],
        options,
        keep_alive: call.keep_alive,
        format: None,
        tools: Vec::new(),
        think: Some(agentrun_spec::Think::Enabled(false)),
    };
    let response = backend.chat(&request, &mut |_| {}).await?;
    let mut message = response.message;
    message.separate_inline_thinking();
    Ok(RunningSummary {
        text: message.content.trim().to_owned(),
        turns: previous.map_or(0, |previous| previous.turns) + dropped.len() as u32,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_router_writes_summaries_unless_the_context_names_another_agent() {
        let yaml = "name: s\nagents:\n  coder: { model: m, prompt: p, options: { num_ctx: 4096 }, context: { strategy: summarize } }\n  \
                    tester: { model: t, prompt: p, options: { num_ctx: 4096 }, context: { strategy: summarize, summarizer: coder } }\n  \
                    plain: { model: t, prompt: p, options: { num_ctx: 4096 }, context: { strategy: budget } }\n  \
                    router: { model: r, prompt: p, options: { num_ctx: 4096 }, choices: [again, stop] }\n\
                    flow:\n  start: coder\n  edges:\n    - { from: coder, to: tester }\n    - { from: tester, to: plain }\n    \
                    - { from: plain, to: router }\n    - { from: router, to: coder, when: { choice: again } }\n    \
                    - { from: router, to: end, when: { choice: stop } }\n";
        let workflow = Workflow::from_yaml_str(yaml, Path::new("s.yaml")).expect("valid");
        assert_eq!(summarizer_agents(&workflow), [Some(3), Some(0), None, None]);
    }
}
