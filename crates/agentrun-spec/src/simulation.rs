//! The simulation section: how agents behave in `agentrun simulate`, with defaults for
//! everything.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::agent::{AgentSpec, KindName};

/// Settings of simulated runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationSpec {
    /// Seed of the random draws: the same seed gives the same speaker sequence under every
    /// policy.
    pub seed: u64,
    /// The most turns a simulated run takes.
    pub max_turns: u32,
    /// How each agent behaves, for every agent of the workflow (defaults filled in).
    pub agents: BTreeMap<String, AgentSimulation>,
    /// The directory a `--sim` run without a workspace of its own works on a copy of
    /// (`simulation.workspace`, resolved against the workflow file and made absolute).
    pub workspace: Option<PathBuf>,
}

impl SimulationSpec {
    /// `seed` when the file does not say.
    pub const DEFAULT_SEED: u64 = 1;
    /// `max_turns` when the file does not say.
    pub const DEFAULT_MAX_TURNS: u32 = 300;

    /// Default behaviour for every agent.
    pub fn defaults_for(agents: &[AgentSpec]) -> SimulationSpec {
        SimulationSpec {
            seed: SimulationSpec::DEFAULT_SEED,
            max_turns: SimulationSpec::DEFAULT_MAX_TURNS,
            agents: agents
                .iter()
                .map(|agent| (agent.name.clone(), AgentSimulation::default_for(agent)))
                .collect(),
            workspace: None,
        }
    }
}

/// How one agent behaves in a simulation. Ranges are inclusive and drawn uniformly.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSimulation {
    /// Tokens per reply (llm and human agents).
    pub reply_tokens: RangeInclusive<u64>,
    /// Generation speed overriding the simulated machine's figure for the model.
    pub tokens_per_second: Option<f64>,
    /// Time a turn takes besides generation: a command's run, a person's answer. Zero for
    /// llm agents.
    pub duration: RangeInclusive<Duration>,
    /// Share of command runs that pass, from 0 to 1.
    pub pass_rate: f64,
    /// Share of replies that satisfy the agent's `contains`/`matches` conditions, from 0 to 1.
    pub match_rate: f64,
    /// Relative weight of each router choice; every choice of the agent is present.
    pub choices: BTreeMap<String, f64>,
}

impl AgentSimulation {
    /// `pass_rate` when the file does not say.
    pub const DEFAULT_PASS_RATE: f64 = 0.7;
    /// `match_rate` when the file does not say.
    pub const DEFAULT_MATCH_RATE: f64 = 0.5;

    /// What an agent of this kind does when the file does not say: routers answer in a few
    /// dozen tokens, other models in a few hundred to fifteen hundred, commands take 30 to 90
    /// seconds, people 30 seconds to 2 minutes; every choice is equally likely.
    pub fn default_for(agent: &AgentSpec) -> AgentSimulation {
        let (reply_tokens, duration) = match agent.kind_name() {
            KindName::Llm if agent.is_router() => (10..=40, Duration::ZERO..=Duration::ZERO),
            KindName::Llm => (300..=1500, Duration::ZERO..=Duration::ZERO),
            KindName::Command => (0..=0, Duration::from_secs(30)..=Duration::from_secs(90)),
            KindName::Human => (20..=200, Duration::from_secs(30)..=Duration::from_secs(120)),
        };
        AgentSimulation {
            reply_tokens,
            tokens_per_second: None,
            duration,
            pass_rate: AgentSimulation::DEFAULT_PASS_RATE,
            match_rate: AgentSimulation::DEFAULT_MATCH_RATE,
            choices: agent
                .choices()
                .iter()
                .map(|choice| (choice.clone(), 1.0))
                .collect(),
        }
    }
}
