//! How a program that starts the `ollama-sim` binary learns its address: it passes
//! `--ready-file PATH`, and the server writes its URL there (atomically) once it listens.
//! Reading a file avoids scraping the human-readable start-up line, which may change.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// Why the simulator's address could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// The process ended before it listened.
    #[error("ollama-sim exited ({status}) before it listened")]
    Exited {
        /// How it ended.
        status: std::process::ExitStatus,
    },
    /// Nothing was written in time.
    #[error("ollama-sim did not write {path} within {waited:?}")]
    TimedOut {
        /// The ready file.
        path: String,
        /// How long it was waited for.
        waited: Duration,
    },
    /// The process or the file could not be read.
    #[error("cannot wait for ollama-sim: {0}")]
    Io(#[from] std::io::Error),
}

/// Waits until the `ollama-sim` started as `child` with `--ready-file ready_file` listens,
/// and returns its URL (`http://HOST:PORT`). Fails at once if the process exits first.
pub fn wait_until_ready(
    child: &mut Child,
    ready_file: &Path,
    timeout: Duration,
) -> Result<String, ReadyError> {
    let started = Instant::now();
    loop {
        match std::fs::read_to_string(ready_file) {
            Ok(url) if !url.trim().is_empty() => return Ok(url.trim().to_owned()),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        if let Some(status) = child.try_wait()? {
            return Err(ReadyError::Exited { status });
        }
        if started.elapsed() > timeout {
            return Err(ReadyError::TimedOut {
                path: ready_file.display().to_string(),
                waited: timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
