//! Random workflows for benchmarks and tests of the residency policies: graph shapes
//! (chains, router fan-outs, TDD loops and mixtures of them), router distributions, test pass
//! rates, model sizes, GPU budgets from 16 to 128 GB and one to six models, each on its own
//! simulated machine.
//!
//! A workflow is a pure function of its seed: the same seed gives the same YAML text, the
//! same models and the same machine on every platform (the draws use a fixed-algorithm
//! generator, never the thread's).

use std::fmt::Write as _;
use std::path::Path;

use agentrun_spec::{SpecError, Workflow};
use ollama_sim::{ModelSpec, SimConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Decimal gigabyte.
const GB: f64 = 1e9;

/// The GPU budgets drawn, in GB: from a 16 GB laptop to a 128 GB workstation.
const BUDGETS_GB: [u64; 8] = [16, 24, 32, 48, 54, 64, 96, 128];

/// The largest model drawn, GB (the size of the biggest model of the built-in catalogue).
const LARGEST_MODEL_GB: f64 = 52.0;

/// The smallest model drawn, GB.
const SMALLEST_MODEL_GB: f64 = 1.2;

/// The share of the budget a single model may take, so that every model fits alone with
/// its context cache.
const LARGEST_SHARE_OF_BUDGET: f64 = 0.72;

/// The shape of a random workflow's graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Agents in a cycle, optionally with a test run that sends failures back.
    Chain,
    /// A router that picks one of several specialists, each answering back to it.
    FanOut,
    /// Tests first, code, a test run, a review, and a router choosing the next step.
    TddLoop,
    /// A TDD loop whose router also fans out to extra specialists.
    Mixture,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Shape::Chain => "chain",
            Shape::FanOut => "fan-out",
            Shape::TddLoop => "tdd-loop",
            Shape::Mixture => "mixture",
        })
    }
}

impl Shape {
    const ALL: [Shape; 4] = [Shape::Chain, Shape::FanOut, Shape::TddLoop, Shape::Mixture];
}

/// A generated workflow and the simulated machine it runs on.
#[derive(Debug, Clone)]
pub struct RandomWorkflow {
    /// The seed it was drawn from.
    pub seed: u64,
    /// Its graph's shape.
    pub shape: Shape,
    /// The workflow file's text.
    pub yaml: String,
    /// The parsed, validated workflow.
    pub workflow: Workflow,
    /// The simulated machine: the target Mac with the workflow's models and a RAM size that
    /// suits the budget.
    pub machine: SimConfig,
}

impl RandomWorkflow {
    /// The workflow drawn from `seed`, its turns limited to `max_turns` in simulations.
    ///
    /// # Panics
    /// Never for any seed: every drawn workflow is valid (a test checks thousands of seeds).
    pub fn generate(seed: u64, max_turns: u32) -> RandomWorkflow {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x05ee_d0fa_9e75_u64);
        let shape = Shape::ALL[rng.random_range(0..Shape::ALL.len())];
        let budget_gb = BUDGETS_GB[rng.random_range(0..BUDGETS_GB.len())];
        let mut draft = Draft::new(seed, budget_gb, max_turns);
        match shape {
            Shape::Chain => draft.chain(&mut rng),
            Shape::FanOut => draft.fan_out(&mut rng, "hub"),
            Shape::TddLoop => draft.tdd_loop(&mut rng, 0),
            Shape::Mixture => {
                let extra = rng.random_range(1..=3);
                draft.tdd_loop(&mut rng, extra);
            }
        }
        draft.assign_models(&mut rng);
        let yaml = draft.yaml();
        let workflow = parse(&yaml, seed).unwrap_or_else(|error| {
            panic!("the random workflow of seed {seed} is invalid: {error}\n{yaml}")
        });
        RandomWorkflow {
            seed,
            shape,
            yaml,
            workflow,
            machine: draft.machine(),
        }
    }

    /// A one-line description: seed, shape, budget, models and their sizes.
    pub fn describe(&self) -> String {
        let mut models: Vec<String> = Vec::new();
        for agent in &self.workflow.agents {
            if let Some(model) = agent.model()
                && !models.iter().any(|m| m.starts_with(&format!("{model} ")))
            {
                let size = self
                    .machine
                    .models
                    .iter()
                    .find(|m| m.name == model)
                    .map_or(0.0, |m| m.size_bytes as f64 / GB);
                models.push(format!("{model} {size:.1}GB"));
            }
        }
        format!(
            "#{} {} budget {} cap {}, {} agents, models [{}]",
            self.seed,
            self.shape,
            self.workflow.memory.gpu_budget,
            self.workflow.memory.max_loaded_models.unwrap_or(3),
            self.workflow.agents.len(),
            models.join(", ")
        )
    }
}

fn parse(yaml: &str, seed: u64) -> Result<Workflow, SpecError> {
    Workflow::from_yaml_str(yaml, Path::new(&format!("random-{seed}.yaml")))
}

/// A model agent, a command or a router, before models are assigned.
#[derive(Debug)]
struct DraftAgent {
    name: String,
    kind: DraftKind,
    /// Index into the drawn models, once assigned.
    model: usize,
    /// The agent's `residency.keep_alive`.
    keep_alive: Option<&'static str>,
}

#[derive(Debug)]
enum DraftKind {
    Llm { tokens: (u64, u64) },
    Router { choices: Vec<(String, f64)> },
    Command { seconds: (u64, u64), pass_rate: f64 },
}

#[derive(Debug)]
struct Draft {
    seed: u64,
    budget_gb: u64,
    max_loaded: u32,
    max_turns: u32,
    start: String,
    agents: Vec<DraftAgent>,
    /// `(from, to, condition)`, the condition as YAML (`None` for always).
    edges: Vec<(String, String, Option<String>)>,
    /// Agents with a text condition and the share of their replies that meet it.
    match_rates: Vec<(String, f64)>,
    /// Model sizes in bytes and their context length.
    models: Vec<(u64, u64)>,
}

impl Draft {
    fn new(seed: u64, budget_gb: u64, max_turns: u32) -> Draft {
        Draft {
            seed,
            budget_gb,
            max_loaded: 3,
            max_turns,
            start: String::new(),
            agents: Vec::new(),
            edges: Vec::new(),
            match_rates: Vec::new(),
            models: Vec::new(),
        }
    }

    fn llm(&mut self, rng: &mut StdRng, name: &str) {
        let low = rng.random_range(50..=900);
        let high = low + rng.random_range(50..=3 * low);
        let keep_alive = Draft::keep_alive(rng);
        self.agents.push(DraftAgent {
            name: name.to_owned(),
            kind: DraftKind::Llm {
                tokens: (low, high),
            },
            model: 0,
            keep_alive,
        });
    }

    /// The fixed keep_alive the `static` policy sends: none (Ollama's 5 minutes), minutes,
    /// hours or forever.
    fn keep_alive(rng: &mut StdRng) -> Option<&'static str> {
        [None, Some("10m"), Some("30m"), Some("2h"), Some("-1")][rng.random_range(0..5)]
    }

    fn command(&mut self, rng: &mut StdRng, name: &str) {
        let low = rng.random_range(3..=90);
        let high = low + rng.random_range(0..=low);
        self.agents.push(DraftAgent {
            name: name.to_owned(),
            kind: DraftKind::Command {
                seconds: (low, high),
                pass_rate: rng.random_range(0.2..0.9),
            },
            model: 0,
            keep_alive: None,
        });
    }

    fn router(&mut self, rng: &mut StdRng, name: &str, choices: Vec<(String, f64)>) {
        let keep_alive = Draft::keep_alive(rng);
        self.agents.push(DraftAgent {
            name: name.to_owned(),
            kind: DraftKind::Router { choices },
            model: 0,
            keep_alive,
        });
    }

    fn edge(&mut self, from: &str, to: &str, when: Option<String>) {
        self.edges.push((from.to_owned(), to.to_owned(), when));
    }

    /// Weights of a router's choices: uniform, skewed or one dominant choice.
    fn weights(rng: &mut StdRng, count: usize) -> Vec<f64> {
        match rng.random_range(0..3) {
            0 => vec![1.0; count],
            1 => (0..count).map(|_| rng.random_range(0.05..1.0)).collect(),
            _ => {
                let dominant = rng.random_range(0..count);
                (0..count)
                    .map(|i| if i == dominant { 4.0 } else { 1.0 })
                    .collect()
            }
        }
    }

    /// A cycle of two to five model agents, sometimes with a test run after the last.
    fn chain(&mut self, rng: &mut StdRng) {
        let count = rng.random_range(2..=5);
        let names: Vec<String> = (1..=count).map(|i| format!("step{i}")).collect();
        for name in &names {
            self.llm(rng, name);
        }
        self.start = names[0].clone();
        for pair in names.windows(2) {
            self.edge(&pair[0], &pair[1], None);
        }
        let last = names[count - 1].clone();
        // A way out that the simulation never takes: runs end at their turn limit.
        self.edge(&last, "end", Some("{ contains: DONE }".into()));
        self.match_rates.push((last.clone(), 0.0));
        if rng.random_bool(0.5) {
            self.command(rng, "check");
            self.edge(&last, "check", None);
            self.edge("check", &names[0], Some("pass".into()));
            self.edge("check", &last, Some("fail".into()));
        } else {
            self.edge(&last, &names[0], None);
        }
    }

    /// A router picking among two to six specialists, each answering back to it.
    fn fan_out(&mut self, rng: &mut StdRng, router: &str) {
        let count = rng.random_range(2..=6);
        let names: Vec<String> = (1..=count).map(|i| format!("expert{i}")).collect();
        let weights = Draft::weights(rng, count);
        let mut choices: Vec<(String, f64)> = names
            .iter()
            .zip(&weights)
            .map(|(name, weight)| (name.clone(), *weight))
            .collect();
        choices.push(("done".into(), 0.0));
        self.router(rng, router, choices);
        self.start = router.to_owned();
        for name in &names {
            self.llm(rng, name);
            self.edge(router, name, Some(format!("{{ choice: {name} }}")));
            self.edge(name, router, None);
        }
        self.edge(router, "end", Some("{ choice: done }".into()));
    }

    /// The TDD loop of `workflows/tdd.yaml`, with `extra` specialists behind its router.
    fn tdd_loop(&mut self, rng: &mut StdRng, extra: usize) {
        for name in ["architect", "tester", "coder", "reviewer"] {
            self.llm(rng, name);
        }
        self.command(rng, "tests");
        self.match_rates
            .push(("reviewer".into(), rng.random_range(0.3..0.9)));
        self.start = "architect".into();
        self.edge("architect", "tester", None);
        self.edge("tester", "coder", None);
        self.edge("coder", "tests", None);
        self.edge("tests", "reviewer", Some("pass".into()));
        self.edge("tests", "coder", Some("fail".into()));
        self.edge("reviewer", "router", Some("{ contains: APPROVED }".into()));
        self.edge("reviewer", "coder", None);
        let mut names = vec!["implement".to_owned(), "design".to_owned()];
        names.extend((1..=extra).map(|i| format!("expert{i}")));
        let mut weights = Draft::weights(rng, names.len());
        // A design phase is rarer than the next feature.
        weights[1] *= rng.random_range(0.1..0.6);
        let mut choices: Vec<(String, f64)> = names.iter().cloned().zip(weights).collect();
        choices.push(("done".into(), 0.0));
        self.router(rng, "router", choices);
        self.edge("router", "tester", Some("{ choice: implement }".into()));
        self.edge("router", "architect", Some("{ choice: design }".into()));
        for name in names.iter().skip(2) {
            self.llm(rng, name);
            self.edge("router", name, Some(format!("{{ choice: {name} }}")));
            self.edge(name, "router", None);
        }
        self.edge("router", "end", Some("{ choice: done }".into()));
    }

    /// Draws one to six models (no more than the model agents) and gives every model agent
    /// one of them, each model at least one agent.
    fn assign_models(&mut self, rng: &mut StdRng) {
        self.max_loaded = [2, 3, 3, 3, 4][rng.random_range(0..5)];
        let speakers: Vec<usize> = (0..self.agents.len())
            .filter(|&i| !matches!(self.agents[i].kind, DraftKind::Command { .. }))
            .collect();
        let count = rng.random_range(1..=6).min(speakers.len());
        let largest = (self.budget_gb as f64 * LARGEST_SHARE_OF_BUDGET).min(LARGEST_MODEL_GB);
        let (low, high) = (SMALLEST_MODEL_GB.ln(), largest.ln());
        for _ in 0..count {
            let gb = rng.random_range(low..=high).exp();
            let context = [4096, 8192, 16384, 32768][rng.random_range(0..4)];
            self.models.push(((gb * GB) as u64, context));
        }
        let mut order = speakers.clone();
        // Shuffle so that the first agents are not always on the first models.
        for i in (1..order.len()).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for (rank, &agent) in order.iter().enumerate() {
            self.agents[agent].model = if rank < count {
                rank
            } else {
                rng.random_range(0..count)
            };
        }
    }

    fn model_name(&self, index: usize) -> String {
        let gb = self.models[index].0 as f64 / GB;
        format!("m{}-{:.0}gb:q4", index + 1, gb.max(1.0))
    }

    fn yaml(&self) -> String {
        let mut out = String::new();
        let budget = self.budget_gb;
        let _ = writeln!(out, "name: random-{}", self.seed);
        let _ = writeln!(
            out,
            "description: A random workflow drawn from seed {}.",
            self.seed
        );
        let _ = writeln!(out, "task: Whatever the team is asked.");
        let _ = writeln!(out, "agents:");
        for agent in &self.agents {
            let _ = writeln!(out, "  {}:", agent.name);
            match &agent.kind {
                DraftKind::Command { .. } => {
                    let _ = writeln!(out, "    kind: command");
                    let _ = writeln!(out, "    command: [\"true\"]");
                }
                DraftKind::Llm { .. } | DraftKind::Router { .. } => {
                    let _ = writeln!(out, "    model: \"{}\"", self.model_name(agent.model));
                    let _ = writeln!(out, "    prompt: You are {}.", agent.name);
                    let context = self.models[agent.model].1;
                    let _ = writeln!(out, "    options: {{ num_ctx: {context} }}");
                    if let Some(keep_alive) = agent.keep_alive {
                        let _ = writeln!(out, "    residency: {{ keep_alive: \"{keep_alive}\" }}");
                    }
                    if let DraftKind::Router { choices } = &agent.kind {
                        let names: Vec<&str> = choices.iter().map(|(c, _)| c.as_str()).collect();
                        let _ = writeln!(out, "    choices: [{}]", names.join(", "));
                    }
                }
            }
        }
        let _ = writeln!(out, "flow:\n  start: {}\n  edges:", self.start);
        for (from, to, when) in &self.edges {
            match when {
                Some(when) => {
                    let _ = writeln!(out, "    - {{ from: {from}, to: {to}, when: {when} }}");
                }
                None => {
                    let _ = writeln!(out, "    - {{ from: {from}, to: {to} }}");
                }
            }
        }
        let _ = writeln!(out, "limits: {{ max_turns: {} }}", self.max_turns + 10);
        let _ = writeln!(
            out,
            "memory: {{ gpu_budget: {budget}GB, max_loaded_models: {}, policy: smart, load_mode: auto }}",
            self.max_loaded
        );
        let _ = writeln!(
            out,
            "simulation:\n  seed: {}\n  max_turns: {}\n  agents:",
            self.seed, self.max_turns
        );
        for agent in &self.agents {
            let behaviour = match &agent.kind {
                DraftKind::Llm { tokens } => {
                    let rate = self
                        .match_rates
                        .iter()
                        .find(|(name, _)| *name == agent.name)
                        .map(|(_, rate)| format!(", match_rate: {rate:.2}"))
                        .unwrap_or_default();
                    format!("reply_tokens: [{}, {}]{rate}", tokens.0, tokens.1)
                }
                DraftKind::Router { choices } => {
                    let weights: Vec<String> = choices
                        .iter()
                        .map(|(choice, weight)| format!("{choice}: {weight:.3}"))
                        .collect();
                    format!(
                        "reply_tokens: [10, 40], choices: {{ {} }}",
                        weights.join(", ")
                    )
                }
                DraftKind::Command { seconds, pass_rate } => format!(
                    "duration: [{}s, {}s], pass_rate: {pass_rate:.2}",
                    seconds.0, seconds.1
                ),
            };
            let _ = writeln!(out, "    {}: {{ {behaviour} }}", agent.name);
        }
        out
    }

    /// The target Mac with this workflow's models (each a built-in model of similar size,
    /// renamed and resized) and RAM that leaves the OS its reserve beside the budget.
    fn machine(&self) -> SimConfig {
        let mut machine = SimConfig::target_mac();
        let catalogue = machine.models.clone();
        let budget = self.budget_gb as f64 * GB;
        machine.gpu_memory_bytes = budget as u64;
        machine.ram_bytes = (budget * 64.0 / 54.0).max(budget + 8.0 * GB) as u64;
        machine.max_loaded_models = self.max_loaded as usize;
        for index in 0..self.models.len() {
            let size = self.models[index].0;
            let mut spec: ModelSpec = catalogue
                .iter()
                .min_by_key(|m| m.size_bytes.abs_diff(size))
                .cloned()
                .expect("the built-in catalogue is not empty");
            spec.name = self.model_name(index);
            spec.size_bytes = size;
            spec.digest = None;
            spec.weights = None;
            machine.models.push(spec);
        }
        machine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_gives_a_valid_workflow_within_the_drawn_ranges() {
        let mut shapes = std::collections::BTreeSet::new();
        let mut model_counts = std::collections::BTreeSet::new();
        for seed in 0..400 {
            let random = RandomWorkflow::generate(seed, 100);
            shapes.insert(random.shape.to_string());
            let models: std::collections::BTreeSet<&str> = random
                .workflow
                .agents
                .iter()
                .filter_map(|a| a.model())
                .collect();
            assert!((1..=6).contains(&models.len()), "{}", random.describe());
            model_counts.insert(models.len());
            let budget = random.machine.gpu_memory_bytes;
            assert!((16_000_000_000..=128_000_000_000).contains(&budget));
            for model in &models {
                let spec = random
                    .machine
                    .models
                    .iter()
                    .find(|m| m.name == *model)
                    .expect("every model is on the machine");
                assert!(spec.size_bytes as f64 <= 0.72 * budget as f64 + 1.0);
            }
            assert!(random.machine.clone().validated().is_ok());
        }
        assert_eq!(shapes.len(), 4, "{shapes:?}");
        assert_eq!(model_counts.len(), 6, "{model_counts:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_workflow() {
        let (a, b) = (
            RandomWorkflow::generate(17, 80),
            RandomWorkflow::generate(17, 80),
        );
        assert_eq!(a.yaml, b.yaml);
        assert_eq!(
            format!("{:?}", a.machine.models),
            format!("{:?}", b.machine.models)
        );
        assert_ne!(a.yaml, RandomWorkflow::generate(18, 80).yaml);
    }

    /// The bound is below every policy's wait, on futures of every shape and at both load
    /// modes: the simulator, not the bound's own model, decides what the policies wait.
    #[test]
    fn no_policy_waits_less_than_the_bound() {
        use agentrun_memory::{LoadModeChoice, Policy};
        let mut positive = 0;
        let mut exact = 0;
        // Long futures get the relaxation, short ones with few models the exact optimum.
        for (seed, turns) in (0..12)
            .map(|seed| (seed, 40))
            .chain((12..24).map(|s| (s, 6)))
        {
            let random = RandomWorkflow::generate(seed, turns);
            for mode in [LoadModeChoice::Mmap, LoadModeChoice::Auto] {
                let options = crate::SimulationOptions {
                    seed: Some(seed),
                    policies: Policy::ALL.to_vec(),
                    load_mode: Some(mode),
                    machine: random.machine.clone(),
                    keep_events: false,
                    branches: agentrun_core::BranchMode::Planned,
                    hosts: Vec::new(),
                };
                let report = crate::simulate(&random.workflow, &options).expect("simulates");
                if report.bound_s > 0.0 {
                    positive += 1;
                }
                if report.bound_exact {
                    exact += 1;
                }
                for (policy, figures) in &report.policies {
                    assert!(
                        figures.load_wait_s >= report.bound_s - 1e-6,
                        "{} {mode:?}: {policy} waits {} s, the bound is {} s",
                        random.describe(),
                        figures.load_wait_s,
                        report.bound_s
                    );
                    let per_turn: f64 = figures.excess_per_turn_s.iter().sum();
                    assert!((per_turn - figures.excess_over_bound_s).abs() < 1e-6);
                }
            }
        }
        assert!(
            positive >= 40,
            "a bound above zero on {positive} of 48 futures"
        );
        assert!(exact >= 8, "the exact optimum on {exact} futures");
    }
}
