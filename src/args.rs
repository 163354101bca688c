//! The command line: clap types only; each subcommand turns them into library calls.

use std::path::PathBuf;

use agentrun::{LoadModeChoice, Policy};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};

/// Run multi-agent workflows on local models served by Ollama, with an executor
/// that plans which models stay in memory.
#[derive(Debug, Parser)]
#[command(name = "agentrun", version, about, long_about = None)]
#[command(
    after_help = "Run a workflow: agentrun WORKFLOW.yaml [--task TEXT] [--sim]\n\
Exit codes: 0 completed, 1 the run stopped before its end (limit, failure),\n\
2 bad input or unreachable server, 130 interrupted."
)]
pub(crate) struct Cli {
    /// Print less: no streamed replies, only the summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Print more: residency decisions and server calls (repeat for debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a workflow (the default: `agentrun WORKFLOW.yaml` is `agentrun run WORKFLOW.yaml`).
    Run(RunArgs),
    /// Check a workflow and report every problem with its file, line and column.
    Validate(ValidateArgs),
    /// Print the JSON Schema of the workflow format, for editors (or of the events, with --events).
    Schema(SchemaArgs),
    /// Print the residency plan of a workflow without running it.
    Plan(PlanArgs),
    /// Run a workflow in virtual time on the simulated machine and compare residency policies.
    Simulate(SimulateArgs),
    /// Show the models the Ollama server has resident.
    Ps(PsArgs),
    /// Measure each model's load time per load mode on the server, for plans and runs.
    Calibrate(CalibrateArgs),
    /// List the runs kept under `.agentrun/runs/`.
    Runs(RunsArgs),
    /// Continue an interrupted run from its last completed turn, in its run directory.
    Resume(ResumeArgs),
    /// Write a run's report: one HTML page with the residency timeline and the summary.
    Report(ReportArgs),
    /// Start a workflow's MCP servers and list the tools each agent's model is offered.
    Tools(ToolsArgs),
    /// Serve agentrun's tools (validate, plan, run, runs, summary, ps) to an MCP client over stdio.
    Mcp,
}

/// Where the models are served.
#[derive(Debug, Args, Clone)]
pub(crate) struct ServerArgs {
    /// The Ollama server; give it more than once for several hosts, each serving the
    /// models placed on it. Default: the hosts file (`--hosts`), else `OLLAMA_HOSTS`
    /// (addresses separated by commas), else `OLLAMA_HOST`, else http://127.0.0.1:11434.
    #[arg(long = "ollama", value_name = "URL")]
    pub(crate) urls: Vec<String>,
    /// A hosts file (YAML) naming each Ollama host with its address, GPU budget, model cap
    /// and labels; `--ollama` wins over it.
    #[arg(long = "hosts", value_name = "FILE", env = "AGENTRUN_HOSTS")]
    pub(crate) hosts: Option<PathBuf>,
    /// Use a built-in simulator of a 64 GB Mac instead of a server (time-scaled,
    /// so a run finishes in seconds); it takes precedence over --ollama, --hosts and the
    /// environment.
    #[arg(long)]
    pub(crate) sim: bool,
    /// With --sim: how long a simulated second takes, in seconds.
    #[arg(long, default_value_t = crate::commands::server::DEFAULT_TIME_SCALE, requires = "sim")]
    pub(crate) time_scale: f64,
    /// With --sim: the simulator's scripted replies (ollama-sim script format).
    /// Default: `sim/NAME.yaml` beside the workflow `NAME.yaml`, when it exists; without
    /// one, replies are drawn from the workflow's `simulation` section.
    #[arg(long, requires = "sim")]
    pub(crate) sim_script: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The workflow file.
    pub(crate) workflow: PathBuf,
    /// The task for the agents (overrides the workflow's `task`).
    #[arg(long)]
    pub(crate) task: Option<String>,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// The residency policy (overrides the workflow's `memory.policy`).
    #[arg(long, value_parser = live_policy())]
    pub(crate) policy: Option<Policy>,
    #[command(flatten)]
    pub(crate) start: StartArgs,
    /// Where runs are kept: each run writes `DIR/runs/<time>-<workflow>/`.
    #[arg(
        long,
        value_name = "DIR",
        env = "AGENTRUN_DIR",
        default_value = ".agentrun"
    )]
    pub(crate) runs_dir: PathBuf,
    /// The directory the agents work in: command agents run there and tools act only
    /// inside it. Default: the current directory; with --sim, a fresh copy of the
    /// workflow's `simulation.workspace` (or an empty directory) in the run's directory.
    #[arg(long, value_name = "DIR", conflicts_with = "copy_workspace")]
    pub(crate) workspace: Option<PathBuf>,
    /// Work on a fresh copy of DIR, kept in the run's directory, so the run cannot
    /// change the original.
    #[arg(long, value_name = "DIR")]
    pub(crate) copy_workspace: Option<PathBuf>,
    /// A canned answer for a human agent, used after the workflow's own `answers`
    /// (repeat for more, in order).
    #[arg(long = "answer", value_name = "AGENT=TEXT")]
    pub(crate) answers: Vec<String>,
}

/// What `run` and `resume` share: how a start of a run ends and what it writes.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// Overrides the turn limit (a resumed run counts the turns already taken).
    #[arg(long)]
    pub(crate) max_turns: Option<u32>,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write every event of this start as a JSON line to this file.
    #[arg(long)]
    pub(crate) events: Option<PathBuf>,
    /// Leave the models the run loaded resident when it ends.
    #[arg(long)]
    pub(crate) keep_loaded: bool,
    /// Never wait for a person: human agents use their canned answers and then fail, and
    /// commands that need approval are refused.
    #[arg(long)]
    pub(crate) non_interactive: bool,
    /// Write the run's report (an HTML page with its timeline) to this file when it ends.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Neither start from what earlier runs of the workflow on this server learnt (turn
    /// lengths, edges taken, load times) nor keep what this run learns.
    #[arg(long, env = "AGENTRUN_NO_LEARNING", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) no_learning: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The run's directory (`.agentrun/runs/<time>-<workflow>`).
    pub(crate) run_dir: PathBuf,
    /// The Ollama server (default: the one the run used).
    #[arg(long = "ollama", value_name = "URL", conflicts_with = "sim")]
    pub(crate) url: Option<String>,
    /// Use the built-in simulator (default: what the run used).
    #[arg(long)]
    pub(crate) sim: bool,
    /// With the simulator: how long a simulated second takes, in seconds.
    #[arg(long)]
    pub(crate) time_scale: Option<f64>,
    /// With the simulator: its scripted replies.
    #[arg(long)]
    pub(crate) sim_script: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) start: StartArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The run's directory (`.agentrun/runs/<time>-<workflow>`).
    pub(crate) run_dir: PathBuf,
    /// Where to write the page (default: `report.html` in the run's directory).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// Print the JSON Schema of one line of an events file instead (`docs/events.md`).
    #[arg(long, conflicts_with = "agent")]
    pub(crate) events: bool,
    /// Print the JSON Schema of a reusable agent file (`agents/*.yaml`) instead.
    #[arg(long)]
    pub(crate) agent: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The workflow files.
    #[arg(required = true)]
    pub(crate) workflows: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ToolsArgs {
    /// The workflow file.
    pub(crate) workflow: PathBuf,
    /// The directory the MCP servers start in, as a run's workspace. Default: the current
    /// directory.
    #[arg(long)]
    pub(crate) workspace: Option<PathBuf>,
    /// Print the tools as JSON, with their parameters.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The workflow file.
    pub(crate) workflow: PathBuf,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Plan from the workflow alone, without what earlier runs on this server learnt.
    #[arg(long, env = "AGENTRUN_NO_LEARNING", value_parser = clap::builder::BoolishValueParser::new())]
    pub(crate) no_learning: bool,
    /// Delete what earlier runs of the workflow on this server learnt, then plan.
    #[arg(long)]
    pub(crate) forget: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SimulateArgs {
    /// The workflow file.
    pub(crate) workflow: PathBuf,
    /// The policy to simulate, or `all` to compare them.
    #[arg(long, default_value = "all", value_parser = policy_selection())]
    pub(crate) policy: PolicySelection,
    /// The seed of the synthetic turns (overrides `simulation.seed`).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// The load mode of every policy (default: the workflow's; the text output then also
    /// shows Ollama's default, mmap, for the gain of the load mode).
    #[arg(long, value_parser = load_mode_choice())]
    pub(crate) load_mode: Option<LoadModeChoice>,
    /// Print the comparison as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Write the comparison as an HTML page, each policy's timeline on one time axis.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Run every fan-out's branches one after the other instead of as the planner decides
    /// (a workflow with fan-outs is otherwise also simulated this way, for comparison).
    #[arg(long)]
    pub(crate) sequential: bool,
    /// A hosts scenario (YAML): several simulated hosts, each with its own budget, catalogue
    /// and speeds. The workflow runs on them and on the one simulated Mac, on the same drawn
    /// future, and the two are compared.
    #[arg(long, value_name = "FILE")]
    pub(crate) hosts: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CalibrateArgs {
    /// The workflow whose models to measure.
    pub(crate) workflow: PathBuf,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Where to keep the figures (default `~/.agentrun/calibration.json`, or under `$AGENTRUN_HOME`).
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunsArgs {
    /// Where runs are kept.
    #[arg(
        long,
        value_name = "DIR",
        env = "AGENTRUN_DIR",
        default_value = ".agentrun"
    )]
    pub(crate) runs_dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// The GPU budget to show shares against (for example `54GB`).
    #[arg(long)]
    pub(crate) budget: Option<String>,
}

/// `--policy` of `simulate`: every policy, or one.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PolicySelection {
    /// Compare every policy.
    All,
    /// Simulate this one.
    One(Policy),
}

/// The policies a real run can use (the oracle needs the future, which only `simulate` knows),
/// by the names the library gives them.
fn live_policy() -> impl TypedValueParser<Value = Policy> {
    PossibleValuesParser::new(
        Policy::ALL
            .iter()
            .filter(|policy| policy.runs_live())
            .map(|policy| policy.name()),
    )
    .map(|name| name.parse::<Policy>().expect("a listed policy name parses"))
}

/// Every policy, or `all`.
fn policy_selection() -> impl TypedValueParser<Value = PolicySelection> {
    let names = Policy::ALL.iter().map(|policy| policy.name());
    PossibleValuesParser::new(std::iter::once("all").chain(names)).map(|name| match name.as_str() {
        "all" => PolicySelection::All,
        name => PolicySelection::One(name.parse().expect("a listed policy name parses")),
    })
}

/// `auto`, `mmap` or `no-mmap`.
fn load_mode_choice() -> impl TypedValueParser<Value = LoadModeChoice> {
    PossibleValuesParser::new(LoadModeChoice::ALL.iter().map(|choice| choice.name())).map(|name| {
        name.parse::<LoadModeChoice>()
            .expect("a listed load mode parses")
    })
}
