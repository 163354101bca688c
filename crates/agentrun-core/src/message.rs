//! Chat messages: what agents say to each other and what goes over the wire to a model.

use serde::{Deserialize, Serialize};

/// Who wrote a message, in Ollama's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation (an agent's role prompt).
    System,
    /// Input to the model: the task, or another agent's words.
    User,
    /// The model's own earlier words.
    Assistant,
    /// The result of a tool call.
    Tool,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// Tool calls the model asked for (assistant messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The model's reasoning, when it was asked to think.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// For a tool result: the tool that produced it (Ollama's `tool_name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// For a tool result: the `id` of the call it answers, when the call had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with the given role and text and nothing else.
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            thinking: None,
            tool_name: None,
            tool_call_id: None,
        }
    }

    /// The result of a tool call, naming the tool and the call it answers so that
    /// the model can tell several results of one turn apart.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Message {
        Message {
            tool_name: Some(call.name.clone()),
            tool_call_id: call.id.clone(),
            ..Message::new(Role::Tool, content)
        }
    }

    /// Moves reasoning written inline as `<think>...</think>` (older servers, some
    /// models) out of `content` into `thinking`, so that only the answer is read as
    /// the answer. An unclosed `<think>` holds everything after it: the reply was
    /// cut off while the model was still reasoning.
    pub fn separate_inline_thinking(&mut self) {
        let Some(start) = self.content.find(THINK_OPEN) else {
            return;
        };
        // Only reasoning that opens the reply is taken: a `<think>` quoted in the
        // middle of an answer is part of the answer.
        if !self.content[..start].trim().is_empty() {
            return;
        }
        let body_start = start + THINK_OPEN.len();
        let (reasoning, answer) = match self.content[body_start..].find(THINK_CLOSE) {
            Some(end) => (
                &self.content[body_start..body_start + end],
                &self.content[body_start + end + THINK_CLOSE.len()..],
            ),
            None => (&self.content[body_start..], ""),
        };
        let reasoning = reasoning.trim();
        let answer = answer.trim_start().to_owned();
        if !reasoning.is_empty() {
            let thinking = self.thinking.get_or_insert_with(String::new);
            if !thinking.is_empty() {
                thinking.push('\n');
            }
            thinking.push_str(reasoning);
        }
        self.content = answer;
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Message {
        Message::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new(Role::Assistant, content)
    }
}

/// A function call requested by a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, which servers since Ollama 0.12.10 give; results name it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tool's name.
    pub name: String,
    /// The arguments as the model wrote them (not yet validated).
    pub arguments: serde_json::Value,
}

/// How models that reason inline open and close their reasoning.
const THINK_OPEN: &str = "<think>";
const THINK_CLOSE: &str = "</think>";

#[cfg(test)]
mod tests;
