//! Per-turn overhead and peak memory of `agentrun run` against a zero-latency simulator.
//!
//! Runs a two-agent loop for 100 and 1,000 turns against `ollama-sim --time-scale 0`, with the
//! `ollama-default` and `smart` policies, and prints for each:
//!
//! - the wall time per turn, from the events file: the time between consecutive
//!   `turn_started` events, so process start-up and the first model load are left out;
//! - the server's own time per turn: the same requests (`GET /api/ps` and a streamed
//!   `POST /api/chat` with the same options and a conversation window of the same shape),
//!   sent back to back to the simulator by a bare HTTP/1.1 client on one kept-alive
//!   connection, so what remains is the simulator's handling plus the loopback round trip;
//! - the overhead per turn, wall minus server: from means (the definition) and from medians
//!   (the typical turn, which preemption on a busy machine does not skew), the latter split
//!   into the chat call (`turn_started` to `turn_finished`, against the chat request) and the
//!   gap between turns (against `/api/ps` and any other request sent between turns);
//! - the median turn over the first and the last 100 turns, to show that it stays flat;
//! - the peak resident set size of the `agentrun` process.
//!
//! It builds nothing: it runs the `agentrun` and `ollama-sim` binaries of its own target
//! directory (bench executables live in `target/release/deps/`, the binaries one level up),
//! which must be built first:
//!
//! ```sh
//! cargo build --release -p agentrun -p ollama-sim --bins
//! cargo bench --bench turn_overhead
//! ```
//!
//! Each run is paired with a burst of requests timed just before it, so both see the same
//! load on the machine; every figure is the median over the repeats. The targets are under
//! 0.1 ms of overhead per turn, flat as the conversation grows, and under 15 MB of peak RSS.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

/// How many times each run is repeated; the median is shown.
mod support;

use support::{Binaries, Simulator, median};

const REPEATS: usize = 5;
/// Conversation lengths measured.
const TURN_COUNTS: [u32; 2] = [100, 1000];
/// Residency policies measured.
const POLICIES: [&str; 2] = ["ollama-default", "smart"];
/// The window of turns compared at the start and the end of a run.
const WINDOW: usize = 100;
/// Requests of each kind in one timed burst to the simulator.
const BURST: usize = 1000;
/// The smallest model of the simulator's catalogue.
const MODEL: &str = "qwen3:1.7b";
/// Messages an agent sees by default (`context_window`).
const CONTEXT_WINDOW: usize = 12;
/// The task of the benchmark workflow.
const TASK: &str = "Say something short.";

/// Overhead per turn, in microseconds.
const TARGET_OVERHEAD_US: f64 = 100.0;
/// Peak RSS, in MB (10^6 bytes).
const TARGET_RSS_MB: f64 = 15.0;
/// How much slower the last 100 turns may be than the first 100.
const TARGET_FLATNESS: f64 = 1.25;

fn main() -> ExitCode {
    support::main("turn_overhead", bench)
}

fn bench() -> Result<ExitCode> {
    let binaries = Binaries::locate()?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let workflow = dir.path().join("turn-overhead.yaml");
    std::fs::write(
        &workflow,
        support::ping_pong_workflow("turn-overhead", 1000),
    )?;

    let sim = Simulator::start(&binaries.sim)?;
    println!("agentrun:   {}", binaries.agentrun.display());
    println!("ollama-sim: {} at time scale 0", sim.address);
    println!(
        "workflow:   two agents on {MODEL}, num_predict 8, context window {CONTEXT_WINDOW}; \
         median of {REPEATS} runs, each paired with a burst of {BURST} of each request"
    );

    let requests = ServerRequests::prepare(&sim)?;
    let mut rows = Vec::new();
    let mut bursts = Vec::new();
    for policy in POLICIES {
        for turns in TURN_COUNTS {
            let mut pairs = Vec::new();
            for repeat in 0..REPEATS {
                let server = ServerCost::measure(&sim, &requests)?;
                let run = run_agentrun(
                    &binaries,
                    &sim,
                    &workflow,
                    dir.path(),
                    policy,
                    turns,
                    repeat,
                )?;
                bursts.push(server);
                pairs.push((server, run));
            }
            rows.push(Row::from_runs(policy, turns, &pairs));
        }
    }
    let overall = |pick: fn(&ServerCost) -> Stat| {
        let stats: Vec<Stat> = bursts.iter().map(pick).collect();
        (
            median(stats.iter().map(|stat| stat.mean).collect()),
            median(stats.iter().map(|stat| stat.median).collect()),
        )
    };
    let (ps, chat, generate) = (
        overall(|cost| cost.ps),
        overall(|cost| cost.chat),
        overall(|cost| cost.generate),
    );
    println!(
        "server:     bare HTTP/1.1 client on one connection, mean / median per request: \
         GET /api/ps {:.1} / {:.1} us, streamed POST /api/chat {:.1} / {:.1} us, \
         empty POST /api/generate {:.1} / {:.1} us\n",
        ps.0, ps.1, chat.0, chat.1, generate.0, generate.1
    );
    print_table(&rows);
    print_verdict(&rows);
    Ok(ExitCode::SUCCESS)
}

/// A bare HTTP/1.1 client on one kept-alive connection: the least a client can cost.
struct HttpConnection {
    reader: BufReader<TcpStream>,
    host: String,
}

impl HttpConnection {
    fn open(address: &str) -> Result<HttpConnection> {
        let stream = TcpStream::connect(address)
            .with_context(|| format!("cannot connect to the simulator at {address}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(HttpConnection {
            reader: BufReader::new(stream),
            host: address.to_owned(),
        })
    }

    /// Sends a request and reads the whole response body (plain or chunked).
    fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>> {
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        self.reader.get_mut().write_all(&bytes)?;

        let status = self.line()?;
        ensure!(
            status.starts_with("HTTP/1.1 200"),
            "{method} {path}: {}",
            status.trim()
        );
        let mut length = None;
        let mut chunked = false;
        loop {
            let header = self.line()?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>()?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let size_line = self.line()?;
                let size_text = size_line.trim().split(';').next().unwrap_or("");
                let size = usize::from_str_radix(size_text, 16)
                    .with_context(|| format!("bad chunk size {size_line:?}"))?;
                let start = body.len();
                body.resize(start + size, 0);
                self.reader.read_exact(&mut body[start..])?;
                self.line()?; // the CRLF after the chunk (or the empty trailer)
                if size == 0 {
                    break;
                }
            }
        } else {
            let length = length.context("a response without a length")?;
            body.resize(length, 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok(body)
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        ensure!(
            self.reader.read_line(&mut line)? > 0,
            "the simulator closed the connection"
        );
        Ok(line)
    }
}

/// Mean and median of samples, in microseconds.
#[derive(Debug, Clone, Copy)]
struct Stat {
    mean: f64,
    median: f64,
}

impl Stat {
    fn of(samples: &[f64]) -> Stat {
        Stat {
            mean: samples.iter().sum::<f64>() / samples.len() as f64,
            median: median(samples.to_vec()),
        }
    }

    fn mean(self) -> f64 {
        self.mean
    }

    fn median(self) -> f64 {
        self.median
    }
}

/// The request bodies agentrun sends, rebuilt for the bare client.
struct ServerRequests {
    chat: String,
    generate: String,
}

impl ServerRequests {
    fn prepare(sim: &Simulator) -> Result<ServerRequests> {
        let mut http = HttpConnection::open(&sim.address)?;
        let options = serde_json::json!({ "num_ctx": 4096, "num_predict": 8 });
        // A reply as the agents get them, to fill a conversation window like theirs.
        let probe = serde_json::json!({
            "model": MODEL,
            "messages": [{ "role": "user", "content": TASK }],
            "options": options,
            "stream": false,
        });
        let reply: serde_json::Value = serde_json::from_slice(&http.request(
            "POST",
            "/api/chat",
            probe.to_string().as_bytes(),
        )?)?;
        let text = reply["message"]["content"]
            .as_str()
            .context("the simulator's reply has no text")?
            .to_owned();
        // What agent `a` sends once the conversation fills its window: its own turns as
        // assistant messages, the other's as user messages with the speaker's name.
        let mut messages = vec![
            serde_json::json!({ "role": "system", "content": "You are A." }),
            serde_json::json!({ "role": "user", "content": format!("Task: {TASK}") }),
        ];
        for index in 0..CONTEXT_WINDOW {
            messages.push(if index % 2 == 0 {
                serde_json::json!({ "role": "assistant", "content": text })
            } else {
                serde_json::json!({ "role": "user", "content": format!("[b]: {text}") })
            });
        }
        Ok(ServerRequests {
            chat: serde_json::json!({
                "model": MODEL, "messages": messages, "options": options, "stream": true,
            })
            .to_string(),
            generate: serde_json::json!({
                "model": MODEL, "prompt": "", "options": { "num_ctx": 4096 }, "stream": false,
            })
            .to_string(),
        })
    }
}

/// The simulator's own time for each kind of request agentrun sends, per request.
#[derive(Debug, Clone, Copy)]
struct ServerCost {
    ps: Stat,
    chat: Stat,
    generate: Stat,
}

impl ServerCost {
    /// Times bursts of the requests agentrun sends, back to back on one connection.
    fn measure(sim: &Simulator, requests: &ServerRequests) -> Result<ServerCost> {
        let mut http = HttpConnection::open(&sim.address)?;
        http.request("POST", "/sim/reset", b"")?;
        let ps = time_burst(|| http.request("GET", "/api/ps", b"").map(drop))?;
        let chat = time_burst(|| {
            http.request("POST", "/api/chat", requests.chat.as_bytes())
                .map(drop)
        })?;
        let generate = time_burst(|| {
            http.request("POST", "/api/generate", requests.generate.as_bytes())
                .map(drop)
        })?;
        http.request("POST", "/sim/reset", b"")?;
        Ok(ServerCost { ps, chat, generate })
    }

    /// The server's time in a turn's chat call and in the gap before the next turn, for a
    /// run that sent `chats` and `generates` requests per turn.
    fn per_turn(&self, chats: f64, generates: f64, pick: fn(Stat) -> f64) -> (f64, f64) {
        // One `/api/ps` per turn (the executor asks what is resident before each turn);
        // every chat beyond one per turn and every generate (keep_alive refresh, preload,
        // unload) happens between turns.
        let gap = pick(self.ps)
            + (chats - 1.0).max(0.0) * pick(self.chat)
            + generates * pick(self.generate);
        (pick(self.chat), gap)
    }
}

/// Microseconds per call over a burst, after a warm-up.
fn time_burst(mut call: impl FnMut() -> Result<()>) -> Result<Stat> {
    for _ in 0..BURST / 10 {
        call()?;
    }
    let mut samples = Vec::with_capacity(BURST);
    for _ in 0..BURST {
        let started = Instant::now();
        call()?;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(Stat::of(&samples))
}

/// What one `agentrun run` measured; times in microseconds.
struct RunFigures {
    /// Time between consecutive turn starts, whole run.
    cycle: Stat,
    /// From a turn's start to its end (the chat call).
    chat_phase: Stat,
    /// From a turn's end to the next one's start.
    gap_phase: Stat,
    /// Time between turn starts over the first and the last `WINDOW` turns.
    first: Stat,
    last: Stat,
    /// Chat and generate requests the simulator received per turn.
    chats_per_turn: f64,
    generates_per_turn: f64,
    /// From spawn to exit, seconds.
    process_s: f64,
    peak_rss_kib: u64,
}

fn run_agentrun(
    binaries: &Binaries,
    sim: &Simulator,
    workflow: &Path,
    dir: &Path,
    policy: &str,
    turns: u32,
    repeat: usize,
) -> Result<RunFigures> {
    let mut http = HttpConnection::open(&sim.address)?;
    http.request("POST", "/sim/reset", b"")?;
    let name = format!("{policy}-{turns}-{repeat}");
    let events = dir.join(format!("{name}.events.jsonl"));
    let rss = dir.join(format!("{name}.rss"));
    let stderr = dir.join(format!("{name}.stderr"));
    let this = std::env::current_exe()?;
    let started = Instant::now();
    let output = Command::new(&this)
        .arg("--measure-rss")
        .arg(&rss)
        .arg("--")
        .arg(&binaries.agentrun)
        .arg("run")
        .arg(workflow)
        .args(["--ollama", &format!("http://{}", sim.address)])
        .args(["--json", "--max-turns", &turns.to_string()])
        .args(["--policy", policy])
        .arg("--events")
        .arg(&events)
        // Whatever a run leaves in its working directory (its run record) goes with the
        // temporary directory.
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&stderr)?)
        .output()
        .context("cannot run agentrun")?;
    let process_s = started.elapsed().as_secs_f64();
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        let tail = std::fs::read_to_string(&stderr).unwrap_or_default();
        let mut last: Vec<&str> = tail.lines().rev().take(10).collect();
        last.reverse();
        format!(
            "agentrun printed no JSON summary ({}); its stderr ends with:\n{}",
            output.status,
            last.join("\n")
        )
    })?;
    ensure!(
        summary["turns"].as_u64() == Some(u64::from(turns)),
        "agentrun stopped early: {} after {} turns",
        summary["reason"],
        summary["turns"]
    );
    let peak_rss_kib = std::fs::read_to_string(&rss)?.trim().parse()?;

    let log: Vec<serde_json::Value> =
        serde_json::from_slice(&http.request("GET", "/sim/log", b"")?)?;
    let mut arrived: BTreeMap<String, u64> = BTreeMap::new();
    for event in &log {
        if event["event"] == "request_arrived" {
            let endpoint = event["endpoint"].as_str().unwrap_or("other").to_owned();
            *arrived.entry(endpoint).or_default() += 1;
        }
    }
    let per_turn =
        |endpoint: &str| arrived.get(endpoint).copied().unwrap_or(0) as f64 / f64::from(turns);

    let (started_at, finished_at) = turn_times(&events, turns as usize)?;
    let us = |seconds: f64| seconds * 1e6;
    let cycles: Vec<f64> = started_at
        .windows(2)
        .map(|pair| us(pair[1] - pair[0]))
        .collect();
    let chat_phase: Vec<f64> = started_at
        .iter()
        .zip(&finished_at)
        .map(|(start, end)| us(end - start))
        .collect();
    let gap_phase: Vec<f64> = finished_at
        .iter()
        .zip(&started_at[1..])
        .map(|(end, next)| us(next - end))
        .collect();
    let window = WINDOW.min(cycles.len());
    Ok(RunFigures {
        cycle: Stat::of(&cycles),
        chat_phase: Stat::of(&chat_phase),
        gap_phase: Stat::of(&gap_phase),
        first: Stat::of(&cycles[..window]),
        last: Stat::of(&cycles[cycles.len() - window..]),
        chats_per_turn: per_turn("chat"),
        generates_per_turn: per_turn("generate"),
        process_s,
        peak_rss_kib,
    })
}

/// `at_s` of every `turn_started` and `turn_finished`, indexed by turn - 1.
fn turn_times(events: &Path, turns: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let text = std::fs::read_to_string(events)
        .with_context(|| format!("cannot read the events file {}", events.display()))?;
    let mut started = vec![f64::NAN; turns];
    let mut finished = vec![f64::NAN; turns];
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        let slot = match event["type"].as_str() {
            Some("turn_started") => &mut started,
            Some("turn_finished") => &mut finished,
            _ => continue,
        };
        let turn = event["turn"].as_u64().context("an event without a turn")? as usize;
        let at = event["at_s"].as_f64().context("an event without at_s")?;
        if (1..=turns).contains(&turn) {
            slot[turn - 1] = at;
        }
    }
    ensure!(
        turns >= 2 && started.iter().chain(&finished).all(|at| at.is_finite()),
        "the events file lacks some turns"
    );
    Ok((started, finished))
}

/// One line of the table: medians over a configuration's repeats, in microseconds.
struct Row {
    policy: &'static str,
    turns: u32,
    /// Mean time between turn starts.
    wall: f64,
    /// The server's mean time for a turn's requests.
    server: f64,
    /// `wall - server`.
    overhead: f64,
    /// The same from medians: a typical turn's overhead.
    typical: f64,
    /// The typical overhead in the chat call and in the gap between turns.
    in_chat: f64,
    between: f64,
    /// Median time between turn starts over the first and the last `WINDOW` turns.
    first: f64,
    last: f64,
    /// `last / first`, per run.
    flatness: f64,
    requests_per_turn: f64,
    process_s: f64,
    peak_rss_mb: f64,
}

impl Row {
    fn from_runs(policy: &'static str, turns: u32, pairs: &[(ServerCost, RunFigures)]) -> Row {
        let pick = |figure: &dyn Fn(&ServerCost, &RunFigures) -> f64| {
            median(
                pairs
                    .iter()
                    .map(|(server, run)| figure(server, run))
                    .collect(),
            )
        };
        let server_turn = |server: &ServerCost, run: &RunFigures, stat: fn(Stat) -> f64| {
            let (chat, gap) = server.per_turn(run.chats_per_turn, run.generates_per_turn, stat);
            chat + gap
        };
        Row {
            policy,
            turns,
            wall: pick(&|_, run| run.cycle.mean),
            server: pick(&|server, run| server_turn(server, run, Stat::mean)),
            overhead: pick(&|server, run| run.cycle.mean - server_turn(server, run, Stat::mean)),
            typical: pick(&|server, run| run.cycle.median - server_turn(server, run, Stat::median)),
            in_chat: pick(&|server, run| {
                let (chat, _) =
                    server.per_turn(run.chats_per_turn, run.generates_per_turn, Stat::median);
                run.chat_phase.median - chat
            }),
            between: pick(&|server, run| {
                let (_, gap) =
                    server.per_turn(run.chats_per_turn, run.generates_per_turn, Stat::median);
                run.gap_phase.median - gap
            }),
            first: pick(&|_, run| run.first.median),
            last: pick(&|_, run| run.last.median),
            flatness: pick(&|_, run| run.last.median / run.first.median),
            requests_per_turn: pick(&|_, run| 1.0 + run.chats_per_turn + run.generates_per_turn),
            process_s: pick(&|_, run| run.process_s),
            peak_rss_mb: pick(&|_, run| run.peak_rss_kib as f64) * 1024.0 / 1e6,
        }
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<15} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>5} {:>7} {:>8}",
        "policy",
        "turns",
        "wall/turn",
        "server",
        "overhead",
        "typical",
        "in chat",
        "between",
        "first 100",
        "last 100",
        "req",
        "process",
        "peak RSS"
    );
    for row in rows {
        println!(
            "{:<15} {:>5} {:>6.1} us {:>6.1} us {:>6.1} us {:>6.1} us {:>6.1} us {:>6.1} us \
             {:>6.1} us {:>6.1} us {:>5.2} {:>5.2} s {:>5.1} MB",
            row.policy,
            row.turns,
            row.wall,
            row.server,
            row.overhead,
            row.typical,
            row.in_chat,
            row.between,
            row.first,
            row.last,
            row.requests_per_turn,
            row.process_s,
            row.peak_rss_mb,
        );
    }
    println!(
        "\nwall/turn: mean time between consecutive turn starts; server: the same requests from \
         a bare client (mean);\noverhead = wall/turn - server; typical: the same from medians, \
         split into the chat call (in chat) and the gap\nbetween turns (between); first/last \
         100: median time between turn starts; req: HTTP requests per turn\n(1 /api/ps + chats + \
         generates); process: spawn to exit; peak RSS of agentrun, 1 MB = 10^6 bytes."
    );
}

fn print_verdict(rows: &[Row]) {
    println!();
    for row in rows.iter().filter(|row| row.turns == TURN_COUNTS[1]) {
        let short = rows
            .iter()
            .find(|other| other.policy == row.policy && other.turns == TURN_COUNTS[0]);
        println!(
            "{}, {} turns: overhead {:.1} us/turn, typical {:.1} (target < {TARGET_OVERHEAD_US:.0}): \
             {}; last/first 100 turns {:.2}x (target < {TARGET_FLATNESS:.2}x): {}{}; \
             peak RSS {:.1} MB (target < {TARGET_RSS_MB:.0}): {}",
            row.policy,
            row.turns,
            row.overhead,
            row.typical,
            verdict(row.overhead < TARGET_OVERHEAD_US),
            row.flatness,
            verdict(row.flatness < TARGET_FLATNESS),
            short.map_or(String::new(), |short| format!(
                ", {:.1} us/turn over {} turns vs {:.1} over {}",
                row.wall, row.turns, short.wall, short.turns
            )),
            row.peak_rss_mb,
            verdict(row.peak_rss_mb < TARGET_RSS_MB),
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
