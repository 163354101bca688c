//! `write_file`: creates or replaces a file of the workspace, with its directories.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Tool, ToolContext, ToolError, parse_arguments};
use crate::backend::ToolSpec;

#[derive(Debug, Deserialize, JsonSchema)]
struct Args {
    /// The file, relative to the workspace root, e.g. `tests/test_parser.py`.
    path: String,
    /// The file's whole new content.
    content: String,
}

/// Writes a whole file.
pub(super) struct WriteFile;

#[async_trait]
impl Tool for WriteFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec::for_parameters::<Args>(
            "write_file",
            "Create a file, or replace a file's whole content, in the workspace. Missing directories are created. To change part of a file, use edit_file.",
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
            return Err(ToolError::Failed(format!("`{}` is a directory", args.path)));
        }
        let existed = path.exists();
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|error| {
                ToolError::Failed(format!(
                    "cannot create the directory of `{}`: {error}",
                    args.path
                ))
            })?;
        }
        tokio::fs::write(&path, args.content.as_bytes())
            .await
            .map_err(|error| ToolError::Failed(format!("cannot write `{}`: {error}", args.path)))?;
        Ok(format!(
            "wrote {} bytes to {} ({})",
            args.content.len(),
            context.workspace.display(&path),
            if existed { "replaced" } else { "new file" }
        ))
    }
}
