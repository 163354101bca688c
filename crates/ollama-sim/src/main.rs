//! The `ollama-sim` binary: parses flags and Ollama's environment variables, binds, and
//! serves the simulator until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use ollama_sim::{KvCacheType, OllamaHost, Script, SessionDuration, SimConfig, Simulator};

/// An Ollama-compatible server that simulates model memory, loading and the scheduler.
///
/// With no arguments it stands in for a 64 GB M4 Pro Mac (54 GB GPU limit) serving
/// qwen3:1.7b, qwen3:4b, qwen3:8b, qwen3:14b, qwen3-coder:14b, qwen3-coder:32b and
/// qwen3-coder-next:q4_K_M in real time.
/// Settings come from, in increasing priority: the built-in defaults, --config, Ollama's
/// environment variables, and flags. Besides Ollama's API it serves GET /sim/log,
/// POST /sim/reset and POST /sim/faults. Sizes are decimal: 1 GB = 10^9 bytes.
#[derive(Debug, Parser)]
#[command(name = "ollama-sim", version, about, long_about)]
struct Args {
    /// Address to listen on, read as Ollama reads OLLAMA_HOST: HOST, HOST:PORT, :PORT,
    /// [IPv6]:PORT, http://HOST[:PORT] (port 0 picks a free port; the real address is
    /// printed). Default 127.0.0.1:11434.
    #[arg(long, env = "OLLAMA_HOST", default_value = "")]
    host: String,

    /// Once listening, write the server's URL (http://HOST:PORT) to this file, atomically.
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,

    /// Port to listen on, overriding the port of --host.
    #[arg(long)]
    port: Option<u16>,

    /// YAML or JSON configuration file (machine, limits, physics, model catalogue).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// YAML script of replies (rules matched by model, system prompt, last message or turn).
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,

    /// Wall seconds per simulated second: 1 is real time, 0.01 runs 100x faster, 0 makes
    /// loads and generation instant and stops idle timers.
    #[arg(long, value_name = "SCALE")]
    time_scale: Option<f64>,

    /// GPU memory budget, e.g. 54GB.
    #[arg(long, value_name = "SIZE")]
    gpu_memory: Option<String>,

    /// System RAM (bounds the page cache of weights files), e.g. 64GB.
    #[arg(long, value_name = "SIZE")]
    ram: Option<String>,

    /// RAM kept by the operating system and applications (default 6GB).
    #[arg(long, value_name = "SIZE")]
    os_reserve: Option<String>,

    /// Default num_ctx for requests that send none (0 = Ollama's VRAM tier).
    #[arg(long, env = "OLLAMA_CONTEXT_LENGTH", value_name = "TOKENS")]
    context_length: Option<u64>,

    /// KV cache element type: f16 (default), q8_0 (half the memory) or q4_0 (a quarter).
    #[arg(long, env = "OLLAMA_KV_CACHE_TYPE", value_name = "TYPE")]
    kv_cache_type: Option<String>,

    /// Most models loaded at once (0 = default, 3).
    #[arg(long, env = "OLLAMA_MAX_LOADED_MODELS", value_name = "N")]
    max_loaded_models: Option<usize>,

    /// Parallel request slots per model (0 = default, 1).
    #[arg(long, env = "OLLAMA_NUM_PARALLEL", value_name = "N")]
    num_parallel: Option<usize>,

    /// Most pending requests before HTTP 503 (default 512).
    #[arg(long, env = "OLLAMA_MAX_QUEUE", value_name = "N")]
    max_queue: Option<usize>,

    /// Default keep_alive for loads whose request gives none: a Go duration (5m, 1h) or
    /// seconds; negative keeps models forever.
    #[arg(long, env = "OLLAMA_KEEP_ALIVE", value_name = "DURATION")]
    keep_alive: Option<String>,

    /// How long a load may make no progress before it fails: a Go duration or seconds;
    /// zero or negative never times out. Simulated loads only stall under a fault.
    #[arg(long, env = "OLLAMA_LOAD_TIMEOUT", value_name = "DURATION")]
    load_timeout: Option<String>,

    /// Print the effective configuration as JSON and exit.
    #[arg(long)]
    print_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OLLAMA_SIM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let config = build_config(&args)?;
    if args.print_config {
        println!("{}", serde_json::to_string_pretty(&config)?);
        return Ok(());
    }
    let mut host = OllamaHost::parse(&args.host);
    if let Some(port) = args.port {
        host.port = port;
    }
    let address = host.bind_address();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let local = listener.local_addr()?;
        let url = format!("http://{local}");
        if let Some(path) = &args.ready_file {
            write_atomically(path, &url)
                .with_context(|| format!("cannot write the ready file {}", path.display()))?;
        }
        eprintln!("ollama-sim listening on {url}");
        ollama_sim::serve(listener, Simulator::new(config), shutdown_signal())
            .await
            .context("server error")
    })
}

fn build_config(args: &Args) -> Result<SimConfig> {
    let mut config = match &args.config {
        Some(path) => SimConfig::from_file(path)?,
        None => SimConfig::target_mac(),
    };
    if let Some(path) = &args.script {
        config.script = Script::from_file(path)?;
    }
    if let Some(scale) = args.time_scale {
        config.time_scale = scale;
    }
    if let Some(size) = &args.gpu_memory {
        config.gpu_memory_bytes = parse_size(size).context("--gpu-memory")?;
    }
    if let Some(size) = &args.ram {
        config.ram_bytes = parse_size(size).context("--ram")?;
    }
    if let Some(size) = &args.os_reserve {
        config.os_reserve_bytes = parse_size(size).context("--os-reserve")?;
    }
    // Ollama treats 0 as "not set" (the VRAM tier).
    if let Some(tokens) = args.context_length.filter(|n| *n > 0) {
        config.default_num_ctx = Some(tokens);
    }
    if let Some(text) = &args.kv_cache_type {
        config.kv_cache_type = KvCacheType::from_env(text);
    }
    // Ollama treats 0 as "use the default" for these two.
    if let Some(count) = args.max_loaded_models.filter(|n| *n > 0) {
        config.max_loaded_models = count;
    }
    if let Some(count) = args.num_parallel.filter(|n| *n > 0) {
        config.num_parallel = count;
    }
    if let Some(count) = args.max_queue {
        config.max_queue = count;
    }
    if let Some(text) = &args.keep_alive {
        config.keep_alive = SessionDuration::from_env(text)
            .map_err(anyhow::Error::msg)
            .context("--keep-alive / OLLAMA_KEEP_ALIVE")?;
    }
    if let Some(text) = &args.load_timeout {
        let timeout = SessionDuration::from_env(text)
            .map_err(anyhow::Error::msg)
            .context("--load-timeout / OLLAMA_LOAD_TIMEOUT")?;
        config.load_timeout_seconds = match timeout.seconds() {
            Some(seconds) if seconds > 0.0 => seconds,
            _ => f64::INFINITY,
        };
    }
    Ok(config.validated()?)
}

fn parse_size(text: &str) -> Result<u64> {
    ollama_sim::parse_size(text).map_err(|error| anyhow::anyhow!("{error}; {}", error.hint()))
}

/// Writes `text` to a temporary file beside `path`, then renames it into place, so a reader
/// never sees a partial file.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
