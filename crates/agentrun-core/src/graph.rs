//! The conversation graph: agents as nodes, conditional edges, and the one rule that picks the
//! next speaker.

use agentrun_spec::{BranchFailure, Condition, EdgeTarget, JoinWait, Workflow};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};

/// A node of the conversation graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// An agent, by its index in the workflow's agent list.
    Agent(usize),
    /// The end of the run.
    End,
    /// A fan-out to parallel branches, by its index among the graph's fan-outs.
    FanOut(usize),
}

/// A fan-out of the flow: the branches it starts and the join where they meet.
#[derive(Debug, Clone, PartialEq)]
pub struct FanOut {
    /// The agent each branch starts at, in the file's order (the branch's index).
    pub branches: Vec<usize>,
    /// The agent that joins them.
    pub join: usize,
    /// Which arrivals open the join.
    pub wait: JoinWait,
    /// What a failing branch does.
    pub on_failure: BranchFailure,
}

/// What a finished turn offers to the edge conditions.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurnOutcome<'a> {
    /// The reply's text.
    pub text: &'a str,
    /// A router's choice.
    pub choice: Option<&'a str>,
    /// A command's result: `Some(true)` for pass.
    pub passed: Option<bool>,
}

/// An outgoing edge of an agent.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// Its position among the agent's outgoing edges in the file.
    pub rank: usize,
    /// Where it leads.
    pub to: Node,
    /// When it is taken.
    pub condition: &'a Condition,
}

/// The workflow's flow as a petgraph graph, with each agent's outgoing edges kept in file
/// order: the routing rule is "the first edge in file order whose condition holds".
#[derive(Debug, Clone)]
pub struct ConversationGraph {
    graph: DiGraph<Node, Condition>,
    /// Each agent's outgoing edges, in file order (built once).
    outgoing: Vec<Vec<EdgeIndex>>,
    fan_outs: Vec<FanOut>,
    start: usize,
}

impl ConversationGraph {
    /// Builds the graph of a validated workflow.
    ///
    /// Validation guarantees every edge names a known agent; an unknown one is skipped.
    pub fn new(workflow: &Workflow) -> ConversationGraph {
        let mut graph = DiGraph::new();
        let agent_nodes: Vec<NodeIndex> = (0..workflow.agents.len())
            .map(|index| graph.add_node(Node::Agent(index)))
            .collect();
        let end_node = graph.add_node(Node::End);
        let index_of = |name: &str| workflow.agents.iter().position(|a| a.name == name);
        let mut outgoing = vec![Vec::new(); workflow.agents.len()];
        let mut fan_outs = Vec::new();
        for edge in &workflow.flow.edges {
            let Some(from) = index_of(&edge.from) else {
                continue;
            };
            let to = match &edge.to {
                EdgeTarget::End => end_node,
                EdgeTarget::Agent(name) => match index_of(name) {
                    Some(to) => agent_nodes[to],
                    None => continue,
                },
                EdgeTarget::Branches(names) => {
                    let branches: Option<Vec<usize>> =
                        names.iter().map(|name| index_of(name)).collect();
                    let join = workflow.flow.join_of(&edge.from, names);
                    let (Some(branches), Some(join)) = (branches, join) else {
                        continue;
                    };
                    let (Some(join_index), Some(rule)) =
                        (index_of(&join), workflow.flow.joins.get(&join))
                    else {
                        continue;
                    };
                    fan_outs.push(FanOut {
                        branches,
                        join: join_index,
                        wait: rule.wait.clone(),
                        on_failure: rule.on_failure,
                    });
                    graph.add_node(Node::FanOut(fan_outs.len() - 1))
                }
            };
            outgoing[from].push(graph.add_edge(agent_nodes[from], to, edge.when.clone()));
        }
        let start = index_of(&workflow.flow.start).unwrap_or(0);
        ConversationGraph {
            graph,
            outgoing,
            fan_outs,
            start,
        }
    }

    /// A fan-out by its index (from [`Node::FanOut`]).
    pub fn fan_out(&self, index: usize) -> &FanOut {
        &self.fan_outs[index]
    }

    /// The fan-out from `agent` to exactly these branches, as a transcript records it.
    pub fn fan_out_to(&self, agent: usize, branches: &[usize]) -> Option<usize> {
        self.outgoing(agent).find_map(|step| match step.to {
            Node::FanOut(index) if self.fan_outs[index].branches == branches => Some(index),
            _ => None,
        })
    }

    /// The agent that speaks first.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The outgoing edges of an agent, in file order.
    pub fn outgoing(&self, agent: usize) -> impl Iterator<Item = Step<'_>> + '_ {
        self.outgoing[agent]
            .iter()
            .enumerate()
            .map(|(rank, &edge)| {
                let (_, target) = self
                    .graph
                    .edge_endpoints(edge)
                    .expect("an edge of this graph has endpoints");
                Step {
                    rank,
                    to: self.graph[target],
                    condition: &self.graph[edge],
                }
            })
    }

    /// The first outgoing edge whose condition holds.
    pub fn next(&self, agent: usize, outcome: TurnOutcome<'_>) -> Option<Step<'_>> {
        self.outgoing(agent).find(|step| {
            step.condition
                .matches(outcome.text, outcome.choice, outcome.passed)
        })
    }

    /// The outgoing edge of the given rank (a turn whose edge was decided in advance).
    pub fn edge(&self, agent: usize, rank: usize) -> Option<Step<'_>> {
        self.outgoing(agent).nth(rank)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_edge_in_file_order_whose_condition_holds_is_taken() {
        let workflow = Workflow::from_yaml_str(
            "name: g\nagents:\n  a: { model: m, prompt: p, options: { num_ctx: 2048 } }\n  b: { model: m, prompt: p, options: { num_ctx: 2048 } }\nflow:\n  start: a\n  edges:\n    - { from: a, to: end, when: { contains: DONE } }\n    - { from: a, to: b }\n    - { from: b, to: end, when: { contains: DONE } }\n    - { from: b, to: a }\n",
            std::path::Path::new("g.yaml"),
        )
        .expect("valid");
        let graph = ConversationGraph::new(&workflow);
        let said = |text| TurnOutcome {
            text,
            ..TurnOutcome::default()
        };
        let done = graph.next(0, said("DONE")).expect("an edge");
        assert_eq!((done.rank, done.to), (0, Node::End));
        let on = graph.next(0, said("more")).expect("an edge");
        assert_eq!((on.rank, on.to), (1, Node::Agent(1)));
        assert_eq!(graph.edge(1, 1).map(|step| step.to), Some(Node::Agent(0)));
        assert!(graph.edge(1, 2).is_none());
        let ranks: Vec<usize> = graph.outgoing(1).map(|step| step.rank).collect();
        assert_eq!(ranks, [0, 1]);
    }
}
