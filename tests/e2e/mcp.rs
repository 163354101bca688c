//! MCP servers in a run: published servers installed from the package registries and a
//! scripted one serve tools that a scripted model on the real simulator calls over HTTP;
//! servers that cannot start, crash, hang, flood or list tools a model cannot use are each
//! reported naming the server, and leave no process behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{Run, Sim, agentrun_with, repo_root};

/// A scratch directory with a workspace `ws` for the agents and the servers.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::create_dir(dir.path().join("ws")).expect("the workspace");
        Scratch { dir }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("ws")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("written");
        path
    }

    /// Runs `workflow` (its `mcp_servers` section given) with the one agent `keeper` on the
    /// simulator answering from `script`.
    fn run(&self, servers: &str, mcp_tools: &str, script: &str) -> Run {
        self.run_with_env(servers, mcp_tools, script, &[])
    }

    /// [`Scratch::run`] with variables added to agentrun's environment.
    fn run_with_env(
        &self,
        servers: &str,
        mcp_tools: &str,
        script: &str,
        env: &[(&str, &str)],
    ) -> Run {
        let workflow = self.write(
            "workflow.yaml",
            &format!(
                "name: mcp-test\n\
                 agents:\n  keeper:\n    model: qwen3:8b\n    prompt: You are the keeper.\n    \
                 options: {{ num_ctx: 8192 }}\n    mcp_tools:\n{mcp_tools}\
                 memory: {{ gpu_budget: 48GB }}\n\
                 flow:\n  start: keeper\n  edges:\n    - {{ from: keeper, to: end }}\n\
                 mcp_servers:\n{servers}"
            ),
        );
        let script = self.write("script.yaml", script);
        let sim = Sim::start(&[
            "--time-scale",
            "0.02",
            "--script",
            &script.to_string_lossy(),
        ]);
        agentrun_with(
            self.dir.path(),
            &[
                "run",
                &workflow.to_string_lossy(),
                "--ollama",
                &sim.url,
                "--workspace",
                &self.workspace().to_string_lossy(),
                "--task",
                "Look after the repository.",
                "--non-interactive",
                "--json",
                "-q",
            ],
            env,
        )
    }

    /// The process ids the servers wrote to `pids` (and `starts`) in the workspace.
    fn pids(&self) -> Vec<i32> {
        ["pids", "starts"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.workspace().join(name)).ok())
            .flat_map(|text| {
                text.lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect()
    }
}

/// The run directory a run printed.
fn run_dir(run: &Run) -> PathBuf {
    let stderr = run.stderr();
    let line = stderr
        .lines()
        .find_map(|line| line.strip_prefix("run saved in "))
        .unwrap_or_else(|| panic!("no run directory in:\n{stderr}"));
    PathBuf::from(line.trim())
}

/// The transcript's tool calls of the first turn.
fn tool_calls(run: &Run) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run_dir(run).join("transcript.jsonl")).expect("transcript");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a turn")).expect("JSON");
    first["tool_calls"].as_array().cloned().unwrap_or_default()
}

/// Waits until none of `pids` is alive (gone, or a zombie waiting to be reaped).
#[track_caller]
fn assert_all_stopped(pids: &[i32]) {
    assert!(!pids.is_empty(), "the servers wrote no process ids");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i32> = pids.iter().copied().filter(|pid| is_alive(*pid)).collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left running: {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

fn scripted_server() -> String {
    let dir = repo_root().join("tests/fixtures/mcp");
    format!(
        "  lab:\n    command: python3\n    args: [{}, {}]\n",
        dir.join("scripted_server.py").display(),
        dir.join("tools.json").display()
    )
}

/// Replies that take one tool call, then say they are done.
fn one_call(tool: &str, arguments: &str) -> String {
    format!(
        "rules:\n  - system: keeper\n    replies:\n      - tool_calls:\n          - name: {tool}\n            arguments: {arguments}\n      - text: Done.\n"
    )
}

#[test]
#[ignore = "needs the published MCP servers: pip install mcp-server-git==2026.10.19 and npm ci --prefix tests/mcp-servers, then run with --include-ignored; .ci/run does"]
fn tools_of_published_servers_are_called_and_their_results_reach_the_model() {
    let scratch = Scratch::new();
    let ws = scratch.workspace();
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
            .args(args)
            .current_dir(&ws)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(ws.join("notes.txt"), "hello from the workspace\n").expect("written");
    git(&["add", "notes.txt"]);
    git(&["commit", "-qm", "first"]);
    std::fs::write(ws.join("draft.txt"), "not yet added\n").expect("written");
    let filesystem = repo_root().join("tests/mcp-servers/node_modules/.bin/mcp-server-filesystem");
    let servers = format!(
        "  git:\n    command: mcp-server-git\n    args: [--repository, .]\n\
         \x20 files:\n    command: {}\n    args: [.]\n",
        filesystem.display()
    );
    // Each reply answers the result before it, matched in the last message the model was
    // sent: the conversation goes on only if the results reached the model.
    let script = r#"
rules:
  - message: "(?s)Untracked files.*draft\\.txt"
    reply:
      tool_calls:
        - name: files__read_text_file
          arguments: { path: notes.txt }
  - message: "hello from the workspace"
    reply:
      text: "The model saw the git status and the notes."
  - system: keeper
    reply:
      tool_calls:
        - name: git__git_status
          arguments: { repo_path: . }
"#;
    let run = scratch.run(
        &servers,
        "      git: [git_status]\n      files: all\n",
        script,
    );
    run.expect_code(0);
    let summary = run.json();
    assert_eq!(summary["status"], "completed", "{summary:#}");
    let calls = tool_calls(&run);
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0]["tool"], "git__git_status");
    assert_eq!(calls[0]["ok"], true, "{calls:#?}");
    assert!(
        calls[0]["output"]
            .as_str()
            .unwrap_or_default()
            .contains("draft.txt"),
        "{calls:#?}"
    );
    assert_eq!(calls[1]["tool"], "files__read_text_file");
    assert_eq!(calls[1]["output"], "hello from the workspace\n");
    let transcript =
        std::fs::read_to_string(run_dir(&run).join("transcript.jsonl")).expect("transcript");
    assert!(
        transcript.contains("The model saw the git status and the notes."),
        "{transcript}"
    );
    // The servers' error output is kept in the run's directory.
    let log = std::fs::read_to_string(run_dir(&run).join("mcp-files.stderr")).expect("log");
    assert!(log.contains("Secure MCP Filesystem Server"), "{log}");
}

#[test]
fn a_server_that_crashes_is_restarted_once_then_its_tools_answer_with_an_error() {
    let scratch = Scratch::new();
    let script = r#"
rules:
  - system: keeper
    replies:
      - tool_calls:
          - name: lab__echo
            arguments: { text: before }
      - tool_calls:
          - name: lab__crash
            arguments: {}
      - tool_calls:
          - name: lab__echo
            arguments: { text: after }
      - text: Done.
"#;
    let run = scratch.run(&scripted_server(), "      lab: [echo, crash]\n", script);
    run.expect_code(0);
    assert_eq!(run.json()["status"], "completed");
    let calls = tool_calls(&run);
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_eq!(calls[0]["output"], r#"echo called with {"text": "before"}"#);
    // The crash call is tried again on the restarted server, which crashes again.
    assert_eq!(calls[1]["ok"], false);
    let crashed = calls[1]["output"].as_str().expect("output");
    assert!(
        crashed.contains("`lab` stopped again") && crashed.contains("one restart"),
        "{crashed}"
    );
    assert_eq!(calls[2]["ok"], false);
    let after = calls[2]["output"].as_str().expect("output");
    assert!(
        after.contains("unavailable for the rest of the run"),
        "{after}"
    );
    assert_eq!(scratch.pids().len(), 2, "started once and restarted once");
    assert_all_stopped(&scratch.pids());
    let log = std::fs::read_to_string(run_dir(&run).join("mcp-lab.stderr")).expect("log");
    assert!(log.contains("crashing on purpose"), "{log}");
}

/// A stdio server runs in the workflow's sandbox, like the commands agents run: under the
/// default mode it cannot read a key planted in `~/.ssh`; with `sandbox: off` it can, so the
/// test can fail.
#[test]
fn a_stdio_server_runs_in_the_sandbox_unless_told_otherwise() {
    for (setting, reads_the_secret) in [("", false), ("    sandbox: off\n", true)] {
        let scratch = Scratch::new();
        let home = scratch.dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).expect("a home");
        let secret = home.join(".ssh/id_ed25519");
        std::fs::write(&secret, "PLANTED-SECRET-KEY").expect("a secret");
        let servers = scripted_server() + setting;
        let script = one_call("lab__peek", &format!("{{ path: '{}' }}", secret.display()));
        let run = scratch.run_with_env(
            &servers,
            "      lab: [peek]\n",
            &script,
            &[("HOME", &home.to_string_lossy())],
        );
        run.expect_code(0);
        let calls = tool_calls(&run);
        let output = calls[0]["output"].as_str().expect("output");
        if reads_the_secret {
            assert!(output.contains("PLANTED-SECRET-KEY"), "{output}");
        } else {
            assert!(
                !output.contains("PLANTED-SECRET-KEY") && output.contains("cannot read"),
                "{output}"
            );
        }
        assert_all_stopped(&scratch.pids());
    }
}

/// Runs a workflow whose server cannot serve, expecting a start error that contains each of
/// `expected`, and no process left behind.
#[track_caller]
fn refused(scratch: &Scratch, servers: &str, mcp_tools: &str, expected: &[&str]) -> String {
    let run = scratch.run(servers, mcp_tools, &one_call("lab__echo", "{ text: hi }"));
    run.expect_code(2);
    let stderr = run.stderr();
    for part in expected {
        assert!(stderr.contains(part), "missing {part:?} in:\n{stderr}");
    }
    stderr
}

#[test]
fn a_server_command_that_does_not_exist_is_named() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        "  lab:\n    command: no-such-mcp-server\n",
        "      lab: all\n",
        &[
            "the MCP server `lab` did not start",
            "cannot start `no-such-mcp-server`: no such program",
        ],
    );
}

#[test]
fn a_server_that_exits_at_once_is_named_with_its_last_words() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        "  lab:\n    command: sh\n    args: [-c, 'echo $$ >> pids; echo \"config file missing\" >&2; exit 3']\n",
        "      lab: all\n",
        &[
            "the MCP server `lab` did not start",
            "exit status: 3",
            "config file missing",
        ],
    );
    assert_all_stopped(&scratch.pids());
}

#[test]
fn a_server_that_hangs_on_start_is_stopped_with_its_children() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        "  lab:\n    command: sh\n    args: [-c, 'echo $$ >> pids; sleep 60 & echo $! >> pids; wait']\n    timeout: 1s\n",
        "      lab: all\n",
        &[
            "the MCP server `lab` did not start",
            "no MCP handshake within 1s",
        ],
    );
    assert_eq!(scratch.pids().len(), 2);
    assert_all_stopped(&scratch.pids());
}

#[test]
fn a_server_that_floods_its_output_is_stopped_and_its_log_capped() {
    let scratch = Scratch::new();
    let run = scratch.run(
        // Two megabytes of error output first (all of it reaches the log, however slowly the
        // machine reads), then output on stdout without end; the limit only has to cover
        // the error burst on a busy machine.
        "  flood:\n    command: sh\n    args: [-c, 'echo $$ >> pids; yes flood-err | head -c 2000000 >&2; yes flood-out & echo $! >> pids; wait']\n    timeout: 10s\n",
        "      flood: all\n",
        &one_call("lab__echo", "{ text: hi }"),
    );
    run.expect_code(2);
    assert!(
        run.stderr()
            .contains("the MCP server `flood` did not start"),
        "{}",
        run.stderr()
    );
    assert_eq!(scratch.pids().len(), 2);
    assert_all_stopped(&scratch.pids());
    let log = newest_log("mcp-flood.stderr");
    let size = std::fs::metadata(&log).expect("the log").len();
    assert!(size < (1 << 20) + 200, "{size} bytes");
    let text = std::fs::read_to_string(&log).expect("the log");
    assert!(
        text.ends_with("bytes of error output were dropped]\n"),
        "{}",
        &text[text.len().saturating_sub(200)..]
    );
}

/// The newest log of that name in the runs: a run that fails before its first turn prints
/// no run directory.
fn newest_log(name: &str) -> PathBuf {
    let runs = crate::support::runs_dir().join("runs");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
        .expect("the runs directory")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .map(|path| path.join(name))
        .filter(|path| path.exists())
        .collect();
    dirs.sort_by_key(|path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    });
    dirs.pop().expect("a run with the server's log")
}

#[test]
fn a_tool_schema_the_model_format_cannot_express_is_named() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        &scripted_server(),
        "      lab: all\n",
        &[
            "the tool `pick` of the MCP server `lab` cannot be offered to a model",
            "parameter `target`",
            "mcp_tools.lab",
        ],
    );
    assert_all_stopped(&scratch.pids());
}

#[test]
fn tool_names_that_collide_are_named() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        &scripted_server(),
        "      lab: [echo, get.item, get_item]\n",
        &[
            "the MCP server `lab` has two tools a model would see as `lab__get_item` (`get.item` and `get_item`)",
        ],
    );
    assert_all_stopped(&scratch.pids());
}

#[test]
fn a_tool_the_server_does_not_have_is_named_with_the_ones_it_has() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        &scripted_server(),
        "      lab: [echo, git_status]\n",
        &[
            "lists the tool `git_status` of the MCP server `lab`, which has no such tool; it has: echo, peek, crash, pick, get.item, get_item",
        ],
    );
    assert_all_stopped(&scratch.pids());
}

#[test]
fn the_tools_command_starts_the_servers_and_lists_each_agents_tools() {
    let scratch = Scratch::new();
    let workflow = scratch.write(
        "workflow.yaml",
        &format!(
            "name: mcp-tools\n\
             agents:\n  keeper:\n    model: qwen3:8b\n    prompt: You keep.\n    \
             options: {{ num_ctx: 8192 }}\n    tools: [read_file]\n    mcp_tools:\n      lab: [echo]\n\
             \x20 writer:\n    model: qwen3:8b\n    prompt: You write.\n    options: {{ num_ctx: 8192 }}\n\
             flow:\n  start: keeper\n  edges:\n    - {{ from: keeper, to: writer }}\n    - {{ from: writer, to: end }}\n\
             mcp_servers:\n{}",
            scripted_server()
        ),
    );
    let workspace = scratch.workspace();
    let run = agentrun_with(
        scratch.dir.path(),
        &[
            "tools",
            &workflow.to_string_lossy(),
            "--workspace",
            &workspace.to_string_lossy(),
        ],
        &[],
    );
    run.expect_code(0);
    let stdout = run.stdout();
    let keeper = stdout.split("writer:").next().expect("the keeper's part");
    assert!(keeper.contains("read_file"), "{stdout}");
    assert!(
        keeper.contains("lab__echo") && keeper.contains("Says back what it is given."),
        "{stdout}"
    );
    assert!(
        !stdout.contains("lab__crash"),
        "only the tools listed: {stdout}"
    );
    assert!(stdout.contains("writer:\n  (no tools)"), "{stdout}");
    let json = agentrun_with(
        scratch.dir.path(),
        &[
            "tools",
            &workflow.to_string_lossy(),
            "--workspace",
            &workspace.to_string_lossy(),
            "--json",
        ],
        &[],
    );
    json.expect_code(0);
    let listed = json.json();
    assert_eq!(listed[0]["tools"][1]["name"], "lab__echo");
    assert_eq!(
        listed[0]["tools"][1]["parameters"]["required"],
        serde_json::json!(["text"])
    );
    assert_all_stopped(&scratch.pids());
}

fn everything_server() -> PathBuf {
    repo_root().join("tests/mcp-servers/node_modules/.bin/mcp-server-everything")
}

#[test]
#[ignore = "needs the published MCP servers: npm ci --prefix tests/mcp-servers, then run with --include-ignored; .ci/run does"]
fn a_stdio_server_sees_only_the_environment_the_workflow_declares() {
    let scratch = Scratch::new();
    let servers = format!(
        "  everything:\n    command: {}\n    args: [stdio]\n    env: {{ DECLARED_FOR_MCP: visible }}\n",
        everything_server().display()
    );
    let script = one_call("everything__get-env", "{}");
    let workflow_run = {
        // The caller's secret must not reach the server.
        let run = scratch.run_with_env(
            &servers,
            "      everything: [get-env]\n",
            &script,
            &[("AGENTRUN_TEST_SECRET", "do-not-leak")],
        );
        run.expect_code(0);
        run
    };
    let calls = tool_calls(&workflow_run);
    assert_eq!(calls[0]["ok"], true, "{calls:#?}");
    let env = calls[0]["output"].as_str().expect("output");
    assert!(
        env.contains("DECLARED_FOR_MCP") && env.contains("visible"),
        "{env}"
    );
    assert!(env.contains("PATH"), "{env}");
    assert!(!env.contains("do-not-leak"), "{env}");
}

#[test]
#[ignore = "needs the published MCP servers: npm ci --prefix tests/mcp-servers, then run with --include-ignored; .ci/run does"]
fn a_streamable_http_server_is_reached_with_headers_from_the_environment() {
    let scratch = Scratch::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut server = std::process::Command::new(everything_server())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the everything server starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the HTTP server did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let servers = format!(
        "  everything:\n    url: http://127.0.0.1:{port}/mcp\n    headers_from_env: {{ X-Test-Token: MCP_TEST_TOKEN }}\n"
    );
    let script = r#"
rules:
  - message: "Echo: over http"
    reply:
      text: "Heard the echo."
  - system: keeper
    reply:
      tool_calls:
        - name: everything__echo
          arguments: { message: over http }
"#;
    let run = scratch.run_with_env(
        &servers,
        "      everything: [echo]\n",
        script,
        &[("MCP_TEST_TOKEN", "secret-token")],
    );
    let _ = server.kill();
    let _ = server.wait();
    run.expect_code(0);
    let calls = tool_calls(&run);
    assert_eq!(calls[0]["output"], "Echo: over http", "{calls:#?}");
    let transcript =
        std::fs::read_to_string(run_dir(&run).join("transcript.jsonl")).expect("transcript");
    assert!(transcript.contains("Heard the echo."), "{transcript}");
}

#[test]
fn a_header_from_an_unset_variable_is_named() {
    let scratch = Scratch::new();
    refused(
        &scratch,
        "  remote:\n    url: http://127.0.0.1:9/mcp\n    headers_from_env: { Authorization: AGENTRUN_UNSET_TOKEN }\n",
        "      remote: all\n",
        &[
            "the MCP server `remote` did not start: its header `Authorization` comes from the environment variable `AGENTRUN_UNSET_TOKEN`, which is not set",
        ],
    );
}

#[test]
fn approve_ask_holds_mcp_calls_in_a_non_interactive_run() {
    let scratch = Scratch::new();
    let run = scratch.run(
        &scripted_server(),
        "      lab: [echo]\n    approve: ask\n",
        &one_call("lab__echo", "{ text: hi }"),
    );
    run.expect_code(0);
    let calls = tool_calls(&run);
    assert_eq!(calls[0]["ok"], false, "{calls:#?}");
    let output = calls[0]["output"].as_str().expect("output");
    assert!(
        output.contains(
            "needs a person's approval (`approve: ask`), and this run is non-interactive"
        ),
        "{output}"
    );
    assert_all_stopped(&scratch.pids());
}
