//! Scenario errors: every message names the file, line and column, what is wrong and what is
//! allowed.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// A place in a scenario file, printed as `file:line:column` (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// The file as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file is not valid TOML, has an unknown key, or a value that is not allowed.
    #[error("{location}: {message}")]
    Invalid {
        /// Where the problem is.
        location: Location,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A file the scenario refers to (a recorded trace) could not be read.
    // The cause is part of this message and deliberately not a `source`: a chain printer
    // would state it twice.
    #[error("{location}: cannot read {}: {cause}", path.display())]
    ReadReferencedFile {
        /// Where the scenario names the file.
        location: Location,
        /// The path that was tried.
        path: PathBuf,
        /// What the file system said.
        cause: std::io::Error,
    },
}

impl ScenarioError {
    /// The location the error points at.
    pub fn location(&self) -> &Location {
        match self {
            ScenarioError::Invalid { location, .. }
            | ScenarioError::ReadReferencedFile { location, .. } => location,
        }
    }
}

/// The text of one file being parsed, with its name, to turn byte spans into locations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceText<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

impl SourceText<'_> {
    /// The 1-based line and column of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            file: self.name.to_owned(),
            line,
            column,
        }
    }

    /// An [`ScenarioError::Invalid`] at the start of `span`.
    pub fn invalid(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            location: self.location(span.start),
            message: message.into(),
        }
    }
}
