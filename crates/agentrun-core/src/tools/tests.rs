//! Tests of the built-in tools: what they do inside the workspace, and every refusal.

use std::path::Path;
use std::sync::Mutex;

use agentrun_spec::Workflow;
use serde_json::json;

use super::*;
use crate::CommandSandbox;
use agentrun_spec::{SandboxMode, SandboxSpec};

fn sandbox_settings(mode: SandboxMode, image: Option<&str>) -> CommandSandbox {
    CommandSandbox::new(
        Arc::new(agentrun_sandbox::Sandbox::new()),
        SandboxSpec {
            mode,
            secret_paths: Vec::new(),
            image: image.map(str::to_owned),
        },
    )
}

/// An llm agent with every built-in tool and the given allow-list lines.
fn agent(extra: &str) -> AgentSpec {
    let yaml = format!(
        "name: t\nagents:\n  coder:\n    model: m\n    prompt: p\n    options: {{ num_ctx: 2048 }}\n    \
         tools: [read_file, write_file, edit_file, list_files, search_files, run_command]\n    \
         allow_commands: [[sh, -c], [echo]]\n{extra}flow:\n  start: coder\n  edges:\n    - {{ from: coder, to: end }}\n"
    );
    Workflow::from_yaml_str(&yaml, Path::new("t.yaml"))
        .expect("a valid workflow")
        .agents
        .remove(0)
}

struct Fixture {
    _dir: tempfile::TempDir,
    _outside: tempfile::TempDir,
    workspace: Workspace,
    outside: std::path::PathBuf,
    agent: AgentSpec,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_agent(agent(""))
    }

    fn with_agent(agent: AgentSpec) -> Fixture {
        let dir = tempfile::tempdir().expect("a temp dir");
        let outside_dir = tempfile::tempdir().expect("another temp dir");
        let outside = outside_dir.path().canonicalize().expect("canonical");
        std::fs::write(outside.join("secret.txt"), "the secret").expect("written");
        // These tests are about the tools; the sandbox is tested through the real launcher
        // in agentrun-sandbox and end to end.
        let workspace = Workspace::new(dir.path())
            .expect("a workspace")
            .with_sandbox(sandbox_settings(SandboxMode::Off, None));
        Fixture {
            _dir: dir,
            _outside: outside_dir,
            workspace,
            outside,
            agent,
        }
    }

    fn file(&self, path: &str, content: &str) {
        let path = self.workspace.root().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("dirs");
        std::fs::write(path, content).expect("written");
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.workspace.root().join(path)).expect("readable")
    }

    async fn call(
        &self,
        tool: ToolName,
        arguments: serde_json::Value,
    ) -> Result<String, ToolError> {
        self.call_with(tool, arguments, None).await
    }

    async fn call_with(
        &self,
        tool: ToolName,
        arguments: serde_json::Value,
        console: Option<&dyn Console>,
    ) -> Result<String, ToolError> {
        let context = ToolContext {
            agent: &self.agent,
            workspace: &self.workspace,
            console,
        };
        builtin_tool(tool).call(arguments, &context).await
    }
}

fn refused(result: Result<String, ToolError>, gist: &str) {
    match result {
        Err(ToolError::Refused(message)) => {
            assert!(message.contains(gist), "`{message}` does not say `{gist}`")
        }
        other => panic!("expected a refusal saying `{gist}`, got {other:?}"),
    }
}

#[tokio::test]
async fn files_are_written_read_and_edited_inside_the_workspace() {
    let fixture = Fixture::new();
    let wrote = fixture
        .call(
            ToolName::WriteFile,
            json!({"path": "pkg/mod.py", "content": "x = 1\ny = 2\n"}),
        )
        .await
        .expect("written");
    assert_eq!(wrote, "wrote 12 bytes to pkg/mod.py (new file)");
    assert_eq!(
        fixture
            .call(ToolName::ReadFile, json!({"path": "pkg/mod.py"}))
            .await,
        Ok("x = 1\ny = 2\n".to_owned())
    );
    let edited = fixture
        .call(
            ToolName::EditFile,
            json!({"path": "pkg/mod.py", "old_text": "y = 2", "new_text": "y = 3"}),
        )
        .await
        .expect("edited");
    assert!(edited.contains("pkg/mod.py"), "{edited}");
    assert_eq!(fixture.read("pkg/mod.py"), "x = 1\ny = 3\n");
    assert!(
        fixture
            .call(
                ToolName::WriteFile,
                json!({"path": "./pkg/mod.py", "content": ""})
            )
            .await
            .expect("replaced")
            .ends_with("(replaced)")
    );
}

#[tokio::test]
async fn an_edit_needs_a_span_that_occurs_once() {
    let fixture = Fixture::new();
    fixture.file("a.txt", "same\nsame\n");
    let twice = fixture
        .call(
            ToolName::EditFile,
            json!({"path": "a.txt", "old_text": "same", "new_text": "x"}),
        )
        .await;
    assert!(
        matches!(&twice, Err(ToolError::Failed(message)) if message.contains("occurs 2 times")),
        "{twice:?}"
    );
    let missing = fixture
        .call(
            ToolName::EditFile,
            json!({"path": "a.txt", "old_text": "other", "new_text": "x"}),
        )
        .await;
    assert!(
        matches!(&missing, Err(ToolError::Failed(message)) if message.contains("not in `a.txt`")),
        "{missing:?}"
    );
    assert_eq!(
        fixture.read("a.txt"),
        "same\nsame\n",
        "a failed edit changes nothing"
    );
    let no_file = fixture
        .call(
            ToolName::EditFile,
            json!({"path": "b.txt", "old_text": "x", "new_text": "y"}),
        )
        .await;
    assert!(
        matches!(&no_file, Err(ToolError::Failed(message)) if message.contains("does not exist"))
    );
}

#[tokio::test]
async fn paths_that_go_up_with_dot_dot_are_refused() {
    let fixture = Fixture::new();
    let escape = format!(
        "../{}/secret.txt",
        fixture
            .outside
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a name")
    );
    refused(
        fixture
            .call(ToolName::ReadFile, json!({"path": escape}))
            .await,
        "goes up with `..`",
    );
    refused(
        fixture
            .call(
                ToolName::WriteFile,
                json!({"path": "a/../../x.txt", "content": "x"}),
            )
            .await,
        "goes up with `..`",
    );
    refused(
        fixture
            .call(ToolName::ListFiles, json!({"path": ".."}))
            .await,
        "`..`",
    );
}

#[tokio::test]
async fn absolute_paths_are_refused() {
    let fixture = Fixture::new();
    let secret = fixture.outside.join("secret.txt");
    refused(
        fixture
            .call(
                ToolName::ReadFile,
                json!({"path": secret.to_string_lossy()}),
            )
            .await,
        "is an absolute path",
    );
    let target = fixture.outside.join("planted.txt");
    refused(
        fixture
            .call(
                ToolName::WriteFile,
                json!({"path": target.to_string_lossy(), "content": "x"}),
            )
            .await,
        "is an absolute path",
    );
    assert!(!target.exists());
    // Even an absolute path that names the workspace itself: the rule is simple.
    let inside = fixture.workspace.root().join("a.txt");
    refused(
        fixture
            .call(
                ToolName::ReadFile,
                json!({"path": inside.to_string_lossy()}),
            )
            .await,
        "absolute",
    );
}

#[tokio::test]
async fn symbolic_links_that_lead_out_are_refused() {
    let fixture = Fixture::new();
    let root = fixture.workspace.root();
    std::os::unix::fs::symlink(fixture.outside.join("secret.txt"), root.join("link.txt"))
        .expect("file link");
    std::os::unix::fs::symlink(&fixture.outside, root.join("out")).expect("directory link");
    std::os::unix::fs::symlink(fixture.outside.join("nothing-yet"), root.join("dangling"))
        .expect("dangling link");
    refused(
        fixture
            .call(ToolName::ReadFile, json!({"path": "link.txt"}))
            .await,
        "symbolic link",
    );
    refused(
        fixture
            .call(
                ToolName::EditFile,
                json!({"path": "link.txt", "old_text": "the", "new_text": "a"}),
            )
            .await,
        "symbolic link",
    );
    refused(
        fixture
            .call(
                ToolName::WriteFile,
                json!({"path": "out/planted.txt", "content": "x"}),
            )
            .await,
        "symbolic link",
    );
    refused(
        fixture
            .call(
                ToolName::WriteFile,
                json!({"path": "dangling", "content": "x"}),
            )
            .await,
        "does not exist",
    );
    refused(
        fixture
            .call(ToolName::ListFiles, json!({"path": "out"}))
            .await,
        "symbolic link",
    );
    refused(
        fixture
            .call(
                ToolName::SearchFiles,
                json!({"pattern": "secret", "path": "out"}),
            )
            .await,
        "symbolic link",
    );
    refused(
        fixture
            .call(
                ToolName::RunCommand,
                json!({"argv": ["echo"], "dir": "out"}),
            )
            .await,
        "symbolic link",
    );
    assert!(!fixture.outside.join("planted.txt").exists());
    assert!(!fixture.outside.join("nothing-yet").exists());
    assert_eq!(
        std::fs::read_to_string(fixture.outside.join("secret.txt")).expect("readable"),
        "the secret"
    );
    // A link that stays inside is fine.
    fixture.file("real.txt", "inside");
    std::os::unix::fs::symlink(root.join("real.txt"), root.join("alias.txt")).expect("link");
    assert_eq!(
        fixture
            .call(ToolName::ReadFile, json!({"path": "alias.txt"}))
            .await,
        Ok("inside".to_owned())
    );
}

#[tokio::test]
async fn listings_and_searches_never_follow_links_out() {
    let fixture = Fixture::new();
    let root = fixture.workspace.root();
    fixture.file("src/lib.rs", "fn parse() {}\n// the secret is not here\n");
    fixture.file(".git/config", "secret in git\n");
    std::os::unix::fs::symlink(&fixture.outside, root.join("out")).expect("directory link");
    let listing = fixture
        .call(ToolName::ListFiles, json!({"recursive": true}))
        .await
        .expect("listed");
    assert_eq!(
        listing, ".git/\nout (symbolic link)\nsrc/\nsrc/lib.rs (40 bytes)",
        "`.git` is named but not entered; the link is not followed"
    );
    let found = fixture
        .call(ToolName::SearchFiles, json!({"pattern": "secret"}))
        .await
        .expect("searched");
    assert_eq!(found, "src/lib.rs:2: // the secret is not here");
    let none = fixture
        .call(ToolName::SearchFiles, json!({"pattern": "nowhere"}))
        .await
        .expect("searched");
    assert_eq!(none, "no line matches `nowhere`");
    let bad = fixture
        .call(ToolName::SearchFiles, json!({"pattern": "("}))
        .await;
    assert!(
        matches!(bad, Err(ToolError::InvalidArguments(_))),
        "{bad:?}"
    );
}

#[tokio::test]
async fn a_command_off_the_allow_list_is_refused() {
    let fixture = Fixture::new();
    refused(
        fixture
            .call(ToolName::RunCommand, json!({"argv": ["rm", "-rf", "."]}))
            .await,
        "`rm -rf .` is not on the allow-list; a command must start with one of: `sh -c`, `echo`",
    );
    // A prefix of an allowed command is not allowed either.
    refused(
        fixture
            .call(ToolName::RunCommand, json!({"argv": ["sh"]}))
            .await,
        "not on the allow-list",
    );
    fixture.file("marker", "");
    assert!(fixture.workspace.root().join("marker").exists());
}

#[tokio::test]
async fn an_allowed_command_runs_in_the_workspace() {
    let fixture = Fixture::new();
    fixture.file("sub/data.txt", "");
    let output = fixture
        .call(
            ToolName::RunCommand,
            json!({"argv": ["sh", "-c", "ls; exit 4"], "dir": "sub"}),
        )
        .await
        .expect("ran");
    assert_eq!(output, "exit status 4\ndata.txt\n");
}

#[tokio::test]
async fn a_command_that_runs_too_long_is_stopped() {
    let fixture = Fixture::with_agent(agent("    timeout: 1s\n"));
    let result = fixture
        .call(
            ToolName::RunCommand,
            json!({"argv": ["sh", "-c", "echo started; sleep 30"]}),
        )
        .await;
    match result {
        Err(ToolError::Failed(message)) => {
            assert!(
                message.contains("timed out after 1s and was stopped"),
                "{message}"
            );
            assert!(message.contains("started"), "{message}");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_flood_of_command_output_is_capped() {
    let fixture = Fixture::new();
    let output = fixture
        .call(
            ToolName::RunCommand,
            json!({"argv": ["sh", "-c", "yes 0123456789 | head -c 3000000"]}),
        )
        .await
        .expect("ran");
    assert!(output.len() < 9_000, "{} bytes came back", output.len());
    assert!(output.starts_with("exit status 0\n0123456789\n"));
    assert!(output.contains("bytes omitted"));
}

/// A console that gives one answer and remembers the question.
struct Answering(&'static str, Mutex<Vec<String>>);

#[async_trait]
impl Console for Answering {
    async fn ask(&self, agent: &str, question: &str) -> Option<String> {
        self.1
            .lock()
            .expect("lock")
            .push(format!("{agent}: {question}"));
        Some(self.0.to_owned())
    }
}

#[tokio::test]
async fn commands_that_need_approval_ask_and_respect_the_answer() {
    let fixture = Fixture::with_agent(agent("    approve: ask\n"));
    let echo = json!({"argv": ["echo", "hi"]});
    refused(
        fixture.call(ToolName::RunCommand, echo.clone()).await,
        "non-interactive",
    );
    let no = Answering("n", Mutex::default());
    refused(
        fixture
            .call_with(ToolName::RunCommand, echo.clone(), Some(&no))
            .await,
        "declined `echo hi`",
    );
    let yes = Answering("y", Mutex::default());
    assert_eq!(
        fixture
            .call_with(ToolName::RunCommand, echo, Some(&yes))
            .await,
        Ok("exit status 0\nhi\n".to_owned())
    );
    assert_eq!(
        *yes.1.lock().expect("lock"),
        ["coder: run `echo hi`? [y/N]"]
    );
}

#[tokio::test]
async fn malformed_arguments_say_what_is_wrong() {
    let fixture = Fixture::new();
    let missing = fixture
        .call(ToolName::WriteFile, json!({"path": "a.txt"}))
        .await;
    assert_eq!(
        missing,
        Err(ToolError::InvalidArguments(
            "missing field `content`".to_owned()
        ))
    );
    let wrong_type = fixture
        .call(ToolName::RunCommand, json!({"argv": "cargo test"}))
        .await;
    assert!(
        matches!(&wrong_type, Err(ToolError::InvalidArguments(message)) if message.contains("expected a sequence")),
        "{wrong_type:?}"
    );
    let not_object = fixture.call(ToolName::ReadFile, json!([1, 2])).await;
    assert!(matches!(not_object, Err(ToolError::InvalidArguments(_))));
    // Arguments sent as a JSON string are read.
    fixture.file("a.txt", "text");
    assert_eq!(
        fixture
            .call(ToolName::ReadFile, json!("{\"path\": \"a.txt\"}"))
            .await,
        Ok("text".to_owned())
    );
}

#[test]
fn parameters_are_plain_json_schema_objects() {
    let spec = builtin_tool(ToolName::ReadFile).spec();
    assert_eq!(spec.name, "read_file");
    let parameters = &spec.parameters;
    assert_eq!(parameters["type"], "object");
    assert!(parameters.get("$schema").is_none() && parameters.get("title").is_none());
    assert_eq!(parameters["required"], json!(["path"]));
    assert_eq!(parameters["properties"]["start_line"]["type"], "integer");
    assert!(
        parameters["properties"]["path"]["description"]
            .as_str()
            .is_some_and(|text| text.contains("relative to the workspace"))
    );
    for name in ToolName::ALL {
        assert_eq!(builtin_tool(name).spec().name, name.as_str());
    }
}

#[tokio::test]
async fn shell_metacharacters_stay_literal_arguments() {
    let fixture = Fixture::new();
    fixture.file("keep.txt", "precious");
    let attacks = [
        "; rm -rf keep.txt",
        "&& rm keep.txt",
        "| tee pwned",
        "$(touch pwned)",
        "`touch pwned`",
        "> pwned",
        "keep.txt\nrm keep.txt",
        "*",
    ];
    for attack in attacks {
        // `echo` is allowed; what follows it is one argument, never a shell's input.
        let output = fixture
            .call(ToolName::RunCommand, json!({"argv": ["echo", attack]}))
            .await
            .expect("echo runs");
        assert_eq!(output, format!("exit status 0\n{attack}\n"), "{attack}");
    }
    // An allowed program prefix with a metacharacter glued on is another program.
    refused(
        fixture
            .call(
                ToolName::RunCommand,
                json!({"argv": ["echo;rm", "-rf", "."]}),
            )
            .await,
        "not on the allow-list",
    );
    refused(
        fixture
            .call(
                ToolName::RunCommand,
                json!({"argv": ["rm -rf keep.txt; echo", "hi"]}),
            )
            .await,
        "not on the allow-list",
    );
    assert_eq!(fixture.read("keep.txt"), "precious");
    assert!(!fixture.workspace.root().join("pwned").exists());
}

#[tokio::test]
async fn a_command_whose_sandbox_cannot_be_given_is_refused_and_not_run() {
    let mut fixture = Fixture::new();
    // A container without an image cannot be started: the command must not run bare.
    fixture.workspace = fixture
        .workspace
        .clone()
        .with_sandbox(sandbox_settings(SandboxMode::Container, None));
    let result = fixture
        .call(
            ToolName::RunCommand,
            json!({"argv": ["sh", "-c", "echo ran > marker"]}),
        )
        .await;
    match result {
        Err(ToolError::Refused(message)) => {
            assert!(message.contains("was not run"), "{message}");
            assert!(message.contains("`sandbox: off`"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!fixture.workspace.root().join("marker").exists());
}

#[test]
fn an_agent_takes_its_own_sandbox_or_the_workflows() {
    let settings = sandbox_settings(SandboxMode::ReadOnly, None);
    let plain = agent("");
    assert_eq!(
        settings.mode_of(&plain),
        agentrun_sandbox::SandboxMode::ReadOnly
    );
    let own = agent("    sandbox: network\n");
    assert_eq!(
        settings.mode_of(&own),
        agentrun_sandbox::SandboxMode::Network
    );
    let policy = settings.policy(&own, Path::new("/w"));
    assert!(
        policy
            .secret_paths
            .iter()
            .any(|path| path.ends_with(".ssh"))
    );
}
