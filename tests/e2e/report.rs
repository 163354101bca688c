//! The report in a real browser: Debian's headless chromium (installed by `.ci/run`)
//! opens the page generated from a real run, its DOM shows the timeline's lanes and
//! the summary, and its screenshot is kept under the target directory for CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{agentrun, agentrun_binary};
use crate::tdd_cycle::example_project;

/// The browser: `AGENTRUN_CHROMIUM`, else Debian's chromium.
fn chromium() -> PathBuf {
    let browser = std::env::var_os("AGENTRUN_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        browser.exists(),
        "{} is missing: install it with `apt-get install chromium` (.ci/run does), or point \
         AGENTRUN_CHROMIUM at a chromium binary",
        browser.display()
    );
    browser
}

/// The cargo target directory, where CI collects artifacts.
fn target_dir() -> PathBuf {
    agentrun_binary()
        .parent()
        .and_then(Path::parent)
        .expect("the binary is in target/<profile>/")
        .to_owned()
}

/// Runs headless chromium on `page` with `mode` (`--dump-dom` or `--screenshot=...`) and
/// returns what it printed on stdout.
fn browse(page: &Path, mode: &str) -> String {
    let profile = tempfile::tempdir().expect("a browser profile");
    let out = tempfile::NamedTempFile::new().expect("an output file");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--window-size=1400,900")
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(out.reopen().expect("a writable handle"))
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within two minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "chromium {mode} failed: {status}");
    std::fs::read_to_string(out.path()).expect("chromium's output")
}

/// Width and height of a PNG, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let number = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (number(16), number(20))
}

fn screenshot(page: &Path, name: &str) -> PathBuf {
    let shot = target_dir().join(name);
    let _ = std::fs::remove_file(&shot);
    browse(page, &format!("--screenshot={}", shot.display()));
    assert_eq!(png_size(&shot), (1400, 900));
    let size = std::fs::metadata(&shot).expect("a screenshot").len();
    // A blank page compresses to a few kilobytes; lanes, labels and tables do not.
    assert!(
        size > 30_000,
        "the screenshot is nearly empty: {size} bytes"
    );
    eprintln!("screenshot: {}", shot.display());
    shot
}

#[test]
#[ignore = "needs chromium: install it (apt-get install chromium) or set AGENTRUN_CHROMIUM, then run with --include-ignored; .ci/run does"]
fn a_real_runs_report_renders_its_lanes_and_summary_in_chromium() {
    // The built-in simulator: the run's clock then reads simulated seconds, like the
    // load and generation times the server reports.
    let dir = tempfile::tempdir().expect("a temp dir");
    let project = example_project();
    let runs = dir.path().join("runs");
    let from_run = dir.path().join("from-run.html");
    agentrun(&[
        "workflows/tdd.yaml",
        "--sim",
        "--time-scale",
        "0.002",
        "--workspace",
        &project.path().to_string_lossy(),
        "--non-interactive",
        "-q",
        "--runs-dir",
        &runs.to_string_lossy(),
        "--report",
        &from_run.to_string_lossy(),
    ])
    .expect_code(0);
    let run_dir = std::fs::read_dir(runs.join("runs"))
        .expect("a runs folder")
        .next()
        .expect("one run")
        .expect("an entry")
        .path();
    let page = target_dir().join("report.html");
    let report = agentrun(&[
        "report",
        &run_dir.to_string_lossy(),
        "-o",
        &page.to_string_lossy(),
    ]);
    report.expect_code(0);
    let html = std::fs::read_to_string(&page).expect("the report");
    assert_eq!(
        html,
        std::fs::read_to_string(&from_run).expect("the --report page"),
        "`run --report` and `report` write the same page"
    );
    for external in ["<script", "<link", "src=", "@import"] {
        assert!(!html.contains(external), "the page fetches {external}");
    }

    let dom = browse(&page, "--dump-dom");
    assert!(dom.contains("<svg"), "no SVG in the rendered page");
    assert_eq!(dom.matches(r#"class="lane lane-turns""#).count(), 1);
    for model in [
        "qwen3-coder-next:q4_K_M",
        "qwen3-coder:32b",
        "qwen3-coder:14b",
        "qwen3:1.7b",
    ] {
        assert!(
            dom.contains(&format!(r#"class="lane lane-model" data-model="{model}""#)),
            "no lane for {model}"
        );
    }
    assert_eq!(dom.matches(r#"<g class="turn" "#).count(), 13);
    assert!(
        dom.contains(r#"class="load-wait""#),
        "the architect's load wait is marked"
    );
    assert!(dom.contains(r#"class="span on-demand""#));
    assert!(dom.contains(r#"class="span preload""#));
    assert!(dom.contains(r#"class="span generating""#));
    assert!(dom.contains(r#"class="memory-in-use""#));
    assert!(dom.contains(r#"class="budget""#));
    assert!(dom.contains(r#"<table class="summary run">"#));
    assert!(dom.contains("completed"));
    screenshot(&page, "report-screenshot.png");
}

#[test]
#[ignore = "needs chromium: install it (apt-get install chromium) or set AGENTRUN_CHROMIUM, then run with --include-ignored; .ci/run does"]
fn a_simulation_report_shows_every_policy_on_one_axis_in_chromium() {
    let page = target_dir().join("report-simulate.html");
    let simulated = agentrun(&[
        "simulate",
        "workflows/scenarios/mac-54gb.yaml",
        "--policy",
        "all",
        "--report",
        &page.to_string_lossy(),
    ]);
    simulated.expect_code(0);
    let dom = browse(&page, "--dump-dom");
    assert_eq!(dom.matches("<svg").count(), 4, "one timeline per policy");
    for policy in ["smart", "static", "ollama-default", "oracle"] {
        assert!(
            dom.contains(&format!(r#"<h3 class="policy">{policy}</h3>"#)),
            "no timeline for {policy}"
        );
    }
    assert!(dom.contains(r#"<table class="summary comparison">"#));
    screenshot(&page, "report-simulate-screenshot.png");
}
