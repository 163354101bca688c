//! The library's error type: bad configuration, scripts or fault files.

use std::path::PathBuf;

/// Everything that can go wrong while setting a simulator up. Request-time failures are
/// [`ApiError`](crate::api::ApiError)s instead, shaped like Ollama's answers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A configuration file or value is malformed or inconsistent.
    #[error("invalid configuration{}: {message}", path_suffix(path))]
    Config {
        /// The file, if the configuration came from one.
        path: Option<PathBuf>,
        /// What is wrong, with line and column when known.
        message: String,
    },
    /// A script file is malformed.
    #[error("invalid script{}: {message}", path_suffix(path))]
    Script {
        /// The file, if the script came from one.
        path: Option<PathBuf>,
        /// What is wrong, with line and column when known.
        message: String,
    },
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    match path {
        Some(path) => format!(" in {}", path.display()),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn config(message: impl Into<String>) -> Error {
        Error::Config {
            path: None,
            message: message.into(),
        }
    }

    pub(crate) fn script(message: impl Into<String>) -> Error {
        Error::Script {
            path: None,
            message: message.into(),
        }
    }

    /// Attaches `path` to a configuration or script error.
    pub(crate) fn in_file(self, file: PathBuf) -> Error {
        match self {
            Error::Config { message, .. } => Error::Config {
                path: Some(file),
                message,
            },
            Error::Script { message, .. } => Error::Script {
                path: Some(file),
                message,
            },
            other => other,
        }
    }
}
