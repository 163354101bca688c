//! The conversation graph: agents as nodes, conditional edges, and the rule that picks the next speaker.

use agentrun_spec::{Condition, EdgeTarget, Workflow};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

/// A node of the conversation graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// An agent, by its index in the workflow's agent list.
    Agent(usize),
    /// The end of the run.
    End,
}

/// An edge: the condition under which the flow moves, and its position in the file.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    /// When the edge is taken.
    pub(crate) condition: Condition,
    /// Position among the source agent's outgoing edges in the file; the first match wins.
    pub(crate) rank: usize,
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

/// The workflow's flow as a petgraph graph.
#[derive(Debug, Clone)]
pub struct ConversationGraph {
    graph: DiGraph<Node, Edge>,
    agent_nodes: Vec<NodeIndex>,
    end_node: NodeIndex,
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
        let mut ranks = vec![0usize; workflow.agents.len()];
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
            };
            let rank = ranks[from];
            ranks[from] += 1;
            graph.add_edge(
                agent_nodes[from],
                to,
                Edge {
                    condition: edge.when.clone(),
                    rank,
                },
            );
        }
        let start = index_of(&workflow.flow.start).unwrap_or(0);
        ConversationGraph {
            graph,
            agent_nodes,
            end_node,
            start,
        }
    }

    /// The agent that speaks first.
    pub fn start(&self) -> usize {
        self.start
    }

    /// The number of agents.
    pub fn agent_count(&self) -> usize {
        self.agent_nodes.len()
    }

    /// The outgoing edges of an agent in file order: (rank, target, condition).
    pub fn outgoing(&self, agent: usize) -> Vec<(usize, Node, &Condition)> {
        let mut edges: Vec<(usize, Node, &Condition)> = self
            .graph
            .edges(self.agent_nodes[agent])
            .map(|edge| {
                let weight = edge.weight();
                (weight.rank, self.graph[edge.target()], &weight.condition)
            })
            .collect();
        edges.sort_by_key(|(rank, _, _)| *rank);
        edges
    }

    /// The first outgoing edge whose condition holds: (rank, target).
    pub fn next(&self, agent: usize, outcome: TurnOutcome<'_>) -> Option<(usize, Node)> {
        self.outgoing(agent)
            .into_iter()
            .find(|(_, _, condition)| {
                condition.matches(outcome.text, outcome.choice, outcome.passed)
            })
            .map(|(rank, node, _)| (rank, node))
    }

    /// The node of the given edge rank out of an agent.
    pub fn edge_target(&self, agent: usize, rank: usize) -> Option<Node> {
        self.outgoing(agent)
            .into_iter()
            .find(|(r, _, _)| *r == rank)
            .map(|(_, node, _)| node)
    }

    /// Whether a node is the end node.
    pub fn is_end(&self, node: NodeIndex) -> bool {
        node == self.end_node
    }
}
