//! The flow: who speaks first, and the conditional edges from each speaker to the next.

use std::fmt;

use regex::Regex;

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
    /// The edges leaving `agent`, in priority order.
    pub fn outgoing<'a>(&'a self, agent: &'a str) -> impl Iterator<Item = &'a EdgeSpec> + 'a {
        self.edges.iter().filter(move |edge| edge.from == agent)
    }

    /// The edge taken after `agent` spoke: the first whose condition holds for the turn's
    /// reply `text`, router `choice` and command `outcome` (`Some(true)` for pass). `None`
    /// when no condition holds, which stops the run.
    pub fn next<'a>(
        &'a self,
        agent: &'a str,
        text: &str,
        choice: Option<&str>,
        outcome: Option<bool>,
    ) -> Option<&'a EdgeSpec> {
        self.outgoing(agent)
            .find(|edge| edge.when.matches(text, choice, outcome))
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

/// Where an edge leads.
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
    fn the_first_matching_edge_wins() {
        let edge = |to: &str, when: Condition| EdgeSpec {
            from: "reviewer".into(),
            to: EdgeTarget::from_name(to),
            when,
        };
        let flow = Flow {
            start: "reviewer".into(),
            edges: vec![
                edge("end", Condition::Contains("APPROVED".into())),
                edge("coder", Condition::Always),
            ],
        };
        assert_eq!(
            flow.next("reviewer", "APPROVED", None, None).map(|e| &e.to),
            Some(&EdgeTarget::End)
        );
        assert_eq!(
            flow.next("reviewer", "needs work", None, None)
                .map(|e| e.to.name()),
            Some("coder")
        );
        assert!(flow.next("coder", "", None, None).is_none());
    }
}
