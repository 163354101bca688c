//! Where a run stands in its flow: one speaker, or a parallel region whose branches run at
//! the same time until their join opens. The executor and resume drive the same cursor, so
//! a resumed run stands exactly where the interrupted one stood.

use agentrun_spec::{BranchFailure, JoinWait};

use crate::graph::{ConversationGraph, FanOut, Node, TurnOutcome};
use crate::transcript::BranchRef;

/// Where the run stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cursor {
    /// One speaker is next (`running` once its turn has started).
    Speaker { agent: usize, running: bool },
    /// Branches are running.
    Region(Region),
    /// An edge led to `end`.
    Ended,
}

/// A parallel region: the branches of one fan-out on their way to its join.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Region {
    /// The turn that fanned out.
    pub(crate) fork: u32,
    /// The fan-out.
    pub(crate) fan_out: FanOut,
    /// Each branch's state, by branch index.
    pub(crate) branches: Vec<BranchState>,
    /// Groups of branch indices run one group after the other, each group's branches at
    /// once (one group of every branch unless the planner or the run decided otherwise).
    pub(crate) groups: Vec<Vec<usize>>,
    /// Branches that start at once whatever group runs, and that no group waits for: the
    /// planner counts a command or person branch as overlapping every group.
    pub(crate) overlap: Vec<usize>,
}

/// Where one branch stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BranchState {
    /// This agent speaks next in the branch.
    Ready(usize),
    /// This agent's turn is running.
    Running(usize),
    /// The branch reached the join; `satisfied` when its last reply met a `first` join's
    /// condition.
    Arrived { satisfied: bool },
    /// An agent of the branch failed and the join goes on without it.
    Failed,
    /// The join opened before the branch arrived.
    Stopped,
}

/// What a finished branch turn did to the region.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct JoinProgress {
    /// The join opened: the join agent speaks next.
    pub(crate) opened: bool,
    /// The branches stopped because the join opened without them.
    pub(crate) stopped: Vec<u32>,
}

/// A turn the cursor wants started.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReadyTurn {
    /// The speaking agent.
    pub(crate) agent: usize,
    /// Its branch, inside a parallel region.
    pub(crate) branch: Option<BranchRef>,
}

impl Cursor {
    /// The cursor at the flow's start.
    pub(crate) fn start(agent: usize) -> Cursor {
        Cursor::Speaker {
            agent,
            running: false,
        }
    }

    /// The next turn to start, marked running: the speaker, or in a region the first ready
    /// branch (with `sequential`, only once no branch turn is running, so branches run one
    /// after the other in branch order).
    pub(crate) fn next_ready(&mut self, names: &[&str]) -> Option<ReadyTurn> {
        match self {
            Cursor::Speaker { agent, running } if !*running => {
                *running = true;
                Some(ReadyTurn {
                    agent: *agent,
                    branch: None,
                })
            }
            Cursor::Region(region) => {
                let going = |state: &BranchState| {
                    matches!(state, BranchState::Ready(_) | BranchState::Running(_))
                };
                let ready =
                    |index: &usize| matches!(region.branches[*index], BranchState::Ready(_));
                let index = match region.overlap.iter().copied().find(ready) {
                    Some(index) => index,
                    None => {
                        let overlap = &region.overlap;
                        let group = region.groups.iter().find(|group| {
                            group.iter().any(|&index| {
                                !overlap.contains(&index) && going(&region.branches[index])
                            })
                        })?;
                        group.iter().copied().find(ready)?
                    }
                };
                let BranchState::Ready(agent) = region.branches[index] else {
                    return None;
                };
                region.branches[index] = BranchState::Running(agent);
                Some(ReadyTurn {
                    agent,
                    branch: Some(region.branch_ref(index, names)),
                })
            }
            _ => None,
        }
    }

    /// Whether any turn is running.
    pub(crate) fn busy(&self) -> bool {
        match self {
            Cursor::Speaker { running, .. } => *running,
            Cursor::Region(region) => region
                .branches
                .iter()
                .any(|state| matches!(state, BranchState::Running(_))),
            Cursor::Ended => false,
        }
    }

    /// Moves on after a turn outside any branch led to `next`. A fan-out opens a region
    /// forked at `turn`.
    pub(crate) fn after_turn(&mut self, graph: &ConversationGraph, turn: u32, next: Node) {
        *self = match next {
            Node::Agent(agent) => Cursor::start(agent),
            Node::End => Cursor::Ended,
            Node::FanOut(index) => {
                let fan_out = graph.fan_out(index).clone();
                Cursor::Region(Region {
                    fork: turn,
                    groups: vec![(0..fan_out.branches.len()).collect()],
                    overlap: Vec::new(),
                    branches: fan_out
                        .branches
                        .iter()
                        .map(|&agent| BranchState::Ready(agent))
                        .collect(),
                    fan_out,
                })
            }
        };
    }

    /// Moves branch `index` on after its turn led to `next` (an agent: validation keeps
    /// branches from ending the run or fanning out). Returns what the join did.
    pub(crate) fn after_branch_turn(
        &mut self,
        index: u32,
        next: Node,
        outcome: TurnOutcome<'_>,
    ) -> JoinProgress {
        let Cursor::Region(region) = self else {
            return JoinProgress::default();
        };
        let join = region.fan_out.join;
        let state = match next {
            Node::Agent(agent) if agent == join => BranchState::Arrived {
                satisfied: match &region.fan_out.wait {
                    JoinWait::FirstMatching(condition) => {
                        condition.matches(outcome.text, outcome.choice, outcome.passed)
                    }
                    _ => true,
                },
            },
            Node::Agent(agent) => BranchState::Ready(agent),
            // Validation rules these out; treated as the branch having failed.
            Node::End | Node::FanOut(_) => BranchState::Failed,
        };
        if let Some(slot) = region.branches.get_mut(index as usize) {
            *slot = state;
        }
        self.settle()
    }

    /// Branch `index` failed. Returns `None` when the join's rule fails the run, else what
    /// the join did.
    pub(crate) fn branch_failed(&mut self, index: u32) -> Option<JoinProgress> {
        let Cursor::Region(region) = self else {
            return None;
        };
        if region.fan_out.on_failure == BranchFailure::Fail {
            return None;
        }
        if let Some(slot) = region.branches.get_mut(index as usize) {
            *slot = BranchState::Failed;
        }
        Some(self.settle())
    }

    /// Opens the join when its rule is met: stops the branches still under way and makes
    /// the join the next speaker.
    fn settle(&mut self) -> JoinProgress {
        let Cursor::Region(region) = self else {
            return JoinProgress::default();
        };
        let done = |state: &BranchState| {
            matches!(
                state,
                BranchState::Arrived { .. } | BranchState::Failed | BranchState::Stopped
            )
        };
        let all_done = region.branches.iter().all(done);
        let first_arrived = region
            .branches
            .iter()
            .any(|state| matches!(state, BranchState::Arrived { satisfied: true }));
        let opens = match region.fan_out.wait {
            JoinWait::All => all_done,
            JoinWait::First | JoinWait::FirstMatching(_) => first_arrived || all_done,
        };
        if !opens {
            return JoinProgress::default();
        }
        let mut stopped = Vec::new();
        for (index, state) in region.branches.iter_mut().enumerate() {
            if !done(state) {
                *state = BranchState::Stopped;
                stopped.push(index as u32);
            }
        }
        *self = Cursor::start(region.fan_out.join);
        JoinProgress {
            opened: true,
            stopped,
        }
    }

    /// Runs the region's branches in these groups, one group after the other; a branch no
    /// group names joins the last group. The `overlap` branches start at once and no group
    /// waits for them.
    pub(crate) fn set_groups(&mut self, mut groups: Vec<Vec<usize>>, mut overlap: Vec<usize>) {
        let Cursor::Region(region) = self else {
            return;
        };
        groups.retain(|group| !group.is_empty());
        let count = region.branches.len();
        groups
            .iter_mut()
            .for_each(|group| group.retain(|&index| index < count));
        let missing: Vec<usize> = (0..count)
            .filter(|index| !groups.iter().any(|group| group.contains(index)))
            .collect();
        match groups.last_mut() {
            Some(last) => last.extend(missing),
            None => groups.push(missing),
        }
        overlap.retain(|&index| index < count);
        region.groups = groups;
        region.overlap = overlap;
    }

    /// The region under way.
    pub(crate) fn region(&self) -> Option<&Region> {
        match self {
            Cursor::Region(region) => Some(region),
            _ => None,
        }
    }

    /// The join of the region under way.
    pub(crate) fn join(&self) -> Option<usize> {
        match self {
            Cursor::Region(region) => Some(region.fan_out.join),
            _ => None,
        }
    }

    /// The models of the turns running and of the branches about to start: none of them may
    /// be unloaded by another branch's plan.
    pub(crate) fn agents_in_use(&self) -> Vec<usize> {
        match self {
            Cursor::Region(region) => region
                .branches
                .iter()
                .filter_map(|state| match state {
                    BranchState::Ready(agent) | BranchState::Running(agent) => Some(*agent),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl Region {
    /// The reference a turn of branch `index` carries.
    pub(crate) fn branch_ref(&self, index: usize, names: &[&str]) -> BranchRef {
        BranchRef {
            fork: self.fork,
            index: index as u32,
            start: names[self.fan_out.branches[index]].to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentrun_spec::Workflow;

    fn workflow(join: &str) -> (Workflow, ConversationGraph) {
        let yaml = format!(
            "name: p\nagents:\n  coder: {{ model: m, prompt: p, options: {{ num_ctx: 2048 }} }}\n  tests: {{ kind: command, command: [true] }}\n  fix: {{ model: m, prompt: p, options: {{ num_ctx: 2048 }} }}\n  review: {{ model: m, prompt: p, options: {{ num_ctx: 2048 }} }}\n  router: {{ model: m, prompt: p, options: {{ num_ctx: 2048 }} }}\nflow:\n  start: coder\n  edges:\n    - {{ from: coder, to: [tests, review] }}\n    - {{ from: tests, to: fix, when: fail }}\n    - {{ from: tests, to: router }}\n    - {{ from: fix, to: tests }}\n    - {{ from: review, to: router }}\n    - {{ from: router, to: end }}\n  joins:\n    router: {join}\n"
        );
        let workflow =
            Workflow::from_yaml_str(&yaml, std::path::Path::new("p.yaml")).expect("valid");
        let graph = ConversationGraph::new(&workflow);
        (workflow, graph)
    }

    const NAMES: [&str; 5] = ["coder", "tests", "fix", "review", "router"];

    fn fan_out_of(graph: &ConversationGraph) -> Node {
        graph.outgoing(0).next().expect("an edge").to
    }

    #[test]
    fn an_all_join_opens_when_every_branch_has_arrived_and_branches_loop() {
        let (_, graph) = workflow("{ wait: all }");
        let mut cursor = Cursor::start(0);
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(0));
        cursor.after_turn(&graph, 1, fan_out_of(&graph));
        let first = cursor.next_ready(&NAMES).expect("tests");
        let second = cursor.next_ready(&NAMES).expect("review");
        assert_eq!((first.agent, second.agent), (1, 3));
        assert_eq!(
            first.branch.as_ref().map(|b| (b.fork, b.index)),
            Some((1, 0))
        );
        assert!(cursor.next_ready(&NAMES).is_none());
        // tests fails: its branch loops through fix.
        let progress = cursor.after_branch_turn(0, Node::Agent(2), TurnOutcome::default());
        assert!(!progress.opened);
        assert!(
            cursor.after_branch_turn(1, Node::Agent(4), TurnOutcome::default())
                == JoinProgress::default()
        );
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(2));
        cursor.after_branch_turn(0, Node::Agent(1), TurnOutcome::default());
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(1));
        let progress = cursor.after_branch_turn(0, Node::Agent(4), TurnOutcome::default());
        assert!(progress.opened && progress.stopped.is_empty());
        assert_eq!(
            cursor.next_ready(&NAMES).map(|t| (t.agent, t.branch)),
            Some((4, None))
        );
    }

    #[test]
    fn a_first_join_stops_the_others_and_a_condition_must_hold() {
        let (_, graph) = workflow("{ wait: { first: { contains: OK } } }");
        let mut cursor = Cursor::start(0);
        cursor.next_ready(&NAMES);
        cursor.after_turn(&graph, 1, fan_out_of(&graph));
        cursor.next_ready(&NAMES);
        cursor.next_ready(&NAMES);
        let said = |text| TurnOutcome {
            text,
            ..TurnOutcome::default()
        };
        assert!(
            !cursor
                .after_branch_turn(1, Node::Agent(4), said("no"))
                .opened
        );
        let progress = cursor.after_branch_turn(0, Node::Agent(4), said("OK"));
        assert!(progress.opened);
        assert!(progress.stopped.is_empty());
    }

    #[test]
    fn groups_run_one_after_the_other_and_failures_follow_the_rule() {
        let (_, graph) = workflow("{ wait: first, on_failure: continue }");
        let mut cursor = Cursor::start(0);
        cursor.next_ready(&NAMES);
        cursor.after_turn(&graph, 1, fan_out_of(&graph));
        // The second branch first, then the first.
        cursor.set_groups(vec![vec![1], vec![0]], Vec::new());
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(3));
        assert!(cursor.next_ready(&NAMES).is_none());
        let progress = cursor.branch_failed(1).expect("continues");
        assert!(!progress.opened);
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(1));
        assert!(cursor.branch_failed(0).expect("continues").opened);

        let (_, graph) = workflow("{ wait: all }");
        let mut cursor = Cursor::start(0);
        cursor.next_ready(&NAMES);
        cursor.after_turn(&graph, 1, fan_out_of(&graph));
        cursor.next_ready(&NAMES);
        assert!(
            cursor.branch_failed(0).is_none(),
            "fail is the default rule"
        );
    }

    #[test]
    fn an_overlapping_branch_holds_back_no_group() {
        let (_, graph) = workflow("{ wait: all }");
        let start = |overlap: Vec<usize>| {
            let mut cursor = Cursor::start(0);
            cursor.next_ready(&NAMES);
            cursor.after_turn(&graph, 1, fan_out_of(&graph));
            cursor.set_groups(vec![vec![0], vec![1]], overlap);
            cursor
        };
        // Without overlap the review waits for the test command's branch.
        let mut cursor = start(Vec::new());
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(1));
        assert!(cursor.next_ready(&NAMES).is_none());
        // With the command overlapping, the review starts beside it, and the command's
        // branch goes on (through fix) while the review runs.
        let mut cursor = start(vec![0]);
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(1));
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(3));
        cursor.after_branch_turn(0, Node::Agent(2), TurnOutcome::default());
        assert_eq!(cursor.next_ready(&NAMES).map(|t| t.agent), Some(2));
    }
}
