//! `edit_file`: replaces one span of a file, which must occur exactly once.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Tool, ToolContext, ToolError, parse_arguments};
use crate::backend::ToolSpec;

#[derive(Debug, Deserialize, JsonSchema)]
struct Args {
    /// The file, relative to the workspace root.
    path: String,
    /// The exact text to replace, whitespace included; it must occur exactly once.
    old_text: String,
    /// The text to put in its place.
    new_text: String,
}

/// Replaces a unique span of a file.
pub(super) struct EditFile;

#[async_trait]
impl Tool for EditFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec::for_parameters::<Args>(
            "edit_file",
            "Replace one span of a file of the workspace. old_text must occur exactly once in the file: include enough surrounding lines to make it unique.",
        )
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext<'_>,
    ) -> Result<String, ToolError> {
        let args: Args = parse_arguments(arguments)?;
        if args.old_text.is_empty() {
            return Err(ToolError::InvalidArguments(
                "`old_text` is empty; give the text to replace, or use write_file for a new file"
                    .to_owned(),
            ));
        }
        let path = context.workspace.resolve(&args.path)?;
        let text = match tokio::fs::read(&path).await {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                ToolError::Failed(format!("`{}` is not a text file (not UTF-8)", args.path))
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ToolError::Failed(format!(
                    "`{}` does not exist; create it with write_file",
                    args.path
                )));
            }
            Err(error) => {
                return Err(ToolError::Failed(format!(
                    "cannot read `{}`: {error}",
                    args.path
                )));
            }
        };
        let edited = replace_unique(&text, &args.old_text, &args.new_text).map_err(|count| {
            ToolError::Failed(if count == 0 {
                format!(
                    "the text to replace is not in `{}`; read the file and copy the span exactly, whitespace included",
                    args.path
                )
            } else {
                format!(
                    "the text to replace occurs {count} times in `{}`; include more of the surrounding lines so that it occurs once",
                    args.path
                )
            })
        })?;
        tokio::fs::write(&path, edited.as_bytes())
            .await
            .map_err(|error| ToolError::Failed(format!("cannot write `{}`: {error}", args.path)))?;
        Ok(format!(
            "replaced {} lines with {} in {}",
            args.old_text.lines().count(),
            args.new_text.lines().count(),
            context.workspace.display(&path)
        ))
    }
}

/// The text with its only occurrence of `old` replaced; the number of occurrences when that
/// is not one.
fn replace_unique(text: &str, old: &str, new: &str) -> Result<String, usize> {
    let mut found = text.match_indices(old);
    match (found.next(), found.next()) {
        (Some((at, _)), None) => {
            let mut edited = String::with_capacity(text.len() + new.len());
            edited.push_str(&text[..at]);
            edited.push_str(new);
            edited.push_str(&text[at + old.len()..]);
            Ok(edited)
        }
        (None, _) => Err(0),
        (Some(_), Some(_)) => Err(2 + found.count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_unique_span_is_replaced() {
        assert_eq!(replace_unique("a b c", "b", "B"), Ok("a B c".to_owned()));
        assert_eq!(replace_unique("a b c", "x", "B"), Err(0));
        assert_eq!(replace_unique("b b b", "b", "B"), Err(3));
    }
}
