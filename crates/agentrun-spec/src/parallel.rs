//! Rules of parallel regions: a fan-out (`to: [a, b]`) starts one branch per agent, and the
//! branches meet at one join (`flow.joins`). Each branch must be able to reach that join, must
//! not end the run or fan out again, keeps its own agents, and is entered only through its
//! fan-out; every declared join must be met by some fan-out.

use std::collections::{BTreeMap, BTreeSet};

use crate::check::{Findings, Scope, agent_path};
use crate::flow::{EdgeTarget, Flow};
use crate::node::FieldPath;
use crate::spelling;
use crate::workflow::Workflow;

/// Checks every fan-out and join; returns whether the parallel regions are sound, so that
/// path rules, which assume they are, only run then.
pub(crate) fn check_parallel(
    workflow: &Workflow,
    scope: &Scope,
    live: &[bool],
    flow_complete: bool,
    findings: &mut Findings,
) -> bool {
    let before = findings.0.len();
    let flow = &workflow.flow;
    let agents: BTreeSet<&str> = workflow.agents.iter().map(|a| a.name.as_str()).collect();
    let joins_path = FieldPath::root().key("flow").key("joins");
    for name in flow.joins.keys() {
        if !agents.contains(name.as_str()) {
            findings.error(
                joins_path.key(name),
                format!("there is no agent `{name}` to join at"),
                Some(spelling::suggestion(name, agents.iter().copied(), "agents")),
            );
        }
    }
    let mut met_joins: BTreeSet<String> = BTreeSet::new();
    for (index, edge) in flow.edges.iter().enumerate() {
        let EdgeTarget::Branches(targets) = &edge.to else {
            continue;
        };
        let path = scope.edge_path(index);
        if !check_targets(flow, targets, &path, findings) || !flow_complete || !live[index] {
            continue;
        }
        let fan_out = FanOut {
            flow,
            scope,
            index,
            from: &edge.from,
            targets,
            path: &path,
        };
        met_joins.extend(fan_out.check(findings));
    }
    if flow_complete {
        for name in flow.joins.keys() {
            if agents.contains(name.as_str()) && !met_joins.contains(name) {
                findings.error(
                    joins_path.key(name),
                    format!("the join `{name}` can never complete: no fan-out's branches lead to it"),
                    Some(format!(
                        "fan out with `- {{ from: <agent>, to: [<branch>, <branch>] }}` and lead each branch to `{name}`, or remove `{name}` from `flow.joins`"
                    )),
                );
            }
        }
    }
    findings.0.len() == before
}

/// The branch list itself: at least two agents, none twice, none a join.
fn check_targets(
    flow: &Flow,
    targets: &[String],
    path: &FieldPath,
    findings: &mut Findings,
) -> bool {
    let mut sound = true;
    if targets.len() < 2 {
        findings.error(
            path.key("to"),
            "a fan-out needs at least two branches",
            Some(match targets.first() {
                Some(one) => format!("for one next speaker write `to: {one}`"),
                None => "list the agents that start the branches, e.g. `to: [tests, reviewer]`"
                    .to_owned(),
            }),
        );
        sound = false;
    }
    let mut seen = BTreeSet::new();
    for (position, target) in targets.iter().enumerate() {
        if !seen.insert(target.as_str()) {
            findings.error(
                path.key("to").index(position),
                format!("`{target}` is named twice in this fan-out"),
                Some("each branch starts at its own agent".to_owned()),
            );
            sound = false;
        } else if flow.joins.contains_key(target) {
            findings.error(
                path.key("to").index(position),
                format!("the branch `{target}` is the join itself, so it would have no turns"),
                Some(format!(
                    "start the branch at an agent that leads to `{target}`, or leave it out"
                )),
            );
            sound = false;
        }
    }
    sound
}

/// One fan-out edge and the rules of its branches.
struct FanOut<'a> {
    flow: &'a Flow,
    scope: &'a Scope,
    index: usize,
    from: &'a str,
    targets: &'a [String],
    path: &'a FieldPath,
}

impl FanOut<'_> {
    /// Checks the branches; returns the joins they reach (one when the fan-out is sound).
    fn check(&self, findings: &mut Findings) -> Vec<String> {
        let regions: Vec<Vec<String>> = self
            .targets
            .iter()
            .map(|target| self.flow.branch_region(self.from, target))
            .collect();
        let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
        for (branch, region) in regions.iter().enumerate() {
            for agent in region {
                if let Some(&other) = owner.get(agent.as_str()) {
                    findings.error(
                        agent_path(agent),
                        format!(
                            "`{agent}` is in two branches of the fan-out at {} (`{}` and `{}`), so its turns would belong to both",
                            self.path, self.targets[other], self.targets[branch]
                        ),
                        Some("give each branch its own agents (two agents may `use:` the same agent file)".to_owned()),
                    );
                } else {
                    owner.insert(agent, branch);
                }
            }
        }
        let mut joins_met: Vec<(String, &str)> = Vec::new();
        for (branch, region) in regions.iter().enumerate() {
            let target = &self.targets[branch];
            let joins = self.flow.joins_reached(self.from, target);
            match joins.first() {
                None => findings.error(
                    self.path.key("to").index(branch),
                    format!("the branch `{target}` never reaches a join, so the branches could never meet"),
                    Some(if self.flow.joins.is_empty() {
                        "name the agent where the branches meet in `flow.joins`, e.g. `joins: { router: { wait: all } }`, and lead each branch to it".to_owned()
                    } else {
                        format!(
                            "lead the branch to a join ({}) with an edge from its last agent",
                            self.flow.joins.keys().map(|j| format!("`{j}`")).collect::<Vec<_>>().join(", ")
                        )
                    }),
                ),
                Some(join) => {
                    joins_met.extend(joins.iter().map(|join| (join.clone(), target.as_str())));
                    self.check_region(target, region, join, findings);
                    // The edge back to the fork is reported there, not as a branch that
                    // misses its join.
                }
            }
        }
        let distinct: BTreeSet<&str> = joins_met.iter().map(|(join, _)| join.as_str()).collect();
        if distinct.len() > 1 {
            let listed = joins_met
                .iter()
                .map(|(join, branch)| format!("`{join}` from `{branch}`"))
                .collect::<Vec<_>>()
                .join(", ");
            findings.error(
                self.path.key("to"),
                format!("the branches of this fan-out meet at different joins ({listed}), so no join would see them all"),
                Some("lead every branch to the same join".to_owned()),
            );
        } else {
            self.check_entries(&owner, findings);
        }
        distinct.into_iter().map(str::to_owned).collect()
    }

    /// The edges leaving a branch's agents: none to `end`, none fanning out again, none back
    /// to the agent that fanned out; and every agent of the branch can still reach the join.
    fn check_region(&self, target: &str, region: &[String], join: &str, findings: &mut Findings) {
        for (index, edge) in self.flow.edges.iter().enumerate() {
            if !region.contains(&edge.from) {
                continue;
            }
            let path = self.scope.edge_path(index);
            match &edge.to {
                EdgeTarget::End => findings.error(
                    path.key("to"),
                    format!(
                        "this edge ends the run from inside the branch `{target}` (fan-out at {}); a branch can only end at its join",
                        self.path
                    ),
                    Some(format!("lead the edge to the join `{join}`, which may end the run")),
                ),
                EdgeTarget::Branches(_) => findings.error(
                    path.key("to"),
                    format!(
                        "a fan-out inside the branch `{target}` (fan-out at {}): branches do not fan out again",
                        self.path
                    ),
                    Some(format!(
                        "list every branch in the first fan-out, or fan out again after the join `{join}`"
                    )),
                ),
                EdgeTarget::Agent(next) if next == self.from => findings.error(
                    path.key("to"),
                    format!(
                        "this edge goes back to `{}`, which fanned out, from inside the branch `{target}`: the cycle re-enters the parallel region without passing its join `{join}`",
                        self.from
                    ),
                    Some(format!(
                        "loop inside the branch (back to `{target}` or an agent after it), or lead the edge to `{join}` and go on from there"
                    )),
                ),
                EdgeTarget::Agent(_) => {}
            }
        }
        // Which agents of the branch lead to the join: walk backwards from the join.
        let mut reaches: BTreeSet<&str> = BTreeSet::new();
        loop {
            let before = reaches.len();
            for edge in &self.flow.edges {
                if region.contains(&edge.from)
                    && edge
                        .to
                        .agents()
                        .iter()
                        // The edge back to the fork has its own error.
                        .any(|next| {
                            next == join || next == self.from || reaches.contains(next.as_str())
                        })
                {
                    reaches.insert(edge.from.as_str());
                }
            }
            if reaches.len() == before {
                break;
            }
        }
        for agent in region {
            if !reaches.contains(agent.as_str()) {
                findings.error(
                    agent_path(agent),
                    format!(
                        "`{agent}` in the branch `{target}` can never reach the join `{join}`: once the branch gets there, the join waits forever"
                    ),
                    Some(format!(
                        "give `{agent}` an edge toward `{join}` (directly or through the branch's other agents)"
                    )),
                );
            }
        }
    }

    /// A branch is entered only through its fan-out: an edge from outside the region into one
    /// of its agents would run part of a branch with no join waiting for it.
    fn check_entries(&self, owner: &BTreeMap<&str, usize>, findings: &mut Findings) {
        for (index, edge) in self.flow.edges.iter().enumerate() {
            if index == self.index || owner.contains_key(edge.from.as_str()) {
                continue;
            }
            if edge.from == self.from && matches!(edge.to, EdgeTarget::Branches(_)) {
                continue;
            }
            for next in edge.to.agents() {
                if let Some(&branch) = owner.get(next.as_str()) {
                    findings.error(
                        self.scope.edge_path(index).key("to"),
                        format!(
                            "this edge enters the branch `{}` of the fan-out at {} from `{}`, outside it: the cycle re-enters the parallel region without passing its fan-out and join",
                            self.targets[branch], self.path, edge.from
                        ),
                        Some(format!(
                            "lead the edge to `{}`, which fans out again, or to an agent outside the branches",
                            self.from
                        )),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::flow::{BranchFailure, Condition, EdgeTarget, JoinWait};
    use crate::workflow::Workflow;

    const SOUND: &str = "name: p\nagents:\n  coder: { model: m, prompt: p, options: { num_ctx: 2048 } }\n  tests: { kind: command, command: [make, test] }\n  fixer: { model: m, prompt: p, options: { num_ctx: 2048 } }\n  review: { model: m, prompt: p, options: { num_ctx: 2048 } }\n  lead: { model: m, prompt: p, options: { num_ctx: 2048 } }\nflow:\n  start: coder\n  edges:\n    - { from: coder, to: [tests, review] }\n    - { from: tests, to: fixer, when: fail }\n    - { from: tests, to: lead }\n    - { from: fixer, to: tests }\n    - { from: review, to: lead }\n    - { from: lead, to: coder, when: { contains: AGAIN } }\n    - { from: lead, to: end }\n  joins:\n    lead: { wait: { first: { contains: OK } }, on_failure: continue }\n";

    #[test]
    fn a_sound_fan_out_loads_with_its_join_and_round_trips() {
        let workflow = Workflow::from_yaml_str(SOUND, Path::new("p.yaml")).expect("valid");
        assert_eq!(
            workflow.flow.edges[0].to,
            EdgeTarget::Branches(vec!["tests".into(), "review".into()])
        );
        let join = &workflow.flow.joins["lead"];
        assert_eq!(
            join.wait,
            JoinWait::FirstMatching(Condition::Contains("OK".into()))
        );
        assert_eq!(join.on_failure, BranchFailure::Continue);
        assert_eq!(
            workflow.flow.branch_region("coder", "tests"),
            ["tests", "fixer"]
        );
        assert_eq!(
            workflow
                .flow
                .join_of("coder", &["tests".into(), "review".into()]),
            Some("lead".to_owned())
        );
        let again = Workflow::from_yaml_str(&workflow.to_yaml(), Path::new("p.yaml"))
            .expect("the saved form loads");
        assert_eq!(again.flow, workflow.flow);
    }

    #[test]
    fn a_branch_that_loops_forever_is_named() {
        let broken = SOUND.replace(
            "    - { from: fixer, to: tests }\n",
            "    - { from: fixer, to: fixer }\n",
        );
        let error = Workflow::from_yaml_str(&broken, Path::new("p.yaml")).expect_err("invalid");
        let text = error.to_string();
        assert!(
            text.contains("`fixer` in the branch `tests` can never reach the join `lead`"),
            "{text}"
        );
    }
}
