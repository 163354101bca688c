//! Flow rules: edges name real agents, conditions suit their speaker, routers and their edges
//! agree, no edge is dead, every agent is reached and every run can reach `end`.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, IntoNeighbors, NodeCount, Reversed, Visitable};

use crate::agent::{AgentSpec, KindName};
use crate::check::{Findings, Scope, agent_path};
use crate::flow::{Condition, EdgeSpec, EdgeTarget};
use crate::node::FieldPath;
use crate::spelling;
use crate::workflow::Workflow;

pub(crate) fn check_flow(workflow: &Workflow, scope: &Scope, findings: &mut Findings) {
    let agents: BTreeMap<&str, &AgentSpec> = workflow
        .agents
        .iter()
        .map(|agent| (agent.name.as_str(), agent))
        .collect();
    let names = || workflow.agents.iter().map(|agent| agent.name.as_str());
    let start = workflow.flow.start.as_str();
    let start_path = FieldPath::root().key("flow").key("start");
    // An agent called `end` is reported by the name rules; the flow is ambiguous around it.
    let mut flow_complete = scope.flow_complete && !agents.contains_key(EdgeTarget::END);
    if start.trim().is_empty() {
        findings.error(
            start_path,
            "the flow has no start",
            Some("name the agent that speaks first, e.g. `start: architect`".to_owned()),
        );
        flow_complete = false;
    } else if !agents.contains_key(start) {
        findings.error(
            start_path,
            format!("there is no agent `{start}` to start with"),
            Some(spelling::suggestion(start, names(), "agents")),
        );
        flow_complete = false;
    }

    // Edges after an unconditional edge, or repeating an earlier condition, are never taken.
    let mut live = vec![true; workflow.flow.edges.len()];
    let mut first_condition: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for (index, edge) in workflow.flow.edges.iter().enumerate() {
        let path = scope.edge_path(index);
        let mut known_edge = true;
        if edge.from == EdgeTarget::END && agents.contains_key(EdgeTarget::END) {
            known_edge = false;
        } else if edge.from == EdgeTarget::END {
            findings.error(
                path.key("from"),
                "no edge leaves `end`",
                Some("`end` finishes the run; start the edge at an agent".to_owned()),
            );
            known_edge = false;
        } else if !agents.contains_key(edge.from.as_str()) {
            findings.error(
                path.key("from"),
                format!("there is no agent `{}`", edge.from),
                Some(spelling::suggestion(&edge.from, names(), "agents")),
            );
            known_edge = false;
        }
        let to_path = |position: usize| match &edge.to {
            EdgeTarget::Branches(_) => path.key("to").index(position),
            _ => path.key("to"),
        };
        for (position, to) in edge.to.agents().iter().enumerate() {
            if agents.contains_key(to.as_str()) {
                continue;
            }
            let hint = if matches!(edge.to, EdgeTarget::Branches(_)) && to == EdgeTarget::END {
                "a branch ends at its join, never at `end`: name an agent".to_owned()
            } else {
                spelling::suggestion(to, names().chain([EdgeTarget::END]), "agents (or `end`)")
            };
            findings.error(
                to_path(position),
                format!("there is no agent `{to}`"),
                Some(hint),
            );
            known_edge = false;
        }
        if !known_edge {
            flow_complete = false;
            continue;
        }
        let from = agents[edge.from.as_str()];
        if !scope.opaque_agents.contains(&from.name) {
            check_condition(from, &edge.when, &path, findings);
        }
        let key = (edge.from.as_str(), edge.when.to_string());
        let shadow = first_condition
            .get(&(edge.from.as_str(), Condition::Always.to_string()))
            .map(|earlier| (*earlier, "is unconditional"))
            .or_else(|| {
                first_condition
                    .get(&key)
                    .map(|earlier| (*earlier, "has the same condition"))
            });
        if let Some((earlier, why)) = shadow {
            live[index] = false;
            let earlier_path = scope.edge_path(earlier);
            findings.error(
                path.clone(),
                format!("this edge is never taken: an earlier edge from `{}` ({earlier_path}) {why}", edge.from),
                Some("the first edge whose condition holds wins: move this edge above it, or remove it".to_owned()),
            );
        } else {
            first_condition.insert(key, index);
        }
    }

    check_router_coverage(workflow, scope, findings);
    let regions_sound =
        crate::parallel::check_parallel(workflow, scope, &live, flow_complete, findings);
    if flow_complete && regions_sound {
        check_paths(workflow, scope, &live, findings);
    }
}

fn check_condition(from: &AgentSpec, when: &Condition, path: &FieldPath, findings: &mut Findings) {
    let when_path = path.key("when");
    match when {
        Condition::Choice(choice) if !from.is_router() => findings.error(
            when_path,
            format!("`{}` is not a router, so it picks no choice", from.name),
            Some(format!(
                "give `{}` `choices: [{choice}, ...]`, or use `contains` or `matches` on its reply",
                from.name
            )),
        ),
        Condition::Choice(choice) if !from.choices().contains(choice) => findings.error(
            when_path.key("choice"),
            format!("the router `{}` has no choice `{choice}`", from.name),
            Some(spelling::suggestion(
                choice,
                from.choices().iter().map(String::as_str),
                "its choices",
            )),
        ),
        Condition::Pass | Condition::Fail if from.kind_name() != KindName::Command => findings
            .error(
                when_path,
                format!(
                    "`{}` is not a command agent, so its turns neither pass nor fail",
                    from.name
                ),
                Some(
                    "for a model's reply use `{ contains: ... }` or `{ matches: ... }`".to_owned(),
                ),
            ),
        _ => {}
    }
}

/// Every choice of a router needs an edge, or picking it would stop the run.
fn check_router_coverage(workflow: &Workflow, scope: &Scope, findings: &mut Findings) {
    for router in workflow.agents.iter().filter(|agent| agent.is_router()) {
        if scope.opaque_agents.contains(&router.name) {
            continue;
        }
        let covered: BTreeSet<&str> = workflow
            .flow
            .outgoing(&router.name)
            .filter_map(|edge| match &edge.when {
                Condition::Choice(choice) => Some(choice.as_str()),
                _ => None,
            })
            .collect();
        for choice in router
            .choices()
            .iter()
            .filter(|choice| !covered.contains(choice.as_str()))
        {
            findings.error(
                agent_path(&router.name).key("choices"),
                format!("the choice `{choice}` has no edge"),
                Some(format!(
                    "add `- {{ from: {}, to: <agent or end>, when: {{ choice: {choice} }} }}` to `flow.edges`, or remove the choice",
                    router.name
                )),
            );
        }
    }
}

/// Reachability over the edges that can be taken.
fn check_paths(workflow: &Workflow, scope: &Scope, live: &[bool], findings: &mut Findings) {
    let index: BTreeMap<&str, usize> = workflow
        .agents
        .iter()
        .enumerate()
        .map(|(position, agent)| (agent.name.as_str(), position))
        .collect();
    let count = workflow.agents.len();
    let live_edges = workflow
        .flow
        .edges
        .iter()
        .zip(live)
        .filter(|(_, live)| **live)
        .map(|(edge, _)| edge);
    let graph = flow_graph(&index, live_edges);
    let end = NodeIndex::new(count);
    let Some(&start) = index.get(workflow.flow.start.as_str()) else {
        return;
    };
    let reached = reachable(&graph, [NodeIndex::new(start)]);
    let dead_ends: Vec<usize> = (0..count)
        .filter(|&agent| {
            reached[agent]
                && graph
                    .neighbors_directed(NodeIndex::new(agent), Direction::Outgoing)
                    .next()
                    .is_none()
        })
        .collect();
    let exits = || std::iter::once(end).chain(dead_ends.iter().map(|&agent| NodeIndex::new(agent)));
    // A dead end is reported once, as such; treating it as an exit keeps the agents that
    // lead to it from being reported as trapped as well.
    let finishes = reachable(Reversed(&graph), exits());

    for (position, agent) in workflow.agents.iter().enumerate() {
        let path = agent_path(&agent.name);
        if !reached[position] {
            findings.error(
                path,
                format!(
                    "`{}` is never reached from the start (`{}`)",
                    agent.name, workflow.flow.start
                ),
                Some(format!(
                    "add an edge to `{}` from an agent that speaks before it, or remove it",
                    agent.name
                )),
            );
        } else if dead_ends.contains(&position) {
            findings.error(
                path,
                format!(
                    "`{}` has no outgoing edge, so the run cannot go on after it speaks",
                    agent.name
                ),
                Some(format!(
                    "add `- {{ from: {}, to: end }}`, or an edge to the agent that speaks next",
                    agent.name
                )),
            );
        }
    }
    // An agent trapped only because a dead edge is ignored is explained by that edge's error.
    let every_edge = flow_graph(&index, workflow.flow.edges.iter());
    let could_finish = reachable(Reversed(&every_edge), exits());
    let trapped: Vec<&str> = (0..count)
        .filter(|&agent| reached[agent] && !finishes[agent] && !could_finish[agent])
        .map(|agent| workflow.agents[agent].name.as_str())
        .collect();
    if let Some(first) = trapped.first() {
        let listed = trapped
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        findings.error(
            agent_path(first),
            format!("no path leads from `{first}` to `end`: once the run reaches {listed}, it loops forever"),
            Some("give one of these agents a conditional edge to `end` (or to an agent that reaches it), above its unconditional edge, e.g. `- { from: reviewer, to: end, when: { contains: APPROVED } }`".to_owned()),
        );
    }
    warn_without_fallback(workflow, scope, live, &reached, &index, findings);
}

/// A speaker whose edges are all conditional stops the run when none holds: worth a warning
/// unless its conditions cover every case.
fn warn_without_fallback(
    workflow: &Workflow,
    scope: &Scope,
    live: &[bool],
    reached: &[bool],
    index: &BTreeMap<&str, usize>,
    findings: &mut Findings,
) {
    for agent in &workflow.agents {
        if !reached[index[agent.name.as_str()]] || scope.opaque_agents.contains(&agent.name) {
            continue;
        }
        let edges: Vec<(usize, &Condition)> = workflow
            .flow
            .edges
            .iter()
            .enumerate()
            .filter(|(position, edge)| edge.from == agent.name && live[*position])
            .map(|(position, edge)| (position, &edge.when))
            .collect();
        let Some(&(last, _)) = edges.last() else {
            continue;
        };
        let has = |wanted: &Condition| edges.iter().any(|(_, when)| *when == wanted);
        // A router's uncovered choices are errors of their own.
        let exhaustive = has(&Condition::Always)
            || (has(&Condition::Pass) && has(&Condition::Fail))
            || agent.is_router();
        if !exhaustive {
            findings.warning(
                scope.edge_path(last),
                format!(
                    "when none of the conditions on `{}`'s edges holds, the run stops",
                    agent.name
                ),
                Some(format!(
                    "add an unconditional edge last, e.g. `- {{ from: {}, to: <agent> }}`",
                    agent.name
                )),
            );
        }
    }
}

/// The flow as a graph: node `i` is the `i`-th agent, the node after the last agent is `end`;
/// edges naming an unknown agent are left out (they have errors of their own).
fn flow_graph<'a>(
    index: &BTreeMap<&str, usize>,
    edges: impl Iterator<Item = &'a EdgeSpec>,
) -> DiGraph<(), ()> {
    let end = index.len();
    let mut graph = DiGraph::with_capacity(end + 1, 0);
    for _ in 0..=end {
        graph.add_node(());
    }
    for edge in edges {
        let targets: Vec<Option<usize>> = match &edge.to {
            EdgeTarget::End => vec![Some(end)],
            // A fan-out leads to each of its branches.
            target => target
                .agents()
                .iter()
                .map(|name| index.get(name.as_str()).copied())
                .collect(),
        };
        let Some(&from) = index.get(edge.from.as_str()) else {
            continue;
        };
        for to in targets.into_iter().flatten() {
            graph.add_edge(NodeIndex::new(from), NodeIndex::new(to), ());
        }
    }
    graph
}

/// Which nodes a walk from any of `roots` reaches, by node position.
fn reachable<G>(graph: G, roots: impl IntoIterator<Item = NodeIndex>) -> Vec<bool>
where
    G: IntoNeighbors<NodeId = NodeIndex> + Visitable<NodeId = NodeIndex> + NodeCount,
{
    let mut seen = vec![false; graph.node_count()];
    let mut walk = Dfs::empty(graph);
    for root in roots {
        walk.move_to(root);
        while let Some(node) = walk.next(graph) {
            seen[node.index()] = true;
        }
    }
    seen
}
