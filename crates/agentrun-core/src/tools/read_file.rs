//! `read_file`: a text file of the workspace, whole or a range of its lines.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Tool, ToolContext, ToolError, parse_arguments};
use crate::backend::ToolSpec;

/// Lines returned when the call does not say.
const DEFAULT_MAX_LINES: usize = 2_000;

/// Bytes returned at most, whatever the line count: a model's context is small.
const MAX_BYTES: usize = 60_000;

#[derive(Debug, Deserialize, JsonSchema)]
struct Args {
    /// The file, relative to the workspace root, e.g. `src/lib.rs`.
    path: String,
    /// The first line to return, counting from 1 (default 1).
    #[serde(default)]
    start_line: Option<usize>,
    /// How many lines to return at most (default 2000).
    #[serde(default)]
    max_lines: Option<usize>,
}

/// Reads a text file.
pub(super) struct ReadFile;

#[async_trait]
impl Tool for ReadFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec::for_parameters::<Args>(
            "read_file",
            "Read a text file of the workspace. Long files come in parts: give start_line to read on.",
        )
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext<'_>,
    ) -> Result<String, ToolError> {
        let args: Args = parse_arguments(arguments)?;
        let path = context.workspace.resolve(&args.path)?;
        if path.is_dir() {
            return Err(ToolError::Failed(format!(
                "`{}` is a directory; list it with list_files",
                args.path
            )));
        }
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => ToolError::Failed(format!(
                    "`{}` does not exist; list_files shows what does",
                    args.path
                )),
                _ => ToolError::Failed(format!("cannot read `{}`: {error}", args.path)),
            })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            ToolError::Failed(format!("`{}` is not a text file (not UTF-8)", args.path))
        })?;
        Ok(excerpt(
            &text,
            args.start_line.unwrap_or(1),
            args.max_lines.unwrap_or(DEFAULT_MAX_LINES),
        ))
    }
}

/// Lines `start..` of the text, at most `max_lines` of them and [`MAX_BYTES`], with a note
/// saying where to read on when some are left out.
fn excerpt(text: &str, start: usize, max_lines: usize) -> String {
    let start = start.max(1);
    let total = text.lines().count();
    if start > total.max(1) {
        return format!("[the file has {total} lines; nothing from line {start} on]");
    }
    let mut out = String::new();
    let mut last = start - 1;
    for line in text.lines().skip(start - 1).take(max_lines.max(1)) {
        if out.len() + line.len() + 1 > MAX_BYTES && last >= start {
            break;
        }
        if line.len() > MAX_BYTES {
            out.push_str(&line[..floor_char_boundary(line, MAX_BYTES)]);
            out.push_str(" [... the rest of this long line is left out]");
        } else {
            out.push_str(line);
        }
        out.push('\n');
        last += 1;
    }
    if start == 1 && last == total && !text.ends_with('\n') {
        out.pop();
    }
    if start > 1 || last < total {
        out.push_str(&format!(
            "[lines {start}-{last} of {total}{}]",
            if last < total {
                format!("; read on with start_line: {}", last + 1)
            } else {
                String::new()
            }
        ));
    }
    out
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_file_comes_back_as_it_is() {
        assert_eq!(excerpt("a\nb\n", 1, 10), "a\nb\n");
        assert_eq!(excerpt("a\nb", 1, 10), "a\nb");
        assert_eq!(excerpt("", 1, 10), "");
    }

    #[test]
    fn a_part_says_where_to_read_on() {
        let text = "1\n2\n3\n4\n";
        assert_eq!(
            excerpt(text, 1, 2),
            "1\n2\n[lines 1-2 of 4; read on with start_line: 3]"
        );
        assert_eq!(excerpt(text, 3, 10), "3\n4\n[lines 3-4 of 4]");
        assert_eq!(
            excerpt(text, 9, 10),
            "[the file has 4 lines; nothing from line 9 on]"
        );
    }
}
