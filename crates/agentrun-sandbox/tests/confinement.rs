//! Real processes through the real launcher: what a confined command can and cannot do.

#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentrun_sandbox::{Launcher, Sandbox, SandboxMode, SandboxPolicy, detect_denial};

/// A workspace, a home with a planted secret, and a place outside both.
struct Scene {
    _dir: tempfile::TempDir,
    workspace: PathBuf,
    home: PathBuf,
    outside: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().canonicalize().expect("canonical");
        let workspace = root.join("workspace");
        let home = root.join("home");
        let outside = root.join("outside");
        for path in [&workspace, &home.join(".ssh"), &outside] {
            std::fs::create_dir_all(path).expect("dirs");
        }
        std::fs::write(home.join(".ssh/id_ed25519"), "PRIVATE KEY").expect("the secret");
        std::fs::write(home.join(".gitconfig"), "[user]").expect("a plain file");
        Scene {
            _dir: dir,
            workspace,
            home,
            outside,
        }
    }

    fn policy(&self, mode: SandboxMode) -> SandboxPolicy {
        SandboxPolicy::new(mode, &self.workspace, Some(&self.home), &[])
    }

    /// Runs `sh -c script` confined by `sandbox`; its exit status and output.
    fn run_with(&self, sandbox: &Sandbox, mode: SandboxMode, script: &str) -> (bool, String) {
        let argv = vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        let confined = sandbox
            .prepare(&self.policy(mode), &argv, &self.workspace, &BTreeMap::new())
            .expect("confined");
        let output = Command::new(&confined.argv[0])
            .args(&confined.argv[1..])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .envs(&confined.env)
            .current_dir(&self.workspace)
            .output()
            .expect("the launcher starts");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    fn run(&self, mode: SandboxMode, script: &str) -> (bool, String) {
        self.run_with(&launcher_sandbox(), mode, script)
    }
}

fn launcher_sandbox() -> Sandbox {
    Sandbox::with_launcher(Launcher::binary(Path::new(env!(
        "CARGO_BIN_EXE_agentrun-sandbox"
    ))))
}

#[test]
fn the_default_mode_writes_the_workspace_and_its_temp_dir_only() {
    let scene = Scene::new();
    let outside = scene.outside.join("escaped");
    let script = format!(
        "echo in > made && echo tmp > \"$TMPDIR/t\" && cat made \"$TMPDIR/t\" && echo out > {}",
        outside.display()
    );
    let (passed, output) = scene.run(SandboxMode::WorkspaceWrite, &script);
    assert!(!passed, "{output}");
    assert!(output.contains("in\ntmp\n"), "{output}");
    assert!(output.contains("Permission denied"), "{output}");
    assert!(!outside.exists());
    assert!(scene.workspace.join("made").exists());
    let denial = detect_denial(SandboxMode::WorkspaceWrite, &output).expect("a denial");
    assert_eq!(denial.kinds, ["filesystem"]);

    let (passed, output) = scene.run(SandboxMode::Off, &script);
    assert!(passed, "{output}");
    assert!(outside.exists());
    assert_eq!(detect_denial(SandboxMode::Off, &output), None);
}

#[test]
fn secrets_are_unreadable_and_the_rest_of_home_is_not() {
    let scene = Scene::new();
    let script = "cat ~/.gitconfig && cat ~/.ssh/id_ed25519";
    for mode in [
        SandboxMode::WorkspaceWrite,
        SandboxMode::ReadOnly,
        SandboxMode::Network,
    ] {
        let (passed, output) = scene.run(mode, script);
        assert!(!passed, "{mode}: {output}");
        assert!(output.contains("[user]"), "{mode}: {output}");
        assert!(!output.contains("PRIVATE KEY"), "{mode}: {output}");
        assert!(output.contains("Permission denied"), "{mode}: {output}");
    }
    let (passed, output) = scene.run(SandboxMode::Off, script);
    assert!(passed && output.contains("PRIVATE KEY"), "{output}");
}

#[test]
fn read_only_writes_nothing_but_its_temp_dir() {
    let scene = Scene::new();
    let (passed, output) = scene.run(
        SandboxMode::ReadOnly,
        "echo tmp > \"$TMPDIR/t\" && cat \"$TMPDIR/t\" && echo x > made",
    );
    assert!(!passed, "{output}");
    assert!(output.starts_with("tmp\n"), "{output}");
    assert!(!scene.workspace.join("made").exists());
}

/// A Python one-liner connecting to the host's listener on `port`.
fn connect_script(port: u16) -> String {
    format!(
        "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), timeout=5); print(\"connected\")'"
    )
}

#[test]
fn the_hosts_loopback_is_out_of_reach_without_network() {
    let scene = Scene::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = listener.local_addr().expect("an address").port();
    let (passed, output) = scene.run(SandboxMode::WorkspaceWrite, &connect_script(port));
    assert!(!passed, "{output}");
    assert!(output.contains("Connection refused"), "{output}");
    let denial = detect_denial(SandboxMode::WorkspaceWrite, &output).expect("a denial");
    assert_eq!(denial.kinds, ["network"]);
    assert!(denial.note.contains("no network"), "{}", denial.note);

    for mode in [SandboxMode::Network, SandboxMode::Off] {
        let (passed, output) = scene.run(mode, &connect_script(port));
        assert!(passed && output.contains("connected"), "{mode}: {output}");
    }
}

#[test]
fn a_command_serves_and_reaches_its_own_loopback() {
    let scene = Scene::new();
    let script = "python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen(); c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.sendall(b\"ping\"); print(a.recv(4).decode())'";
    let (passed, output) = scene.run(SandboxMode::WorkspaceWrite, script);
    assert!(passed, "{output}");
    assert_eq!(output.trim(), "ping");
}

#[test]
fn the_unprivileged_way_confines_the_same() {
    let scene = Scene::new();
    let sandbox = launcher_sandbox().forcing_user_namespace();
    let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let port = listener.local_addr().expect("an address").port();
    let script = format!(
        "id -u; cat ~/.ssh/id_ed25519; echo x > {}/escaped; {}",
        scene.outside.display(),
        connect_script(port)
    );
    let (passed, output) = scene.run_with(&sandbox, SandboxMode::WorkspaceWrite, &script);
    assert!(!passed, "{output}");
    // The user namespace maps the user to itself: ownership looks the same inside.
    let uid = output.lines().next().unwrap_or_default();
    assert_eq!(
        uid,
        String::from_utf8_lossy(&Command::new("id").arg("-u").output().expect("id").stdout).trim()
    );
    assert!(!output.contains("PRIVATE KEY"), "{output}");
    assert!(!scene.outside.join("escaped").exists());
    assert!(output.contains("Connection refused"), "{output}");
}

#[test]
fn a_confined_command_that_cannot_start_says_so() {
    let scene = Scene::new();
    let argv = vec!["no-such-program-anywhere".to_owned()];
    let confined = launcher_sandbox()
        .prepare(
            &scene.policy(SandboxMode::WorkspaceWrite),
            &argv,
            &scene.workspace,
            &BTreeMap::new(),
        )
        .expect("confined");
    let output = Command::new(&confined.argv[0])
        .args(&confined.argv[1..])
        .output()
        .expect("the launcher starts");
    assert_eq!(output.status.code(), Some(127));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("cannot run `no-such-program-anywhere`"),
        "{text}"
    );
}

#[test]
fn the_private_temp_dir_goes_with_the_command() {
    let scene = Scene::new();
    let argv = vec!["true".to_owned()];
    let confined = launcher_sandbox()
        .prepare(
            &scene.policy(SandboxMode::WorkspaceWrite),
            &argv,
            &scene.workspace,
            &BTreeMap::new(),
        )
        .expect("confined");
    let temp = confined.temp_dir().expect("a temp dir").to_path_buf();
    assert_eq!(
        confined.env.get("TMPDIR").map(PathBuf::from),
        Some(temp.clone())
    );
    assert!(temp.is_dir());
    drop(confined);
    assert!(!temp.exists());
}

#[test]
fn the_workspaces_git_directory_is_readable_and_not_writable() {
    let scene = Scene::new();
    std::fs::create_dir_all(scene.workspace.join(".git/hooks")).expect("a .git");
    std::fs::write(scene.workspace.join(".git/config"), "[core]").expect("a config");
    let script =
        "cat .git/config && echo changed > src.txt && echo 'rm -rf ~' > .git/hooks/pre-commit";
    let unprivileged = launcher_sandbox().forcing_user_namespace();
    for (sandbox, mode) in [
        (&launcher_sandbox(), SandboxMode::WorkspaceWrite),
        (&launcher_sandbox(), SandboxMode::Network),
        (&unprivileged, SandboxMode::WorkspaceWrite),
        (&unprivileged, SandboxMode::Network),
    ] {
        let (passed, output) = scene.run_with(sandbox, mode, script);
        assert!(!passed, "{mode}: {output}");
        assert!(output.contains("[core]"), "{mode}: {output}");
        assert!(output.contains("Read-only file system"), "{mode}: {output}");
        assert!(scene.workspace.join("src.txt").exists(), "{mode}");
        assert!(
            !scene.workspace.join(".git/hooks/pre-commit").exists(),
            "{mode}"
        );
        std::fs::remove_file(scene.workspace.join("src.txt")).expect("removed");
    }
    let (passed, output) = scene.run(SandboxMode::Off, script);
    assert!(passed, "{output}");
    assert!(scene.workspace.join(".git/hooks/pre-commit").exists());
}
