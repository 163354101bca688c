//! Tests of the container command line.

use super::*;

#[test]
fn a_container_mounts_only_the_workspace_and_has_no_network() {
    let env = BTreeMap::from([("CI".to_owned(), "1".to_owned())]);
    let argv = vec!["python3".to_owned(), "-m".to_owned(), "unittest".to_owned()];
    let run = ContainerRun {
        runtime: Path::new("docker"),
        image: "python:3.12-slim",
        workspace: Path::new("/home/me/project"),
        writable: true,
        protected: &[],
        dir: Path::new("/home/me/project/src"),
        user: Some((1000, 1000)),
        network: false,
        env: &env,
        argv: &argv,
    };
    assert_eq!(
        run.argv(),
        [
            "docker",
            "run",
            "--rm",
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "--tmpfs=/tmp",
            "--env=TMPDIR=/tmp",
            "--env=HOME=/tmp",
            "--network=none",
            "--user=1000:1000",
            "--volume=/home/me/project:/home/me/project:rw",
            "--workdir=/home/me/project/src",
            "--env=CI=1",
            "python:3.12-slim",
            "python3",
            "-m",
            "unittest",
        ]
    );
    let volumes = run
        .argv()
        .iter()
        .filter(|word| word.starts_with("--volume"))
        .count();
    assert_eq!(volumes, 1, "only the workspace is mounted");
}

#[test]
fn network_and_read_only_change_only_their_flags() {
    let env = BTreeMap::new();
    let argv = vec!["true".to_owned()];
    let run = ContainerRun {
        runtime: Path::new("/usr/bin/podman"),
        image: "alpine",
        workspace: Path::new("/w"),
        writable: false,
        protected: &[],
        dir: Path::new("/w"),
        user: None,
        network: true,
        env: &env,
        argv: &argv,
    };
    let words = run.argv();
    assert_eq!(words[0], "/usr/bin/podman");
    assert!(!words.iter().any(|word| word.starts_with("--network")));
    assert!(!words.iter().any(|word| word.starts_with("--user")));
    assert!(words.contains(&"--volume=/w:/w:ro".to_owned()));
}
