//! `search_files`: lines of the workspace's text files that match a regular expression.

use std::path::Path;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Tool, ToolContext, ToolError, parse_arguments};
use crate::backend::ToolSpec;

/// Matching lines reported when the call does not say.
const DEFAULT_MAX_RESULTS: usize = 100;

/// Files larger than this are not searched (generated or data files).
const MAX_FILE_BYTES: u64 = 1_000_000;

/// Characters of a matching line shown.
const MAX_LINE_CHARS: usize = 200;

#[derive(Debug, Deserialize, JsonSchema)]
struct Args {
    /// A regular expression (Rust `regex` syntax; `(?i)` ignores case), e.g. `fn parse_`.
    pattern: String,
    /// The directory or file to search, relative to the workspace root (default: all of it).
    #[serde(default)]
    path: Option<String>,
    /// How many matching lines to return at most (default 100).
    #[serde(default)]
    max_results: Option<usize>,
}

/// Searches text files.
pub(super) struct SearchFiles;

#[async_trait]
impl Tool for SearchFiles {
    fn spec(&self) -> ToolSpec {
        ToolSpec::for_parameters::<Args>(
            "search_files",
            "Search the workspace's text files for a regular expression; answers `path:line: text` for each matching line.",
        )
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext<'_>,
    ) -> Result<String, ToolError> {
        let args: Args = parse_arguments(arguments)?;
        let pattern = regex::Regex::new(&args.pattern).map_err(|error| {
            ToolError::InvalidArguments(format!(
                "`{}` is not a valid regular expression: {error}",
                args.pattern
            ))
        })?;
        let given = args.path.unwrap_or_else(|| ".".to_owned());
        let start = context.workspace.resolve(&given)?;
        if !start.exists() {
            return Err(ToolError::Failed(format!("`{given}` does not exist")));
        }
        let limit = args.max_results.unwrap_or(DEFAULT_MAX_RESULTS).max(1);
        let workspace = context.workspace.clone();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            let mut truncated = false;
            let mut search = |path: &Path| -> bool {
                for hit in matching_lines(path, &pattern) {
                    if found.len() == limit {
                        truncated = true;
                        return false;
                    }
                    found.push(format!("{}:{}: {}", workspace.display(path), hit.0, hit.1));
                }
                true
            };
            if start.is_file() {
                search(&start);
            } else {
                workspace
                    .walk(&start, true, &mut |path, metadata| {
                        !metadata.is_file() || search(path)
                    })
                    .map_err(|error| {
                        ToolError::Failed(format!("cannot search `{given}`: {error}"))
                    })?;
            }
            if found.is_empty() {
                return Ok(format!("no line matches `{}`", pattern.as_str()));
            }
            if truncated {
                found.push(format!(
                    "[stopped at {limit} matches; narrow the pattern or the path]"
                ));
            }
            Ok(found.join("\n"))
        })
        .await
        .map_err(|error| ToolError::Failed(format!("the search failed: {error}")))?
    }
}

/// The (line number, text) of each matching line of a text file; nothing for a file that
/// is large or not UTF-8.
fn matching_lines(path: &Path, pattern: &regex::Regex) -> Vec<(usize, String)> {
    let small = std::fs::metadata(path).is_ok_and(|metadata| metadata.len() <= MAX_FILE_BYTES);
    let Some(text) = small
        .then(|| std::fs::read(path).ok())
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| pattern.is_match(line))
        .map(|(index, line)| {
            let shown: String = line.trim().chars().take(MAX_LINE_CHARS).collect();
            (index + 1, shown)
        })
        .collect()
}
