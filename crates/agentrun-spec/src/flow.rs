//! The flow: who speaks first, and the conditional edges from each speaker to the next.

use std::borrow::Cow;
use std::collections::BTreeMap;
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
    /// The agents that join parallel branches, by name, with how each waits.
    pub joins: BTreeMap<String, JoinSpec>,
}

impl Flow {
    /// The edges leaving `agent`, in priority order. (Which one a turn takes is decided in
    /// one place, the executor's conversation graph.)
    pub fn outgoing<'a>(&'a self, agent: &'a str) -> impl Iterator<Item = &'a EdgeSpec> + 'a {
        self.edges.iter().filter(move |edge| edge.from == agent)
    }

    /// The agents a branch of the fan-out from `fork` that starts at `start` may reach
    /// before its join, `start` first: a walk over the edges that stops at joins, at `end`
    /// and at `fork` (a branch leading back there is an error of its own).
    pub fn branch_region(&self, fork: &str, start: &str) -> Vec<String> {
        let mut region = vec![start.to_owned()];
        let mut position = 0;
        while position < region.len() {
            let agent = region[position].clone();
            position += 1;
            for edge in self.outgoing(&agent) {
                for next in edge.to.agents() {
                    if !self.joins.contains_key(next) && next != fork && !region.contains(next) {
                        region.push(next.clone());
                    }
                }
            }
        }
        region
    }

    /// The joins the branch of the fan-out from `fork` that starts at `start` can reach, in
    /// the order first met. A valid workflow has exactly one per fan-out.
    pub fn joins_reached(&self, fork: &str, start: &str) -> Vec<String> {
        let mut joins = Vec::new();
        if self.joins.contains_key(start) {
            joins.push(start.to_owned());
            return joins;
        }
        for agent in self.branch_region(fork, start) {
            for edge in self.outgoing(&agent) {
                for next in edge.to.agents() {
                    if self.joins.contains_key(next) && !joins.contains(next) {
                        joins.push(next.clone());
                    }
                }
            }
        }
        joins
    }

    /// The join that the branches of a fan-out from `fork` meet at: the first join the first
    /// branch reaches.
    pub fn join_of(&self, fork: &str, branches: &[String]) -> Option<String> {
        branches
            .first()
            .and_then(|first| self.joins_reached(fork, first).into_iter().next())
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

/// Where an edge leads: the next speaker, the end of the run, or several branches at once.
/// Written as the agent's name or `end` (a list of names for branches), in files,
/// transcripts and events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EdgeTarget {
    /// This agent speaks next.
    Agent(String),
    /// The run ends.
    End,
    /// A fan-out: each agent starts a branch, and the branches run at the same time until
    /// they reach their join.
    Branches(Vec<String>),
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

    /// The agent's name, or `end`; a fan-out's branches as `[a, b]`.
    pub fn name(&self) -> Cow<'_, str> {
        match self {
            EdgeTarget::Agent(name) => Cow::Borrowed(name),
            EdgeTarget::End => Cow::Borrowed(EdgeTarget::END),
            EdgeTarget::Branches(names) => Cow::Owned(format!("[{}]", names.join(", "))),
        }
    }

    /// The agents this target names: one, none for `end`, every branch of a fan-out.
    pub fn agents(&self) -> &[String] {
        match self {
            EdgeTarget::Agent(name) => std::slice::from_ref(name),
            EdgeTarget::End => &[],
            EdgeTarget::Branches(names) => names,
        }
    }
}

impl Serialize for EdgeTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EdgeTarget::Branches(names) => names.serialize(serializer),
            _ => serializer.serialize_str(&self.name()),
        }
    }
}

impl<'de> Deserialize<'de> for EdgeTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EdgeTarget, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            One(String),
            Many(Vec<String>),
        }
        Written::deserialize(deserializer).map(|written| match written {
            Written::One(name) => EdgeTarget::from_name(&name),
            Written::Many(names) => EdgeTarget::Branches(names),
        })
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
        schemars::json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ]
        })
    }
}

impl fmt::Display for EdgeTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.name())
    }
}

/// How a join waits for the branches of its fan-out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JoinSpec {
    /// Which arrivals open the join.
    pub wait: JoinWait,
    /// What a branch whose agent fails does to the join.
    pub on_failure: BranchFailure,
}

/// Which arrivals open a join.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum JoinWait {
    /// Every branch (the default).
    #[default]
    All,
    /// The first branch to arrive; the others are stopped.
    First,
    /// The first branch whose last reply satisfies the condition; the others are stopped.
    /// When no branch's reply does, the join opens once every branch has arrived.
    FirstMatching(Condition),
}

impl fmt::Display for JoinWait {
    /// As a file writes it: `all`, `first`, `{ first: { contains: "APPROVED" } }`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinWait::All => formatter.write_str("all"),
            JoinWait::First => formatter.write_str("first"),
            JoinWait::FirstMatching(condition) => write!(formatter, "{{ first: {condition} }}"),
        }
    }
}

/// What a failing branch does to its join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BranchFailure {
    /// The run fails (the default).
    #[default]
    Fail,
    /// The branch stops; the join goes on with the others' replies.
    Continue,
}

impl BranchFailure {
    /// The word a file writes.
    pub fn name(self) -> &'static str {
        match self {
            BranchFailure::Fail => "fail",
            BranchFailure::Continue => "continue",
        }
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
            joins: BTreeMap::new(),
        };
        let targets: Vec<String> = flow
            .outgoing("reviewer")
            .map(|e| e.to.name().into_owned())
            .collect();
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
        let branches = EdgeTarget::Branches(vec!["tests".into(), "security".into()]);
        let json = serde_json::to_value(&branches).expect("serializes");
        assert_eq!(json, serde_json::json!(["tests", "security"]));
        assert_eq!(branches.to_string(), "[tests, security]");
        {
            let target = branches;
            assert_eq!(
                serde_json::from_value::<EdgeTarget>(json).ok(),
                Some(target)
            );
        }
    }
}
