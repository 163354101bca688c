//! Diagnostics: what is wrong, where (file, line, column, field) and how to fix it.

use std::fmt;
use std::path::PathBuf;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The workflow cannot run.
    Error,
    /// The workflow runs, but probably not as meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in a workflow or agent file.
///
/// Renders as `path/to/file.yaml:12:5: error: agents.coder.model: <message>`, then the source
/// line with the spot underlined, then `  hint: <how to fix>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file, as it was named (relative paths stay relative).
    pub file: PathBuf,
    /// 1-based line; 0 when the problem has no place in the file (e.g. it cannot be read).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The field concerned, e.g. `agents.coder.model` or `flow.edges[2].to`; empty for the
    /// file as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The source line the problem is on, when there is one.
    pub source_line: Option<String>,
    /// How many characters from `column` to underline (at least 1).
    pub width: usize,
}

impl Diagnostic {
    /// Whether this diagnostic stops the workflow from loading.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.file.display())?;
        if self.line > 0 {
            write!(formatter, ":{}:{}", self.line, self.column)?;
        }
        write!(formatter, ": {}: ", self.severity)?;
        if !self.field.is_empty() {
            write!(formatter, "{}: ", self.field)?;
        }
        write!(formatter, "{}", self.message)?;
        if let Some(source_line) = &self.source_line {
            write_snippet(formatter, self.line, self.column, self.width, source_line)?;
        }
        if let Some(hint) = &self.hint {
            write!(formatter, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The widest stretch of a source line shown; longer lines are cut around the column.
const SNIPPET_CHARS: usize = 100;

fn write_snippet(
    formatter: &mut fmt::Formatter<'_>,
    line: usize,
    column: usize,
    width: usize,
    source_line: &str,
) -> fmt::Result {
    let chars: Vec<char> = source_line
        .trim_end()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let column_index = column.saturating_sub(1).min(chars.len());
    let first = column_index.saturating_sub(SNIPPET_CHARS / 2);
    let first = if chars.len() <= SNIPPET_CHARS {
        0
    } else {
        first
    };
    let last = (first + SNIPPET_CHARS).min(chars.len());
    let mut shown: String = chars[first..last].iter().collect();
    let mut offset = column_index - first;
    if first > 0 {
        shown.insert_str(0, "...");
        offset += 3;
    }
    if last < chars.len() {
        shown.push_str("...");
    }
    let underline = width.clamp(1, (last - column_index).max(1));
    let number = line.to_string();
    let gutter = " ".repeat(number.len());
    write!(
        formatter,
        "\n {number} | {shown}\n {gutter} | {}{}",
        " ".repeat(offset),
        "^".repeat(underline)
    )
}

/// Everything wrong with a workflow: every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    /// The problems, sorted by file and position; warnings found alongside are included.
    pub diagnostics: Vec<Diagnostic>,
}

impl SpecError {
    /// The diagnostics that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.diagnostics.iter().enumerate() {
            if index > 0 {
                formatter.write_str("\n")?;
            }
            write!(formatter, "{diagnostic}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic() -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: PathBuf::from("workflows/tdd.yaml"),
            line: 12,
            column: 5,
            field: "agents.coder.modle".into(),
            message: "unknown key".into(),
            hint: Some("did you mean `model`?".into()),
            source_line: Some("    modle: qwen3-coder:32b".into()),
            width: 5,
        }
    }

    #[test]
    fn renders_location_field_snippet_and_hint() {
        assert_eq!(
            diagnostic().to_string(),
            "workflows/tdd.yaml:12:5: error: agents.coder.modle: unknown key\n \
             12 |     modle: qwen3-coder:32b\n    |     ^^^^^\n  hint: did you mean `model`?"
        );
    }

    #[test]
    fn renders_without_place_or_field() {
        let bare = Diagnostic {
            line: 0,
            column: 0,
            field: String::new(),
            source_line: None,
            hint: None,
            message: "cannot read the file".into(),
            ..diagnostic()
        };
        assert_eq!(
            bare.to_string(),
            "workflows/tdd.yaml: error: cannot read the file"
        );
    }

    #[test]
    fn cuts_long_lines_around_the_column() {
        let long = Diagnostic {
            column: 301,
            width: 3,
            source_line: Some(format!("{}BAD{}", "x".repeat(300), "y".repeat(300))),
            hint: None,
            ..diagnostic()
        };
        let rendered = long.to_string();
        let lines: Vec<&str> = rendered.lines().collect();
        assert!(lines[1].len() < 120, "{}", lines[1]);
        let caret = lines[2].find('^').expect("underline");
        assert_eq!(&lines[1][caret..caret + 3], "BAD");
    }

    #[test]
    fn spec_error_renders_every_diagnostic() {
        let error = SpecError {
            diagnostics: vec![diagnostic(), diagnostic()],
        };
        assert_eq!(error.to_string().matches("unknown key").count(), 2);
        assert_eq!(error.errors().count(), 2);
    }
}
