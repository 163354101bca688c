//! The `agentrun` command: a thin shell over the `agentrun` library.

mod args;
mod commands;
mod console;
mod terminal;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::args::{Cli, Command};
use crate::commands::EXIT_BAD_INPUT;

fn main() -> ExitCode {
    // agentrun is its own sandbox launcher: a fresh, single-threaded copy of this program
    // confines itself and executes the command (see agentrun_sandbox::launcher_main).
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(agentrun_sandbox::LAUNCHER_ARGUMENT))
    {
        std::process::exit(agentrun_sandbox::launcher_main());
    }
    let cli = Cli::parse_from(with_default_subcommand(std::env::args_os().collect()));
    init_tracing(cli.verbose);
    // One thread: a run is a sequence of turns, and handing every streamed chunk
    // and event between worker threads cost more than the work itself.
    // Simulations start their own runtime on a blocking thread.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(error) => {
            report(&error);
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let output = terminal::Output::new(cli.quiet, cli.verbose);
    match cli.command {
        Command::Run(args) => commands::run::run(args, output).await,
        Command::Validate(args) => commands::validate::run(args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Plan(args) => commands::plan::run(args).await,
        // A simulation runs its own virtual-time runtime, which cannot nest in this one.
        Command::Simulate(args) => {
            tokio::task::spawn_blocking(move || commands::simulate::run(args)).await?
        }
        Command::Ps(args) => commands::ps::run(args).await,
        Command::Calibrate(args) => commands::calibrate::run(args).await,
        Command::Runs(args) => commands::runs::run(args),
        Command::Resume(args) => commands::resume::run(args, output).await,
        Command::Report(args) => commands::report::run(args),
        Command::Tools(args) => commands::tools::run(args).await,
        Command::Mcp => commands::mcp::run().await,
    }
}

/// `agentrun WORKFLOW.yaml ...` means `agentrun run WORKFLOW.yaml ...`.
fn with_default_subcommand(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let first = args.get(1).and_then(|arg| arg.to_str()).unwrap_or("");
    let is_top_level_flag = matches!(first, "-h" | "--help" | "-V" | "--version");
    let is_subcommand = first == "help"
        || Cli::command()
            .get_subcommands()
            .any(|subcommand| subcommand.get_name() == first);
    if args.len() > 1 && !is_subcommand && !is_top_level_flag {
        args.insert(1, "run".into());
    }
    args
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Prints an error with its causes, and a hint where one is known.
fn report(error: &anyhow::Error) {
    eprintln!("error: {error:#}");
    if let Some(hint) = commands::hint_for(error) {
        eprintln!("hint: {hint}");
    }
}
