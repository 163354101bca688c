//! `list_files`: the entries of a workspace directory, optionally recursive.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Tool, ToolContext, ToolError, parse_arguments};
use crate::backend::ToolSpec;

/// Entries listed at most.
const MAX_ENTRIES: usize = 500;

#[derive(Debug, Deserialize, JsonSchema)]
struct Args {
    /// The directory, relative to the workspace root (default: the root itself).
    #[serde(default)]
    path: Option<String>,
    /// List subdirectories too (default false). Build and version-control directories such
    /// as `.git`, `target` and `node_modules` are named but not entered.
    #[serde(default)]
    recursive: bool,
}

/// Lists a directory.
pub(super) struct ListFiles;

#[async_trait]
impl Tool for ListFiles {
    fn spec(&self) -> ToolSpec {
        ToolSpec::for_parameters::<Args>(
            "list_files",
            "List the files of a workspace directory: directories end with `/`, files show their size.",
        )
    }

    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext<'_>,
    ) -> Result<String, ToolError> {
        let args: Args = parse_arguments(arguments)?;
        let given = args.path.unwrap_or_else(|| ".".to_owned());
        let dir = context.workspace.resolve(&given)?;
        if !dir.is_dir() {
            return Err(ToolError::Failed(format!(
                "`{given}` is not a directory of the workspace"
            )));
        }
        let workspace = context.workspace.clone();
        let recursive = args.recursive;
        tokio::task::spawn_blocking(move || {
            let mut lines = Vec::new();
            let mut more = 0usize;
            workspace
                .walk(&dir, recursive, &mut |path, metadata| {
                    if lines.len() == MAX_ENTRIES {
                        more += 1;
                        return true;
                    }
                    let name = workspace.display(path);
                    lines.push(if metadata.is_dir() {
                        format!("{name}/")
                    } else if metadata.is_symlink() {
                        format!("{name} (symbolic link)")
                    } else {
                        format!("{name} ({} bytes)", metadata.len())
                    });
                    true
                })
                .map_err(|error| ToolError::Failed(format!("cannot list `{given}`: {error}")))?;
            if lines.is_empty() {
                return Ok(format!("`{given}` is empty"));
            }
            if more > 0 {
                lines.push(format!("[... {more} more entries; list a subdirectory]"));
            }
            Ok(lines.join("\n"))
        })
        .await
        .map_err(|error| ToolError::Failed(format!("the listing failed: {error}")))?
    }
}
