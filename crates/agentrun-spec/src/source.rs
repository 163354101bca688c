//! The files a workflow is read from, and positions inside them.

use std::path::{Component, Path, PathBuf};

use crate::diagnostic::{Diagnostic, Severity};

/// Index of a file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct FileId(pub(crate) u32);

/// A place in a source file: 1-based line and column (in characters), and how many characters
/// the thing there spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub(crate) struct Pos {
    pub(crate) file: FileId,
    pub(crate) line: u32,
    pub(crate) column: u32,
    pub(crate) width: u32,
}

impl Pos {
    /// The start of a file, for problems with the file as a whole.
    pub(crate) fn file_start(file: FileId) -> Pos {
        Pos {
            file,
            line: 1,
            column: 1,
            width: 1,
        }
    }
}

/// One file read while loading a workflow.
#[derive(Debug)]
struct SourceFile {
    /// The path as it is shown in diagnostics.
    path: PathBuf,
    text: String,
}

/// Every file read while loading one workflow, so positions can be turned into diagnostics.
#[derive(Debug, Default)]
pub(crate) struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub(crate) fn add(&mut self, path: PathBuf, text: String) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).expect("a workflow reads few files"));
        self.files.push(SourceFile { path, text });
        id
    }

    pub(crate) fn path(&self, file: FileId) -> &Path {
        &self.files[file.0 as usize].path
    }

    pub(crate) fn text(&self, file: FileId) -> &str {
        &self.files[file.0 as usize].text
    }

    /// A diagnostic at `pos`, with the source line for its snippet.
    pub(crate) fn diagnostic(
        &self,
        severity: Severity,
        pos: Pos,
        field: String,
        message: String,
        hint: Option<String>,
    ) -> Diagnostic {
        let source_line = (pos.line > 0)
            .then(|| self.text(pos.file).lines().nth(pos.line as usize - 1))
            .flatten()
            .map(str::to_owned);
        Diagnostic {
            severity,
            file: self.path(pos.file).to_path_buf(),
            line: pos.line as usize,
            column: pos.column as usize,
            field,
            message,
            hint,
            source_line,
            width: pos.width.max(1) as usize,
        }
    }
}

/// Joins `relative` onto the directory of `base` and removes `.` and `..` where the path
/// allows, without touching the file system: diagnostics then name
/// `tests/workflows/agents/x.yaml` rather than `tests/workflows/broken/../agents/x.yaml`.
pub(crate) fn resolve_relative(base: &Path, relative: &str) -> PathBuf {
    let relative = Path::new(relative);
    let joined = if relative.is_absolute() {
        relative.to_path_buf()
    } else {
        base.parent().unwrap_or(Path::new("")).join(relative)
    };
    normalize(&joined)
}

fn normalize(path: &Path) -> PathBuf {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => parts.push(component),
            },
            other => parts.push(other),
        }
    }
    let normalized: PathBuf = parts.iter().collect();
    if normalized.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        normalized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_to_the_naming_file() {
        let base = Path::new("tests/workflows/broken/a.yaml");
        assert_eq!(
            resolve_relative(base, "../agents/x.yaml"),
            PathBuf::from("tests/workflows/agents/x.yaml")
        );
        assert_eq!(
            resolve_relative(base, "./prompts/p.md"),
            PathBuf::from("tests/workflows/broken/prompts/p.md")
        );
        assert_eq!(
            resolve_relative(Path::new("a.yaml"), "../x.md"),
            PathBuf::from("../x.md")
        );
        assert_eq!(
            resolve_relative(Path::new("/srv/w/a.yaml"), "/etc/p.md"),
            PathBuf::from("/etc/p.md")
        );
        assert_eq!(
            resolve_relative(Path::new("/a.yaml"), "../../p.md"),
            PathBuf::from("/p.md")
        );
    }

    #[test]
    fn diagnostics_carry_the_source_line() {
        let mut map = SourceMap::default();
        let file = map.add("w.yaml".into(), "name: x\nagents: 3\n".into());
        let pos = Pos {
            file,
            line: 2,
            column: 9,
            width: 1,
        };
        let diagnostic = map.diagnostic(
            Severity::Error,
            pos,
            "agents".into(),
            "expected a mapping".into(),
            None,
        );
        assert_eq!(diagnostic.source_line.as_deref(), Some("agents: 3"));
        assert_eq!(diagnostic.file, PathBuf::from("w.yaml"));
    }
}
