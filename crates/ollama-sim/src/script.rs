//! Scripted replies (`--script FILE`): rules that say what a model answers.
//!
//! The first rule whose every given condition holds answers. A rule's replies are used in
//! order, one per matching request; the last one repeats.

use std::path::Path;
use std::sync::Mutex;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::catalogue::normalize_name;
use crate::error::Error;

/// A script: an ordered list of rules.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// The rules, tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// When a rule answers, and with what.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The model name (normalized like Ollama's: `qwen3` means `qwen3:latest`).
    #[serde(default)]
    pub model: Option<String>,
    /// A regex searched in the system prompt (chat: the system messages joined by newlines;
    /// generate: `system`). A request without a system prompt never matches.
    #[serde(default)]
    pub system: Option<Pattern>,
    /// A regex searched in the last message's content (generate: the prompt).
    #[serde(default)]
    pub message: Option<Pattern>,
    /// Regexes each found in some message the runner kept after the cut to the context
    /// (chat): what the model can still see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<Pattern>,
    /// The n-th generating request to the requested model, from 1.
    #[serde(default)]
    pub turn: Option<u64>,
    /// The n-th generating request to the server, from 1.
    #[serde(default)]
    pub global_turn: Option<u64>,
    /// The replies, used in order; the last repeats.
    #[serde(default)]
    pub replies: Vec<ScriptedReply>,
    /// Shorthand for a single reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ScriptedReply>,
}

/// One scripted answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedReply {
    /// The content text (sent as is, even if `format` asks for JSON).
    #[serde(default)]
    pub text: Option<String>,
    /// Content given as JSON, serialized compactly.
    #[serde(default)]
    pub json: Option<Value>,
    /// The thinking text.
    #[serde(default)]
    pub thinking: Option<String>,
    /// Tool calls.
    #[serde(default)]
    pub tool_calls: Vec<ScriptedToolCall>,
    /// The reported `eval_count`; default: estimated from the text (~4 characters a token).
    /// Zero makes the reply omit `eval_count` and `eval_duration`, as Ollama does.
    #[serde(default)]
    pub eval_count: Option<u64>,
    /// The reported `prompt_eval_count`; default: the prompt tokens evaluated (after the
    /// cut to the context and the prompt cache).
    #[serde(default)]
    pub prompt_eval_count: Option<u64>,
    /// `done_reason`: `stop` (default) or `length`.
    #[serde(default)]
    pub done_reason: Option<String>,
}

/// A tool call in a scripted reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedToolCall {
    /// The tool name.
    pub name: String,
    /// The arguments object; default `{}`.
    #[serde(default = "empty_object")]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// A compiled regex that (de)serializes as its source text.
#[derive(Clone, Debug)]
pub struct Pattern(pub Regex);

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Regex::new(&source)
            .map(Pattern)
            .map_err(serde::de::Error::custom)
    }
}

impl Script {
    /// Parses YAML (JSON is accepted too) and validates it.
    pub fn from_yaml_str(text: &str) -> Result<Script, Error> {
        let script: Script =
            serde_saphyr::from_str(text).map_err(|error| Error::script(error.to_string()))?;
        script.validated()
    }

    /// Reads a script file.
    pub fn from_file(path: &Path) -> Result<Script, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Script::from_yaml_str(&text).map_err(|error| error.in_file(path.to_owned()))
    }

    fn validated(mut self) -> Result<Script, Error> {
        for (index, rule) in self.rules.iter_mut().enumerate() {
            if let Some(reply) = rule.reply.take() {
                rule.replies.insert(0, reply);
            }
            if rule.replies.is_empty() {
                return Err(Error::script(format!(
                    "rule {} has no `replies` (or `reply`)",
                    index + 1
                )));
            }
            for reply in &rule.replies {
                if reply.text.is_some() && reply.json.is_some() {
                    return Err(Error::script(format!(
                        "rule {}: a reply has both `text` and `json`",
                        index + 1
                    )));
                }
                if let Some(reason) = &reply.done_reason
                    && reason != "stop"
                    && reason != "length"
                {
                    return Err(Error::script(format!(
                        "rule {}: done_reason {reason:?} must be \"stop\" or \"length\"",
                        index + 1
                    )));
                }
            }
        }
        Ok(self)
    }

    /// Whether the script has no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// What a request looks like to the rules.
pub(crate) struct Query<'a> {
    pub(crate) model: &'a str,
    pub(crate) system: Option<&'a str>,
    pub(crate) last_message: &'a str,
    /// The messages kept after the cut to the context (chat; empty for generate).
    pub(crate) kept_messages: &'a [&'a str],
    pub(crate) turn: u64,
    pub(crate) global_turn: u64,
}

impl Rule {
    fn matches(&self, query: &Query<'_>) -> bool {
        self.model
            .as_deref()
            .is_none_or(|model| normalize_name(model) == normalize_name(query.model))
            && self
                .system
                .as_ref()
                .is_none_or(|pattern| query.system.is_some_and(|s| pattern.0.is_match(s)))
            && self
                .message
                .as_ref()
                .is_none_or(|pattern| pattern.0.is_match(query.last_message))
            && self.kept.iter().all(|pattern| {
                query
                    .kept_messages
                    .iter()
                    .any(|message| pattern.0.is_match(message))
            })
            && self.turn.is_none_or(|turn| turn == query.turn)
            && self
                .global_turn
                .is_none_or(|turn| turn == query.global_turn)
    }
}

/// A script and how often each rule has answered.
#[derive(Debug, Default)]
pub(crate) struct ScriptState {
    inner: Mutex<(Script, Vec<usize>)>,
}

impl ScriptState {
    pub(crate) fn new(script: Script) -> ScriptState {
        let uses = vec![0; script.rules.len()];
        ScriptState {
            inner: Mutex::new((script, uses)),
        }
    }

    pub(crate) fn replace(&self, script: Script) {
        let uses = vec![0; script.rules.len()];
        *self.lock() = (script, uses);
    }

    pub(crate) fn reset_counters(&self) {
        let mut guard = self.lock();
        let (_, uses) = &mut *guard;
        uses.iter_mut().for_each(|count| *count = 0);
    }

    /// The reply for `query`, advancing the matching rule's sequence.
    pub(crate) fn reply_for(&self, query: &Query<'_>) -> Option<ScriptedReply> {
        let mut guard = self.lock();
        let (script, uses) = &mut *guard;
        if script.rules.is_empty() {
            return None;
        }
        let index = script.rules.iter().position(|rule| rule.matches(query))?;
        let rule = &script.rules[index];
        let pick = uses[index].min(rule.replies.len() - 1);
        uses[index] += 1;
        rule.replies.get(pick).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Script, Vec<usize>)> {
        // A poisoned lock only means a panic elsewhere; the data is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
