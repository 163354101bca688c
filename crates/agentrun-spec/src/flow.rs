//! The flow: who speaks first, and the conditional edges from each speaker to the next.

use std::borrow::Cow;
use std::fmt;

use regex::Regex;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who speaks first and where each turn leads.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// The agent that speaks first.
    pub start: String,
    /// Edges in priority order: after a turn, the first edge from the speaker whose condition
    /// holds is taken.
    pub edges: Vec<EdgeSpec>,
}

impl Flow {
    /// The edges leaving `agent`, in priority order. (Which one a turn takes is decided in
    /// one place, the executor's conversation graph.)
    pub fn outgoing<'a>(&'a self, agent: &'a str) -> impl Iterator<Item = &'a EdgeSpec> + 'a {
        self.edges.iter().filter(move |edge| edge.from == agent)
    }
}

/// One edge of the flow.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSpec {
    /// The agent that just spoke.
    pub from: String,
    /// The next speaker, or the end of the run.
    pub to: EdgeTarget,
    /// When the edge is taken.
    pub when: Condition,
}

/// Where an edge leads: the next speaker, or the end of the run. Written as the agent's name
/// or `end`, in files, transcripts and events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EdgeTarget {
    /// This agent speaks next.
    Agent(String),
    /// The run ends.
    End,
}

impl EdgeTarget {
    /// The word for the end of a run in files; no agent may be called this.
    pub const END: &'static str = "end";

    /// The target a file names: `end`, or an agent.
    pub fn from_name(name: &str) -> EdgeTarget {
        if name == EdgeTarget::END {
            EdgeTarget::End
        } else {
            EdgeTarget::Agent(name.to_owned())
        }
    }

    /// The agent's name, or `end`.
    pub fn name(&self) -> &str {
        match self {
            EdgeTarget::Agent(name) => name,
            EdgeTarget::End => EdgeTarget::END,
        }
    }
}

impl Serialize for EdgeTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EdgeTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EdgeTarget, D::Error> {
        String::deserialize(deserializer).map(|name| EdgeTarget::from_name(&name))
    }
}

impl JsonSchema for EdgeTarget {
    fn schema_name() -> Cow<'static, str> {
        "EdgeTarget".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({ "type": "string" })
    }
}

impl fmt::Display for EdgeTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// When an edge is taken.
#[derive(Debug, Clone)]
pub enum Condition {
    /// Always (the default); as the last edge of a speaker it is the fallback.
    Always,
    /// The reply contains this text (case-sensitive).
    Contains(String),
    /// The reply matches this regular expression.
    Matches(Regex),
    /// A router picked this choice.
    Choice(String),
    /// A command agent's run succeeded.
    Pass,
    /// A command agent's run failed.
    Fail,
}

impl Condition {
    /// Whether the condition holds for a turn whose reply is `text`, whose router choice is
    /// `choice` (routers only) and whose command outcome is `outcome` (`Some(true)` for pass;
    /// command agents only). A `choice`, `pass` or `fail` condition never holds when the turn
    /// has no choice or outcome.
    pub fn matches(&self, text: &str, choice: Option<&str>, outcome: Option<bool>) -> bool {
        match self {
            Condition::Always => true,
            Condition::Contains(needle) => text.contains(needle.as_str()),
            Condition::Matches(pattern) => pattern.is_match(text),
            Condition::Choice(expected) => choice == Some(expected.as_str()),
            Condition::Pass => outcome == Some(true),
            Condition::Fail => outcome == Some(false),
        }
    }

    /// Whether the condition looks at the reply's text.
    pub fn reads_text(&self) -> bool {
        matches!(self, Condition::Contains(_) | Condition::Matches(_))
    }

    /// Compiles a `matches` pattern with a size limit, so a hostile pattern cannot take
    /// unbounded memory.
    pub fn matches_pattern(pattern: &str) -> Result<Condition, regex::Error> {
        regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
            .map(Condition::Matches)
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Condition) -> bool {
        match (self, other) {
            (Condition::Always, Condition::Always)
            | (Condition::Pass, Condition::Pass)
            | (Condition::Fail, Condition::Fail) => true,
            (Condition::Contains(a), Condition::Contains(b))
            | (Condition::Choice(a), Condition::Choice(b)) => a == b,
            (Condition::Matches(a), Condition::Matches(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl fmt::Display for Condition {
    /// The condition as a file writes it: `always`, `{ contains: "APPROVED" }`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Always => formatter.write_str("always"),
            Condition::Pass => formatter.write_str("pass"),
            Condition::Fail => formatter.write_str("fail"),
            Condition::Contains(text) => write!(formatter, "{{ contains: {text:?} }}"),
            Condition::Matches(pattern) => {
                write!(formatter, "{{ matches: {:?} }}", pattern.as_str())
            }
            Condition::Choice(choice) => write!(formatter, "{{ choice: {choice:?} }}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_hold_only_for_their_kind_of_turn() {
        assert!(Condition::Always.matches("", None, None));
        assert!(Condition::Contains("APPROVED".into()).matches("LGTM, APPROVED.", None, None));
        assert!(!Condition::Contains("APPROVED".into()).matches("approved", None, None));
        let lgtm = Condition::matches_pattern("(?i)lgtm").expect("valid");
        assert!(lgtm.matches("Lgtm!", None, None));
        assert!(!lgtm.matches("no", None, None));
        assert!(Condition::Choice("done".into()).matches("", Some("done"), None));
        assert!(!Condition::Choice("done".into()).matches("done", None, None));
        assert!(Condition::Pass.matches("", None, Some(true)));
        assert!(!Condition::Pass.matches("", None, None));
        assert!(Condition::Fail.matches("", None, Some(false)));
        assert!(!Condition::Fail.matches("", None, Some(true)));
    }

    #[test]
    fn patterns_compare_by_source() {
        let a = Condition::matches_pattern("a+").expect("valid");
        let b = Condition::matches_pattern("a+").expect("valid");
        assert_eq!(a, b);
        assert_ne!(a, Condition::matches_pattern("b+").expect("valid"));
        assert!(Condition::matches_pattern("(unclosed").is_err());
        assert_eq!(a.to_string(), "{ matches: \"a+\" }");
    }

    #[test]
    fn outgoing_edges_keep_file_order() {
        let edge = |from: &str, to: &str| EdgeSpec {
            from: from.into(),
            to: EdgeTarget::from_name(to),
            when: Condition::Always,
        };
        let flow = Flow {
            start: "reviewer".into(),
            edges: vec![
                edge("reviewer", "end"),
                edge("coder", "reviewer"),
                edge("reviewer", "coder"),
            ],
        };
        let targets: Vec<&str> = flow.outgoing("reviewer").map(|e| e.to.name()).collect();
        assert_eq!(targets, ["end", "coder"]);
        assert_eq!(flow.outgoing("nobody").count(), 0);
    }

    #[test]
    fn targets_are_written_as_names() {
        for target in [EdgeTarget::End, EdgeTarget::Agent("coder".into())] {
            let json = serde_json::to_value(&target).expect("serializes");
            assert_eq!(json, serde_json::json!(target.name()));
            assert_eq!(
                serde_json::from_value::<EdgeTarget>(json).ok(),
                Some(target)
            );
        }
    }
}
