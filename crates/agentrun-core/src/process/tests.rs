//! Tests of the process runner: environment, working directory, limits and capped output.

use super::*;

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

async fn run(
    words: &[&str],
    dir: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> ProcessOutcome {
    let argv = argv(words);
    run_process(ProcessSpec {
        argv: &argv,
        dir,
        env,
        timeout,
    })
    .await
    .expect("the program starts")
}

#[tokio::test]
async fn a_command_sees_only_path_home_and_what_the_workflow_gives() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let env = BTreeMap::from([("GIVEN".to_owned(), "yes".to_owned())]);
    // `cargo test` sets CARGO_* variables in this process: none may leak through.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let outcome = run(&["env"], dir.path(), &env, Duration::from_secs(10)).await;
    assert!(outcome.passed());
    let mut names: Vec<&str> = outcome
        .output
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["GIVEN", "HOME", "PATH"], "{}", outcome.output);
    assert!(outcome.output.contains("GIVEN=yes"));
}

#[tokio::test]
async fn a_command_runs_in_the_given_directory_and_reports_its_status() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let real = dir.path().canonicalize().expect("canonical");
    let outcome = run(&["pwd"], &real, &BTreeMap::new(), Duration::from_secs(10)).await;
    assert_eq!(outcome.output.trim(), real.to_string_lossy());
    let failing = run(
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        &real,
        &BTreeMap::new(),
        Duration::from_secs(10),
    )
    .await;
    assert!(!failing.passed());
    assert_eq!(failing.describe(Duration::from_secs(10)), "exit status 3");
    assert!(failing.output.contains("out") && failing.output.contains("err"));
}

#[tokio::test]
async fn a_missing_program_is_an_error_to_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let argv = argv(&["no-such-program-anywhere"]);
    let result = run_process(ProcessSpec {
        argv: &argv,
        dir: dir.path(),
        env: &BTreeMap::new(),
        timeout: Duration::from_secs(5),
    })
    .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn a_command_that_times_out_is_stopped_with_everything_it_started() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let timeout = Duration::from_millis(300);
    let outcome = run(
        &["sh", "-c", "sleep 30 & echo $!; wait"],
        dir.path(),
        &BTreeMap::new(),
        timeout,
    )
    .await;
    assert!(outcome.status.is_none());
    assert!(!outcome.passed());
    assert_eq!(
        outcome.describe(timeout),
        "timed out after 300ms and was stopped"
    );
    let pid: u32 = outcome.output.trim().parse().expect("the background pid");
    // The background `sleep` was in the command's process group: it is gone (or a zombie
    // waiting for init to reap it).
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    let mut alive = true;
    for _ in 0..50 {
        alive = std::fs::read_to_string(&stat)
            .map(|text| !text.contains(") Z"))
            .unwrap_or(false);
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive, "the command's child {pid} survived the time limit");
}

#[tokio::test]
async fn a_flood_of_output_keeps_its_head_and_tail() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let outcome = run(
        &[
            "sh",
            "-c",
            "echo FIRST; yes flood | head -c 5000000; echo; echo LAST",
        ],
        dir.path(),
        &BTreeMap::new(),
        Duration::from_secs(30),
    )
    .await;
    assert!(outcome.passed());
    assert!(
        outcome.output.len() < 2 * KEPT_OUTPUT_BYTES + 100,
        "{}",
        outcome.output.len()
    );
    assert!(outcome.output.starts_with("FIRST\n"));
    assert!(outcome.output.trim_end().ends_with("LAST"));
    assert!(outcome.output.contains("bytes omitted"));
}

#[test]
fn capped_output_is_the_same_however_it_arrives() {
    let text: Vec<u8> = (0..10_000u32).flat_map(|n| n.to_le_bytes()).collect();
    let mut at_once = CappedOutput::new(100);
    at_once.push(&text);
    let mut in_pieces = CappedOutput::new(100);
    for piece in text.chunks(7) {
        in_pieces.push(piece);
    }
    assert_eq!(at_once.render(), in_pieces.render());
    assert!(
        at_once
            .render()
            .contains(&format!("[... {} bytes omitted ...]", text.len() - 200))
    );
    let mut short = CappedOutput::new(100);
    short.push(b"all of it");
    assert_eq!(short.render(), "all of it");
    assert_eq!(cap_text("short", 10), "short");
    assert!(cap_text(&"x".repeat(100), 10).contains("80 bytes omitted"));
}
