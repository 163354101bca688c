//! Running a program for an agent: argv without a shell, in the workspace, with a cleared
//! environment, a time limit, and output capped to its head and tail.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// How long a command may run when its agent does not say.
pub(crate) const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// Bytes kept from each end of a command's output.
pub(crate) const KEPT_OUTPUT_BYTES: usize = 4_000;

/// The only variables a command inherits; everything else it gets is given by the workflow,
/// so tokens and keys in the caller's environment never reach a command.
pub(crate) const INHERITED_VARIABLES: [&str; 2] = ["PATH", "HOME"];

/// How long to keep reading a finished command's output pipes: a process that escaped the
/// command's process group may hold them open forever.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A program to run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProcessSpec<'a> {
    /// The program and its arguments; never empty.
    pub(crate) argv: &'a [String],
    /// The working directory.
    pub(crate) dir: &'a Path,
    /// Variables set besides `PATH` and `HOME`.
    pub(crate) env: &'a BTreeMap<String, String>,
    /// Killed after this long.
    pub(crate) timeout: Duration,
}

/// How a program's run ended.
#[derive(Debug, Clone)]
pub(crate) struct ProcessOutcome {
    /// The exit status; `None` when the program was stopped at its time limit.
    pub(crate) status: Option<ExitStatus>,
    /// Standard output and error as they arrived, capped to the head and the tail.
    pub(crate) output: String,
    /// Real time the run took.
    pub(crate) elapsed: Duration,
}

impl ProcessOutcome {
    /// Whether the program exited with status 0.
    pub(crate) fn passed(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// `exit status 1`, `killed by signal 9`, or `timed out after 2m`.
    pub(crate) fn describe(&self, timeout: Duration) -> String {
        match self.status {
            None => format!(
                "timed out after {} and was stopped",
                humantime::format_duration(timeout)
            ),
            Some(status) => match status.code() {
                Some(code) => format!("exit status {code}"),
                None => format!("ended by a signal ({status})"),
            },
        }
    }
}

/// Runs a program to its end or its time limit. Errors only when it cannot start.
pub(crate) async fn run_process(spec: ProcessSpec<'_>) -> std::io::Result<ProcessOutcome> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the command is empty",
        ));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(spec.dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in INHERITED_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(spec.env);
    // Its own process group, so the whole tree (a test runner's children too) can be stopped.
    #[cfg(unix)]
    command.process_group(0);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let group = ProcessGroup(child.id());
    let output = Arc::new(Mutex::new(CappedOutput::new(KEPT_OUTPUT_BYTES)));
    let stdout = tokio::spawn(drain(child.stdout.take(), output.clone()));
    let stderr = tokio::spawn(drain(child.stderr.take(), output.clone()));
    let status = match tokio::time::timeout(spec.timeout, child.wait()).await {
        Ok(status) => Some(status?),
        Err(_) => {
            let _ = child.start_kill();
            None
        }
    };
    // Whatever the command left running goes with it.
    group.kill();
    if status.is_none() {
        let _ = child.wait().await;
    }
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        let _ = stdout.await;
        let _ = stderr.await;
    })
    .await;
    let output = output.lock().expect("output lock poisoned").render();
    Ok(ProcessOutcome {
        status,
        output,
        elapsed: started.elapsed(),
    })
}

/// The process group of a running command; stopped when dropped, so a cancelled run leaves
/// nothing behind.
pub(crate) struct ProcessGroup(pub(crate) Option<u32>);

impl ProcessGroup {
    pub(crate) fn kill(&self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .0
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
        {
            // The group may be gone already; that is the outcome wanted.
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn drain(pipe: Option<impl AsyncRead + Unpin>, output: Arc<Mutex<CappedOutput>>) {
    let Some(mut pipe) = pipe else { return };
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => output
                .lock()
                .expect("output lock poisoned")
                .push(&buffer[..read]),
        }
    }
}

/// Output kept as its first and last `keep` bytes, however much arrives.
#[derive(Debug, Clone)]
pub(crate) struct CappedOutput {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: usize,
    keep: usize,
}

impl CappedOutput {
    pub(crate) fn new(keep: usize) -> CappedOutput {
        CappedOutput {
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
            keep,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len();
        let into_head = bytes.len().min(self.keep - self.head.len());
        self.head.extend_from_slice(&bytes[..into_head]);
        let rest = &bytes[into_head..];
        let rest = &rest[rest.len().saturating_sub(self.keep)..];
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(self.keep);
        self.tail.drain(..excess);
    }

    /// The text, with a note of how much was left out in the middle.
    pub(crate) fn render(&self) -> String {
        let omitted = self.total - self.head.len() - self.tail.len();
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        if omitted == 0 {
            let mut all = self.head.clone();
            all.extend_from_slice(&tail);
            return String::from_utf8_lossy(&all).into_owned();
        }
        format!(
            "{}\n[... {omitted} bytes omitted ...]\n{}",
            String::from_utf8_lossy(&self.head),
            String::from_utf8_lossy(&tail)
        )
    }
}

/// Caps a text to its first and last `keep` bytes.
pub(crate) fn cap_text(text: &str, keep: usize) -> String {
    if text.len() <= 2 * keep {
        return text.to_owned();
    }
    let mut capped = CappedOutput::new(keep);
    capped.push(text.as_bytes());
    capped.render()
}

#[cfg(test)]
mod tests;
